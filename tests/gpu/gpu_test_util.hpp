// What every GPU test file needs (tests/gpu): device buffers that free
// themselves, a context of a backend, the skip when no device is present.
// Compiled against the real CUDA runtime and against the SIMT emulator
// (tests/emu), which provides the same runtime calls.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "linalign/linalign.hpp"
#include "linalign/math/dtype.hpp"
#include "test_context.hpp"

namespace linalign_gpu_test {

#define SKIP_WITHOUT_DEVICE()                                                 \
  do {                                                                        \
    if (linalign::cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

// int64 counts and indices as size_t.
inline size_t sz(int64_t v) {
  return static_cast<size_t>(v);
}

// Logit i of a raw input buffer of dtype t, written from a float (fp16 and
// bf16 through the library's codecs, round to nearest even).
inline void put(std::vector<unsigned char>& buf, linalign::DType t, int64_t i, float v) {
  if (t == linalign::DType::kF32) {
    std::memcpy(buf.data() + i * 4, &v, 4);
  } else {
    const uint16_t h = t == linalign::DType::kBF16 ? linalign::math::float_to_bf16(v)
                                                   : linalign::math::float_to_fp16(v);
    std::memcpy(buf.data() + i * 2, &h, 2);
  }
}

// A device buffer of n elements of T (cudaMalloc), freed on destruction.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) : n_(n) {
    if (n > 0 && cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T)) != cudaSuccess) {
      ptr_ = nullptr;
      ADD_FAILURE() << "cudaMalloc of " << n * sizeof(T) << " bytes failed";
    }
  }
  // A device copy of a host vector.
  explicit DeviceArray(const std::vector<T>& h) : DeviceArray(h.size()) { upload(h); }
  ~DeviceArray() {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : ptr_(o.ptr_), n_(o.n_) {
    o.ptr_ = nullptr;
    o.n_ = 0;
  }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(n_, o.n_);
    return *this;
  }
  void upload(const std::vector<T>& h) {
    if (!h.empty() && ptr_ != nullptr) {
      EXPECT_EQ(cudaMemcpy(ptr_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice),
                cudaSuccess);
    }
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    if (n_ > 0 && ptr_ != nullptr) {
      EXPECT_EQ(cudaMemcpy(h.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return h;
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

using linalign_test::make_context;

}  // namespace linalign_gpu_test
