// The SIMT emulator itself (include/simt.hpp): warp collectives give what the
// CUDA programming guide says they give, __syncthreads orders shared-memory
// traffic, launch configurations are checked, stream capture records and
// replays, and the misuse the emulator exists to catch — a barrier in
// divergent code, a collective after a lane exited, a misaligned or stray
// vector load, a deadlock — aborts with a message instead of passing. The
// second half is compute-sanitizer's work: out-of-bounds and host-pointer
// accesses (memcheck), reads of unwritten memory (initcheck), shared-memory
// races (racecheck), barriers some threads never reach (synccheck), and the
// memory model between the blocks of a grid; and streams that interleave
// unless an event orders them.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

namespace {

__global__ void shuffles(int* out) {
  const int t = int(threadIdx.x), lane = t & 31;
  const int base = t * 5;
  out[base + 0] = __shfl_sync(0xffffffffu, t * 10, 3);             // lane 3 of my warp
  out[base + 1] = __shfl_down_sync(0xffffffffu, t, 4u);            // lane + 4 (or mine)
  out[base + 2] = __shfl_xor_sync(0xffffffffu, t, 1);              // neighbour
  out[base + 3] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));  // lanes 0, 3, ..., 30
  unsigned long long wide = (1ull << 40) + unsigned(t);
  wide = __shfl_xor_sync(0xffffffffu, wide, 16);
  out[base + 4] = int(wide - (1ull << 40));
}

TEST(Simt, WarpCollectives) {
  constexpr int kThreads = 64;
  int* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), kThreads * 5 * sizeof(int)), cudaSuccess);
  LINALIGN_SIMT_LAUNCH(shuffles, 1, kThreads, nullptr)(d);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<int> h(kThreads * 5);
  ASSERT_EQ(cudaMemcpy(h.data(), d, h.size() * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int t = 0; t < kThreads; ++t) {
    const int warp0 = t & ~31, lane = t & 31;
    EXPECT_EQ(h[size_t(t * 5 + 0)], (warp0 + 3) * 10) << t;
    EXPECT_EQ(h[size_t(t * 5 + 1)], lane + 4 < 32 ? t + 4 : t) << t;
    EXPECT_EQ(h[size_t(t * 5 + 2)], t ^ 1) << t;
    EXPECT_EQ(unsigned(h[size_t(t * 5 + 3)]), ballot) << t;
    EXPECT_EQ(h[size_t(t * 5 + 4)], t ^ 16) << t;
  }
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

// A block-wide sum through shared memory: correct only if __syncthreads
// really holds every thread until all have written.
__global__ void block_sum(const int* in, int* out, int n) {
  __shared__ int part[256];
  const int t = int(threadIdx.x);
  int v = 0;
  for (int i = int(blockIdx.x) * 256 + t; i < n; i += 256 * int(gridDim.x)) v += in[i];
  part[t] = v;
  __syncthreads();
  for (int s = 128; s > 0; s >>= 1) {
    if (t < s) part[t] += part[t + s];
    __syncthreads();
  }
  if (t == 0) atomicAdd(out, part[0]);
}

TEST(Simt, SharedMemoryAndBarriers) {
  const int n = 5000;
  std::vector<int> h(n);
  std::iota(h.begin(), h.end(), 1);
  int *din = nullptr, *dout = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&din), n * sizeof(int)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dout), sizeof(int)), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(din, h.data(), n * sizeof(int), cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(dout, 0, sizeof(int), nullptr), cudaSuccess);
  LINALIGN_SIMT_LAUNCH(block_sum, 3, 256, nullptr)(din, dout, n);
  int sum = 0;
  ASSERT_EQ(cudaMemcpy(&sum, dout, sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(sum, n * (n + 1) / 2);
  EXPECT_EQ(cudaFree(din), cudaSuccess);
  EXPECT_EQ(cudaFree(dout), cudaSuccess);
}

__global__ void write_index(int* out) {
  out[blockIdx.y * gridDim.x * blockDim.x + blockIdx.x * blockDim.x + threadIdx.x] =
      int(blockIdx.y * 1000 + blockIdx.x * 100 + threadIdx.x);
}

TEST(Simt, GridsAndLaunchConfiguration) {
  int* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 2 * 3 * 32 * sizeof(int)), cudaSuccess);
  LINALIGN_SIMT_LAUNCH(write_index, dim3(3, 2), 32, nullptr)(d);
  ASSERT_EQ(cudaPeekAtLastError(), cudaSuccess);
  std::vector<int> h(2 * 3 * 32);
  ASSERT_EQ(cudaMemcpy(h.data(), d, h.size() * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x)
      for (int t = 0; t < 32; ++t)
        EXPECT_EQ(h[size_t((y * 3 + x) * 32 + t)], y * 1000 + x * 100 + t);
  // Too many threads, an empty grid, gridDim.y over 65535: a launch error.
  LINALIGN_SIMT_LAUNCH(write_index, 1, 2048, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // not sticky
  LINALIGN_SIMT_LAUNCH(write_index, 0, 32, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  LINALIGN_SIMT_LAUNCH(write_index, dim3(1, 70000), 32, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

// Each block takes a ticket: the order the blocks ran in.
__global__ void take_ticket(int* counter, int* ticket_of_block) {
  if (threadIdx.x == 0)
    ticket_of_block[blockIdx.y * gridDim.x + blockIdx.x] = atomicAdd(counter, 1);
}

// Blocks run in a scrambled order (CUDA promises none): every block once, not
// in index order, and not in the same order for every grid.
TEST(Simt, BlocksRunOnceInAScrambledOrder) {
  constexpr int kX = 13, kY = 7, kN = kX * kY;
  int *d = nullptr, *counter = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), kN * sizeof(int)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&counter), sizeof(int)), cudaSuccess);
  std::vector<std::vector<int>> orders;
  for (int run = 0; run < 2; ++run) {
    ASSERT_EQ(cudaMemsetAsync(counter, 0, sizeof(int), nullptr), cudaSuccess);
    LINALIGN_SIMT_LAUNCH(take_ticket, dim3(kX, kY), 32, nullptr)(counter, d);
    ASSERT_EQ(cudaPeekAtLastError(), cudaSuccess);
    std::vector<int> h(kN);
    ASSERT_EQ(cudaMemcpy(h.data(), d, kN * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
    std::vector<int> sorted = h;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < kN; ++i) ASSERT_EQ(sorted[size_t(i)], i) << "a block ran twice or never";
    int in_place = 0;
    for (int i = 0; i < kN; ++i) in_place += h[size_t(i)] == i;
    EXPECT_LT(in_place, kN / 4) << "blocks ran (nearly) in index order";
    orders.push_back(h);
  }
  EXPECT_NE(orders[0], orders[1]);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(counter), cudaSuccess);
}

