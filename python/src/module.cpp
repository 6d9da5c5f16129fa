// linalign._core: the pybind11 layer under the `linalign` Python package
// (python/linalign/__init__.py, docs/PYTHON.md). It takes arrays by DLPack
// (dlpack_array.hpp) — inputs and the outputs the Python layer allocated in
// the input's library — checks their shapes, builds the library's Params and
// LogitsView, and calls the Context with the GIL released. The host API's
// batcher and scoring jobs are in batcher.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "dlpack_array.hpp"
#include "linalign/linalign.hpp"

namespace linalign_py {

namespace {

using linalign::Context;
using linalign::DType;
using linalign::LogitsView;
using linalign::Params;
using linalign::Status;

// The two logit rows of a call: [B, V] each, one dtype, one device.
struct Logits {
  Array base, principle;
  LogitsView view;
};

Logits logits(const PyContext& pc, py::handle base, py::handle principle, py::object stream) {
  Logits l;
  l.base = Array::from(base, "base", stream);
  l.principle = Array::from(principle, "principle", stream);
  const DType t = logits_pair(pc, l.base, l.principle, 2);
  l.view = LogitsView::strided(t, l.base.dim(0), l.base.dim(1), l.base.data(), l.principle.data(),
                               l.base.dim(0) > 1 ? l.base.stride(0) : 0,
                               l.principle.dim(0) > 1 ? l.principle.stride(0) : 0);
  return l;
}

std::string type_name(py::handle v) {
  return py::str(v.get_type().attr("__name__"));
}

// A Python int as T: TypeError naming `key` for anything but an int (a bool
// or a float included: 2.5 is no top_k), ValueError when outside T's range —
// never pybind11's unnamed "Unable to cast".
template <class T>
T int_of(py::handle v, const std::string& key) {
  if (py::isinstance<py::bool_>(v) || !py::isinstance<py::int_>(v))
    throw TypeMismatch{key + ": expected an integer, got " + type_name(v)};
  if constexpr (std::is_unsigned<T>::value) {
    if (v.cast<py::int_>() < py::int_(0)) invalid(key + ": must be >= 0");
    const unsigned long long x = PyLong_AsUnsignedLongLong(v.ptr());
    if (PyErr_Occurred()) {
      PyErr_Clear();
      invalid(key + ": out of range (at most 2**64 - 1)");
    }
    return T(x);
  } else {
    int overflow = 0;
    const long long x = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow != 0 || x < std::numeric_limits<T>::min() || x > std::numeric_limits<T>::max())
      invalid(key + ": out of range [" + std::to_string(std::numeric_limits<T>::min()) + ", " +
              std::to_string(std::numeric_limits<T>::max()) + "]");
    return T(x);
  }
}

// A Python number as a float (an int too large for a double is out of range).
float float_of(py::handle v, const std::string& key) {
  if (py::isinstance<py::bool_>(v) ||
      !(py::isinstance<py::int_>(v) || py::isinstance<py::float_>(v)))
    throw TypeMismatch{key + ": expected a number, got " + type_name(v)};
  const double x = PyFloat_AsDouble(v.ptr());
  if (PyErr_Occurred()) {
    PyErr_Clear();
    invalid(key + ": out of range");
  }
  return float(x);
}

// Arrays that must live as long as a call's Params (per-row parameters).
template <class T>
void per_row(const py::dict& kw, const char* key, linalign::PerRow<T>* out,
             std::vector<Array>* keep, int64_t rows, const Array& like) {
  if (!kw.contains(key)) return;
  py::handle v = kw[key];
  if (py::isinstance<py::bool_>(v))
    throw TypeMismatch{std::string(key) + ": expected a number, got bool"};
  if (py::isinstance<py::int_>(v) || py::isinstance<py::float_>(v)) {
    if constexpr (std::is_floating_point<T>::value) {
      *out = float_of(v, key);
    } else {
      *out = int_of<T>(v, key);
    }
    return;
  }
  Array a = Array::from(v, key);
  if constexpr (std::is_same<T, float>::value) {
    a.expect_type(key, kDLFloat, 32, "float32");
  } else if constexpr (std::is_same<T, int32_t>::value) {
    a.expect_type(key, kDLInt, 32, "int32");
  } else if (!a.is(kDLUInt, 64) && !a.is(kDLInt, 64)) {
    throw TypeMismatch{std::string(key) + ": dtype must be uint64 or int64, got " + a.dtype_name()};
  }
  a.expect(key, {rows});
  if (!like.empty() && a.where() != like.where())
    invalid(std::string(key) + ": on another device than base");
  *out = linalign::PerRow<T>::array(static_cast<const T*>(a.data()));
  keep->push_back(std::move(a));
}

template <class E>
E enum_of(const py::dict& kw, const char* key, std::initializer_list<std::pair<const char*, E>> m,
          E fallback) {
  if (!kw.contains(key)) return fallback;
  const std::string s = py::str(kw[key]);
  for (const auto& kv : m)
    if (s == kv.first) return kv.second;
  std::string names;
  for (const auto& kv : m) names += std::string(names.empty() ? "" : ", ") + "\"" + kv.first + "\"";
  invalid(std::string(key) + ": \"" + s + "\" is not one of " + names);
}

}  // namespace

