// From merged row statistics to everything a row outputs (SPEC §2–§3):
// the RowPlan holds the few numbers that turn one (z_i, y_i) pair into ℓ*_i,
// ℓ_i and ℓᵖ_i, plus the diagnostics. Built once per row after the sweeps.
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"
#include "linalign/math/row_stats.hpp"
#include "linalign/math/step_rule.hpp"

namespace linalign {
namespace math {

// Sums over S for the `linear` update at a given η, with weights
// π_i·g_i, g_i = max(0, 1 + η (δ_i − μ)) = max(0, 1 + η (d_i − E_π[d])):
//   n = Σ π g,  a = Σ π g log g,  b = Σ π g (d − E_π d),  c = Σ π g ℓ,
//   dn = Σ_{g>0} π (d − E_π d),  da = Σ_{g>0} π (d − E_π d)(log g + 1)  (η-derivatives).
// Plain sums merge by addition (π ≤ 1: no overflow, no rescaling needed).
struct LinearSums {
  float n, a, b, c, dn, da;
};
LINALIGN_HD LinearSums linear_empty() {
  return LinearSums{0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
}
LINALIGN_HD LinearSums linear_merge(const LinearSums& x, const LinearSums& y) {
  return LinearSums{x.n + y.n, x.a + y.a, x.b + y.b, x.c + y.c, x.dn + y.dn, x.da + y.da};
}

// The linear update's factor g_i = 1 + η (d_i − E_π[d]) (unclipped).
LINALIGN_HD float linear_factor(float d, float mean_d, float eta) {
  return 1.0f + eta * (d - mean_d);
}

// Everything needed per element and per row once the sweeps are done. Log
// normalisers are kept as (max, log of the scaled sum) pairs and applied in
// two steps, (x − m) − log s: the first subtraction is exact for the tokens
// that carry the mass, so ℓ, ℓᵖ and ℓ* lose nothing to a large m.
struct RowPlan {
  float inv_t;
  float m_z, ls_z;  // base:      lse(zt) = m_z + ls_z over S
  float m_y, ls_y;  // principle: lse(yt) = m_y + ls_y over S
  float mean_d;     // E_π[d]
  float eta;
  // tilt: log-weights lw_i = (zt_i − off_z) + η (d_i − off_d), ℓ*_i = (lw_i − m_t) − ls_t.
  // The fixed rule merges them in the first sweep, before anything is known:
  // off_z = off_d = 0. A second sweep (trust_region, exact_kl) centres them
  // (off_z = m_z, off_d = E_π[d]) so lw stays small where the weight is.
  float off_z, off_d;
  float m_t, ls_t;
  float log_n;     // linear: log Σ π max(0, g)
  int32_t update;  // Update
  int32_t count;   // |S|
  uint32_t flags;  // RowStatus bits; non-zero = invalid row
  // diagnostics
  float mu, sigma, kl_base, kl_principle, entropy;
};

LINALIGN_HD bool plan_valid(const RowPlan& p) {
  return p.flags == 0u;
}

// Base quantities from the merged first-sweep statistics. Sets flags
// (kFlagEmpty for an empty S) and, for an invalid row, NaN everywhere.
// `centred_tilt`: whether the tilted moments will come from a second sweep
// (see off_z, off_d); false when they were merged in the first sweep.
LINALIGN_HD RowPlan plan_begin(const RowStats& st, float inv_t, Update update, bool centred_tilt) {
  RowPlan p;
  p.inv_t = inv_t;
  p.update = int32_t(update);
  p.count = st.count;
  p.flags = st.flags | (st.count == 0 ? kFlagEmpty : 0u);
  p.off_z = p.off_d = 0.f;
  p.eta = p.m_t = p.ls_t = p.log_n = p.kl_base = p.kl_principle = p.entropy = kNaN;
  if (p.flags != 0u) {
    p.m_z = p.ls_z = p.m_y = p.ls_y = p.mean_d = p.mu = p.sigma = kNaN;
    return p;
  }
  p.m_z = st.base.m;
  p.ls_z = flog(st.base.s);
  p.m_y = st.principle.m;
  p.ls_y = flog(st.principle.s);
  p.mean_d = st.base.mean;
  // μ = E_π[δ] = E_π[d] − (lse_y − lse_z) = −KL(π‖πᵖ)
  p.mu = st.base.mean - ((p.m_y - p.m_z) + (p.ls_y - p.ls_z));
  p.sigma = fsqrt(st.base.m2 / st.base.s);
  if (centred_tilt) {
    p.off_z = p.m_z;
    p.off_d = p.mean_d;
  }
  return p;
}

// The tilted log-weight of one token in the plan's frame (see RowPlan).
LINALIGN_HD float plan_tilt_logit(const RowPlan& p, float zt, float d, float eta) {
  return tilt_logit(zt - p.off_z, d - p.off_d, eta);
}

// The second sweep of the tilt update (trust_region, exact_kl; each exact_kl
// evaluation): the tilted moments at η in the plan's frame, references at the
// row maxima m_z, m_y, and the sums KL(π_η‖π) is formed from without
// cancellation (tilt_kl_point). With π_i = exp(ℓ_i) from the plan and
// x_i = η (d_i − off_d):
//   p = Σ π_i,   b = Σ π_i expm1(x_i),   phi = Σ π_i φ(x_i),
//   φ(x) = x eˣ − eˣ + 1 = Σ_{k≥2} (k − 1) xᵏ / k!  ≥ 0.
// Then E_π[e^x] = 1 + b/p and E_η[x] = (phi + b)/(p + b), so
//   KL = E_η[x] − log E_π[e^x] = phi/(p + b) + (y/(1 + y) − log1p(y)),  y = b/p:
// a sum of non-negative terms plus a term of second order in y — where the
// moments' own form, −H − E*[ℓ], is a difference of O(log V) terms with
// ≈ 1e-7 of absolute noise, too much once ε < 1e-2
// (oracleAlign.ExactKlSmallBudgets; corpus regress-exact-kl-small-eps).
// Every value is shift-invariant in off_d. Parts merge with tilt_sweep_merge.
struct TiltSweep {
  TiltMoments m;
  float p, b, phi;
};
LINALIGN_HD TiltSweep tilt_sweep_empty() {
  return TiltSweep{tilt_empty(), 0.f, 0.f, 0.f};
}
LINALIGN_HD TiltSweep tilt_sweep_merge(const TiltSweep& a, const TiltSweep& b) {
  return TiltSweep{tilt_merge(a.m, b.m), a.p + b.p, a.b + b.b, a.phi + b.phi};
}
// φ(x) = x eˣ − eˣ + 1 for |x| < 1/2, by its series (to x¹¹: the next term
// is < 1e-11 of φ there); chunk_tilt_moments forms π φ(x) = x·πeˣ − π(eˣ − 1)
// beyond.
LINALIGN_HD float kl_phi(float x) {
  float s = 1.f / 3991680.f;  // (k − 1)/k! for k = 11, 10, …, 2
  s = s * x + 1.f / 403200.f;
  s = s * x + 1.f / 45360.f;
  s = s * x + 1.f / 5760.f;
  s = s * x + 1.f / 840.f;
  s = s * x + 1.f / 144.f;
  s = s * x + 1.f / 30.f;
  s = s * x + 1.f / 8.f;
  s = s * x + 1.f / 3.f;
  s = s * x + 0.5f;
  return x * x * s;
}
template <class LoadT>
LINALIGN_HD TiltSweep chunk_tilt_moments(const LoadT& load, int64_t n, const RowPlan& p,
                                         float eta) {
  TiltSweep t = tilt_sweep_empty();
  LINALIGN_UNROLL
  for (int64_t k = 0; k < n; ++k) {
    float z, y;
    load(k, &z, &y);
    if (!in_support(z, y)) continue;
    const float zt = z * p.inv_t, yt = y * p.inv_t, d = yt - zt;
    tilt_push(t.m, plan_tilt_logit(p, zt, d, eta), d, zt - p.m_z, yt - p.m_y);
    // π_i = e^ℓ and π_i e^x: from one exponential of ℓ + x where |x| ≥ 1/2
    // (π_i may underflow while π_i e^x carries mass: T = 1e-3), with expm1
    // and the series of φ where |x| < 1/2 (there e^x ≈ 1: no underflow apart).
    const float l = (zt - p.m_z) - p.ls_z, x = eta * (d - p.off_d);
    const float pi = fexp(l);
    t.p += pi;
    if (fabsf(x) < 0.5f) {
      t.b += pi * fexpm1(x);
      t.phi += pi * kl_phi(x);
    } else {
      const float w = fexp(l + x), wm = w - pi;  // π(e^x − 1): no cancellation at |x| ≥ 1/2
      t.b += wm;
      t.phi += x * w - wm;
    }
  }
  return t;
}

// H(π*), KL(π*‖π), KL(π*‖πᵖ) from tilted moments whose references are the
// row maxima m_z, m_y:  H = log s_t − E*[lw − m_t],  E*[ℓ] = mean_z − ls_z.
struct TiltDiagnostics {
  float entropy, kl_base, kl_principle;
};
LINALIGN_HD TiltDiagnostics tilt_diagnostics(const TiltMoments& t, const RowPlan& p) {
  const float h = flog(t.t.s) - t.t.mean_lw;
  return TiltDiagnostics{h, -h - (t.mean_z - p.ls_z), -h - (t.mean_y - p.ls_y)};
}

// KL(π_η‖π) of the tilt family, and its derivative η Var_{π_η}[δ], at η.
// Below 1 nat from the second sweep's sums (see TiltSweep), whose relative
// error stays near fp32's where the moments' form has ≈ 1e-7 absolute; at
// and above it from the moments: there π_η may sit on tokens whose π
// underflows in fp32 (T = 1e-3: KL ≈ 1.7e4), which the sums weigh by π and
// miss, while 1e-7 of absolute noise is nothing against a KL ≥ 1.
constexpr float kTiltSumsKlMax = 1.0f;
LINALIGN_HD float tilt_sweep_kl(const TiltSweep& s, const RowPlan& p) {
  const float direct = tilt_diagnostics(s.m, p).kl_base;
  if (!(direct < kTiltSumsKlMax)) return direct;
  const float y = s.b / s.p;
  const float kl = s.phi / (s.p + s.b) + (y / (1.f + y) - flog1p(y));
  return is_finite(kl) ? fmaxf_(kl, 0.f) : direct;
}
LINALIGN_HD KlPoint tilt_kl_point(const TiltSweep& s, const RowPlan& p, float eta) {
  return KlPoint{tilt_sweep_kl(s, p), eta * (s.m.t.m2 / s.m.t.s)};
}

// The linear-update sums of a chunk at η.
template <class LoadT>
LINALIGN_HD LinearSums chunk_linear_sums(const LoadT& load, int64_t n, const RowPlan& p,
                                         float eta) {
  LinearSums s = linear_empty();
  LINALIGN_UNROLL
  for (int64_t k = 0; k < n; ++k) {
    float z, y;
    load(k, &z, &y);
    if (!in_support(z, y)) continue;
    const float zt = z * p.inv_t, d = y * p.inv_t - zt;
    const float l = (zt - p.m_z) - p.ls_z;
    const float pi = fexp(l);
    const float g = linear_factor(d, p.mean_d, eta);
    if (!(g > 0.f)) continue;
    const float c = d - p.mean_d;  // δ − μ
    const float w = pi * g, lg = flog(g);
    s.n += w;
    s.a += w * lg;
    s.b += w * c;
    s.c += w * l;
    s.dn += pi * c;
    s.da += pi * c * (lg + 1.f);
  }
  return s;
}

// KL(π*‖π) of the linear update from its sums, with its η-derivative.
LINALIGN_HD KlPoint linear_kl_point(const LinearSums& s) {
  const float kl = s.a / s.n - flog(s.n);
  const float dkl = (s.da * s.n - s.a * s.dn) / (s.n * s.n) - s.dn / s.n;
  return KlPoint{kl, dkl};
}

// The overflow rule (docs/SEMANTICS.md 6, kFlagOverflow). A row whose logits
// are finite can still leave fp32 at its parameters: zt = z/T overflows for
// T = 1e-38, η·d for ratio = 3e38, the linear factor 1 + η(d − E_π d) for
// |z/T| ≈ 3e6 with η ≈ 18. Every per-token output is a formula of
// (zt, d) and of the plan's scalars, and every per-token value of a token in
// S also enters one of the sums the scalars come from (the same formulas:
// tilt_logit, linear_factor): a token whose value is +inf makes a maximum
// +inf, and one whose value is NaN, or ±inf times a zero weight, makes a sum
// NaN. So when every scalar of the finished plan is finite, every ℓ*_i, ℓ_i,
// ℓᵖ_i of S is finite or −inf (a weight that underflowed, as the exact value
// rounds) and never NaN or +inf; when one is not, the row is flagged and is
// invalid like a NaN row. One rule, checked where every backend finishes a
// plan.
//
// Finite scalars alone do not make the backends agree: near the limits the
// sums' order decides (ratio = 3e38 leaves every η·d finite, but a tree of
// merges rebases tilted maxima by η·Δ and overflows where one chunk does not;
// at |z/T| ≈ 1e7 with the linear update, μ is resolved to an ulp of 1, so
// 1 + η(d − μ) of the token holding the mass is 1 in one order and −17 in
// another). So the rule also bounds the magnitudes, from quantities every
// backend computes alike (η, exact for the fixed rule; the maxima m_z, m_y,
// exact in any order; μ up to its rounding):
//   * |η| ≤ kPlanEtaMax = 2^20 and |m_z|, |m_y| ≤ kPlanScaledMax = 2^40:
//     with them, η·d and the tilted log-weights of the tokens that carry
//     weight stay ≤ 2^61, so no merge order overflows;
//   * linear update: |η|·max(|m_z|, |m_y|, |μ|) ≤ kPlanLinearReach = 2^22:
//     the factor's rounding, |η|·ulp(d − μ) ≤ 2^22·2^−23, stays under half a
//     unit, so the sign of 1 + η(d − μ) at the mass is the exact one.
// Beyond them fp32 cannot resolve the row at its parameters (an ulp of z/T
// is 2^17 at 2^40): it is flagged, whichever order the backend sums in.
constexpr float kPlanEtaMax = 1048576.0f;           // 2^20
constexpr float kPlanScaledMax = 1099511627776.0f;  // 2^40
constexpr float kPlanLinearReach = 4194304.0f;      // 2^22
LINALIGN_HD bool plan_in_reach(const RowPlan& p) {
  const float scale = fmaxf_(fabsf(p.m_z), fabsf(p.m_y));
  if (!(fabsf(p.eta) <= kPlanEtaMax) || !(scale <= kPlanScaledMax)) return false;
  return p.update == int32_t(Update::kTilt) ||
         fabsf(p.eta) * fmaxf_(scale, fabsf(p.mean_d)) <= kPlanLinearReach;
}
LINALIGN_HD void plan_check_range(RowPlan& p) {
  bool ok = is_finite(p.m_z) && is_finite(p.ls_z) && is_finite(p.m_y) && is_finite(p.ls_y) &&
            is_finite(p.mean_d) && is_finite(p.eta) && is_finite(p.mu) && is_finite(p.sigma) &&
            is_finite(p.kl_base) && is_finite(p.kl_principle) && is_finite(p.entropy) &&
            plan_in_reach(p);
  if (p.update == int32_t(Update::kTilt)) {
    ok = ok && is_finite(p.m_t) && is_finite(p.ls_t) && is_finite(p.off_z) && is_finite(p.off_d);
  } else {
    ok = ok && is_finite(p.log_n);
  }
  if (ok) return;
  p.flags |= kFlagOverflow;
  p.m_z = p.ls_z = p.m_y = p.ls_y = p.mean_d = p.eta = p.mu = p.sigma = kNaN;
  p.m_t = p.ls_t = p.log_n = p.kl_base = p.kl_principle = p.entropy = kNaN;
}

// Completes a valid plan for the tilt update from the tilted moments at p.eta
// (the fixed rule's first sweep).
LINALIGN_HD void plan_finish_tilt(RowPlan& p, const TiltMoments& t) {
  p.m_t = t.t.m;
  p.ls_t = flog(t.t.s);
  const TiltDiagnostics g = tilt_diagnostics(t, p);
  p.entropy = g.entropy;
  p.kl_base = g.kl_base;
  p.kl_principle = g.kl_principle;
  plan_check_range(p);
}
// … and from a second sweep, whose KL(π*‖π) is the one exact_kl solved with.
LINALIGN_HD void plan_finish_tilt(RowPlan& p, const TiltSweep& s) {
  const float kl = tilt_sweep_kl(s, p);
  plan_finish_tilt(p, s.m);
  if (plan_valid(p)) p.kl_base = kl;
}

// Completes a valid plan for the linear update from its sums at p.eta.
LINALIGN_HD void plan_finish_linear(RowPlan& p, const LinearSums& s) {
  p.log_n = flog(s.n);
  p.kl_base = s.a / s.n - p.log_n;
  p.kl_principle = p.kl_base - (s.b / s.n + p.mu);  // − E*[δ] = −(E*[δ − μ] + μ)
  p.entropy = -(s.c / s.n) - p.kl_base;
  plan_check_range(p);
}

// ℓ_i, ℓᵖ_i and ℓ*_i of one token of a valid row (−inf outside S).
LINALIGN_HD float base_logprob(const RowPlan& p, float z, float y) {
  return in_support(z, y) ? (z * p.inv_t - p.m_z) - p.ls_z : -kInf;
}
LINALIGN_HD float principle_logprob(const RowPlan& p, float z, float y) {
  return in_support(z, y) ? (y * p.inv_t - p.m_y) - p.ls_y : -kInf;
}
LINALIGN_HD float aligned_logprob(const RowPlan& p, float z, float y) {
  if (!in_support(z, y)) return -kInf;
  const float zt = z * p.inv_t, d = y * p.inv_t - zt;
  if (p.update == int32_t(Update::kTilt))
    return (plan_tilt_logit(p, zt, d, p.eta) - p.m_t) - p.ls_t;
  const float g = linear_factor(d, p.mean_d, p.eta);
  if (!(g > 0.f)) return -kInf;
  return ((zt - p.m_z) - p.ls_z) + flog(g) - p.log_n;
}

}  // namespace math
}  // namespace linalign