__global__ void __launch_bounds__(64) bounded(int* p) {
  p[threadIdx.x] = 1;
}

// A block of more threads than the kernel's __launch_bounds__ is a launch
// error, as on a GPU; up to the bound it runs.
TEST(Simt, LaunchBoundsAreChecked) {
  int* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 1024 * sizeof(int)), cudaSuccess);
  LINALIGN_SIMT_LAUNCH(bounded, 1, 64, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  LINALIGN_SIMT_LAUNCH(bounded, 1, 96, nullptr)(d);
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchOutOfResources);
  LINALIGN_SIMT_LAUNCH(write_index, 1, 1024, nullptr)(d);  // no bound: up to 1024
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

__global__ void add_one(int* p) {
  p[threadIdx.x] += 1;
}

TEST(Simt, StreamCaptureRecordsAndReplays) {
  int* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 32 * sizeof(int)), cudaSuccess);
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(d, 0, 32 * sizeof(int), s), cudaSuccess);
  LINALIGN_SIMT_LAUNCH(add_one, 1, 32, s)(d);
  cudaGraph_t g = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &g), cudaSuccess);
  cudaGraphExec_t e = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&e, g, 0), cudaSuccess);
  int h[32];
  ASSERT_EQ(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(h[0], -1);  // nothing ran during capture: still the 0xff fill
  ASSERT_EQ(cudaGraphLaunch(e, s), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(e, s), cudaSuccess);  // memset + add: 1 each time
  ASSERT_EQ(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost), cudaSuccess);
  for (int v : h) EXPECT_EQ(v, 1);
  // What a capture forbids invalidates it.
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, 64), cudaErrorStreamCaptureUnsupported);
  cudaGraph_t g2 = nullptr;
  EXPECT_EQ(cudaStreamEndCapture(s, &g2), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(g2, nullptr);
  (void)cudaGetLastError();
  EXPECT_EQ(cudaGraphExecDestroy(e), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(g), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

// ------------------------------------------------------ what it catches ---

__global__ void divergent_barrier(int* p) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    __syncthreads();
  }
  p[threadIdx.x] = 0;
}
__global__ void collective_after_exit(int* p) {
  if (threadIdx.x == 5) return;
  p[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}
__global__ void partial_mask(int* p) {
  p[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, int(threadIdx.x), 1);
}
__global__ void waits_for_warp_while_block_waits(int* p) {
  if (threadIdx.x < 16) {  // half a warp in a collective, the rest at a barrier
    p[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
  } else {
    __syncthreads();
  }
}
__global__ void vector_load(const float* p, float* out) {
  const float4 v = __ldg(reinterpret_cast<const float4*>(p));
  out[threadIdx.x] = v.x;
}

TEST(SimtDeathTest, ReportsMisuse) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* d = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(int)), cudaSuccess);
  float* f = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&f), 64 * sizeof(float)), cudaSuccess);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(divergent_barrier, 1, 32, nullptr)(d),
               "divergent __syncthreads");
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(collective_after_exit, 1, 32, nullptr)(d), "has exited");
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(partial_mask, 1, 32, nullptr)(d), "full-warp collectives");
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(waits_for_warp_while_block_waits, 1, 64, nullptr)(d),
               "deadlock");
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(vector_load, 1, 32, nullptr)(f + 1, f), "misaligned");
  std::vector<float> host(16);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(vector_load, 1, 32, nullptr)(host.data(), f),
               "outside every cudaMalloc allocation");
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(f), cudaSuccess);
}

