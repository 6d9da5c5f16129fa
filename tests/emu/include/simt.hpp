// A SIMT emulator that runs linalign's CUDA kernels, unchanged, on the CPU, so
// the kernels are executed — not only compiled — in CI, which has no GPU, and
// checked there as strictly as compute-sanitizer checks them on a GPU.
//
// Execution. Each block runs on one OS thread as blockDim cooperative fibers
// (one per CUDA thread). A fiber runs until it reaches a collective and waits
// there; between two collectives the threads of a block run in an order that
// changes from round to round and from block to block (not lowest first).
// Blocks run one at a time in a scrambled order that changes from grid to
// grid (CUDA promises none; LINALIGN_EMU_BLOCK_ORDER=linear for index order).
//   * __syncthreads() releases when every thread of the block has arrived at
//     the same call site; a barrier in divergent code, or one some threads of
//     the block never reach because they exited, is reported;
//   * warp collectives (__shfl_*_sync, __ballot_sync) release when all 32
//     lanes have arrived at the same collective at the same call site; they
//     must name the full mask; a warp with an exited lane is reported;
//   * no runnable fiber and no barrier to release is a deadlock: reported.
// A cooperative launch (LINALIGN_SIMT_LAUNCH_COOPERATIVE, the stand-in for
// cudaLaunchAttributeCooperative) makes every block of the grid resident at
// once, as a GPU does, and fails with cudaErrorCooperativeLaunchTooLarge
// when the grid exceeds the emulated SMs × cudaOccupancyMaxActiveBlocks-
// PerMultiprocessor. A block runs until its threads have exited or every
// live one waits and one spins in __nanosleep (a spin-wait on another
// block's flag); then the next resident block runs, and the spinning
// threads retry when their block's turn comes again (each block's __shared__
// memory is swapped in and out with it); an atomic on global memory is such a
// point too (the other blocks run before the thread goes on, as if it had
// been slow), so what a ticket promises is seen read before it is written.
// A pass over the unfinished blocks in
// which none started, exited or changed global memory is a livelock:
// reported. __nanosleep in a grid launched without co-residency is reported
// too: CUDA does not promise the block it waits for ever runs.
//
// What it checks on every memory access of kernel code (memcheck, initcheck,
// racecheck). The kernel translation units are compiled with GCC's
// -fsanitize=thread instrumentation, whose per-access callbacks
// (__tsan_read4, __tsan_write16, ...) this emulator implements itself
// (simt.cpp; no ThreadSanitizer runtime is linked). While a kernel body runs,
// each load and store is classified by address:
//   * device memory (cudaMalloc: a reserved arena with a shadow state per
//     2-byte granule): the access must lie inside a live allocation, exactly
//     — no rounding, 256 unallocated bytes between allocations, freed memory
//     stays unallocated until reused — and a load must not read memory that
//     no host copy, memset or kernel has written (initcheck);
//   * __shared__ memory (thread-local statics; 0xff bytes and "unwritten" at
//     every block start): a load of an unwritten byte, or an atomic on one, is
//     reported, and so is a race:
//     two threads touching the same byte, at least one writing (atomics
//     against atomics excepted), with no __syncthreads between them and, for
//     two lanes of one warp, no warp collective between them;
//   * the fiber's own stack (registers and local memory) and the program's
//     code and constants: allowed (a store to static memory is reported);
//   * anything else — a host pointer — is reported.
// The memory model between blocks is checked too (there is no ordering
// between the blocks of a grid but what a kernel builds): a block's global
// stores are visible to another block of the same grid only once published —
// the writer executed __threadfence() after the store and then an atomic (a
// release), and the reader's block performed an atomic on the same address
// afterwards (an acquire) — or once the grid has ended. A load or store of a
// value another block of the running grid stored without that chain is
// reported as a race, whatever order the blocks ran in: a missing fence, a
// plain `+=` on data other blocks update, or a "last block" that does not
// take a ticket fails deterministically. Atomics are relaxed: they order
// nothing by themselves. (Granularity: the whole block publishes at a fence.)
// Anything reported aborts the process with the kernel, block, thread,
// address and reason.
//
// Streams and events are ordered as CUDA orders them: each stream is a
// deferred queue; work runs when the host waits for it (a stream or device
// synchronisation, a blocking copy, cudaFree), one operation at a time, taking
// the streams with pending work in turn, so work on different streams
// interleaves unless an event orders it (cudaStreamWaitEvent holds a stream
// until the event's stream has run up to the record). The legacy null stream
// is synchronous. Host-to-device copies from pageable memory read the source
// at the call; device-to-host copies into pageable memory complete before the
// call returns. Stream capture records launches, asynchronous copies and
// memsets into a graph; the calls a capture forbids (cudaMalloc, cudaFree,
// cudaMemcpy, synchronisation) invalidate it, as in global capture mode.
//
// A launch with more threads per block than the kernel's __launch_bounds__
// fails with cudaErrorLaunchOutOfResources (x86-64 hosts).
//
// Not emulated: warp-synchronous execution beyond the collectives, CUB's
// kernels (the emulated build sums sequences with SeqSumKernel instead of
// cub::DeviceSegmentedReduce), and timing.
//
// This header is for the emulated build only (tests/emu/CMakeLists.txt).
#pragma once

