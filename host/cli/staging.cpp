#include "cli/staging.hpp"

#if defined(LINALIGN_SIMT_EMULATED)
// linalign_cli_emulated (tests/emu/CMakeLists.txt): the library's CUDA
// backend runs on the SIMT emulator, whose runtime API stands in for the
// driver, so device memory comes from the emulator's cudaMalloc.
#include <cuda_runtime_api.h>
#else
#include <dlfcn.h>
#endif

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

namespace linalign_cli {
namespace {

class HostStaging final : public Staging {
 public:
  const void* upload(const void* src, size_t) override { return src; }
  void* alloc(size_t bytes) override {
    blocks_.emplace_back(bytes / 8 + 1, 0);  // 8-byte aligned, zeroed, never empty
    return blocks_.back().data();
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (dst != src && bytes) std::memcpy(dst, src, bytes);
  }
  void release(const void* p) override {
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
      if (it->data() == p) {
        blocks_.erase(it);
        return;
      }
    }
  }
  void synchronize() override {}
  bool on_device() const override { return false; }

 private:
  std::deque<std::vector<uint64_t>> blocks_;
};

#if defined(LINALIGN_SIMT_EMULATED)

// Device memory of the SIMT emulator (tests/emu), through the runtime API it
// provides; the same contract as the driver-based staging below.
class EmulatedCudaStaging final : public Staging {
 public:
  explicit EmulatedCudaStaging(int device) {
    int count = 0;
    check(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
    if (device >= count)
      throw StagingError("SIMT emulator: no device " + std::to_string(device) + " (" +
                         std::to_string(count) + " devices)");
    check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~EmulatedCudaStaging() override {
    for (void* p : blocks_) (void)cudaFree(p);
  }
  const void* upload(const void* src, size_t bytes) override {
    void* p = alloc(bytes);
    if (bytes) check(cudaMemcpy(p, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (upload)");
    return p;
  }
  void* alloc(size_t bytes) override {
    const size_t n = bytes ? bytes : 8;
    void* p = nullptr;
    check(cudaMalloc(&p, n), "cudaMalloc");
    blocks_.push_back(p);
    const std::vector<unsigned char> zeros(n, 0);  // the emulator fills new memory with 0xff
    check(cudaMemcpy(p, zeros.data(), n, cudaMemcpyHostToDevice), "cudaMemcpy (zero fill)");
    return p;
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    synchronize();
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy (download)");
  }
  void release(const void* p) override {
    auto it = std::find(blocks_.begin(), blocks_.end(), p);
    if (it == blocks_.end()) return;
    check(cudaFree(*it), "cudaFree");  // waits for the device
    blocks_.erase(it);
  }
  void synchronize() override { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }
  bool on_device() const override { return true; }

 private:
  static void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
      throw StagingError(std::string("SIMT emulator: ") + what +
                         " failed: " + cudaGetErrorString(e));
  }
  std::vector<void*> blocks_;
};

#else

// The few CUDA driver API entry points the tool needs, declared here so that
// no CUDA header is required (the ABI of these has been stable since CUDA 4).
using CUresult = int;
using CUdevice = int;
using CUcontext = void*;
using CUdeviceptr = unsigned long long;

struct DriverApi {
  CUresult (*init)(unsigned) = nullptr;
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*primary_ctx_retain)(CUcontext*, CUdevice) = nullptr;
  CUresult (*ctx_set_current)(CUcontext) = nullptr;
  CUresult (*mem_alloc)(CUdeviceptr*, size_t) = nullptr;
  CUresult (*mem_free)(CUdeviceptr) = nullptr;
  CUresult (*memcpy_htod)(CUdeviceptr, const void*, size_t) = nullptr;
  CUresult (*memcpy_dtoh)(void*, CUdeviceptr, size_t) = nullptr;
  CUresult (*ctx_synchronize)() = nullptr;
  CUresult (*get_error_string)(CUresult, const char**) = nullptr;
};

template <class Fn>
void load_symbol(void* lib, const char* name, Fn* fn) {
  void* sym = dlsym(lib, name);
  if (!sym) throw StagingError(std::string("CUDA driver: symbol ") + name + " not found");
  *fn = reinterpret_cast<Fn>(sym);
}

class CudaStaging final : public Staging {
 public:
  explicit CudaStaging(int device) {
    // The driver library is never unloaded: the CUDA runtime inside linalign
    // uses it for the life of the process.
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* e = dlerror();
      throw StagingError(std::string("cannot load the CUDA driver (libcuda.so.1): ") +
                         (e ? e : "unknown error"));
    }
    load_symbol(lib, "cuInit", &api_.init);
    load_symbol(lib, "cuDeviceGet", &api_.device_get);
    load_symbol(lib, "cuDevicePrimaryCtxRetain", &api_.primary_ctx_retain);
    load_symbol(lib, "cuCtxSetCurrent", &api_.ctx_set_current);
    load_symbol(lib, "cuMemAlloc_v2", &api_.mem_alloc);
    load_symbol(lib, "cuMemFree_v2", &api_.mem_free);
    load_symbol(lib, "cuMemcpyHtoD_v2", &api_.memcpy_htod);
    load_symbol(lib, "cuMemcpyDtoH_v2", &api_.memcpy_dtoh);
    load_symbol(lib, "cuCtxSynchronize", &api_.ctx_synchronize);
    load_symbol(lib, "cuGetErrorString", &api_.get_error_string);
    check(api_.init(0), "cuInit");
    CUdevice dev = 0;
    check(api_.device_get(&dev, device), "cuDeviceGet");
    CUcontext ctx = nullptr;
    check(api_.primary_ctx_retain(&ctx, dev), "cuDevicePrimaryCtxRetain");
    check(api_.ctx_set_current(ctx), "cuCtxSetCurrent");
  }

  ~CudaStaging() override {
    for (CUdeviceptr p : blocks_) api_.mem_free(p);
  }

  const void* upload(const void* src, size_t bytes) override {
    void* p = alloc(bytes);
    if (bytes)
      check(api_.memcpy_htod(reinterpret_cast<CUdeviceptr>(p), src, bytes), "cuMemcpyHtoD");
    return p;
  }
  void* alloc(size_t bytes) override {
    const size_t n = bytes ? bytes : 8;
    CUdeviceptr p = 0;
    check(api_.mem_alloc(&p, n), "cuMemAlloc");
    blocks_.push_back(p);
    // Zero-fill through a host buffer (no cuMemset needed for these sizes).
    std::vector<unsigned char> zeros(n, 0);
    check(api_.memcpy_htod(p, zeros.data(), n), "cuMemcpyHtoD");
    return reinterpret_cast<void*>(p);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (!bytes) return;
    synchronize();
    check(api_.memcpy_dtoh(dst, reinterpret_cast<CUdeviceptr>(src), bytes), "cuMemcpyDtoH");
  }
  void release(const void* p) override {
    auto it = std::find(blocks_.begin(), blocks_.end(), reinterpret_cast<CUdeviceptr>(p));
    if (it == blocks_.end()) return;
    synchronize();
    check(api_.mem_free(*it), "cuMemFree");
    blocks_.erase(it);
  }
  void synchronize() override { check(api_.ctx_synchronize(), "cuCtxSynchronize"); }
  bool on_device() const override { return true; }

 private:
  void check(CUresult r, const char* what) const {
    if (r == 0) return;
    const char* s = nullptr;
    if (api_.get_error_string) api_.get_error_string(r, &s);
    throw StagingError(std::string("CUDA driver: ") + what +
                       " failed: " + (s ? s : "error " + std::to_string(r)));
  }

  DriverApi api_;
  std::vector<CUdeviceptr> blocks_;
};

#endif  // LINALIGN_SIMT_EMULATED

}  // namespace

std::unique_ptr<Staging> Staging::host() {
  return std::make_unique<HostStaging>();
}

std::unique_ptr<Staging> Staging::cuda(int device) {
#if defined(LINALIGN_SIMT_EMULATED)
  return std::make_unique<EmulatedCudaStaging>(device);
#else
  return std::make_unique<CudaStaging>(device);
#endif
}

}  // namespace linalign_cli