// ------------------------------------ what compute-sanitizer would catch ---

__global__ void store_at(int* p, int i) {
  if (threadIdx.x == 0) p[i] = 1;
}
__global__ void load_at(const int* p, int i, int* out) {
  if (threadIdx.x == 0) out[0] = p[i];
}
__global__ void shared_unwritten(int* out) {
  __shared__ int s[32];
  if (threadIdx.x < 16) s[threadIdx.x] = 1;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];  // lanes 16.. read what nobody wrote
}
// Zeroing a histogram and adding into it with no barrier between (the writer
// of a bin is another thread than the adder).
__global__ void histogram_no_barrier(const int* in, int* out) {
  __shared__ unsigned h[64];
  const int t = int(threadIdx.x);
  if (t < 64) h[t] = 0u;
  atomicAdd(&h[(t * 7 + 3) % 64], 1u);
  __syncthreads();
  if (t < 64) out[t] = int(h[t]);
}
__global__ void histogram_with_barrier(const int* in, int* out) {
  __shared__ unsigned h[64];
  const int t = int(threadIdx.x);
  if (t < 64) h[t] = 0u;
  __syncthreads();
  atomicAdd(&h[(t * 7 + 3) % 64], 1u);
  __syncthreads();
  if (t < 64) out[t] = int(h[t]);
}
// Warp-synchronous exchange through shared memory without __syncwarp: lanes
// of one warp are not ordered by anything but a collective.
__global__ void shared_read_neighbour(int* out) {
  __shared__ int s[32];
  const int t = int(threadIdx.x);
  s[t] = t;
  out[t] = s[(t + 1) % 32];
}
__global__ void shared_read_neighbour_after_shuffle(int* out) {
  __shared__ int s[32];
  const int t = int(threadIdx.x);
  s[t] = t;
  const int one = __shfl_sync(0xffffffffu, 1, 0);  // orders the lanes' accesses
  out[t] = s[(t + one) % 32];
}
// The last-block pattern: every block stores a partial, then takes a ticket;
// the block that takes the last one sums the partials. `fence` = false drops
// the __threadfence() between the store and the ticket.
template <bool kFence>
__global__ void last_block_sum(int* partials, unsigned* ticket, int* out) {
  __shared__ bool last;
  if (threadIdx.x == 0) {
    partials[blockIdx.x] = int(blockIdx.x) + 1;
    if (kFence) __threadfence();
    last = atomicAdd(ticket, 1u) == gridDim.x - 1;
  }
  __syncthreads();
  if (last && threadIdx.x == 0) {
    int sum = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) sum += partials[b];
    out[0] = sum;
  }
}
// Every block adds into one counter with a plain read-modify-write.
__global__ void plain_add(int* counter) {
  if (threadIdx.x == 0) counter[0] += 1;
}
__global__ void barrier_after_exit(int* p) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  p[threadIdx.x] = 1;
}
__global__ void two_shuffle_sites(int* p) {
  const int t = int(threadIdx.x);
  int v;
  if (t < 16) {
    v = __shfl_xor_sync(0xffffffffu, t, 1);
  } else {
    v = __shfl_xor_sync(0xffffffffu, t, 1);
  }
  p[t] = v;
}
__global__ void set_value(int* p, int v) {
  if (threadIdx.x == 0) p[0] = v;
}
__global__ void copy_value(const int* from, int* to) {
  if (threadIdx.x == 0) to[0] = from[0];
}

