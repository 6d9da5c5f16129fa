// Token selection and scoring (SPEC §3, docs/SEMANTICS.md 3, 7, 8).
//
//   SampleKernel       (slice, row)  per token: ℓ* (candidates: ℓ* > −inf), the
//                      score ℓ* (greedy) or ℓ* + Gumbel(Philox) (sampling), two
//                      arg-maxes — over the masked candidates and over all
//                      candidates (the fallback when the linear update clipped
//                      every kept token) — merged by math::argmax_merge; the
//                      row's last block (a counter after __threadfence)
//                      merges the slices and writes the token (−1 for invalid
//                      rows) and, optionally, ℓ* of the token.
//   ScoreKernel        (row)  ℓ*_t, ℓ_t, ℓᵖ_t of the target (0 when ignored, NaN
//                      when the row is invalid), no B × V output.
//   per-sequence sums  CUB DeviceSegmentedReduce (SeqSumKernel on the SIMT
//                      emulator) over ragged sequences, ignored rows adding
//                      0; offsets are device memory, so they are checked: a
//                      sequence with offsets outside [0, B] or decreasing sums
//                      to NaN instead of reading out of bounds.
#pragma once

#include "device.cuh"

namespace linalign {
namespace kernels {

struct MergeArgMaxPair {
  __device__ __forceinline__ ArgMaxPair operator()(const ArgMaxPair& a, const ArgMaxPair& b) const {
    return ArgMaxPair{math::argmax_merge(a.masked, b.masked), math::argmax_merge(a.all, b.all)};
  }
};

// Slice s of row r's two arg-maxes (masked by `th` when `masked`), stored
// by thread 0 in the workspace. From the slice held in registers when `held`
// is given (the fused kernel), else loaded.
template <class E>
__device__ __forceinline__ void sample_slice(const Args& a, int64_t r, int64_t s,
                                             const math::RowPlan& plan, bool masked,
                                             const math::MaskThresholds& th,
                                             const HeldSlice<E>* held) {
  ArgMaxPair best{math::argmax_empty(), math::argmax_empty()};
  if (math::plan_valid(plan)) {
    const bool greedy = row_greedy(a, r);
    const math::RowRng rng = row_rng(a, r);
    const bool from_principle = a.from_principle != 0;
    slice_steps<E>(a, r, s, held, [&](const Chunk<E>& ch) {
      int64_t group = -1;
      math::Philox4 bits{};
#pragma unroll
      for (int k = 0; k < Chunk<E>::kItems; ++k) {
        const int64_t i = ch.index(k);
        if (i < 0) continue;
        const float z = ch.z[k], y = ch.y[k];
        const float al = math::aligned_logprob(plan, z, y);
        if (!(al > -math::kInf)) continue;
        if (!greedy && (i >> 2) != group) {  // one Philox call per group of 4 tokens
          group = i >> 2;
          bits = rng.group(uint64_t(group));
        }
        const float score = draw_score(greedy, al, bits, i);
        math::argmax_push(best.all, score, i);
        if (!masked ||
            math::mask_keep(th, from_principle ? math::principle_logprob(plan, z, y) : al, i))
          math::argmax_push(best.masked, score, i);
      }
    });
  }
  best = block_reduce<kSweepThreads>(best, MergeArgMaxPair{},
                                     ArgMaxPair{math::argmax_empty(), math::argmax_empty()});
  if (threadIdx.x == 0) a.argmax[r * a.slices + s] = best;
}

// The last block of the row: merges the slices' arg-maxes (the merge is
// exact, so the order does not matter) and stores the token (−1 for an
// invalid row) and, optionally, ℓ* of the token.
template <class E>
__device__ __forceinline__ void sample_pick(const Args& a, int64_t r, const math::RowPlan& plan) {
  const ArgMaxPair all =
      merge_partials<kSweepThreads>(a.argmax + r * a.slices, a.slices, MergeArgMaxPair{},
                                    ArgMaxPair{math::argmax_empty(), math::argmax_empty()}, true);
  if (threadIdx.x == 0) {
    const math::ArgMax pick = all.masked.index >= 0 ? all.masked : all.all;
    const bool ok = math::plan_valid(plan) && pick.index >= 0 && pick.index < a.src.vocab;
    store_token<E>(a, r, plan, ok ? pick.index : -1);
  }
}

template <class E>
__global__ void __launch_bounds__(kSweepThreads) SampleKernel(const Args a, int64_t row0) {
  const int64_t r = row0 + int64_t(blockIdx.y);
  const int64_t s = int64_t(blockIdx.x);
  // A row the first select pass drew from its candidates is done.
  if (a.masks_possible && a.masks[r].drawn != 0) return;  // uniform
  const math::RowPlan plan = a.plans[r];
  bool masked = false;
  math::MaskThresholds th{};
  if (a.masks_possible && math::plan_valid(plan)) {
    const RowMask m = a.masks[r];
    masked = m.masked != 0;
    th = m.th;
  }
  sample_slice<E>(a, r, s, plan, masked, th, nullptr);
  if (!last_block_of_row(&a.sample_done[counter_index(r)], gridDim.x)) return;  // uniform
  sample_pick<E>(a, r, plan);
  if (threadIdx.x == 0) a.sample_done[counter_index(r)] = 0u;
}

template <class E>
__global__ void ScoreKernel(const Args a) {
  const int64_t B = a.rows;
  for (int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; r < B;
       r += int64_t(gridDim.x) * blockDim.x) {
    const int32_t t = a.targets[r];
    const math::RowPlan plan = a.plans[r];
    float va = 0.f, vb = 0.f, vc = 0.f;  // an ignored row adds 0 to its sequence
    if (t != a.ignore_index) {
      if (!math::plan_valid(plan) || t < 0 || int64_t(t) >= a.src.vocab) {
        va = vb = vc = math::kNaN;  // (a bad target already invalidated the plan)
      } else {
        const RowIn<E> row = row_in<E>(a.src, r);
        const float z = load_scalar(row.z, t), y = load_scalar(row.y, t);
        va = math::aligned_logprob(plan, z, y);
        vb = math::base_logprob(plan, z, y);
        vc = math::principle_logprob(plan, z, y);
      }
    }
    a.row_scores[r] = ScoreTriple{va, vb, vc};
    a.score_aligned[r] = va;
    if (a.score_base != nullptr) a.score_base[r] = vb;
    if (a.score_principle != nullptr) a.score_principle[r] = vc;
  }
}

// ------------------------------------------------- per-sequence sums ---
// Sequence q covers rows [offsets[q], offsets[q + 1]). The offsets are device
// memory the host could not check, so every use goes through SeqBound: a
// sequence whose offsets are outside [0, B] or decreasing reads nothing (an
// empty range), and SeqWrite writes NaN for it. On CUDA the sums are CUB's
// DeviceSegmentedReduce over these iterators (launch_impl.cuh); the SIMT
// emulator, which cannot run CUB's PTX, runs SeqSumKernel with the same
// bounds and writer.

struct AddScores {
  __host__ __device__ __forceinline__ ScoreTriple operator()(const ScoreTriple& x,
                                                             const ScoreTriple& y) const {
    return ScoreTriple{x.aligned + y.aligned, x.base + y.base, x.principle + y.principle};
  }
};

__host__ __device__ __forceinline__ bool seq_valid(const int64_t* offsets, int64_t rows,
                                                   int64_t q) {
  const int64_t b = offsets[q], e = offsets[q + 1];
  return b >= 0 && e >= b && e <= rows;
}

// The first (end_side = false) or one-past-last row of sequence q; 0 when
// its offsets are invalid.
struct SeqBound {
  const int64_t* offsets;
  int64_t rows;
  bool end_side;
  __host__ __device__ __forceinline__ int64_t operator()(int64_t q) const {
    if (!seq_valid(offsets, rows, q)) return 0;
    return end_side ? offsets[q + 1] : offsets[q];
  }
};

// Stores sequence q's sums (NaN for invalid offsets) into the outputs given.
struct SeqWrite {
  const int64_t* offsets;
  int64_t rows;
  float* aligned;
  float* base;
  float* principle;
  __host__ __device__ __forceinline__ void operator()(int64_t q, const ScoreTriple& sum) const {
    const bool ok = seq_valid(offsets, rows, q);
    if (aligned != nullptr) aligned[q] = ok ? sum.aligned : math::kNaN;
    if (base != nullptr) base[q] = ok ? sum.base : math::kNaN;
    if (principle != nullptr) principle[q] = ok ? sum.principle : math::kNaN;
  }
};

inline SeqBound seq_bound(const Args& a, bool end_side) {
  return SeqBound{a.seq_offsets, a.rows, end_side};
}
inline SeqWrite seq_write(const Args& a) {
  return SeqWrite{a.seq_offsets, a.rows, a.seq_aligned, a.seq_base, a.seq_principle};
}

template <class E>  // one instance per dtype translation unit
__global__ void __launch_bounds__(kFinishThreads) SeqSumKernel(const Args a) {
  const SeqBound begin = seq_bound(a, false), end = seq_bound(a, true);
  const SeqWrite write = seq_write(a);
  const ScoreTriple zero{0.f, 0.f, 0.f};
  for (int64_t q = blockIdx.x; q < a.num_sequences; q += gridDim.x) {
    ScoreTriple sum = zero;
    for (int64_t r = begin(q) + threadIdx.x; r < end(q); r += kFinishThreads)
      sum = AddScores{}(sum, a.row_scores[r]);
    sum = block_reduce<kFinishThreads>(sum, AddScores{}, zero);
    if (threadIdx.x == 0) write(q, sum);
  }
}

}  // namespace kernels
}  // namespace linalign
