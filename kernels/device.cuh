// Device building blocks shared by every kernel: row access (the three input
// layouts, vector loads with scalar head/tail), the register-chunk walk over
// a vocabulary slice (math/partition.hpp decides who touches what), warp and
// block reductions of any merge operator, and per-row parameter checks.
// Nothing here asserts: a row that cannot be read is flagged, never touched.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernel_args.hpp"
#include "kernel_config.hpp"
#include "linalign/math/config.hpp"
#include "linalign/math/dtype.hpp"
#include "linalign/math/nucleus.hpp"
#include "linalign/math/param_ranges.hpp"
#include "linalign/math/partition.hpp"
#include "linalign/math/philox.hpp"
#include "linalign/math/row_stats.hpp"
#include "linalign/math/step_rule.hpp"
#include "linalign/math/update.hpp"

namespace linalign {
namespace kernels {

constexpr unsigned kFullMask = 0xffffffffu;

// Elements of one 16-byte vector and vectors per register chunk for E.
template <class E>
struct Tile {
  static constexpr int kWidth = vector_width(int64_t(sizeof(E)));
  static constexpr int kVectors = vectors_per_chunk(int64_t(sizeof(E)));
  static constexpr int kItems = kWidth * kVectors;
};

// ------------------------------------------------------------ loading ---

__device__ __forceinline__ void load_vector(const float* p, float* out) {
  const float4 v = __ldg(reinterpret_cast<const float4*>(p));
  out[0] = v.x;
  out[1] = v.y;
  out[2] = v.z;
  out[3] = v.w;
}

template <class E>
__device__ __forceinline__ float decode16(uint32_t bits16);
template <>
__device__ __forceinline__ float decode16<math::Bf16Bits>(uint32_t bits16) {
  return math::bf16_to_float(uint16_t(bits16));
}
template <>
__device__ __forceinline__ float decode16<math::Fp16Bits>(uint32_t bits16) {
  return math::fp16_to_float(uint16_t(bits16));
}

template <class E>
__device__ __forceinline__ void load_vector(const E* p, float* out) {
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(p));
  const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {  // little endian: the lower half is the earlier element
    out[2 * k] = decode16<E>(w[k] & 0xffffu);
    out[2 * k + 1] = decode16<E>(w[k] >> 16);
  }
}

__device__ __forceinline__ float load_scalar(const float* p, int64_t i) {
  return __ldg(p + i);
}
template <class E>
__device__ __forceinline__ float load_scalar(const E* p, int64_t i) {
  return math::load_as_float(p, i);
}

// One row pair as the kernels read it.
template <class E>
struct RowIn {
  const E* z;
  const E* y;
  math::VectorSplit split;  // head / body vectors / tail (joint for z and y)
  bool y_vector;            // y vector-loadable at the same positions
  uint32_t bad;             // kFlagBadParam: the row source is unusable (never read)
};

// Row r's pointers for any layout, with the device-side checks the host
// cannot do: a pair index outside [0, paired_rows), a null row pointer or one
// not aligned to the element size flags the row instead of reading it.
template <class E>
__device__ __forceinline__ RowIn<E> row_in(const Source& s, int64_t r) {
  constexpr int64_t eb = int64_t(sizeof(E));
  const math::RowAddress ra = math::row_address(s, math::Layout(s.layout), r, eb);
  const char* z = ra.z;
  const char* y = ra.y;
  RowIn<E> row;
  const uint64_t za = reinterpret_cast<uintptr_t>(z), ya = reinterpret_cast<uintptr_t>(y);
  row.bad = (z == nullptr || y == nullptr || za % uint64_t(eb) != 0 || ya % uint64_t(eb) != 0)
                ? math::kFlagBadParam
                : 0u;
  if (row.bad != 0u) {
    // Never read; the split of an aligned address still covers [0, V) for
    // the kernels that write NaN over the row.
    row.z = row.y = nullptr;
    row.split = math::vector_split(0, s.vocab, Tile<E>::kWidth, eb);
    row.y_vector = false;
    return row;
  }
  row.z = reinterpret_cast<const E*>(z);
  row.y = reinterpret_cast<const E*>(y);
  const math::PairSplit ps = math::vector_split_pair(za, ya, s.vocab, Tile<E>::kWidth, eb);
  row.split = ps.split;
  row.y_vector = ps.y_vector;
  return row;
}

// The body vectors of vocabulary slice s of a row: every (slice, row) kernel
// of a call walks the same slices (math::slice_span, spread evenly in
// granules of one warp's vectors, kSliceGranuleVectors).
template <class E>
__device__ __forceinline__ math::Span vocab_slice(const RowIn<E>& row, int64_t slices, int64_t s) {
  return math::slice_span(row.split.vectors, slices, s, kSliceGranuleVectors);
}

// --------------------------------------------------------- the draw ---

// Lane i % 4 of a Philox group (tokens 4g .. 4g + 3).
__device__ __forceinline__ uint32_t philox_lane(const math::Philox4& p, int64_t i) {
  const int lane = int(i & 3);
  return lane == 0 ? p.v[0] : lane == 1 ? p.v[1] : lane == 2 ? p.v[2] : p.v[3];
}
// Row r's Philox stream (SPEC §4) and whether its draw is greedy (T = 0).
__device__ __forceinline__ math::RowRng row_rng(const Args& a, int64_t r) {
  return math::RowRng::make(a.seed.at(r), a.offset.at(r), a.per_row_seed ? 0u : uint32_t(r));
}
__device__ __forceinline__ bool row_greedy(const Args& a, int64_t r) {
  return a.greedy || a.temperature.at(r) == 0.f;
}
// The draw's score of token i with ℓ* = al > −inf (SPEC §3): ℓ*, or ℓ* +
// Gumbel noise from the row's Philox group bits (bits of group i / 4).
__device__ __forceinline__ float draw_score(bool greedy, float al, const math::Philox4& bits,
                                            int64_t i) {
  return greedy ? al : al + math::gumbel_from_bits(philox_lane(bits, i));
}

// ------------------------------------------------- register chunk walk ---

// What one thread holds per step: kItems (z, y) pairs decoded to fp32, and
// where they came from. Empty slots hold (−inf, −inf): outside S and
// flag-free, so the shared math treats them as masked tokens.
template <class E>
struct Chunk {
  static constexpr int kW = Tile<E>::kWidth;
  static constexpr int kU = Tile<E>::kVectors;
  static constexpr int kItems = Tile<E>::kItems;
  float z[kItems];
  float y[kItems];
  int64_t first[kU];  // element index of item u*kW, −1 for an empty slot
  bool scalar;        // a head/tail step: only item 0 is real
  __device__ __forceinline__ int64_t index(int k) const {
    const int u = k / kW, w = k % kW;
    if (first[u] < 0 || (scalar && k != 0)) return -1;
    return first[u] + w;
  }
};

// Step c of thread t's walk of the vectors `span` of a row with `threads`
// threads into ch: c = −1 is the thread's scalar head/tail element (when
// `has_scalar`), c ≥ 0 its register chunk c (slots past the span empty).
// Empty slots hold (−inf, −inf). With kLoad = false only the indices are
// filled (writers of invalid rows).
template <class E, bool kLoad>
__device__ __forceinline__ void load_step(const RowIn<E>& row, int64_t n, math::Span span,
                                          bool has_scalar, int t, int threads, int64_t c,
                                          Chunk<E>& ch) {
  using C = Chunk<E>;
  if (c < 0) {
    ch.scalar = true;
    ch.first[0] = has_scalar ? math::scalar_element(row.split, n, t) : -1;
#pragma unroll
    for (int u = 1; u < C::kU; ++u) ch.first[u] = -1;
#pragma unroll
    for (int k = 0; k < C::kItems; ++k) ch.z[k] = ch.y[k] = -math::kInf;
    if (kLoad && has_scalar) {
      ch.z[0] = load_scalar(row.z, ch.first[0]);
      ch.y[0] = load_scalar(row.y, ch.first[0]);
    }
    return;
  }
  ch.scalar = false;
#pragma unroll
  for (int u = 0; u < C::kU; ++u) {
    const int64_t j = math::walk_vector(span, threads, t, C::kU, c, u);
    ch.first[u] = j >= 0 ? math::vector_element(row.split, j, C::kW) : -1;
  }
  if (kLoad) {
#pragma unroll
    for (int u = 0; u < C::kU; ++u) {  // all loads first: kU vectors per row in flight
      if (ch.first[u] >= 0) {
        load_vector(row.z + ch.first[u], &ch.z[u * C::kW]);
        if (row.y_vector) {
          load_vector(row.y + ch.first[u], &ch.y[u * C::kW]);
        } else {
#pragma unroll
          for (int w = 0; w < C::kW; ++w) ch.y[u * C::kW + w] = load_scalar(row.y, ch.first[u] + w);
        }
      } else {
#pragma unroll
        for (int w = 0; w < C::kW; ++w) ch.z[u * C::kW + w] = ch.y[u * C::kW + w] = -math::kInf;
      }
    }
  }
}

// The row's scalar head/tail elements a walk takes with its slice (one per
// thread, t < head + tail ≤ 14): all of them with the first slice, none with
// the others. walk_row and HeldSlice::load both ask here.
template <class E>
__device__ __forceinline__ int64_t walk_scalars(const RowIn<E>& row, bool with_scalars) {
  return with_scalars ? math::split_scalars(row.split) : 0;
}

// Walks the vectors `span` of a row with `threads` threads (this is thread
// t), plus the row's scalar head/tail elements when `with_scalars` (one per
// thread, t < head + tail ≤ 14). fn(chunk) is called once per step. With
// kLoad = false only the indices are filled (writers of invalid rows). With
// kUniform every thread makes the same steps as thread 0 (the most steps),
// empty ones where it has nothing, so fn may use warp collectives.
template <class E, bool kLoad, bool kUniform = false, class Fn>
__device__ __forceinline__ void walk_row(const RowIn<E>& row, int64_t n, math::Span span,
                                         bool with_scalars, int t, int threads, Fn&& fn) {
  using C = Chunk<E>;
  C ch;
  const int64_t scalars = walk_scalars(row, with_scalars);
  const bool has_scalar = t < scalars;
  const int64_t chunks = math::walk_chunks(span, threads, kUniform ? 0 : t, C::kU);
  for (int64_t c = (kUniform ? scalars > 0 : has_scalar) ? -1 : 0; c < chunks; ++c) {
    // (Outside the uniform walk only a thread with a scalar takes step −1.)
    load_step<E, kLoad>(row, n, span, has_scalar, t, threads, c, ch);
    fn(ch);
  }
}

// A vocabulary slice held in this thread's registers: step 0 is the scalar
// step (one element), steps 1.. the register chunks; a step without data is
// skipped (uniform over most warps: only threads of the slice's last granule
// have one chunk fewer or more). The steps are walk_row's, in its order, so
// a sweep over the held slice merges exactly what a sweep that loads does.
template <class E>
struct HeldSlice {
  static constexpr int kSteps = kHeldChunks + 1;  // the scalar step, then the chunks
  Chunk<E> step[kSteps];  // every step of the uniform walk; load_step leaves a thread's
                          // slots past its share empty (no index, −inf)
  bool has[kSteps];       // this thread holds data in step c
  bool uniform[kSteps];   // thread 0 does: the uniform walk makes step c (walk_row kUniform)