#include <cmath>
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
// __launch_bounds__(max_threads[, min_blocks]) becomes ⌈max_threads / 32⌉
// one-byte NOPs at the kernel's entry (GCC's patchable_function_entry): the
// launch reads them back from the kernel's address and refuses a block of
// more threads than the bound (rounded up to whole warps), as a GPU does.
#define __launch_bounds__(...) SIMT_LAUNCH_BOUNDS_(__VA_ARGS__, 0)
#define SIMT_LAUNCH_BOUNDS_(n, ...) __attribute__((patchable_function_entry(((n) + 31) / 32)))
// Thread-local function statics: blocks run one at a time, so one copy serves,
// and the thread-local block holds nothing else kernel code touches — the
// emulator knows every access there is to shared memory, poisons it at every
// block start and checks every access (simt.cpp).
#define __shared__ static thread_local

namespace simt {

// The emulated thread running now (valid inside a kernel only). By value:
// kernel code never reads the emulator's own (host) memory.
uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();
int lane();

void syncthreads(const char* file, int line);
// __nanosleep: the calling thread spins (see "cooperative launch" above).
void spin(const char* file, int line);
// After an atomic (changed: its value did change, progress for the livelock
// check): in a cooperative grid, an atomic on global memory also lets the
// other resident blocks run before this thread goes on, so a block that
// reads what its ticket promised before it is written is seen doing so.
void after_atomic(const void* p, bool changed);
void threadfence();

// A warp collective: every lane of the calling warp deposits `value`; the
// result is this lane's share (kShfl: lane `arg`'s value, kDown/kUp: lane ± arg
// within `width` or the own value, kXor: lane ^ arg, kBallot: the bit mask).
enum Collective : int { kShfl, kShflDown, kShflUp, kShflXor, kBallot };
uint64_t warp_collective(Collective kind, unsigned mask, uint64_t value, int arg, int width,
                         const char* file, int line);

// __ldg: checks alignment and the access, then copies `bytes` from p.
void load_global(void* dst, const void* p, size_t bytes, size_t align);
// Checks an atomic access of `bytes` at p (shared or global; acquire, and a
// release after a __threadfence of the calling thread) before it is made.
void atomic_access(void* p, size_t bytes, const char* what);

// Kernel code runs "armed": its memory accesses are checked (simt.cpp).
struct Armed {
  Armed();
  ~Armed();
  Armed(const Armed&) = delete;
  Armed& operator=(const Armed&) = delete;
};

// What the device did since the process started, counted as a GPU profiler
// would (the budgets of tests/emu/test_budgets.cpp; differences of two
// snapshots give one call's share): grids run (a graph replay runs its
// grids again), memsets, and the bytes kernels moved to and from global
// memory — plain and __ldg loads, stores, and atomic read-modify-writes
// (each counted once, by its size). Shared memory and registers are not
// global traffic. A load served by L1/L2 on a GPU counts here all the same:
// these are the bytes the kernels ask for, an upper bound on DRAM traffic.
struct Traffic {
  uint64_t kernels = 0;
  uint64_t memsets = 0;
  uint64_t load_bytes = 0;
  uint64_t store_bytes = 0;
  uint64_t atomic_bytes = 0;
  // The part of load_bytes / store_bytes inside the ranges given to watch()
  // (a call's inputs: how many times each logit is read).
  uint64_t watched_load_bytes = 0;
  uint64_t watched_store_bytes = 0;
};
Traffic traffic();
void watch(const void* p, size_t bytes);
void unwatch_all();

using Body = std::function<void()>;
// Runs (or, on a capturing stream, records; on a stream, enqueues) every
// block of a grid.
void launch(dim3 grid, dim3 block, cudaStream_t stream, const void* kernel, const char* name,
            Body body, bool cooperative = false);

template <class... P>
struct Launcher {
  void (*kernel)(P...);
  const char* name;
  dim3 grid, block;
  cudaStream_t stream;
  bool cooperative;
  template <class... A>
  void operator()(A&&... args) const {
    // Kernel parameters are copied at launch, as on the device.
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    void (*k)(P...) = kernel;
    launch(
        grid, block, stream, reinterpret_cast<const void*>(k), name,
        [k, params]() {
          // Onto the thread's stack first: the closure lives in host memory.
          void (*local_k)(P...) = k;
          std::tuple<std::decay_t<P>...> local = params;
          Armed armed;
          std::apply(local_k, local);
        },
        cooperative);
  }
};
template <class... P>
Launcher<P...> make_launcher(void (*kernel)(P...), const char* name, dim3 grid, dim3 block,
                             cudaStream_t stream, bool cooperative = false) {
  return Launcher<P...>{kernel, name, grid, block, stream, cooperative};
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

// An atomic read-modify-write: checked, then made (fibers of a block never
// run at the same time and blocks run one after another). Not instrumented:
// the read and the write are one atomic access, not a plain load and store.
template <class T, class F>
__attribute__((no_sanitize_thread)) T read_modify_write(T* p, F f, const char* what) {
  atomic_access(p, sizeof(T), what);
  const T old = *p;
  *p = f(old);
  after_atomic(p, std::memcmp(&old, p, sizeof(T)) != 0);
  return old;
}

}  // namespace simt

#define threadIdx (::simt::thread_idx())
#define blockIdx (::simt::block_idx())
#define blockDim (::simt::block_dim())
#define gridDim (::simt::grid_dim())
#define __syncthreads() ::simt::syncthreads(__FILE__, __LINE__)

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32,
              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return simt::from_bits<T>(
      simt::warp_collective(simt::kShfl, mask, simt::to_bits(var), src_lane, width, file, line));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32,
                   const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return simt::from_bits<T>(simt::warp_collective(simt::kShflDown, mask, simt::to_bits(var),
                                                  int(delta), width, file, line));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32,
                 const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return simt::from_bits<T>(simt::warp_collective(simt::kShflUp, mask, simt::to_bits(var),
                                                  int(delta), width, file, line));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32,
                  const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return simt::from_bits<T>(simt::warp_collective(simt::kShflXor, mask, simt::to_bits(var),
                                                  lane_mask, width, file, line));
}
inline unsigned __ballot_sync(unsigned mask, int predicate, const char* file = __builtin_FILE(),
                              int line = __builtin_LINE()) {
  return unsigned(
      simt::warp_collective(simt::kBallot, mask, predicate != 0 ? 1u : 0u, 0, 32, file, line));
}
// The fast exponential (ex2.approx on a GPU): here the accurate one.
inline float __expf(float x) {
  return std::exp(x);
}
// A spin-wait's back-off: here the point where the other resident blocks run.
inline void __nanosleep(unsigned, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  simt::spin(file, line);
}
inline int __popc(unsigned x) {
  return __builtin_popcount(x);
}
inline int __ffs(int x) {
  return __builtin_ffs(x);
}
template <class T>
T __ldg(const T* p) {
  T v;
  simt::load_global(&v, p, sizeof(T), alignof(T));
  return v;
}
template <class T>
T atomicAdd(T* p, T v) {
  return simt::read_modify_write(
      p, [v](T o) { return T(o + v); }, "atomicAdd");
}
template <class T>
T atomicMin(T* p, T v) {
  return simt::read_modify_write(
      p, [v](T o) { return v < o ? v : o; }, "atomicMin");
}
template <class T>
T atomicMax(T* p, T v) {
  return simt::read_modify_write(
      p, [v](T o) { return v > o ? v : o; }, "atomicMax");
}
inline void __threadfence() {
  simt::threadfence();
}

// The <<<grid, block, 0, stream>>> of launch_impl.cuh.
#define LINALIGN_SIMT_LAUNCH(kernel, grid, block, stream) \
  ::simt::make_launcher(kernel, #kernel, dim3(grid), dim3(block), stream)
// The same with every block resident (cudaLaunchAttributeCooperative).
#define LINALIGN_SIMT_LAUNCH_COOPERATIVE(kernel, grid, block, stream) \
  ::simt::make_launcher(kernel, #kernel, dim3(grid), dim3(block), stream, true)
