// From logits to a RowPlan per row (SPEC §2), and the aligned log-probs.
//
//   StatsKernel   (slice, row)  RowStats of a vocabulary slice, held in the
//                 threads' registers (math/slice_stats.hpp: maxima, sums,
//                 centred spread; fixed + tilt: the tilted moments in the
//                 same sweep, as the CPU backend does); the row's last block
//                 (a counter after __threadfence) merges the slices and plans
//                 the row (plan_row: per-row device parameters, plan_begin,
//                 η; exact_kl: starts the solve) — no separate plan launch.
//   PlanKernel    (row)         align_shard only: plan_row from the merged
//                 all-gathered shards.
//   KlPassKernel  (slice, row)  exact_kl, × kExactKlPasses: one KL evaluation
//                 over the whole grid, the solver stepped by the row's last block.
//   KlSolveKernel (row)         exact_kl rows still unsolved: one block sweeps
//                 the row per evaluation (math::eta_exact_kl's loop).
//   MomentsKernel (slice, row)  second sweep at η: tilted moments or linear sums.
//   FinishKernel  (row)         merges them, plan_finish_*, diagnostics.
//   AlignKernel   (slice, row)  ℓ* = aligned_logprob(plan, z, y); NaN rows for
//                 invalid plans; 16-byte stores when the output row allows.
// The fused kernels (fused_kernels.cuh) compose the same steps on a slice
// held in registers.
#pragma once

#include "device.cuh"
#include "linalign/math/slice_stats.hpp"