  // Loads slice `span` of the row (thread threadIdx.x's share); nothing for a
  // row that cannot be read (row.bad).
  __device__ __forceinline__ void load(const RowIn<E>& row, int64_t n, math::Span span,
                                       bool first_slice) {
    constexpr int kT = kSweepThreads;
    const int t = int(threadIdx.x);
    const int64_t scalars = walk_scalars(row, first_slice);
    const int64_t chunks = math::walk_chunks(span, kT, t, Chunk<E>::kU);
    const int64_t chunks0 = math::walk_chunks(span, kT, 0, Chunk<E>::kU);
#pragma unroll
    for (int c = 0; c < kSteps; ++c) {
      has[c] = row.bad == 0u && (c == 0 ? t < scalars : c - 1 < chunks);
      uniform[c] = row.bad == 0u && (c == 0 ? scalars > 0 : c - 1 < chunks0);
      if (uniform[c]) load_step<E, true>(row, n, span, t < scalars, t, kT, c - 1, step[c]);
    }
  }
  // fn(chunk) for every held step, in walk_row's order.
  template <class Fn>
  __device__ __forceinline__ void each_step(Fn&& fn) const {
#pragma unroll
    for (int c = 0; c < kSteps; ++c)
      if (has[c]) fn(step[c]);
  }
  // fn(chunk) for every step of the uniform walk (walk_row<E, true, true>):
  // the steps thread 0 holds, empty where this thread holds none, so fn may
  // use warp collectives.
  template <class Fn>
  __device__ __forceinline__ void each_step_uniform(Fn&& fn) const {
#pragma unroll
    for (int c = 0; c < kSteps; ++c)
      if (uniform[c]) fn(step[c]);
  }
  // fn(z, y, c, k) for every held element (the scalar step holds one item).
  template <class Fn>
  __device__ __forceinline__ void each(Fn&& fn) const {
#pragma unroll
    for (int c = 0; c < kSteps; ++c)
      if (has[c])
#pragma unroll
        for (int k = 0; k < (c == 0 ? 1 : Chunk<E>::kItems); ++k)
          fn(step[c].z[k], step[c].y[k], c, k);
  }
};

// Row r's token and, when asked for, ℓ* of it (index −1: no token, ℓ* NaN).
template <class E>
__device__ __forceinline__ void store_token(const Args& a, int64_t r, const math::RowPlan& plan,
                                            int64_t index) {
  a.tokens[r] = int32_t(index);
  if (a.token_logprob == nullptr) return;
  float lp = math::kNaN;
  if (index >= 0) {
    const RowIn<E> row = row_in<E>(a.src, r);
    lp = math::aligned_logprob(plan, load_scalar(row.z, index), load_scalar(row.y, index));
  }
  a.token_logprob[r] = lp;
}

// Slice s of row r, chunk by chunk in walk_row's order: from the slice held
// in registers when `held` is given (the fused kernel), else loaded.
// kUniform: the uniform walk (every thread makes thread 0's steps, empty
// ones where it has none), for bodies with warp collectives.
template <class E, bool kUniform = false, class Fn>
__device__ __forceinline__ void slice_steps(const Args& a, int64_t r, int64_t s,
                                            const HeldSlice<E>* held, Fn&& fn) {
  if (held != nullptr) {
    if constexpr (kUniform) {
      held->each_step_uniform(fn);
    } else {
      held->each_step(fn);
    }
    return;
  }
  const RowIn<E> row = row_in<E>(a.src, r);
  walk_row<E, true, kUniform>(row, a.src.vocab, vocab_slice(row, a.slices, s), s == 0,
                              int(threadIdx.x), kSweepThreads, fn);
}

// The chunk as the math headers' loader: load(k, &z, &y).
template <class E>
struct ChunkLoader {
  const Chunk<E>& ch;
  __device__ __forceinline__ void operator()(int64_t k, float* z, float* y) const {
    *z = ch.z[k];
    *y = ch.y[k];
  }
};

// --------------------------------------------------------- reductions ---
//
// Hand-written rather than CUB's, for two reasons: the SIMT emulator
// (tests/emu) runs every kernel on the CPU in CI, and it emulates shuffles,
// barriers and atomics — not CUB's PTX; and a fixed merge tree (lane l takes
// lane l + delta, warps in order) keeps every bit of a row's result
// independent of the batch it is in and of the launch (SPEC §5), which CUB
// documents for none of these. What each mirrors:
//   shfl_down / shfl_up   cub::ShuffleDown / ShuffleUp (any whole-word type)
//   warp_reduce           cub::WarpReduce::Reduce (fixed tree, lane 0 valid)
//   block_reduce          cub::BlockReduce::Reduce + a shared broadcast
//                         (BLOCK_REDUCE_WARP_REDUCTIONS order)
//   block_exclusive_sum   cub::BlockScan::ExclusiveSum (integers: exact)
//   merge_partials        a strided cub::BlockReduce over global partials
//   last_block_of_row     the threadfence reduction of the CUDA samples (no
//                         CUB primitive: cub's decoupled look-back is a scan)
//   load_coherent         cub::ThreadLoad<LOAD_VOLATILE>, word by word (past L1)

// A shuffle of any whole-word type, word by word: from lane + delta
// (kDown) or lane − delta.
template <bool kDown, class T>
__device__ __forceinline__ T shfl_words(const T& v, int delta) {
  static_assert(sizeof(T) % 4 == 0, "shuffled types are whole 32-bit words");
  constexpr int kWords = int(sizeof(T) / 4);
  uint32_t w[kWords];
  memcpy(w, &v, sizeof(T));
#pragma unroll
  for (int i = 0; i < kWords; ++i) {
    if constexpr (kDown) {
      w[i] = __shfl_down_sync(kFullMask, w[i], delta);
    } else {
      w[i] = __shfl_up_sync(kFullMask, w[i], delta);
    }
  }
  T r;
  memcpy(&r, w, sizeof(T));
  return r;
}
template <class T>
__device__ __forceinline__ T shfl_down(const T& v, int delta) {
  return shfl_words<true>(v, delta);
}
template <class T>
__device__ __forceinline__ T shfl_up(const T& v, int delta) {
  return shfl_words<false>(v, delta);
}

// Tree reduction of the first kLanes lanes of a warp (every lane takes
// part); the result is valid in lane 0. The merge order is fixed (lane l
// takes lane l + delta), so results are reproducible.
template <int kLanes = 32, class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, const Op& op) {
  static_assert(kLanes >= 1 && kLanes <= 32 && (kLanes & (kLanes - 1)) == 0, "lanes: 2^k <= 32");
  const int lane = int(threadIdx.x & 31u);
#pragma unroll
  for (int delta = kLanes / 2; delta > 0; delta >>= 1) {
    const T o = shfl_down(v, delta);
    if (lane + delta < 32) v = op(v, o);
  }
  return v;
}

