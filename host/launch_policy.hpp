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
#include "linalign/math/nucleus.hpp"
#include "linalign/math/step_rule.hpp"

namespace linalign {
namespace host {

// Blocks per SM of FusedAlignKernel / FusedSampleKernel, for the rules
// without and with exact_kl's solve (kernels/fused_kernels.cuh).
struct FusedOccupancy {
  int align = 0, align_exact_kl = 0;
  int sample = 0, sample_exact_kl = 0;
};

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

// ---- named thresholds (tune here; tests name the regimes they exercise)
// Threads of the (slice, row) sweep kernels: stats, moments, align, sample.
constexpr int kSweepThreads = 128;
// Threads of the per-row kernels: plan (the exact_kl solver sweeps the row
// with the whole block).
constexpr int kRowThreads = 512;
// Threads of the small per-row finishing kernels.
constexpr int kFinishThreads = 128;
// exact_kl: grid-wide sweeps launched for the η solve (one KL evaluation
// each; the first is at η_max, the rest Newton steps). Rows still unsolved
// after them — rare: typical rows need 4–6 — finish in one block per row.
constexpr int kExactKlPasses = 8;
// Bytes of one vector load (LDG.128).
constexpr int kVectorBytes = 16;
// Elements each thread holds in registers per step of a sweep (a "chunk"):
// 2 float4 loads per row for fp32, 1 uint4 load for bf16/fp16.
constexpr int kChunkItems = 8;
// Register chunks per thread in one vocabulary slice: a slice is
// kSweepThreads x kChunkItems x kSliceChunks = 1024 tokens, whatever the
// dtype. The split depends on V alone — never on the batch size or the
// device — so the merge order, and every bit of a row's result, is the same
// whether the row is computed alone or in any batch (SPEC §5), as on the CPU
// backend. Small slices are what lets B = 1 use the whole GPU: 31 blocks at
// V = 32000 (the whole 256 KB pair is one memory latency away from any of
// them), 125 at V = 128256, 148 at 151936 and 256 at 262144 — at least one
// per SM of an H100/H200 (132) from V ≈ 135000 on. At large B the cost is one
// 64-byte partial RowStats per 8 KB (fp32) of input and a 512-thread merge of
// ≤ 256 partials per row by the row's last statistics block (plan_row).
constexpr int64_t kSliceChunks = 1;
// Slices are spread evenly over the row in granules of one warp's vectors
// (math::slice_span): at V = 128256 fp32 every one of the 125 blocks of a
// row gets 256 or 288 vectors (rounding each slice up to whole blocks' worth
// left 41 of them empty and the busiest with 384).
constexpr int64_t kSliceGranuleVectors = 32;
// Register chunks a thread of the statistics sweep holds at once (the whole
// slice on chip for the three-pass slice statistics, math/slice_stats.hpp):
// with slices of ≈ kSliceChunks chunks per thread, rounded to the nearest
// count and spread in warp granules, no thread gets more than 2 (checked
// for every V by tests/cpu/test_partition.cpp, and per call by the launch,
// which refuses a policy that breaks it: held_chunks below).
constexpr int kHeldChunks = 2;
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
// holds for a row of `vocab` tokens (any row alignment: a row never has more
// than vocab / vector_width body vectors). Must be ≤ kHeldChunks.
int64_t held_chunks(const LaunchPolicy& policy, int64_t vocab);

// The one place the launch configuration is chosen.
// `rule`: the call's step rule (align, sample: which fused instance).
LaunchPolicy choose_launch_policy(Op op, int64_t rows, int64_t vocab, int64_t elem_bytes,
                                  const DeviceFacts& device, StepRule rule = StepRule::kFixed);

// Radix-select passes a sample call launches (≤ kMaxSelectPasses): rows are
// done after 1 pass when only min-p (and min_tokens_to_keep ≤ 1) is on,
// after 4 when top-p is the only selection, after 8 at most with top-k or
// min_tokens_to_keep ≥ 2 (math/radix_select.hpp). Per-row arrays count as on.
int select_passes(const Params& p);

// Candidates the first select pass gathers per row (math/radix_select.hpp,
// "selection from candidates"): min(V, 16384) × 12 bytes (192 KiB) per row
// of a sample call's workspace when masks are possible. LM rows at top-p
// 0.9 have hundreds to a few thousand; a row of more (a flat distribution,
// p near 1) runs the later passes over the whole row instead.
constexpr int64_t kMaxCandidates = 16384;
inline int64_t candidate_capacity(int64_t vocab) {
  return vocab < kMaxCandidates ? (vocab > 0 ? vocab : 1) : kMaxCandidates;
}

// A per-row mask record in the workspace (select → sample kernels).
struct RowMask {
  math::MaskThresholds th;
  int32_t masked;  // 0: the row keeps every candidate (masks off or min_keep ≥ |q|)
  int32_t drawn;   // 1: the first select pass drew the token from its candidates
};

// A row's exact_kl solve in the workspace (plan_row → KL passes).
struct SolveRow {
  math::ExactKlSolve solve;
  uint32_t done;  // blocks of the row done with the current pass
};

// Bytes kept for CUB's DeviceSegmentedReduce temporary storage (it asks for
// 1 byte whatever the number of segments; the call checks at run time).
constexpr size_t kSeqTempBytes = 256;

// Byte offsets of one call's workspace (from a base aligned to kWorkspaceAlignment).
constexpr size_t kWorkspaceAlignment = 256;
struct CudaLayout {
  size_t stats_off = 0;        // rows*slices RowStats (first sweep partials)
  size_t sweep_off = 0;        // rows*slices TiltMoments | LinearSums (second sweep)
  size_t plan_off = 0;         // rows RowPlan
  size_t solve_off = 0;        // rows SolveRow (exact_kl)
  size_t mask_off = 0;         // rows RowMask (sample with masks)
  size_t select_off = 0;       // rows SelectRow (sample with masks; plan_row zeroes the bins)
  size_t candidates_off = 0;   // rows × candidate_capacity(V) Candidate (sample with masks)
  size_t argmax_off = 0;       // rows*slices*2 ArgMax (sample: masked, unmasked)
  size_t stats_done_off = 0;   // rows uint32 (StatsKernel blocks done; zeroed per call)
  size_t sample_done_off = 0;  // rows uint32 (sample: blocks done; zeroed by plan_row)
  size_t score_off = 0;        // rows × 3 float (score: ℓ*_t, ℓ_t, ℓᵖ_t)
  size_t seq_temp_off = 0;     // score: CUB's temporary storage for the per-sequence sums
  size_t used = 0;             // bytes from the aligned base
  size_t total = 0;            // what workspace_size() reports (used + alignment slack)
};

// `call` needs its strides resolved (validate_call or Context::workspace_size).
CudaLayout cuda_layout(const Call& call, const LaunchPolicy& policy);

}  // namespace host
}  // namespace linalign
