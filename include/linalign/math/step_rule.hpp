// Step rules (SPEC §2 "Step size η") and the safeguarded exact-KL solver.
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

enum class Rule : int32_t { kFixed = 0, kTrustRegion = 1, kExactKl = 2 };
enum class Update : int32_t { kTilt = 0, kLinear = 1 };

// fixed: η = 1 + ratio (ratio 0 → principle policy, ratio −1 → base policy).
LINALIGN_HD float eta_fixed(float ratio) {
  return 1.0f + ratio;
}

// trust_region: the second-order closed form of max E[δ] s.t. KL(π*‖π) ≤ ε
// with KL ≈ ½η²σ²: η = min(η_max, sqrt(2ε)/σ), and η = 0 when σ = 0.
LINALIGN_HD float eta_trust_region(float sigma, float epsilon, float eta_max) {
  if (!(sigma > 0.f)) return 0.f;
  const float eta = fsqrt(2.f * epsilon) / sigma;  // may be +inf for tiny σ
  return eta < eta_max ? eta : eta_max;
}

// KL(π_η‖π) and its derivative in η at one η: what one sweep returns.
struct KlPoint {
  float kl;
  float dkl;
};

// Relative tolerance of the exact_kl rule: |KL − ε| ≤ kExactKlTol·ε (SPEC §2).
constexpr float kExactKlTol = 1e-4f;
// What the solver aims for: ten times inside the tolerance, one more Newton
// step (quadratic convergence) in most rows. Where KL is flat in η (large η),
// a KL tolerance is a loose η tolerance, and stopping at the first iterate
// inside it left η up to 1e-4 relative from the root — enough for two
// backends (or the float64 reference) to disagree on η beyond SPEC §6.
constexpr float kExactKlGoal = 1e-5f;
constexpr int kExactKlMaxIter = 64;

// exact_kl: the η ∈ [0, η_max] with KL(π_η‖π) = ε, η_max when even that KL is
// below ε. KL is increasing in η (dKL/dη = η·Var_{π_η}[δ] ≥ 0 for the tilt),
// so Newton steps are kept inside a shrinking bracket [lo, hi] and replaced
// by bisection whenever they leave it (safeguarded Newton). `eval(η)` returns
// a KlPoint; each call is one sweep over the row. Starts at the trust-region
// guess, which is exact to second order, so typical rows take 3–5 sweeps.
template <class EvalT>
LINALIGN_HD float eta_exact_kl(const EvalT& eval, float sigma, float epsilon, float eta_max) {
  if (!(eta_max > 0.f) || !(sigma > 0.f)) return sigma > 0.f ? 0.f : eta_max;
  const KlPoint top = eval(eta_max);
  if (!(top.kl - epsilon > -kExactKlTol * epsilon))
    return eta_max;  // unreachable (or met at η_max)
  float lo = 0.f, hi = eta_max;
  float eta = eta_trust_region(sigma, epsilon, eta_max);
  if (!(eta > lo && eta < hi)) eta = 0.5f * (lo + hi);
  float best = eta, best_f = kInf;  // the iterate closest to ε so far
  for (int it = 0; it < kExactKlMaxIter; ++it) {
    const KlPoint p = eval(eta);
    const float f = p.kl - epsilon;
    const float af = fabsf(f);
    if (af < best_f) {
      best = eta;
      best_f = af;
    }
    if (af <= kExactKlGoal * epsilon) return eta;
    if (f < 0.f) {
      lo = eta;
    } else {
      hi = eta;
    }
    float next = eta - f / p.dkl;
    if (!(next > lo && next < hi)) next = 0.5f * (lo + hi);
    if (next == eta || hi - lo <= 1e-7f * hi) break;  // bracket at fp32 resolution
    eta = next;
  }
  // The goal can be below the fp32 noise of KL: the closest iterate (within
  // the SPEC tolerance whenever any iterate was).
  return best_f <= kExactKlTol * epsilon ? best : eta;
}

}  // namespace math
}  // namespace linalign