// Block reduction with a fixed merge tree; every thread gets the result.
// Must be called by all kThreads threads.
template <int kThreads, class T, class Op>
__device__ __forceinline__ T block_reduce(T v, const Op& op, const T& empty) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps");
  constexpr int kWarps = kThreads / 32;
  __shared__ T part[kWarps];
  const int lane = int(threadIdx.x & 31u), warp = int(threadIdx.x >> 5);
  v = warp_reduce(v, op);
  if (lane == 0) part[warp] = v;
  __syncthreads();
  if (warp == 0) {
    // only the kWarps partials: log2(kWarps) levels (the lanes above them
    // would merge `empty`, which changes no bit)
    v = lane < kWarps ? part[lane] : empty;
    v = warp_reduce<kWarps>(v, op);
    if (lane == 0) part[0] = v;
  }
  __syncthreads();
  const T r = part[0];
  __syncthreads();  // `part` is reused by the next reduction
  return r;
}

// Exclusive prefix sum over the block in thread order (integers: exact in
// any order); *total gets the sum of all. Must be called by all kThreads.
template <int kThreads, class T>
__device__ __forceinline__ T block_exclusive_sum(T v, T* total) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps");
  constexpr int kWarps = kThreads / 32;
  __shared__ T warp_sum[kWarps];
  const int lane = int(threadIdx.x & 31u), warp = int(threadIdx.x >> 5);
  T inc = v;
