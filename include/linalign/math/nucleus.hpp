// Plausibility masks and token selection (SPEC §3, docs/SEMANTICS.md 2–3, 8).
//
// All three masks are defined on the fp32 log-probabilities lq_i of one
// distribution q (πᵖ or π*, the nucleus source). How a backend finds the
// thresholds (a sort on the CPU, a radix select on the GPU) is its own
// business; the predicate below — which token is kept once the thresholds
// are known — is shared, so both backends keep exactly the same set.
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

// A (value, index) position in the rank order: q descending, ties broken by
// lower index. `before(a, b)` is true when a ranks strictly before b.
struct RankKey {
  float lq;
  int64_t index;
};
LINALIGN_HD bool rank_before(float lq_a, int64_t ia, float lq_b, int64_t ib) {
  return lq_a > lq_b || (lq_a == lq_b && ia < ib);
}

// The thresholds of one row's mask.
//   top-p:  keep i iff lq_i ≥ tau_p, where tau_p is the smallest value v of
//           lq with Σ_{lq_j > v} exp(lq_j) < p (ties at the boundary kept;
//           the top token always kept). −inf when top-p is off.
//   top-k:  keep i iff rank(i) < k, i.e. (lq_i, i) is not after `kth`.
//           has_topk false when top-k is off or k ≥ |S|.
//   min-p:  keep i iff exp(lq_i − lq_max) ≥ min_p (min_p = 0: off).
//   min_tokens_to_keep: tokens with rank < min_keep are kept whatever the
//           masks say; `keep_last` is the (min_keep−1)-th key (has_keep false
//           when min_keep ≥ |S|: every token is then kept).
struct MaskThresholds {
  float tau_p;
  float lq_max;
  float min_p;
  bool has_topk;
  RankKey kth;
  bool has_keep;
  RankKey keep_last;
};

// Whether the masks are all off (the kept set is then S itself).
LINALIGN_HD bool masks_off(float top_p, int32_t top_k, float min_p) {
  return top_p >= 1.0f && top_k <= 0 && min_p <= 0.0f;
}

// The shared predicate. `lq` must be finite (i ∈ S).
LINALIGN_HD bool mask_keep(const MaskThresholds& t, float lq, int64_t i) {
  if (!t.has_keep) return true;
  if (!rank_before(t.keep_last.lq, t.keep_last.index, lq, i)) return true;  // rank < min_keep
  if (lq < t.tau_p) return false;
  if (t.has_topk && rank_before(t.kth.lq, t.kth.index, lq, i)) return false;  // rank ≥ k
  if (t.min_p > 0.f && fexp(lq - t.lq_max) < t.min_p) return false;
  return true;
}

// Arg-max with ties to the lower index; merges associatively, so partial
// results of any split of the row combine (threads, warps, blocks, chunks).
// No padding: the CUDA kernels read a slice's partial word by word past L1
// (kernels/device.cuh load_coherent), and a padding word is memory no store
// ever wrote — compute-sanitizer's initcheck reported exactly that when the
// index was 64 bits wide. Token ids fit 32 bits (tokens are int32 outputs).
struct ArgMax {
  float score;
  int32_t index;  // −1 when empty
};
static_assert(sizeof(ArgMax) == sizeof(float) + sizeof(int32_t), "no padding");
LINALIGN_HD ArgMax argmax_empty() {
  return ArgMax{-kInf, -1};
}
LINALIGN_HD ArgMax argmax_merge(const ArgMax& a, const ArgMax& b) {
  if (b.index < 0) return a;
  if (a.index < 0) return b;
  if (b.score > a.score || (b.score == a.score && b.index < a.index)) return b;
  return a;
}
LINALIGN_HD void argmax_push(ArgMax& a, float score, int64_t index) {
  if (a.index < 0 || score > a.score || (score == a.score && index < a.index)) {
    a.score = score;
    a.index = int32_t(index);
  }
}

}  // namespace math
}  // namespace linalign