// The call-level parameters (SPEC §2–§4) from the Python keywords; the
// per-row arrays are kept in *keep.
Params make_params(const py::dict& kw, std::vector<Array>* keep, int64_t rows, const Array& like) {
  static const char* known[] = {"temperature", "rule",   "ratio",          "epsilon",
                                "eta_max",     "update", "greedy",         "top_p",
                                "top_k",       "min_p",  "nucleus_source", "min_tokens_to_keep",
                                "seed",        "offset", "ignore_index"};
  for (auto item : kw) {
    const std::string k = py::str(item.first);
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) throw TypeMismatch{"unexpected keyword argument '" + k + "'"};
  }
  Params p;
  per_row(kw, "temperature", &p.temperature, keep, rows, like);
  per_row(kw, "ratio", &p.ratio, keep, rows, like);
  per_row(kw, "epsilon", &p.epsilon, keep, rows, like);
  per_row(kw, "eta_max", &p.eta_max, keep, rows, like);
  per_row(kw, "top_p", &p.top_p, keep, rows, like);
  per_row(kw, "top_k", &p.top_k, keep, rows, like);
  per_row(kw, "min_p", &p.min_p, keep, rows, like);
  per_row(kw, "seed", &p.seed, keep, rows, like);
  per_row(kw, "offset", &p.offset, keep, rows, like);
  using linalign::NucleusSource;
  using linalign::StepRule;
  using linalign::UpdateForm;
  p.rule = enum_of<StepRule>(kw, "rule",
                             {{"fixed", StepRule::kFixed},
                              {"trust_region", StepRule::kTrustRegion},
                              {"exact_kl", StepRule::kExactKl}},
                             p.rule);
  p.update = enum_of<UpdateForm>(
      kw, "update", {{"tilt", UpdateForm::kTilt}, {"linear", UpdateForm::kLinear}}, p.update);
  p.nucleus_source = enum_of<NucleusSource>(
      kw, "nucleus_source",
      {{"principle", NucleusSource::kPrinciple}, {"aligned", NucleusSource::kAligned}},
      p.nucleus_source);
  if (kw.contains("greedy")) {
    if (!py::isinstance<py::bool_>(kw["greedy"]))
      throw TypeMismatch{"greedy: expected a bool (one per call), got " + type_name(kw["greedy"])};
    p.greedy = kw["greedy"].cast<bool>();
  }
  if (kw.contains("min_tokens_to_keep"))
    p.min_tokens_to_keep = int_of<int32_t>(kw["min_tokens_to_keep"], "min_tokens_to_keep");
  if (kw.contains("ignore_index"))
    p.ignore_index = int_of<int32_t>(kw["ignore_index"], "ignore_index");
  return p;
}

