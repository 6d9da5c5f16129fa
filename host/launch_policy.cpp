// The CUDA launch policy and workspace layout (see launch_policy.hpp). Pure
// C++: compiled into every build so CPU tests can check the regimes.
#include "launch_policy.hpp"

#include <algorithm>
#include <sstream>

#include "linalign/math/partition.hpp"
#include "linalign/math/radix_select.hpp"
#include "linalign/math/row_stats.hpp"
#include "linalign/math/update.hpp"

namespace linalign {
namespace host {

std::string LaunchPolicy::str() const {
  std::ostringstream os;
  os << regime << "{threads=" << threads << ", row_threads=" << row_threads
     << ", vector_width=" << vector_width << ", vectors_per_chunk=" << vectors_per_chunk
     << ", vocab_slices=" << vocab_slices << ", rows_per_group=" << rows_per_group
     << ", groups=" << groups;
  if (fused_grid > 0) os << ", fused_grid=" << fused_grid;
  os << "}";
  return os.str();
}

LaunchPolicy choose_launch_policy(Op op, int64_t rows, int64_t vocab, int64_t elem_bytes,
                                  const DeviceFacts& device, StepRule rule) {
  LaunchPolicy p;
  elem_bytes = std::max<int64_t>(1, elem_bytes);
  vocab = std::max<int64_t>(1, vocab);
  rows = std::max<int64_t>(0, rows);
  p.vector_width = kernels::vector_width(elem_bytes);
  p.vectors_per_chunk = kernels::vectors_per_chunk(elem_bytes);

  // Rows per group: the two input rows of every row of a group fit in the
  // L2 share, so the operation's second read of them hits L2. Scoring reads
  // one element per row after the plan: no grouping.
  int64_t group = std::max<int64_t>(1, rows);
  if (op != Op::kScore && device.l2_bytes > 0) {
    const int64_t pair_bytes = 2 * vocab * elem_bytes;
    const int64_t budget = device.l2_bytes * kL2GroupNumerator / kL2GroupDenominator;
    group = std::min(group, std::max<int64_t>(1, budget / pair_bytes));
  }
  p.rows_per_group = std::min(group, kMaxRowsPerGroup);
  p.groups = rows == 0 ? 0 : math::ceil_div(rows, p.rows_per_group);

  // Vocabulary slices of kSliceChunks register chunks per thread, from V
  // alone (rounded to the nearest count, so no slice is a sliver).
  const int64_t vectors = vocab / p.vector_width;
  const int64_t per_slice = int64_t(p.threads) * p.vectors_per_chunk * kSliceChunks;
  p.vocab_slices = std::max<int64_t>(1, (vectors + per_slice / 2) / per_slice);
  p.regime = p.vocab_slices > 1 ? "split-vocab" : "row-per-block";

  // align / sample in one kernel when a row's slices can all be resident.
  const bool kl = rule == StepRule::kExactKl;
  const FusedOccupancy& f = device.fused;
  const int per_sm = op == Op::kAlign    ? (kl ? f.align_exact_kl : f.align)
                     : op == Op::kSample ? (kl ? f.sample_exact_kl : f.sample)
                                         : 0;
  const int64_t resident = int64_t(std::max(0, device.sm_count)) * int64_t(std::max(0, per_sm));
  if ((op == Op::kAlign || op == Op::kSample) && rows > 0 && resident >= p.vocab_slices) {
    p.fused_grid = std::min(rows * p.vocab_slices, resident / p.vocab_slices * p.vocab_slices);
    p.regime = "fused";
  }
  return p;
}

int select_passes(const Params& p) {
  const bool top_p = p.top_p.values != nullptr || p.top_p.value < 1.0f;
  const bool rank = p.top_k.values != nullptr || p.top_k.value > 0 || p.min_tokens_to_keep >= 2;
  if (rank) return math::kMaxSelectPasses;
  return top_p ? math::kMassLevels : 1;
}

CudaLayout cuda_layout(const Call& call, const LaunchPolicy& policy) {
  const size_t B = size_t(std::max<int64_t>(0, call.logits.rows));
  const size_t S = size_t(policy.vocab_slices);
  const bool sample = call.op == Op::kSample;
  CudaLayout L;
  size_t off = 0;
  L.stats_off = off;
  off = round_to_alignment(off + B * S * sizeof(math::RowStats));
  L.sweep_off = off;
  off =
      round_to_alignment(off + B * S * std::max(sizeof(math::TiltSweep), sizeof(math::LinearSums)));
  L.plan_off = off;
  off = round_to_alignment(off + B * sizeof(math::RowPlan));
  L.solve_off = off;
  if (call.params != nullptr && call.params->rule == StepRule::kExactKl)
    off = round_to_alignment(off + B * sizeof(SolveRow));
  L.mask_off = off;
  const bool masks = sample && call.params != nullptr && masks_possible(*call.params);
  if (masks) off = round_to_alignment(off + B * sizeof(RowMask));
  L.select_off = off;
  if (masks) off = round_to_alignment(off + B * sizeof(math::SelectRow));
  L.candidates_off = off;
  if (masks)
    off = round_to_alignment(off + B * size_t(candidate_capacity(call.logits.vocab)) *
                                       sizeof(math::Candidate));
  L.argmax_off = off;
  if (sample) off = round_to_alignment(off + B * S * 2 * sizeof(math::ArgMax));
  L.stats_done_off = off;
  const size_t counters = size_t(kernels::counter_index(int64_t(B))) * sizeof(uint32_t);
  off = round_to_alignment(off + counters);
  L.sample_done_off = off;
  if (sample) off = round_to_alignment(off + counters);
  L.score_off = off;
  if (call.op == Op::kScore) off = round_to_alignment(off + 3 * B * sizeof(float));
  L.seq_temp_off = off;
  if (call.op == Op::kScore) off = round_to_alignment(off + kSeqTempBytes);
  L.used = off;
  L.total = off + kWorkspaceAlignment;  // slack to round a caller's base pointer up
  return L;
}

}  // namespace host
}  // namespace linalign