#pragma unroll
  for (int delta = 1; delta < 32; delta <<= 1) {
    const T o = shfl_up(inc, delta);
    if (lane >= delta) inc += o;
  }
  if (lane == 31) warp_sum[warp] = inc;
  __syncthreads();
  T before = 0, all = 0;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += warp_sum[w];
    all += warp_sum[w];
  }
  __syncthreads();  // `warp_sum` is reused by the next scan
  *total = all;
  return before + inc - v;
}

// The threadfence-reduction ticket (the CUDA samples' threadFenceReduction),
// the one "last block of the row" of every kernel that merges its blocks'
// partials in-grid. Called by every thread of a block once the block's share
// of the row's partials is written (plain stores or atomics, by any of its
// threads); returns, in every thread, whether this block is the last of
// `blocks` to arrive at the row's `count`. That block may then read every
// other block's partials past L1 (load_coherent): each fenced before it
// counted. Whoever owns `count` zeroes it before the grid runs. A count that
// goes on counting (the fused kernel's phases, below) starts this round at
// `before`.
__device__ __forceinline__ bool last_block_of_row(uint32_t* count, uint32_t blocks,
                                                  uint32_t before = 0u) {
  __shared__ bool last;
  __threadfence();  // this thread's partial stores / atomics are visible device-wide ...
  __syncthreads();  // ... for every thread of the block, before the count
  if (threadIdx.x == 0) last = atomicAdd(count, 1u) == before + blocks - 1u;
  __syncthreads();
  const bool arrived_last = last;
  if (arrived_last) __threadfence();  // then the other blocks' partials
  return arrived_last;
}

