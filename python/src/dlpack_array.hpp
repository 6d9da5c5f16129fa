// The binding's one way in for arrays: any Python object with __dlpack__
// (torch tensors, NumPy arrays) becomes an Array — the DLPack view of its
// memory, owned until the Array is destroyed (the producer's deleter runs
// then, and it may touch Python objects: destroy Arrays with the GIL held).
#pragma once

#include <dlpack/dlpack.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "linalign/linalign.hpp"

namespace linalign_py {

namespace py = pybind11;

// An error the binding raises as TypeError (not an array, unsupported dtype).
struct TypeMismatch {
  std::string message;
};
// A call-level error with the library's status (module.cpp maps it:
// kInvalidArgument → ValueError, others → linalign.Error).
struct LibraryError {
  linalign::Status status;
  std::string message;
};

[[noreturn]] inline void invalid(const std::string& message) {
  throw LibraryError{linalign::Status::kInvalidArgument, message};
}

enum class Where { kHost, kCuda };

class Array {
 public:
  Array() = default;
  Array(Array&& o) noexcept : m_(o.m_) { o.m_ = nullptr; }
  Array& operator=(Array&& o) noexcept {
    if (this != &o) {
      reset();
      m_ = o.m_;
      o.m_ = nullptr;
    }
    return *this;
  }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  ~Array() { reset(); }

  // `obj.__dlpack__(stream=...)` (stream only for CUDA producers), consumed.
  // `name` names the argument in errors.
  static Array from(py::handle obj, const char* name, py::object stream = py::none()) {
    if (!py::hasattr(obj, "__dlpack__"))
      throw TypeMismatch{std::string(name) +
                         ": expected an array with __dlpack__ (a torch tensor " +
                         "or a NumPy array), got " + std::string(py::str(obj.get_type()))};
    py::object capsule;
    const bool on_cuda =
        py::hasattr(obj, "__dlpack_device__") &&
        obj.attr("__dlpack_device__")().cast<py::tuple>()[0].cast<int>() == kDLCUDA;
    if (on_cuda && !stream.is_none()) {
      capsule = obj.attr("__dlpack__")(py::arg("stream") = stream);
    } else {
      capsule = obj.attr("__dlpack__")();
    }
    PyObject* c = capsule.ptr();
    if (!PyCapsule_IsValid(c, "dltensor"))
      throw TypeMismatch{std::string(name) + ": __dlpack__ did not return a DLPack capsule"};
    Array a;
    a.m_ = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(c, "dltensor"));
    PyCapsule_SetName(c, "used_dltensor");  // ours now: we call the deleter
    return a;
  }
  // `obj` when it is not None, else an empty Array.
  static Array optional(py::handle obj, const char* name, py::object stream = py::none()) {
    return obj.is_none() ? Array() : from(obj, name, stream);
  }

  bool empty() const { return m_ == nullptr; }
  const DLTensor& t() const { return m_->dl_tensor; }
  int ndim() const { return t().ndim; }
  int64_t dim(int i) const { return t().shape[i]; }
  // Stride of dimension i in elements (compact row-major when none are given).
  int64_t stride(int i) const {
    if (t().strides != nullptr) return t().strides[i];
    int64_t s = 1;
    for (int k = t().ndim - 1; k > i; --k) s *= t().shape[k];
    return s;
  }
  void* data() const { return static_cast<char*>(t().data) + t().byte_offset; }
  Where where() const { return t().device.device_type == kDLCPU ? Where::kHost : Where::kCuda; }
  int device_id() const { return t().device.device_id; }

  bool is(uint8_t code, uint8_t bits) const {
    return t().dtype.code == code && t().dtype.bits == bits && t().dtype.lanes == 1;
  }
  // The logits dtype, or TypeError naming `name`.
  linalign::DType logits_dtype(const char* name) const {
    if (is(kDLFloat, 32)) return linalign::DType::kF32;
    if (is(kDLFloat, 16)) return linalign::DType::kF16;
    if (is(kDLBfloat, 16)) return linalign::DType::kBF16;
    throw TypeMismatch{std::string(name) + ": dtype must be float32, float16 or bfloat16, got " +
                       dtype_name()};
  }
  std::string dtype_name() const {
    static const char* codes[] = {"int", "uint", "float", "opaque", "bfloat", "complex"};
    const uint8_t c = t().dtype.code;
    return std::string(c < 6 ? codes[c] : "?") + std::to_string(t().dtype.bits);
  }

  // Checks: rank, exact shape (−1 = any), a unit stride in the last
  // dimension, no negative stride, and the element type (code/bits).
  void expect(const char* name, std::vector<int64_t> shape) const {
    if (ndim() != int(shape.size()))
      invalid(std::string(name) + ": expected " + std::to_string(shape.size()) +
              " dimensions, got " + std::to_string(ndim()));
    for (int i = 0; i < ndim(); ++i) {
      if (shape[size_t(i)] >= 0 && dim(i) != shape[size_t(i)])
        invalid(std::string(name) + ": dimension " + std::to_string(i) + " is " +
                std::to_string(dim(i)) + ", expected " + std::to_string(shape[size_t(i)]));
      if (stride(i) < 0) invalid(std::string(name) + ": negative strides are not supported");
    }
    if (ndim() > 0 && dim(ndim() - 1) > 1 && stride(ndim() - 1) != 1)
      invalid(std::string(name) + ": the last dimension must be contiguous (stride 1)");
    if (ndim() == 2 && dim(0) > 1 && dim(1) > 0 && stride(0) < dim(1))
      invalid(std::string(name) + ": rows overlap (row stride below the row length)");
  }
  void expect_type(const char* name, uint8_t code, uint8_t bits, const char* what) const {
    if (!is(code, bits))
      throw TypeMismatch{std::string(name) + ": dtype must be " + what + ", got " + dtype_name()};
  }

 private:
  void reset() {
    if (m_ != nullptr && m_->deleter != nullptr) m_->deleter(m_);
    m_ = nullptr;
  }
  DLManagedTensor* m_ = nullptr;
};

}  // namespace linalign_py