namespace {

// Where a call's outputs go: each an Array the Python layer allocated.
linalign::RowDiagnostics* diagnostics_of(const Array& d, int64_t rows) {
  if (d.empty()) return nullptr;
  d.expect_type("diagnostics", kDLInt, 32, "int32");
  d.expect("diagnostics", {rows, 8});
  if (d.dim(0) > 1 && d.stride(0) != 8) invalid("diagnostics: must be contiguous");
  return static_cast<linalign::RowDiagnostics*>(d.data());
}

void* stream_of(const py::object& stream) {
  return stream.is_none() ? nullptr : reinterpret_cast<void*>(stream.cast<uintptr_t>());
}

void align(PyContext& pc, py::handle base, py::handle principle, py::handle out,
           py::handle diagnostics, const py::dict& kw, py::object stream) {
  Logits l = logits(pc, base, principle, stream);
  std::vector<Array> keep;
  const Params p = make_params(kw, &keep, l.view.rows, l.base);
  Array o = Array::from(out, "out", stream);
  o.expect("out", {l.view.rows, l.view.vocab});
  DType out_dtype = DType::kF32;
  if (o.is(kDLBfloat, 16) || o.is(kDLInt, 16)) {
    out_dtype = DType::kBF16;
  } else {
    o.expect_type("out", kDLFloat, 32, "float32 or bfloat16");
  }
  const Array d = Array::optional(diagnostics, "diagnostics", stream);
  auto* diag = diagnostics_of(d, l.view.rows);
  pc.call([&](Context& ctx) {
    return ctx.align(l.view, p, o.data(), out_dtype, l.view.rows > 1 ? o.stride(0) : 0, diag,
                     nullptr, 0, stream_of(stream));
  });
}

void sample(PyContext& pc, py::handle base, py::handle principle, py::handle tokens,
            py::handle logprob, py::handle diagnostics, const py::dict& kw, py::object stream) {
  Logits l = logits(pc, base, principle, stream);
  std::vector<Array> keep;
  const Params p = make_params(kw, &keep, l.view.rows, l.base);
  Array t = Array::from(tokens, "tokens", stream);
  t.expect_type("tokens", kDLInt, 32, "int32");
  t.expect("tokens", {l.view.rows});
  Array lp = Array::from(logprob, "token_logprob", stream);
  lp.expect_type("token_logprob", kDLFloat, 32, "float32");
  lp.expect("token_logprob", {l.view.rows});
  const Array d = Array::optional(diagnostics, "diagnostics", stream);
  auto* diag = diagnostics_of(d, l.view.rows);
  pc.call([&](Context& ctx) {
    return ctx.sample(l.view, p, static_cast<int32_t*>(t.data()), static_cast<float*>(lp.data()),
                      diag, nullptr, 0, stream_of(stream));
  });
}

float* f32_out(const Array& a, const char* name, int64_t n) {
  if (a.empty()) return nullptr;
  a.expect_type(name, kDLFloat, 32, "float32");
  a.expect(name, {n});
  return static_cast<float*>(a.data());
}

// outs: (aligned, base, principle, seq_aligned, seq_base, seq_principle), None where not wanted.
void score(PyContext& pc, py::handle base, py::handle principle, py::handle targets,
           py::handle seq_offsets, py::tuple outs, py::handle diagnostics, const py::dict& kw,
           py::object stream) {
  Logits l = logits(pc, base, principle, stream);
  const int64_t B = l.view.rows;
  std::vector<Array> keep;
  const Params p = make_params(kw, &keep, B, l.base);
  Array tg = Array::from(targets, "targets", stream);
  tg.expect_type("targets", kDLInt, 32, "int32");
  tg.expect("targets", {B});
  const Array off = Array::optional(seq_offsets, "seq_offsets", stream);
  int64_t S = 0;
  if (!off.empty()) {
    off.expect_type("seq_offsets", kDLInt, 64, "int64");
    off.expect("seq_offsets", {-1});
    if (off.dim(0) < 1) invalid("seq_offsets: needs at least one entry (num_sequences + 1)");
    S = off.dim(0) - 1;
  }
  static const char* names[] = {"aligned",     "base_out", "principle_out",
                                "seq_aligned", "seq_base", "seq_principle"};
  std::vector<Array> o;
  for (size_t i = 0; i < 6; ++i) o.push_back(Array::optional(outs[i], names[i], stream));
  linalign::ScoreOutputs so;
  so.aligned = f32_out(o[0], names[0], B);
  so.base = f32_out(o[1], names[1], B);
  so.principle = f32_out(o[2], names[2], B);
  if (!off.empty()) {
    so.seq_offsets = static_cast<const int64_t*>(off.data());
    so.num_sequences = S;
    so.seq_aligned = f32_out(o[3], names[3], S);
    so.seq_base = f32_out(o[4], names[4], S);
    so.seq_principle = f32_out(o[5], names[5], S);
  }
  const Array d = Array::optional(diagnostics, "diagnostics", stream);
  auto* diag = diagnostics_of(d, B);
  pc.call([&](Context& ctx) {
    return ctx.score(l.view, p, static_cast<const int32_t*>(tg.data()), so, diag, nullptr, 0,
                     stream_of(stream));
  });
}

linalign::ShardStats* shard_records(const Array& a, const char* name, int64_t n) {
  if (!a.is(kDLInt, 32) && !a.is(kDLUInt, 32))
    throw TypeMismatch{std::string(name) + ": dtype must be int32 or uint32, got " +
                       a.dtype_name()};
  a.expect(name, {n, 16});
  if (a.dim(0) > 1 && a.stride(0) != 16) invalid(std::string(name) + ": must be contiguous");
  return static_cast<linalign::ShardStats*>(a.data());
}

void shard_stats(PyContext& pc, py::handle base, py::handle principle, py::handle out,
                 const py::dict& kw, py::object stream) {
  Logits l = logits(pc, base, principle, stream);
  std::vector<Array> keep;
  const Params p = make_params(kw, &keep, l.view.rows, l.base);
  const Array o = Array::from(out, "out", stream);
  linalign::ShardStats* rec = shard_records(o, "out", l.view.rows);
  pc.call(
      [&](Context& ctx) { return ctx.shard_stats(l.view, p, rec, nullptr, 0, stream_of(stream)); });
}

void align_shard(PyContext& pc, py::handle base, py::handle principle, py::handle shards,
                 py::handle out, py::handle diagnostics, const py::dict& kw, py::object stream) {
  Logits l = logits(pc, base, principle, stream);
  const int64_t B = l.view.rows;
  std::vector<Array> keep;
  const Params p = make_params(kw, &keep, B, l.base);
  const Array sh = Array::from(shards, "shards", stream);
  if (sh.ndim() != 2 || B == 0 || sh.dim(0) % B != 0)
    invalid("shards: expected [G * B, 16] records (G shards of B rows)");
  const int64_t G = sh.dim(0) / B;
  const linalign::ShardStats* rec = shard_records(sh, "shards", G * B);
  Array o = Array::from(out, "out", stream);
  o.expect_type("out", kDLFloat, 32, "float32");
  o.expect("out", {B, l.view.vocab});
  const Array d = Array::optional(diagnostics, "diagnostics", stream);
  auto* diag = diagnostics_of(d, B);
  pc.call([&](Context& ctx) {
    return ctx.align_shard(l.view, p, rec, G, static_cast<float*>(o.data()),
                           B > 1 ? o.stride(0) : 0, diag, nullptr, 0, stream_of(stream));
  });
}

std::unique_ptr<PyContext> make_context_impl(const std::string& backend, py::object threads_obj,
                                             py::object device_obj) {
  const int threads = int_of<int32_t>(threads_obj, "threads");
  const int device = int_of<int32_t>(device_obj, "device");
  linalign::ContextOptions o;
  if (backend == "cpu") {
    o.backend = linalign::Backend::kCpu;
  } else if (backend == "cuda") {
    o.backend = linalign::Backend::kCuda;
  } else if (backend == "auto") {
    o.backend = linalign::Backend::kAuto;
  } else {
    invalid("backend: \"" + backend + "\" is not one of \"cpu\", \"cuda\", \"auto\"");
  }
  o.num_threads = threads;
  o.device = device;
  auto pc = std::make_unique<PyContext>();
  std::string err;
  const Status s = Context::create(o, &pc->ctx, &err);
  if (s != Status::kSuccess) throw LibraryError{s, err};
  return pc;
}

}  // namespace