// The fused kernel's rendezvous (kernels launched cooperatively, every block
// resident): the last block of a round publishes what it computed from the
// partials (the row's plan) by counting once more; the others wait until the
// count reaches `target` (= before + blocks + 1), then read it past L1. Every
// thread calls both.
__device__ __forceinline__ void publish_row(uint32_t* count) {
  __threadfence();  // this thread's stores (the plan, cleared bins) ...
  __syncthreads();  // ... of every thread, before the count
  if (threadIdx.x == 0) atomicAdd(count, 1u);
}
__device__ __forceinline__ void wait_row(uint32_t* count, uint32_t target) {
  if (threadIdx.x == 0) {
    // (An atomic read: relaxed, made an acquire by the fence after it.)
    while (atomicAdd(count, 0u) < target) __nanosleep(128);
    __threadfence();
  }
  __syncthreads();
}

// Types load_coherent may read: every byte belongs to a member. It reads
// whole words, padding included, and padding is memory no store wrote (a
// struct store writes its members): compute-sanitizer's initcheck reports
// each such read (the first H200 run: 27,110 of them, ArgMax's 4 padding
// bytes). Each type read that way states its member sizes here.
template <class T>
struct WholeWords : std::bool_constant<std::is_arithmetic<T>::value && sizeof(T) % 4 == 0> {};
template <>
struct WholeWords<math::ArgMax> : std::bool_constant<sizeof(math::ArgMax) == 4 + 4> {};
template <>
struct WholeWords<ArgMaxPair> : std::bool_constant<sizeof(ArgMaxPair) == 2 * (4 + 4)> {};
template <>
struct WholeWords<math::Candidate> : std::bool_constant<sizeof(math::Candidate) == 4 + 4 + 4> {};
template <>
struct WholeWords<math::RowStats> : std::bool_constant<sizeof(math::RowStats) == 16 * 4> {};
template <>
struct WholeWords<math::SelectState>
    : std::bool_constant<sizeof(math::SelectState) ==
                         (8 + 8 + 4 + 4 + 4 + 4) + 2 * (8 + 8 + 4 + 4) + 8 + 4 + 4> {};
