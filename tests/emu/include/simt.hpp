// A SIMT emulator that runs linalign's CUDA kernels, unchanged, on the CPU, so
// the kernels are executed — not only compiled — in CI, which has no GPU.
//
// Each block runs on one OS thread as blockDim cooperative fibers (ucontext),
// one per CUDA thread, scheduled round-robin. A fiber runs until it reaches a
// collective and waits there:
//   * __syncthreads() releases when every live thread of the block has
//     arrived, and only if all of them arrived at the same call site
//     (a barrier in divergent code is reported, not silently passed);
//   * warp collectives (__shfl_*_sync, __ballot_sync) release when all 32
//     lanes of the warp have arrived; they must name the full mask, and a
//     warp with an exited lane is reported;
//   * no runnable fiber and no barrier to release is a deadlock: reported.
// Anything reported aborts the process with the place and the reason.
// __shared__ variables become function statics: shared by the fibers of the
// block, and blocks run one after another, in a scrambled order that changes
// from grid to grid (CUDA promises no order). __ldg checks the alignment of its
// vector type and that the address lies inside a cudaMalloc allocation.
// Memory from cudaMalloc starts filled with 0xff bytes (NaN floats, −1
// integers), so a read of memory no kernel wrote shows up in the results.
// Kernels launch synchronously on the calling thread; stream capture records
// launches, asynchronous copies and memsets into a graph, and the calls a
// capture forbids (cudaMalloc, cudaFree, cudaMemcpy, synchronisation)
// invalidate it, as CUDA does in global capture mode.
//
// This header is for the emulated build only (tests/emu/CMakeLists.txt).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) {
  return float4{x, y, z, w};
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

namespace simt {

// The emulated thread running now (valid inside a kernel only).
const uint3& thread_idx();
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
int lane();

void syncthreads(const char* file, int line);
// Every lane of the calling warp deposits `value`; returns the 32 deposits.
const uint64_t* warp_exchange(unsigned mask, uint64_t value, const char* what);
// Aborts with `what` when p is not `align`-aligned or outside every allocation.
void check_device_load(const void* p, size_t bytes, size_t align, const char* what);

using Body = std::function<void()>;
// Runs (or, on a capturing stream, records) every block of a grid.
void launch(dim3 grid, dim3 block, cudaStream_t stream, Body body);

template <class... P>
struct Launcher {
  void (*kernel)(P...);
  dim3 grid, block;
  cudaStream_t stream;
  template <class... A>
  void operator()(A&&... args) const {
    // Kernel parameters are copied at launch, as on the device.
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    void (*k)(P...) = kernel;
    launch(grid, block, stream, [k, params]() { std::apply(k, params); });
  }
};
template <class... P>
Launcher<P...> make_launcher(void (*kernel)(P...), dim3 grid, dim3 block, cudaStream_t stream) {
  return Launcher<P...>{kernel, grid, block, stream};
}

template <class T>
uint64_t to_bits(const T& v) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a register value");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

}  // namespace simt

#define threadIdx (::simt::thread_idx())
#define blockIdx (::simt::block_idx())
#define blockDim (::simt::block_dim())
#define gridDim (::simt::grid_dim())
#define __syncthreads() ::simt::syncthreads(__FILE__, __LINE__)

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  const uint64_t* all = simt::warp_exchange(mask, simt::to_bits(var), "__shfl_sync");
  const int lane = simt::lane();
  const int src = (lane & ~(width - 1)) + (src_lane & (width - 1));
  return simt::from_bits<T>(all[src]);
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  const uint64_t* all = simt::warp_exchange(mask, simt::to_bits(var), "__shfl_down_sync");
  const int lane = simt::lane();
  const int src = lane + int(delta);
  return (lane & (width - 1)) + int(delta) < width ? simt::from_bits<T>(all[src]) : var;
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  const uint64_t* all = simt::warp_exchange(mask, simt::to_bits(var), "__shfl_up_sync");
  const int lane = simt::lane();
  return (lane & (width - 1)) >= int(delta) ? simt::from_bits<T>(all[lane - int(delta)]) : var;
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  const uint64_t* all = simt::warp_exchange(mask, simt::to_bits(var), "__shfl_xor_sync");
  const int lane = simt::lane();
  const int src = lane ^ lane_mask;
  return (src & ~(width - 1)) == (lane & ~(width - 1)) ? simt::from_bits<T>(all[src]) : var;
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const uint64_t* all = simt::warp_exchange(mask, predicate != 0 ? 1u : 0u, "__ballot_sync");
  unsigned b = 0;
  for (int l = 0; l < 32; ++l) b |= unsigned(all[l] != 0) << l;
  return b;
}
inline int __popc(unsigned x) {
  return __builtin_popcount(x);
}
inline int __ffs(int x) {
  return __builtin_ffs(x);
}
template <class T>
T __ldg(const T* p) {
  simt::check_device_load(p, sizeof(T), alignof(T), "__ldg");
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
// Fibers of a block never run at the same time, and blocks run one after
// another: atomics are plain read-modify-writes returning the old value.
namespace simt {
template <class T, class F>
T read_modify_write(T* p, F f) {
  const T old = *p;
  *p = f(old);
  return old;
}
}  // namespace simt
template <class T>
T atomicAdd(T* p, T v) {
  return simt::read_modify_write(p, [v](T o) { return T(o + v); });
}
template <class T>
T atomicMin(T* p, T v) {
  return simt::read_modify_write(p, [v](T o) { return v < o ? v : o; });
}
template <class T>
T atomicMax(T* p, T v) {
  return simt::read_modify_write(p, [v](T o) { return v > o ? v : o; });
}
// Blocks run one after another and their fibers one at a time: memory is
// always coherent, so the fence only has to exist.
inline void __threadfence() {}

// The <<<grid, block, 0, stream>>> of launch_impl.cuh.
#define LINALIGN_SIMT_LAUNCH(kernel, grid, block, stream) \
  ::simt::make_launcher(kernel, dim3(grid), dim3(block), stream)
