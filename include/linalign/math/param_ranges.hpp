// The valid range of every per-row parameter and of a score target (SPEC
// §2–§5, docs/SEMANTICS.md), one predicate each, used by both checks:
//   * the host (host/validate.cpp) for scalars and host-visible arrays: a
//     call-level error naming the argument, nothing launched;
//   * the kernels (kernels/device.cuh row_param_flags) for arrays in device
//     memory, which the host cannot read: the row is flagged
//     kRowBadParameter, every other row computed as if alone.
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

// Temperature: finite and > 0; a sample call also takes 0 (greedy).
LINALIGN_HD bool temperature_ok(float t, bool sample) {
  return is_finite(t) && (sample ? t >= 0.f : t > 0.f);
}
// The fixed rule's ratio (η = 1 + ratio): finite.
LINALIGN_HD bool ratio_ok(float r) {
  return is_finite(r);
}
// trust_region / exact_kl: the KL budget ε, finite and > 0 ...
LINALIGN_HD bool epsilon_ok(float e) {
  return is_finite(e) && e > 0.f;
}
// ... and the bound η_max, finite and ≥ 0.
LINALIGN_HD bool eta_max_ok(float e) {
  return is_finite(e) && e >= 0.f;
}
// A parameter the call's rule does not use (ratio under trust_region /
// exact_kl; ε and η_max under fixed) is still a number: SPEC §5 lists a NaN
// ratio or ε as a call-level error whatever the rule.
LINALIGN_HD bool unused_ok(float v) {
  return !is_nan(v);
}
// Sampling masks: top-p in (0, 1], top-k ≥ 0 (0: off), min-p in [0, 1].
LINALIGN_HD bool top_p_ok(float p) {
  return p > 0.f && p <= 1.f;
}
LINALIGN_HD bool top_k_ok(int32_t k) {
  return k >= 0;
}
LINALIGN_HD bool min_p_ok(float p) {
  return p >= 0.f && p <= 1.f;
}
// A score target: a token id in [0, vocab) or ignore_index.
LINALIGN_HD bool target_ok(int32_t t, int32_t ignore_index, int64_t vocab) {
  return t == ignore_index || (t >= 0 && int64_t(t) < vocab);
}

}  // namespace math
}  // namespace linalign
