// The whole call in one kernel that reads every logit from global memory
// once: align and sample, every step rule.
//
//   FusedAlignKernel   Stats → plan → (KL passes) → (Moments → Finish) → Align
//   FusedSampleKernel  Stats → plan → (KL passes) → (Moments → Finish) → the
//                      select passes (candidates first) → Sample
//
// Both are launched cooperatively (every block resident: launch_impl.cuh)
// as a persistent grid of G ≥ slices blocks (the host's choose_launch_policy). A
// block takes the (row, slice) items b, b + G, b + 2G, … in row-major order,
// holds the item's slice in registers (HeldSlice) from its one load to its
// last use, and meets the row's other blocks at each step that needs the
// whole row: it stores its partial and takes the row's ticket
// (last_block_of_row); the last block merges the partials and publishes
// (publish_row: one more count); the others wait for it (wait_row) and read
// the result through shared memory. Every step merges exactly what the
// multi-kernel path's kernels merge, in the same trees, with the same
// functions (plan_row, finish_row, select_slice_votes / select_row_decide,
// sample_slice / sample_pick): the results are bit-identical to that path.
//
// The row's counter (stats_done, zeroed per call) counts every round: a
// round of `slices` tickets and one publish adds slices + 1, so round k
// (0-based) takes tickets from k·(slices + 1) and ends at
// (k + 1)·(slices + 1). Every block of a row makes the same rounds: what
// decides them (the plan, the selection state) is the row's, published.
//
// No deadlock: a block waits only for the items of its own row, and the
// lowest row not yet done has every item in some block's hands — an item
// not yet taken would belong to a block whose current item comes before it,
// in a row already done or in this row, and then a row would have more
// items than the grid has blocks (G ≥ slices).
#pragma once

#include "plan_kernels.cuh"
#include "select_kernel.cuh"
#include "token_kernels.cuh"

namespace linalign {
namespace kernels {

// Row r's plan from its slice s, held in `h` (loaded here): statistics,
// the last block's plan_row, exact_kl's evaluations, and without the fixed
// rule's tilt in the first sweep the moments at η and finish_row. `*rounds_end` is the
// counter value the rounds so far end at. Every thread gets the plan.
template <class E, bool kExactKl>
__device__ __forceinline__ math::RowPlan fused_plan(const Args& a, int64_t r, int64_t s,
                                                    HeldSlice<E>& h, uint32_t* rounds_end) {
  static_assert(kFinishThreads == kSweepThreads, "finish_row's tree, by this block");
  const uint32_t blocks = uint32_t(a.slices);
  const bool with_tilt = a.tilt_in_first;
  slice_stats_partial<E>(a, r, s, h);
  uint32_t* const count = &a.stats_done[counter_index(r)];
  if (last_block_of_row(count, blocks)) {  // uniform
    plan_from_partials(a, r);
    publish_row(count);
  }
  *rounds_end = blocks + 1u;
  wait_row(count, *rounds_end);
  math::RowPlan plan = broadcast_coherent(a.plans + r);
  if (kExactKl && math::plan_valid(plan)) {  // uniform
    // The solve plan_row started: one evaluation over the held slices per
    // round (KlPassKernel's), until it is done — not KlSolveKernel's
    // whole-row block sweep for the rows 8 passes leave unsolved, so such a
    // row's η may differ from the multi-kernel path's in its last bits.
    math::ExactKlSolve st = broadcast_coherent(&a.solve[r].solve);
    while (!math::exact_kl_done(st)) {  // uniform: the row's published state
      slice_moments<E>(a, r, s, plan, st.at, &h);
      if (last_block_of_row(count, blocks, *rounds_end)) {
        kl_pass_step<kSweepThreads>(a, r, plan, st);
        publish_row(count);
      }
      *rounds_end += blocks + 1u;
      wait_row(count, *rounds_end);
      st = broadcast_coherent(&a.solve[r].solve);
    }
    plan = broadcast_coherent(a.plans + r);
  }
  if (!with_tilt && math::plan_valid(plan)) {  // uniform: the second sweep, held
    slice_moments<E>(a, r, s, plan, plan.eta, &h);
    if (last_block_of_row(count, blocks, *rounds_end)) {
      finish_row(a, r, plan, true);
      publish_row(count);
    }
    *rounds_end += blocks + 1u;
    wait_row(count, *rounds_end);
    plan = broadcast_coherent(a.plans + r);
  } else if (!with_tilt && s == 0 && threadIdx.x == 0 && a.diagnostics != nullptr) {
    a.diagnostics[r] = diagnostics_of(plan);  // an invalid row's (FinishKernel's store)
  }
  return plan;
}

// kExactKl: the instance for exact_kl calls (its solve loop), the other for
// the fixed and trust_region rules.
template <class E, bool kExactKl>
__global__ void __launch_bounds__(kSweepThreads) FusedAlignKernel(const Args a) {
  for (int64_t w = blockIdx.x; w < a.rows * a.slices; w += gridDim.x) {  // uniform
    const int64_t r = w / a.slices, s = w % a.slices;
    HeldSlice<E> h;
    uint32_t rounds_end = 0;
    const math::RowPlan plan = fused_plan<E, kExactKl>(a, r, s, h, &rounds_end);
    align_slice<E>(a, r, s, plan, &h);
  }
}

template <class E, bool kExactKl>
__global__ void __launch_bounds__(kSweepThreads) FusedSampleKernel(const Args a) {
  __shared__ SelectShared sh;
  const uint32_t blocks = uint32_t(a.slices);
  for (int64_t w = blockIdx.x; w < a.rows * a.slices; w += gridDim.x) {  // uniform
    const int64_t r = w / a.slices, s = w % a.slices;
    HeldSlice<E> h;
    uint32_t rounds_end = 0;
    const math::RowPlan plan = fused_plan<E, kExactKl>(a, r, s, h, &rounds_end);
    uint32_t* const count = &a.stats_done[counter_index(r)];
    bool masked = false;
    math::MaskThresholds th{};
    const float top_p = a.top_p.at(r), min_p = a.min_p.at(r);
    const int32_t top_k = a.top_k.at(r);
    if (a.masks_possible && math::plan_valid(plan) && !math::masks_off(top_p, top_k, min_p)) {
      // The select passes (SelectPassKernel's rounds), each over the held
      // slice; a row whose candidates decided its masks is done after one.
      math::SelectState st = math::select_begin(top_p, top_k, a.min_keep);
      for (int pass = 0; pass < a.select_passes && math::select_busy(st); ++pass) {  // uniform
        const uint64_t min_mass = gather_bound(st, pass, top_p, plan);
        select_slice_votes<E>(a, r, int64_t(s), pass, st, plan, sh, min_mass, &h);
        if (last_block_of_row(count, blocks, rounds_end)) {
          select_row_decide<E>(a, r, pass, st, plan, sh, min_mass, top_k, min_p);
          publish_row(count);
        }
        rounds_end += blocks + 1u;
        wait_row(count, rounds_end);
        st = broadcast_coherent(&a.select[r].state);
      }
      // The pass that ended the selection stored the row's RowMask.
      if (broadcast_coherent(&a.masks[r].drawn) != 0) continue;  // uniform: token drawn
      th = math::select_thresholds(st, top_k, min_p, a.min_keep);
      masked = th.has_keep;  // min_keep ≥ |q|: every token is kept
    }
    sample_slice<E>(a, r, s, plan, masked, th, &h);
    if (last_block_of_row(count, blocks, rounds_end)) sample_pick<E>(a, r, plan);
  }
}

}  // namespace kernels
}  // namespace linalign
