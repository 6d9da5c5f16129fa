// What module.cpp and batcher.cpp share.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "dlpack_array.hpp"
#include "linalign/linalign.hpp"

namespace linalign_py {

// The call-level parameters (SPEC §2–§4) from Python keywords (scalars or
// 1-D arrays of `rows` values on `like`'s device, kept in *keep).
linalign::Params make_params(const py::dict& kw, std::vector<Array>* keep, int64_t rows,
                             const Array& like);
// Throws LibraryError with the context's last error when s is not kSuccess.
void check(linalign::Context& ctx, linalign::Status s);
// Sets the Python error of a library status (ValueError for an invalid
// argument, linalign.Error with .status and .code otherwise).
void raise_library_error(linalign::Status s, const std::string& message);
// The exception object of a library status, for futures (set_exception).
py::object library_exception(linalign::Status s, const std::string& message);
// The host API: Batcher, requests, scoring jobs (batcher.cpp).
void bind_batcher(py::module_& m);
// A RowDiagnostics as a dict of Python numbers.
py::dict diagnostics_dict(const linalign::RowDiagnostics& d);

}  // namespace linalign_py