py::object library_exception(Status s, const std::string& message) {
  if (s == Status::kInvalidArgument)
    return py::reinterpret_borrow<py::object>(PyExc_ValueError)(message);
  py::object e = py::module_::import("linalign._core").attr("Error")(message);
  e.attr("status") = py::str(linalign::status_string(s));
  e.attr("code") = int(s);
  return e;
}

// Raises the Python exception of a library status.
void raise_library_error(Status s, const std::string& message) {
  py::object e = library_exception(s, message);
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(e.ptr())), e.ptr());
}

py::dict diagnostics_dict(const linalign::RowDiagnostics& d) {
  py::dict r;
  r["eta"] = d.eta;
  r["mu"] = d.mu;
  r["sigma"] = d.sigma;
  r["kl_base"] = d.kl_base;
  r["kl_principle"] = d.kl_principle;
  r["entropy"] = d.entropy;
  r["support"] = d.support;
  r["status"] = d.status;
  return r;
}

}  // namespace linalign_py

namespace py = pybind11;
using linalign::Context;
using linalign::Status;

PYBIND11_MODULE(_core, m) {
  m.doc() = "linalign's compiled layer; use the `linalign` package (docs/PYTHON.md)";
  static py::exception<linalign_py::LibraryError> error(m, "Error", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const linalign_py::TypeMismatch& e) {
      PyErr_SetString(PyExc_TypeError, e.message.c_str());
    } catch (const linalign_py::LibraryError& e) {
      linalign_py::raise_library_error(e.status, e.message);
    }
  });
  m.def("status_name", [](int s) { return linalign::status_string(Status(s)); });
  m.def("cuda_compiled", &linalign::cuda_compiled);
  m.def("cuda_device_count", &linalign::cuda_device_count);

  py::class_<linalign_py::PyContext>(m, "Context")
      .def(py::init(&linalign_py::make_context_impl), py::arg("backend") = "cpu",
           py::arg("threads") = 0, py::arg("device") = -1)
      .def_property_readonly("backend",
                             [](const linalign_py::PyContext& c) {
                               return c.ctx->backend() == linalign::Backend::kCuda ? "cuda" : "cpu";
                             })
      .def("align", &linalign_py::align)
      .def("sample", &linalign_py::sample)
      .def("score", &linalign_py::score)
      .def("shard_stats", &linalign_py::shard_stats)
      .def("align_shard", &linalign_py::align_shard);

  linalign_py::bind_batcher(m);
}
