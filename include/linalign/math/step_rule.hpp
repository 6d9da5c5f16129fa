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
// by bisection whenever they leave it (safeguarded Newton). Each evaluation
// of KL and dKL/dη at one η is one sweep over the row. Starts at the
// trust-region guess, which is exact to second order, so typical rows take
// 3–5 sweeps after the one at η_max.
//
// The solver is a resumable state machine, so a backend may run each sweep
// wherever it likes — the CPU calls eval in a loop (eta_exact_kl), the CUDA
// backend runs one grid-wide sweep per kernel launch and steps the state in
// between — and both take exactly the same decisions for the same KlPoints.
enum ExactKlStage : int32_t { kExactKlTop = 0, kExactKlNewton = 1, kExactKlDone = 2 };
struct ExactKlSolve {
  float epsilon, eta_max;
  float lo, hi;        // bracket of the root
  float eta;           // the Newton iterate being evaluated
  float best, best_f;  // the iterate closest to ε so far, and its |KL − ε|
  int32_t it;          // Newton iterations done
  int32_t stage;       // ExactKlStage
  float at;            // where the next evaluation is (stage < kExactKlDone)
  float result;        // η once done (the Newton start before)
};

LINALIGN_HD void exact_kl_finish(ExactKlSolve& s, float eta) {
  s.result = eta;
  s.stage = kExactKlDone;
}

LINALIGN_HD ExactKlSolve exact_kl_begin(float sigma, float epsilon, float eta_max) {
  ExactKlSolve s;
  s.epsilon = epsilon;
  s.eta_max = eta_max;
  s.lo = 0.f;
  s.hi = eta_max;
  s.eta = s.best = 0.f;
  s.best_f = kInf;
  s.it = 0;
  s.at = eta_max;
  s.result = 0.f;
  s.stage = kExactKlTop;
  if (!(eta_max > 0.f) || !(sigma > 0.f)) {
    exact_kl_finish(s, sigma > 0.f ? 0.f : eta_max);
    return s;
  }
  // The Newton start, used once the evaluation at η_max shows ε is reachable.
  s.eta = eta_trust_region(sigma, epsilon, eta_max);
  if (!(s.eta > s.lo && s.eta < s.hi)) s.eta = 0.5f * (s.lo + s.hi);
  s.result = s.eta;  // until done, `result` keeps the start (the fallback)
  return s;
}
LINALIGN_HD bool exact_kl_done(const ExactKlSolve& s) {
  return s.stage == kExactKlDone;
}

// Takes p = KL and dKL/dη at s.at.
LINALIGN_HD void exact_kl_step(ExactKlSolve& s, const KlPoint& p) {
  const float epsilon = s.epsilon;
  if (s.stage == kExactKlTop) {
    if (!(p.kl - epsilon > -kExactKlTol * epsilon)) {
      exact_kl_finish(s, s.eta_max);  // unreachable (or met at η_max)
      return;
    }
    s.stage = kExactKlNewton;
    s.best = s.eta;
    s.at = s.eta;
    return;
  }
  const float eta = s.eta;
  const float f = p.kl - epsilon;
  const float af = fabsf(f);
  if (af < s.best_f) {
    s.best = eta;
    s.best_f = af;
  }
  if (af <= kExactKlGoal * epsilon) {
    exact_kl_finish(s, eta);
    return;
  }
  if (f < 0.f) {
    s.lo = eta;
  } else {
    s.hi = eta;
  }
  float next = eta - f / p.dkl;
  if (!(next > s.lo && next < s.hi)) next = 0.5f * (s.lo + s.hi);
  // Stop when the bracket is at fp32 resolution, or after kExactKlMaxIter
  // iterations. The goal can be below the fp32 noise of KL (≈ 1e-7
  // absolute: KL is a difference of O(H) terms). If no iterate met the
  // tolerance, two estimates remain: the iterate whose KL came closest to ε,
  // off by best_f/ε relative in KL, and the trust-region start, exact to
  // second order, off by ≈ ησ = sqrt(2ε) relative (the third cumulant's
  // share); the smaller error wins. For small ε the start wins: at ε = 1e-30
  // every KL is noise of either sign, the bracket follows the noise and the
  // last iterate was η = 0.06 for η ≈ 2e-13; at ε = 1e-6 the closest
  // iterate was 5 % off (tests/fuzz/fuzz_calls_cpu).
  const bool stuck = next == eta || s.hi - s.lo <= 1e-7f * s.hi;
  if (stuck || ++s.it == kExactKlMaxIter) {
    const bool met = s.best_f <= kExactKlTol * epsilon;
    const bool start_closer = fsqrt(2.f * epsilon) * epsilon < s.best_f;
    exact_kl_finish(s, met || !start_closer ? s.best : s.result);
    return;
  }
  s.eta = next;
  s.at = next;
}

// The whole solve with `eval(η)` → KlPoint, one call per sweep.
template <class EvalT>
LINALIGN_HD float eta_exact_kl(const EvalT& eval, float sigma, float epsilon, float eta_max) {
  ExactKlSolve s = exact_kl_begin(sigma, epsilon, eta_max);
  while (!exact_kl_done(s)) exact_kl_step(s, eval(s.at));
  return s.result;
}

}  // namespace math
}  // namespace linalign