// A grid-wide rendezvous of resident blocks: each stores a partial (and
// keeps a value in __shared__ memory across the wait), takes a ticket, spins
// until every block has one, then sums all partials. kFence = false drops the
// writer's __threadfence(); kWaitForever waits for one ticket too many.
template <bool kFence, bool kWaitForever>
__global__ void rendezvous_sum(int* partials, unsigned* ticket, int* out) {
  __shared__ int mine;
  if (threadIdx.x == 0) {
    mine = int(blockIdx.x) * 7;
    partials[blockIdx.x] = int(blockIdx.x) + 1;
    if (kFence) __threadfence();
    atomicAdd(ticket, 1u);
    const unsigned want = gridDim.x + (kWaitForever ? 1u : 0u);
    while (atomicAdd(ticket, 0u) < want) __nanosleep(64);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int sum = 0;
    for (unsigned b = 0; b < gridDim.x; ++b) sum += partials[b];
    out[blockIdx.x] = sum + mine;
  }
}

// Block 0 alone writes its __shared__ value before the rendezvous; every
// block reads its own after it: the others read memory they never wrote
// (each resident block has its own shared memory).
__global__ void shared_is_per_block(unsigned* ticket, int* out) {
  __shared__ int v;
  if (blockIdx.x == 0 && threadIdx.x == 0) v = 5;
  if (threadIdx.x == 0) {
    atomicAdd(ticket, 1u);
    while (atomicAdd(ticket, 0u) < gridDim.x) __nanosleep(64);
  }
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = v;
}

template <class T>
T* device_alloc(size_t n) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, n * sizeof(T)), cudaSuccess);
  return static_cast<T*>(p);
}

TEST(SimtDeathTest, Memcheck) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* d = device_alloc<int>(10);  // 40 bytes: the emulator does not round up
  ASSERT_EQ(cudaMemsetAsync(d, 0, 10 * sizeof(int), nullptr), cudaSuccess);
  int* out = device_alloc<int>(1);
  LINALIGN_SIMT_LAUNCH(store_at, 1, 32, nullptr)(d, 9);  // the last element: fine
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(store_at, 1, 32, nullptr)(d, 10),
               "out-of-bounds store of 4 bytes .* in kernel store_at, block \\(0,0,0\\).*thread "
               "0: 0 bytes past the end of the 40-byte allocation");
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(load_at, 1, 32, nullptr)(d, -1, out), "out-of-bounds load");
  std::vector<int> host(16, 0);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(store_at, 1, 32, nullptr)(host.data(), 0),
               "host memory, not device memory");
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(load_at, 1, 32, nullptr)(host.data(), 0, out),
               "host memory, not device memory");
  int* gone = device_alloc<int>(8);
  ASSERT_EQ(cudaFree(gone), cudaSuccess);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(load_at, 1, 32, nullptr)(gone, 0, out), "which was freed");
  // Host operations outside an allocation are refused, as CUDA refuses them.
  int h[11] = {};
  EXPECT_EQ(cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemsetAsync(d + 1, 0, 10 * sizeof(int), nullptr), cudaErrorInvalidValue);
  (void)cudaGetLastError();
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
}

TEST(SimtDeathTest, Initcheck) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* d = device_alloc<int>(4);
  int* out = device_alloc<int>(32);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(load_at, 1, 32, nullptr)(d, 2, out),
               "read of uninitialised device memory");
  LINALIGN_SIMT_LAUNCH(store_at, 1, 32, nullptr)(d, 2);  // a kernel's store initialises
  LINALIGN_SIMT_LAUNCH(load_at, 1, 32, nullptr)(d, 2, out);
  int v = 0;
  ASSERT_EQ(cudaMemcpy(&v, out, sizeof v, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(v, 1);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(shared_unwritten, 1, 32, nullptr)(out),
               "read of uninitialised __shared__ memory");
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
}