template <>
struct WholeWords<math::ExactKlSolve> : std::bool_constant<sizeof(math::ExactKlSolve) == 11 * 4> {};
template <>
struct WholeWords<math::RowPlan> : std::bool_constant<sizeof(math::RowPlan) == 20 * 4> {};
template <>
struct WholeWords<math::TiltMoments> : std::bool_constant<sizeof(math::TiltMoments) == 7 * 4> {};
template <>
struct WholeWords<math::TiltSweep> : std::bool_constant<sizeof(math::TiltSweep) == (7 + 3) * 4> {};
template <>
struct WholeWords<math::LinearSums> : std::bool_constant<sizeof(math::LinearSums) == 6 * 4> {};

// A load that bypasses the non-coherent L1: data other blocks of the running
// grid wrote (after their __threadfence).
template <class T>
__device__ __forceinline__ T load_coherent(const T* p) {
  static_assert(WholeWords<T>::value, "whole 32-bit words, no padding (see WholeWords)");
  constexpr int kWords = int(sizeof(T) / 4);
  uint32_t w[kWords];
  const volatile uint32_t* src = reinterpret_cast<const volatile uint32_t*>(p);
#pragma unroll
  for (int i = 0; i < kWords; ++i) w[i] = src[i];
  T v;
  memcpy(&v, w, sizeof(T));
  return v;
}