namespace linalign {
namespace kernels {

template <int kThreads>
__device__ __forceinline__ void plan_row(const Args& a, int64_t r, math::RowStats st);

// The exponential of the slice statistics' weights (arguments ≤ 0): the
// fast ex2.approx form; its error bound is worked through in
// math/slice_stats.hpp (≤ 6.1e-6 relative on the sums, SPEC §6 allows 1e-4).
struct WeightExp {
  __device__ __forceinline__ float operator()(float x) const { return __expf(x); }
};

// The slice statistics' merges as block_reduce operators.
struct MergeSliceMax {
  __device__ __forceinline__ math::SliceMax operator()(const math::SliceMax& a,
                                                       const math::SliceMax& b) const {
    return math::slice_max_merge(a, b);
  }
};
struct MergeSliceSums {
  __device__ __forceinline__ math::SliceSums operator()(const math::SliceSums& a,
                                                        const math::SliceSums& b) const {
    return math::slice_sums_merge(a, b);
  }
};
struct MergeSliceSpread {
  __device__ __forceinline__ math::SliceSpread operator()(const math::SliceSpread& a,
                                                          const math::SliceSpread& b) const {
    return math::slice_spread_merge(a, b);
  }
};

// The slice's RowStats from the slice held in registers: three passes over
// the held elements (maxima; weights and first moments at the block maxima;
// centred second moments at the block means), three plain block reductions.
template <class E>
__device__ __forceinline__ math::RowStats held_slice_stats(const HeldSlice<E>& h, float inv_t,
                                                           bool with_tilt, float eta) {
  constexpr int kT = kSweepThreads;
  constexpr int kSteps = HeldSlice<E>::kSteps;
  constexpr int kI = Chunk<E>::kItems;
  math::SliceMax mx = math::slice_max_empty();
  h.each(
      [&](float z, float y, int, int) { math::slice_max_push(mx, z, y, inv_t, with_tilt, eta); });
  mx = block_reduce<kT>(mx, MergeSliceMax{}, math::slice_max_empty());
  if (mx.count == 0) {  // uniform: the broadcast merge
    math::RowStats r = math::row_stats_empty();
    r.flags = mx.flags;
    return r;
  }
  math::SliceSums sums = math::slice_sums_empty();
  float wz[kSteps][kI], wt[kSteps][kI];
  h.each([&](float z, float y, int c, int k) {
    math::slice_sums_push(sums, mx, z, y, inv_t, with_tilt, eta, WeightExp{}, &wz[c][k], &wt[c][k]);
  });
  sums = block_reduce<kT>(sums, MergeSliceSums{}, math::slice_sums_empty());
  const math::SliceMeans mean = math::slice_means(sums);
  math::SliceSpread q = math::slice_spread_empty();
  h.each([&](float z, float y, int c, int k) {
    math::slice_spread_push(q, mean, z, y, inv_t, wz[c][k], wt[c][k]);
  });
  q = block_reduce<kT>(q, MergeSliceSpread{}, math::slice_spread_empty());
  return math::slice_stats_finish(mx, sums, q, with_tilt);
}

// The first sweep of slice s of row r (StatsKernel's, the fused kernels'):
// the slice loaded into `h`, its RowStats partial stored by thread 0.
template <class E>
__device__ __forceinline__ void slice_stats_partial(const Args& a, int64_t r, int64_t s,
                                                    HeldSlice<E>& h) {
  const RowIn<E> row = row_in<E>(a.src, r);
  const float inv_t = row.bad == 0u ? inv_temperature(a, r) : 1.f;
  const bool with_tilt = a.tilt_in_first;
  const float eta = with_tilt && row.bad == 0u ? math::eta_fixed(a.ratio.at(r)) : 0.f;
  // (launch_call refuses a call whose slices hold more than kHeldChunks)
  const math::Span span = vocab_slice(row, a.slices, s);
  h.load(row, a.src.vocab, span, s == 0);
  math::RowStats acc = held_slice_stats<E>(h, inv_t, with_tilt, eta);
  if (threadIdx.x == 0) {
    acc.flags |= row.bad;
    a.stats[r * a.slices + s] = acc;
  }
}

// The row's last block after the first sweep: merges the slices' partials
// (written by other blocks of the running grid: read past L1) and plans the
// row.
__device__ __forceinline__ void plan_from_partials(const Args& a, int64_t r) {
  const math::RowStats st = merge_partials<kSweepThreads>(
      a.stats + r * a.slices, a.slices, MergeStats{}, math::row_stats_empty(), true);
  plan_row<kSweepThreads>(a, r, st);
}

template <class E>
__global__ void __launch_bounds__(kSweepThreads) StatsKernel(const Args a, int64_t row0) {
  const int64_t r = row0 + int64_t(blockIdx.y);
  HeldSlice<E> h;
  slice_stats_partial<E>(a, r, int64_t(blockIdx.x), h);
  if (a.op == int32_t(Op::kShardStats)) return;  // uniform: the partials are the result
  if (!last_block_of_row(&a.stats_done[counter_index(r)], gridDim.x)) return;  // uniform
  plan_from_partials(a, r);  // no PlanKernel launch
}

// shard_stats (SPEC §7): the merged statistics of this shard's slices, the
// record an engine all-gathers across its vocabulary shards.
template <class E>
__global__ void __launch_bounds__(kRowThreads) ShardStatsKernel(const Args a, int64_t row0) {
  const int64_t r = row0 + int64_t(blockIdx.x);
  const math::RowStats st = merge_partials<kRowThreads>(a.stats + r * a.slices, a.slices,
                                                        MergeStats{}, math::row_stats_empty());
  if (threadIdx.x == 0) a.shard_out[r] = st;
}

// Whole-row sweeps by one block (the exact_kl solver's evaluations).
template <class E>
struct BlockRowEval {
  const Args& a;
  const RowIn<E>& row;
  const math::RowPlan& plan;
  __device__ math::KlPoint operator()(float eta) const {
    const math::Span all{0, row.split.vectors};
    const int t = int(threadIdx.x);
    if (a.update == int32_t(math::Update::kTilt)) {
      math::TiltSweep m = math::tilt_sweep_empty();
      walk_row<E, true>(row, a.src.vocab, all, true, t, kRowThreads, [&](const Chunk<E>& ch) {
        m = math::tilt_sweep_merge(
            m, math::chunk_tilt_moments(ChunkLoader<E>{ch}, Chunk<E>::kItems, plan, eta));
      });
      m = block_reduce<kRowThreads>(m, MergeTilt{}, math::tilt_sweep_empty());
      return math::tilt_kl_point(m, plan, eta);
    }
    math::LinearSums l = math::linear_empty();
    walk_row<E, true>(row, a.src.vocab, all, true, t, kRowThreads, [&](const Chunk<E>& ch) {
      l = math::linear_merge(
          l, math::chunk_linear_sums(ChunkLoader<E>{ch}, Chunk<E>::kItems, plan, eta));
    });
    l = block_reduce<kRowThreads>(l, MergeLinear{}, math::linear_empty());
    return math::linear_kl_point(l);
  }
};

// Row r's plan from its merged statistics `st` (uniform over the block): the
// per-row parameter checks, plan_begin, η by the rule (exact_kl: starts the
// solve), the sample call's counters, the plan and, without a second sweep,
// the diagnostics. Run by the last StatsKernel block of the row (kThreads =
// kSweepThreads) or by PlanKernel (align_shard: the all-gathered shards).
template <int kThreads>
__device__ __forceinline__ void plan_row(const Args& a, int64_t r, math::RowStats st) {
  st.flags |= row_param_flags(a, r);  // a bad per-row parameter invalidates the row

  const float inv_t = inv_temperature(a, r);
  const math::Update update = math::Update(a.update);
  // A second sweep (every case but fixed + tilt) centres the tilted frame.
  math::RowPlan plan = math::plan_begin(st, inv_t, update, !a.tilt_in_first);
  if (math::plan_valid(plan)) {  // uniform over the block: st is the broadcast merge
    switch (math::Rule(a.rule)) {
      case math::Rule::kFixed:
        plan.eta = math::eta_fixed(a.ratio.at(r));
        break;
      case math::Rule::kTrustRegion:
        plan.eta = math::eta_trust_region(plan.sigma, a.epsilon.at(r), a.eta_max.at(r));
        break;
      case math::Rule::kExactKl: {
        // The solve starts here and runs in the KL passes (KlPassKernel);
        // η is final now only when no sweep is needed (σ = 0, η_max = 0).
        const math::ExactKlSolve solve =
            math::exact_kl_begin(plan.sigma, a.epsilon.at(r), a.eta_max.at(r));
        plan.eta = solve.result;
        if (threadIdx.x == 0) {
          a.solve[r].solve = solve;
          a.solve[r].done = 0;
        }
        break;
      }
    }
    if (a.tilt_in_first) math::plan_finish_tilt(plan, st.tilt);
  }
  if (a.op == int32_t(Op::kSample)) {
    // The counters of the sample call's last-block patterns start at zero:
    // the selection histograms (each pass's last block clears them again)
    // and the per-row count of SampleKernel blocks.
    if (a.masks_possible) {
      uint32_t* bins = reinterpret_cast<uint32_t*>(&a.select[r].bins);
      for (int i = int(threadIdx.x); i < int(sizeof(math::SelectBins) / 4); i += kThreads)
        bins[i] = 0u;
    }
    if (threadIdx.x == 0) a.sample_done[counter_index(r)] = 0u;
  }
  if (threadIdx.x == 0) {
    a.plans[r] = plan;
    // Without a second sweep the plan is complete here; otherwise FinishKernel
    // completes it and writes the diagnostics.
    if (a.tilt_in_first && a.diagnostics != nullptr) a.diagnostics[r] = diagnostics_of(plan);
  }
}

// align_shard: the plan from the all-gathered shards ([num_shards × B]),
// merged by the same tree on every device.
template <class E>
__global__ void __launch_bounds__(kRowThreads) PlanKernel(const Args a, int64_t row0) {
  const int64_t r = row0 + int64_t(blockIdx.x);
  const math::RowStats st = merge_partials<kRowThreads>(a.shard_in + r, a.num_shards, MergeStats{},
                                                        math::row_stats_empty(), false, a.rows);
  plan_row<kRowThreads>(a, r, st);
}

// The second-sweep partial of slice s of row r at η (tilted moments or
// linear sums), written to the workspace by thread 0.
template <class E>
__device__ __forceinline__ void slice_moments(const Args& a, int64_t r, int64_t s,
                                              const math::RowPlan& plan, float eta,
                                              const HeldSlice<E>* held = nullptr) {
  const int t = int(threadIdx.x);
  if (a.update == int32_t(math::Update::kTilt)) {
    math::TiltSweep m = math::tilt_sweep_empty();
    slice_steps<E>(a, r, s, held, [&](const Chunk<E>& ch) {
      m = math::tilt_sweep_merge(
          m, math::chunk_tilt_moments(ChunkLoader<E>{ch}, Chunk<E>::kItems, plan, eta));
    });
    m = block_reduce<kSweepThreads>(m, MergeTilt{}, math::tilt_sweep_empty());
    if (t == 0) a.tilt_partials[r * a.slices + s] = m;
  } else {
    math::LinearSums l = math::linear_empty();
    slice_steps<E>(a, r, s, held, [&](const Chunk<E>& ch) {
      l = math::linear_merge(
          l, math::chunk_linear_sums(ChunkLoader<E>{ch}, Chunk<E>::kItems, plan, eta));
    });
    l = block_reduce<kSweepThreads>(l, MergeLinear{}, math::linear_empty());
    if (t == 0) a.linear_partials[r * a.slices + s] = l;
  }
}

template <class E>
__global__ void __launch_bounds__(kSweepThreads) MomentsKernel(const Args a, int64_t row0) {
  const int64_t r = row0 + int64_t(blockIdx.y);
  const math::RowPlan plan = a.plans[r];
  if (!math::plan_valid(plan)) return;  // uniform: FinishKernel skips the row too
  slice_moments<E>(a, r, int64_t(blockIdx.x), plan, plan.eta);
}

// The last block of a KL evaluation at st.at: merges the row's partials in
// the fixed tree (written by other blocks of the running grid), steps the
// solver and stores it; once it is done, η goes into the plan.
template <int kT>
__device__ __forceinline__ void kl_pass_step(const Args& a, int64_t r, const math::RowPlan& plan,
                                             math::ExactKlSolve st) {
  math::KlPoint p;
  if (a.update == int32_t(math::Update::kTilt)) {
    const math::TiltSweep m = merge_partials<kT>(a.tilt_partials + r * a.slices, a.slices,
                                                 MergeTilt{}, math::tilt_sweep_empty(), true);
    p = math::tilt_kl_point(m, plan, st.at);
  } else {
    const math::LinearSums l = merge_partials<kT>(a.linear_partials + r * a.slices, a.slices,
                                                  MergeLinear{}, math::linear_empty(), true);
    p = math::linear_kl_point(l);
  }
  math::exact_kl_step(st, p);
  if (threadIdx.x == 0) {
    a.solve[r].solve = st;
    a.solve[r].done = 0;
    if (math::exact_kl_done(st)) a.plans[r].eta = st.result;
  }
}

// One evaluation of the exact_kl solve (math::exact_kl_step): every block
// sweeps its slice at the solver's η; the last block of the row to finish
// (a counter per row after a __threadfence: the threadfence-reduction
// pattern) merges the partials in the fixed tree, steps the solver and, once
// it is done, stores η in the plan. Rows already solved return at once.
template <class E>
__global__ void __launch_bounds__(kSweepThreads) KlPassKernel(const Args a, int64_t row0) {
  constexpr int kT = kSweepThreads;
  const int64_t r = row0 + int64_t(blockIdx.y);
  const math::RowPlan plan = a.plans[r];
  if (!math::plan_valid(plan)) return;  // uniform
  SolveRow* const sr = a.solve + r;
  math::ExactKlSolve st = sr->solve;
  if (math::exact_kl_done(st)) return;  // uniform
  slice_moments<E>(a, r, int64_t(blockIdx.x), plan, st.at);
  if (!last_block_of_row(&sr->done, gridDim.x)) return;  // uniform
  kl_pass_step<kT>(a, r, plan, st);
}

// The rows the KL passes left unsolved finish here, one block per row
// sweeping the whole row per evaluation (every thread runs the solver on
// identical, broadcast numbers, so the control flow is uniform).
template <class E>
__global__ void __launch_bounds__(kRowThreads) KlSolveKernel(const Args a, int64_t row0) {
  const int64_t r = row0 + int64_t(blockIdx.x);
  const math::RowPlan plan = a.plans[r];
  if (!math::plan_valid(plan)) return;
  math::ExactKlSolve st = a.solve[r].solve;
  if (math::exact_kl_done(st)) return;
  const RowIn<E> row = row_in<E>(a.src, r);  // valid plan: the row is readable
  const BlockRowEval<E> eval{a, row, plan};
  while (!math::exact_kl_done(st)) math::exact_kl_step(st, eval(st.at));
  if (threadIdx.x == 0) {
    a.solve[r].solve = st;
    a.plans[r].eta = st.result;
  }
}

// Row r's plan completed from its second-sweep partials (merged in the
// fixed tree of kFinishThreads threads), stored with the diagnostics.
// `coherent`: the partials were written by other blocks of the running grid.
__device__ __forceinline__ void finish_row(const Args& a, int64_t r, math::RowPlan plan,
                                           bool coherent) {
  constexpr int kT = kFinishThreads;
  if (math::plan_valid(plan)) {
    if (a.update == int32_t(math::Update::kTilt)) {
      math::plan_finish_tilt(
          plan, merge_partials<kT>(a.tilt_partials + r * a.slices, a.slices, MergeTilt{},
                                   math::tilt_sweep_empty(), coherent));
    } else {
      math::plan_finish_linear(
          plan, merge_partials<kT>(a.linear_partials + r * a.slices, a.slices, MergeLinear{},
                                   math::linear_empty(), coherent));
    }
  }
  if (threadIdx.x == 0) {
    a.plans[r] = plan;
    if (a.diagnostics != nullptr) a.diagnostics[r] = diagnostics_of(plan);
  }
}

// (A template like the others, although it reads no logits: each dtype's
// translation unit owns its instance.)
template <class E>
__global__ void __launch_bounds__(kFinishThreads) FinishKernel(const Args a, int64_t row0) {
  const int64_t r = row0 + int64_t(blockIdx.x);
  finish_row(a, r, a.plans[r], false);
}

// Stores ℓ* of one chunk; 16-byte stores when the output row is aligned at
// the chunk's vectors (out row misalignment == input row misalignment).
template <class E>
__device__ __forceinline__ void store_chunk(float* out, bool out_vector, const Chunk<E>& ch,
                                            const float* v) {
  using C = Chunk<E>;
  if (ch.scalar) {
    out[ch.first[0]] = v[0];
    return;
  }
#pragma unroll
  for (int u = 0; u < C::kU; ++u) {
    if (ch.first[u] < 0) continue;
    float* o = out + ch.first[u];
    if (out_vector) {
#pragma unroll
      for (int q = 0; q < C::kW / 4; ++q)
        *reinterpret_cast<float4*>(o + 4 * q) =
            make_float4(v[u * C::kW + 4 * q], v[u * C::kW + 4 * q + 1], v[u * C::kW + 4 * q + 2],
                        v[u * C::kW + 4 * q + 3]);
    } else {
#pragma unroll
      for (int w = 0; w < C::kW; ++w) o[w] = v[u * C::kW + w];
    }
  }
}

// bf16 output: element-wise 2-byte stores of the rounded values (the row's
// element positions are the chunk's; no vector path).
template <class E>
__device__ __forceinline__ void store_chunk_bf16(uint16_t* out, const Chunk<E>& ch,
                                                 const float* v) {
  using C = Chunk<E>;
  if (ch.scalar) {
    out[ch.first[0]] = math::float_to_bf16(v[0]);
    return;
  }
#pragma unroll
  for (int u = 0; u < C::kU; ++u) {
    if (ch.first[u] < 0) continue;
#pragma unroll
    for (int w = 0; w < C::kW; ++w) out[ch.first[u] + w] = math::float_to_bf16(v[u * C::kW + w]);
  }
}

// ℓ* of slice s of row r under `plan` (NaN for an invalid plan), from the
// slice held in registers when `held` is given (the fused kernel).
template <class E>
__device__ __forceinline__ void align_slice(const Args& a, int64_t r, int64_t s,
                                            const math::RowPlan& plan, const HeldSlice<E>* held) {
  const RowIn<E> row = row_in<E>(a.src, r);
  float* out = a.out != nullptr ? a.out + r * a.out_stride : nullptr;
  uint16_t* out_bf16 = a.out_bf16 != nullptr ? a.out_bf16 + r * a.out_stride : nullptr;
  const bool out_vector =
      out != nullptr && (reinterpret_cast<uintptr_t>(out + row.split.head) % kVectorBytes) == 0;
  const math::Span span = vocab_slice(row, a.slices, s);
  const int t = int(threadIdx.x);
  float v[Chunk<E>::kItems];
  auto store = [&](const Chunk<E>& ch) {
    if (out_bf16 != nullptr) {
      store_chunk_bf16(out_bf16, ch, v);
    } else {
      store_chunk(out, out_vector, ch, v);
    }
  };
  if (!math::plan_valid(plan)) {
    walk_row<E, false>(row, a.src.vocab, span, s == 0, t, kSweepThreads, [&](const Chunk<E>& ch) {
#pragma unroll
      for (int k = 0; k < Chunk<E>::kItems; ++k) v[k] = math::kNaN;
      store(ch);
    });
    return;
  }
  slice_steps<E>(a, r, s, held, [&](const Chunk<E>& ch) {
#pragma unroll
    for (int k = 0; k < Chunk<E>::kItems; ++k) v[k] = math::aligned_logprob(plan, ch.z[k], ch.y[k]);
    store(ch);
  });
}

template <class E>
__global__ void __launch_bounds__(kSweepThreads) AlignKernel(const Args a, int64_t row0) {
  align_slice<E>(a, row0 + int64_t(blockIdx.y), int64_t(blockIdx.x), a.plans[row0 + blockIdx.y],
                 nullptr);
}

}  // namespace kernels
}  // namespace linalign