TEST(SimtDeathTest, SharedMemoryRaces) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* out = device_alloc<int>(64);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(histogram_no_barrier, 1, 128, nullptr)(out, out),
               "shared-memory race \\(atomic after write\\)|uninitialised __shared__");
  LINALIGN_SIMT_LAUNCH(histogram_with_barrier, 1, 128, nullptr)(out, out);
  std::vector<int> h(64);
  ASSERT_EQ(cudaMemcpy(h.data(), out, 64 * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(std::accumulate(h.begin(), h.end(), 0), 128);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(shared_read_neighbour, 1, 32, nullptr)(out),
               "shared-memory race \\(read after write\\)|uninitialised __shared__");
  LINALIGN_SIMT_LAUNCH(shared_read_neighbour_after_shuffle, 1, 32, nullptr)(out);
  ASSERT_EQ(cudaMemcpy(h.data(), out, 32 * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  for (int t = 0; t < 32; ++t) EXPECT_EQ(h[size_t(t)], (t + 1) % 32);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
}

TEST(SimtDeathTest, BlocksSeeOnlyPublishedStores) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  constexpr int kBlocks = 9;
  int* partials = device_alloc<int>(kBlocks);
  unsigned* ticket = device_alloc<unsigned>(1);
  int* out = device_alloc<int>(1);
  ASSERT_EQ(cudaMemsetAsync(ticket, 0, sizeof(unsigned), nullptr), cudaSuccess);
  LINALIGN_SIMT_LAUNCH(last_block_sum<true>, kBlocks, 32, nullptr)(partials, ticket, out);
  int sum = 0;
  ASSERT_EQ(cudaMemcpy(&sum, out, sizeof sum, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(sum, kBlocks * (kBlocks + 1) / 2);
  ASSERT_EQ(cudaMemsetAsync(ticket, 0, sizeof(unsigned), nullptr), cudaSuccess);
  EXPECT_DEATH(
      LINALIGN_SIMT_LAUNCH(last_block_sum<false>, kBlocks, 32, nullptr)(partials, ticket, out),
      "global-memory race in kernel last_block_sum<false>");
  ASSERT_EQ(cudaMemsetAsync(out, 0, sizeof(int), nullptr), cudaSuccess);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(plain_add, kBlocks, 32, nullptr)(out), "global-memory race");
  LINALIGN_SIMT_LAUNCH(plain_add, 1, 32, nullptr)(out);  // one block: no race
  EXPECT_EQ(cudaFree(partials), cudaSuccess);
  EXPECT_EQ(cudaFree(ticket), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
}

TEST(SimtDeathTest, Synccheck) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* d = device_alloc<int>(64);
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(barrier_after_exit, 1, 32, nullptr)(d),
               "__syncthreads at .* reached by 16 of the 32 threads");
  EXPECT_DEATH(LINALIGN_SIMT_LAUNCH(two_shuffle_sites, 1, 32, nullptr)(d),
               "meet at different collectives");
  EXPECT_EQ(cudaFree(d), cudaSuccess);
}

// Work on two streams interleaves unless an event orders it.
TEST(Simt, CooperativeGridsAreResident) {
  constexpr unsigned kBlocks = 40;
  int* partials = device_alloc<int>(kBlocks);
  int* out = device_alloc<int>(kBlocks);
  unsigned* ticket = device_alloc<unsigned>(1);
  ASSERT_EQ(cudaMemsetAsync(ticket, 0, sizeof(unsigned), nullptr), cudaSuccess);
  LINALIGN_SIMT_LAUNCH_COOPERATIVE((rendezvous_sum<true, false>), kBlocks, 64, nullptr)
  (partials, ticket, out);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  std::vector<int> h(kBlocks);
  ASSERT_EQ(cudaMemcpy(h.data(), out, kBlocks * sizeof(int), cudaMemcpyDeviceToHost), cudaSuccess);
  const int sum = int(kBlocks * (kBlocks + 1) / 2);
  for (unsigned b = 0; b < kBlocks; ++b)
    EXPECT_EQ(h[b], sum + int(b) * 7) << "block " << b << " (its __shared__ value kept)";
  // More blocks than the emulated device holds at once: refused, as on a GPU.
  int per_sm = 0, sms = 0;
  ASSERT_EQ(
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, rendezvous_sum<true, false>, 64, 0),
      cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), cudaSuccess);
  ASSERT_GT(per_sm * sms, 0);
  LINALIGN_SIMT_LAUNCH_COOPERATIVE((rendezvous_sum<true, false>), unsigned(per_sm * sms + 1), 64,
                                   nullptr)
  (partials, ticket, out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorCooperativeLaunchTooLarge);
  EXPECT_EQ(cudaFree(partials), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
  EXPECT_EQ(cudaFree(ticket), cudaSuccess);
}

