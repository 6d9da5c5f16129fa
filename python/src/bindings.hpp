// What module.cpp and batcher.cpp share.
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dlpack_array.hpp"
#include "linalign/linalign.hpp"

namespace linalign_py {

// The call-level parameters (SPEC §2–§4) from Python keywords (scalars or
// 1-D arrays of `rows` values on `like`'s device, kept in *keep).
linalign::Params make_params(const py::dict& kw, std::vector<Array>* keep, int64_t rows,
                             const Array& like);
// A Context for Python: one call at a time (linalign.hpp: a Context is used
// by one thread at a time), the GIL released while a call waits or runs; and
// no direct call while a Batcher runs on it (batcher.hpp).
struct PyContext {
  std::unique_ptr<linalign::Context> ctx;
  std::mutex mu;
  std::atomic<int> batchers{0};

  // Runs f(Context&) -> Status without the GIL, serialised; throws
  // LibraryError with the context's message when it fails.
  template <class F>
  void call(F&& f) {
    if (batchers.load() > 0)
      invalid("context: a Batcher runs on this context; direct calls need another Context");
    linalign::Status s;
    std::string message;
    {
      py::gil_scoped_release nogil;
      std::lock_guard<std::mutex> lock(mu);
      s = f(*ctx);
      if (s != linalign::Status::kSuccess) message = ctx->last_error();
    }
    if (s != linalign::Status::kSuccess) throw LibraryError{s, message};
  }
};
// Sets the Python error of a library status (ValueError for an invalid
// argument, linalign.Error with .status and .code otherwise).
void raise_library_error(linalign::Status s, const std::string& message);
// The exception object of a library status, for futures (set_exception).
py::object library_exception(linalign::Status s, const std::string& message);
// A CPU context reads host memory only: a CUDA array given to it is refused
// (the host would dereference a device pointer).
inline void expect_reachable(const PyContext& pc, const Array& a, const char* name) {
  if (!a.empty() && a.t().device.device_type == kDLCUDA &&
      pc.ctx->backend() == linalign::Backend::kCpu)
    invalid(std::string(name) + ": CUDA memory needs a CUDA context (linalign.Context(\"cuda\"))");
}
// The two logit arrays of a call, a batcher step or a job's sequence: one
// dtype (TypeError otherwise), `rank` dimensions, principle shaped as base
// and on its device, both where pc's backend reads. Returns the dtype.
inline linalign::DType logits_pair(const PyContext& pc, const Array& base, const Array& principle,
                                   int rank) {
  const linalign::DType t = base.logits_dtype("base");
  if (principle.logits_dtype("principle") != t)
    throw TypeMismatch{"principle: dtype " + principle.dtype_name() + " differs from base's " +
                       base.dtype_name()};
  base.expect("base", std::vector<int64_t>(size_t(rank), -1));
  std::vector<int64_t> dims;
  for (int i = 0; i < rank; ++i) dims.push_back(base.dim(i));
  principle.expect("principle", dims);
  expect_reachable(pc, base, "base");
  expect_reachable(pc, principle, "principle");
  if (base.where() != principle.where() || base.device_id() != principle.device_id())
    invalid("principle: on another device than base");
  return t;
}
// The host API: Batcher, requests, scoring jobs (batcher.cpp).
void bind_batcher(py::module_& m);
// A RowDiagnostics as a dict of Python numbers.
py::dict diagnostics_dict(const linalign::RowDiagnostics& d);

}  // namespace linalign_py
