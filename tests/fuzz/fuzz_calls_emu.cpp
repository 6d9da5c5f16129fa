// libFuzzer target: the kernel-level C API on the CUDA backend, its kernels
// run by the SIMT emulator (tests/emu) at small V. Every buffer is its own
// exact cudaMalloc allocation: the emulator checks each load and store of the
// kernels against the live allocations (and initcheck, races) and aborts on
// the first bad one. Each call is repeated on a CPU handle, whose row
// statuses must be the same.
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "call_fuzz.hpp"
#include "fuzz_handle.hpp"

namespace {

struct DeviceMem {
  std::vector<void*> blocks;
  void* alloc(size_t bytes) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) std::abort();
    blocks.push_back(p);
    return p;
  }
  void upload(void* dst, const void* src, size_t n) {
    if (cudaMemcpy(dst, src, n, cudaMemcpyHostToDevice) != cudaSuccess) std::abort();
  }
  void download(void* dst, const void* src, size_t n) {
    if (cudaMemcpy(dst, src, n, cudaMemcpyDeviceToHost) != cudaSuccess) std::abort();
  }
  ~DeviceMem() {
    for (void* p : blocks) cudaFree(p);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static linalign_handle_t device = linalign_fuzz::make_handle(LINALIGN_BACKEND_CUDA, 1);
  static linalign_handle_t cpu = linalign_fuzz::make_handle(LINALIGN_BACKEND_CPU, 1);
  linalign_fuzz::run_call_input<DeviceMem, linalign_fuzz::HostMem>(data, size, device,
                                                                   /*device=*/true,
                                                                   /*max_vocab=*/40, cpu);
  return 0;
}