TEST(SimtDeathTest, SpinWaits) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int* partials = device_alloc<int>(8);
  int* out = device_alloc<int>(8);
  unsigned* ticket = device_alloc<unsigned>(1);
  ASSERT_EQ(cudaMemsetAsync(ticket, 0, sizeof(unsigned), nullptr), cudaSuccess);
  // Waiting on other blocks needs them resident: a plain launch promises none.
  EXPECT_DEATH(
      {
        LINALIGN_SIMT_LAUNCH((rendezvous_sum<true, false>), 8, 32, nullptr)(partials, ticket, out);
        (void)cudaDeviceSynchronize();
      },
      "not launched cooperatively");
  // Every block waits for a ticket no block will take.
  EXPECT_DEATH(
      {
        LINALIGN_SIMT_LAUNCH_COOPERATIVE((rendezvous_sum<true, true>), 8, 32, nullptr)
        (partials, ticket, out);
        (void)cudaDeviceSynchronize();
      },
      "livelock");
  // Another resident block's shared memory is not this block's.
  ASSERT_EQ(cudaMemsetAsync(ticket, 0, sizeof(unsigned), nullptr), cudaSuccess);
  EXPECT_DEATH(
      {
        LINALIGN_SIMT_LAUNCH_COOPERATIVE(shared_is_per_block, 4, 32, nullptr)(ticket, out);
        (void)cudaDeviceSynchronize();
      },
      "uninitialised __shared__ memory");
  // The ticket without the fence publishes nothing: reading the partials races.
  EXPECT_DEATH(
      {
        LINALIGN_SIMT_LAUNCH_COOPERATIVE((rendezvous_sum<false, false>), 8, 32, nullptr)
        (partials, ticket, out);
        (void)cudaDeviceSynchronize();
      },
      "global-memory race");
  EXPECT_EQ(cudaFree(partials), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
  EXPECT_EQ(cudaFree(ticket), cudaSuccess);
}

TEST(Simt, StreamsInterleaveUnlessAnEventOrdersThem) {
  int* x = device_alloc<int>(1);
  int* y = device_alloc<int>(1);
  cudaStream_t s1 = nullptr, s2 = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t ev = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), cudaSuccess);
  for (const bool ordered : {false, true}) {
    for (int v = 1; v <= 3; ++v) LINALIGN_SIMT_LAUNCH(set_value, 1, 32, s1)(x, v);
    if (ordered) {
      ASSERT_EQ(cudaEventRecord(ev, s1), cudaSuccess);
      ASSERT_EQ(cudaStreamWaitEvent(s2, ev, 0), cudaSuccess);
    }
    LINALIGN_SIMT_LAUNCH(copy_value, 1, 32, s2)(x, y);
    int hx = 0, hy = 0;
    ASSERT_EQ(cudaMemcpyAsync(&hy, y, sizeof hy, cudaMemcpyDeviceToHost, s2), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s1), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(&hx, x, sizeof hx, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(hx, 3);
    if (ordered) {
      EXPECT_EQ(hy, 3) << "the event orders the copy after all three stores";
    } else {
      EXPECT_LT(hy, 3) << "unordered streams should interleave";
    }
  }
  // Work is deferred until the host waits for it.
  LINALIGN_SIMT_LAUNCH(set_value, 1, 32, s1)(x, 7);
  int hx = 0;
  ASSERT_EQ(cudaStreamSynchronize(s1), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(&hx, x, sizeof hx, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(hx, 7);
  EXPECT_EQ(cudaEventDestroy(ev), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s1), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s2), cudaSuccess);
  EXPECT_EQ(cudaFree(x), cudaSuccess);
  EXPECT_EQ(cudaFree(y), cudaSuccess);
}

}  // namespace
