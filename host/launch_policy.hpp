// The CUDA backend's launch policy and workspace layout, in plain C++ (no CUDA
// header) so CPU tests and benchmarks can name, print and check the regime a
// call runs in. The kernels (kernels/) follow exactly what is chosen here.
//
// When a row's slices fit the blocks the device holds at once, align and
// sample are one persistent cooperative kernel (fused_grid > 0:
// kernels/fused_kernels.cuh) running the steps below on slices held in
// registers, each logit read once. Otherwise, and for score and the shard
// calls, one call is a pipeline of kernels over groups of rows:
//   stats   (slice, row)  first sweep: partial RowStats of a vocabulary slice;
//                         the row's last block merges the slices and plans
//                         the row, η (exact_kl: starts the solve) — a plan
//                         kernel runs only for align_shard (merged shards)
//   moments (slice, row)  second sweep at η (trust_region, exact_kl, linear)
//   finish  (row)         merge, plan_finish_*, diagnostics
//   align (slice, row) / score (row) — the operation, or for sample:
//   select  (slice, row)  × select_passes(): radix-select passes for the
//                         masks (rows that are done return at once)
//   sample  (slice, row)  Gumbel-max / greedy arg-max per slice, then merged
// Rows are processed in groups whose two input rows fit in a fraction of the
// L2 cache, so the operation's re-read of the rows hits L2, not HBM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "call.hpp"
#include "kernel_config.hpp"
#include "linalign/math/nucleus.hpp"
#include "linalign/math/step_rule.hpp"

namespace linalign {
namespace host {

// ---- named thresholds (tune here; tests name the regimes they exercise)
// The kernels' fixed shape (threads, vector and chunk widths, slice sizes)
// is their compile-time configuration, kernels/kernel_config.hpp; the
// policy chooses the rest from it.
using kernels::candidate_capacity;
using kernels::FusedOccupancy;
using kernels::kChunkItems;
using kernels::kExactKlPasses;
using kernels::kFinishThreads;
using kernels::kHeldChunks;
using kernels::kMaxCandidates;
using kernels::kRowThreads;
using kernels::kSliceChunks;
using kernels::kSliceGranuleVectors;
using kernels::kSweepThreads;
using kernels::kVectorBytes;
using kernels::RowMask;
using kernels::SolveRow;

// What the policy needs to know about a device (cached per device).
struct DeviceFacts {
  int sm_count = 0;      // multiprocessors
  int64_t l2_bytes = 0;  // L2 cache size (0: unknown, no row grouping)
  // Blocks of each fused kernel (of the call's dtype) one multiprocessor
  // holds at once (cudaOccupancyMaxActiveBlocksPerMultiprocessor; 0: that
  // kernel is not used). exact_kl has its own instances: its solve loop
  // over the held slice needs registers the other rules should not pay for.
  FusedOccupancy fused = {};
};

// Fraction of L2 the two input rows of a group may take (the output of align
// and other traffic share the rest).
constexpr int64_t kL2GroupNumerator = 1;
constexpr int64_t kL2GroupDenominator = 2;
// Rows of one group: the (slice, row) grids put rows on gridDim.y (≤ 65535).
constexpr int64_t kMaxRowsPerGroup = 65535;
// The fused path (align and sample, every rule: FusedAlignKernel /
// FusedSampleKernel, one read of every logit) needs a
// whole row's slices resident at once, so it runs when sm_count × the
// kernel's blocks per SM ≥ vocab_slices; its persistent
// grid is the largest whole number of rows' slices resident at once (every
// wave of items is whole rows), at most the call's items. Prediction for an
// H200 (132 SMs, ≈ 115 registers × 128 threads: 4 blocks per SM, 528
// resident): V = 128256 fp32 (125 slices) → 500 blocks, 4 rows per wave.

struct LaunchPolicy {
  int threads = kSweepThreads;           // sweep kernels
  int row_threads = kRowThreads;         // per-row kernels (align_shard's plan, exact_kl solve)
  int vector_width = 4;                  // elements per 16-byte vector
  int vectors_per_chunk = 4;             // vectors a thread holds per step
  int64_t vocab_slices = 1;              // blocks per row in the sweeps (a function of V)
  int64_t rows_per_group = 1;            // rows per L2-resident group
  int64_t groups = 0;                    // ceil(rows / rows_per_group)
  int64_t fused_grid = 0;                // > 0: FusedAlignKernel's persistent grid (blocks)
  const char* regime = "row-per-block";  // or "split-vocab", "fused"
  std::string str() const;               // printable, for logs and benchmark labels
};

// Register chunks the busiest thread of the policy's largest vocabulary slice
// holds for a row of `vocab` tokens (kernels::held_chunks).
inline int64_t held_chunks(const LaunchPolicy& policy, int64_t vocab) {
  return kernels::held_chunks(vocab, kVectorBytes / policy.vector_width, policy.vocab_slices);
}

// The one place the launch configuration is chosen.
// `rule`: the call's step rule (align, sample: which fused instance).
LaunchPolicy choose_launch_policy(Op op, int64_t rows, int64_t vocab, int64_t elem_bytes,
                                  const DeviceFacts& device, StepRule rule = StepRule::kFixed);

// Radix-select passes a sample call launches (≤ kMaxSelectPasses): rows are
// done after 1 pass when only min-p (and min_tokens_to_keep ≤ 1) is on,
// after 4 when top-p is the only selection, after 8 at most with top-k or
// min_tokens_to_keep ≥ 2 (math/radix_select.hpp). Per-row arrays count as on.
int select_passes(const Params& p);

// Bytes kept for CUB's DeviceSegmentedReduce temporary storage (it asks for
// 1 byte whatever the number of segments; the call checks at run time).
constexpr size_t kSeqTempBytes = 256;

// Byte offsets of one call's workspace (from a base aligned to kWorkspaceAlignment).
constexpr size_t kWorkspaceAlignment = 256;
// x rounded up to a multiple of kWorkspaceAlignment.
constexpr size_t round_to_alignment(size_t x) {
  return (x + kWorkspaceAlignment - 1) & ~(kWorkspaceAlignment - 1);
}
struct CudaLayout {
  size_t stats_off = 0;       // rows*slices RowStats (first sweep partials)
  size_t sweep_off = 0;       // rows*slices TiltSweep | LinearSums (second sweep)
  size_t plan_off = 0;        // rows RowPlan
  size_t solve_off = 0;       // rows SolveRow (exact_kl)
  size_t mask_off = 0;        // rows RowMask (sample with masks)
  size_t select_off = 0;      // rows SelectRow (sample with masks; plan_row zeroes the bins)
  size_t candidates_off = 0;  // rows × candidate_capacity(V) Candidate (sample with masks)
  size_t argmax_off = 0;      // rows*slices*2 ArgMax (sample: masked, unmasked)
  size_t stats_done_off =
      0;  // rows counters of 128 bytes (StatsKernel blocks done; zeroed per call)
  size_t sample_done_off =
      0;                    // rows counters of 128 bytes (sample: blocks done; zeroed by plan_row)
  size_t score_off = 0;     // rows × 3 float (score: ℓ*_t, ℓ_t, ℓᵖ_t)
  size_t seq_temp_off = 0;  // score: CUB's temporary storage for the per-sequence sums
  size_t used = 0;          // bytes from the aligned base
  size_t total = 0;         // what workspace_size() reports (used + alignment slack)
};

// `call` needs its strides resolved (validate_call or Context::workspace_size).
CudaLayout cuda_layout(const Call& call, const LaunchPolicy& policy);

}  // namespace host
}  // namespace linalign