// *p, written by another block of the running grid, to every thread of the
// block: one thread reads it past L1 (a load per thread would send
// blockDim × sizeof(T) bytes through L2), the others take it from shared
// memory.
template <class T>
__device__ __forceinline__ T broadcast_coherent(const T* p) {
  __shared__ T value;
  if (threadIdx.x == 0) value = load_coherent(p);
  __syncthreads();
  const T v = value;
  __syncthreads();  // read by all before the next broadcast writes it
  return v;
}

// The merge of `count` partials (partials[0], partials[stride], ...) in a
// fixed tree: thread-strided folds, then block_reduce; every thread gets it.
// `coherent`: other blocks of the running grid wrote them (last-block
// patterns), so they are read past L1.
template <int kThreads, class T, class Merge>
__device__ __forceinline__ T merge_partials(const T* partials, int64_t count, const Merge& merge,
                                            const T& empty, bool coherent = false,
                                            int64_t stride = 1) {
  T acc = empty;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) {
    const T* p = partials + i * stride;
    acc = merge(acc, coherent ? load_coherent(p) : *p);
  }
  return block_reduce<kThreads>(acc, merge, empty);
}

struct MergeStats {
  __device__ __forceinline__ math::RowStats operator()(const math::RowStats& a,
                                                       const math::RowStats& b) const {
    return math::row_stats_merge(a, b);
  }
};
struct MergeTilt {
  __device__ __forceinline__ math::TiltSweep operator()(const math::TiltSweep& a,
                                                        const math::TiltSweep& b) const {
    return math::tilt_sweep_merge(a, b);
  }
};
struct MergeLinear {
  __device__ __forceinline__ math::LinearSums operator()(const math::LinearSums& a,
                                                         const math::LinearSums& b) const {
    return math::linear_merge(a, b);
  }
};

// ------------------------------------------------------ per-row checks ---

// 1/T as the CPU backend computes it (T = 0, sample only: statistics at T = 1).
__device__ __forceinline__ float inv_temperature(const Args& a, int64_t r) {
  const float t = a.temperature.at(r);
  return t > 0.f ? 1.0f / t : 1.0f;
}

// kFlagBadParam when a per-row device array holds a value the host would
// have rejected (docs/SEMANTICS.md 11), or a score target is outside [0, V)
// and not ignore_index. Scalars were checked at call level.
__device__ __forceinline__ uint32_t row_param_flags(const Args& a, int64_t r) {
  bool ok = true;
  const bool sample = a.op == int32_t(Op::kSample);
  if (a.temperature.values != nullptr)
    ok = ok && math::temperature_ok(a.temperature.values[r], sample);
  const bool fixed = a.rule == int32_t(math::Rule::kFixed);
  if (a.ratio.values != nullptr) {
    const float v = a.ratio.values[r];
    ok = ok && (fixed ? math::ratio_ok(v) : math::unused_ok(v));
  }
  if (a.epsilon.values != nullptr) {
    const float v = a.epsilon.values[r];
    ok = ok && (fixed ? math::unused_ok(v) : math::epsilon_ok(v));
  }
  if (a.eta_max.values != nullptr) {
    const float v = a.eta_max.values[r];
    ok = ok && (fixed ? math::unused_ok(v) : math::eta_max_ok(v));
  }
  if (sample) {
    if (a.top_p.values != nullptr) ok = ok && math::top_p_ok(a.top_p.values[r]);
    if (a.top_k.values != nullptr) ok = ok && math::top_k_ok(a.top_k.values[r]);
    if (a.min_p.values != nullptr) ok = ok && math::min_p_ok(a.min_p.values[r]);
  }
  if (a.op == int32_t(Op::kScore))
    ok = ok && math::target_ok(a.targets[r], a.ignore_index, a.src.vocab);
  return ok ? 0u : math::kFlagBadParam;
}

__device__ __forceinline__ RowDiagnostics diagnostics_of(const math::RowPlan& q) {
  RowDiagnostics d;
  d.eta = q.eta;
  d.mu = q.mu;
  d.sigma = q.sigma;
  d.kl_base = q.kl_base;
  d.kl_principle = q.kl_principle;
  d.entropy = q.entropy;
  d.support = q.count;
  d.status = q.flags;
  return d;
}

}  // namespace kernels
}  // namespace linalign
