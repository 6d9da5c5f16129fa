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
//   n = Σ π g,  a = Σ π g log g,  b = Σ π g d,  c = Σ π g ℓ,
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

template <class LoadT>
LINALIGN_HD LinearSums chunk_linear_sums(const LoadT& load, int64_t n, float inv_t, float lse_z,
                                         float mean_d, float eta) {
  LinearSums s = linear_empty();
  for (int64_t k = 0; k < n; ++k) {
    float z, y;
    load(k, &z, &y);
    if (!in_support(z, y)) continue;
    const float zt = z * inv_t, d = y * inv_t - zt;
    const float l = zt - lse_z;
    const float pi = fexp(l);
    const float g = linear_factor(d, mean_d, eta);
    if (!(g > 0.f)) continue;
    const float c = d - mean_d;
    const float w = pi * g, lg = flog(g);
    s.n += w;
    s.a += w * lg;
    s.b += w * d;
    s.c += w * l;
    s.dn += pi * c;
    s.da += pi * c * (lg + 1.f);
  }
  return s;
}

// Everything needed per element and per row once the sweeps are done.
struct RowPlan {
  float inv_t;
  float lse_z;   // lse(zt) over S
  float lse_y;   // lse(yt) over S
  float mean_d;  // E_π[d]
  float eta;
  float lse_t;     // tilt: lse(zt + η d) over S
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
LINALIGN_HD RowPlan plan_begin(const RowStats& st, float inv_t, Update update) {
  RowPlan p;
  p.inv_t = inv_t;
  p.update = int32_t(update);
  p.count = st.count;
  p.flags = st.flags | (st.count == 0 ? kFlagEmpty : 0u);
  p.eta = p.lse_t = p.log_n = p.kl_base = p.kl_principle = p.entropy = kNaN;
  if (p.flags != 0u) {
    p.lse_z = p.lse_y = p.mean_d = p.mu = p.sigma = kNaN;
    return p;
  }
  p.lse_z = lse_value(st.base);
  p.lse_y = lse_value(st.principle);
  p.mean_d = st.base.mean;
  p.mu = st.base.mean - (p.lse_y - p.lse_z);  // μ = E_π[δ] = −KL(π‖πᵖ)
  p.sigma = fsqrt(st.base.m2 / st.base.s);
  return p;
}

// KL(π_η‖π) of the tilt family from its moments (lw = zt + η d) at η.
LINALIGN_HD KlPoint tilt_kl_point(const SoftmaxMoments& t, float lse_z, float eta) {
  const float lse_t = lse_value(t);
  return KlPoint{eta * t.mean - (lse_t - lse_z), eta * (t.m2 / t.s)};
}

// KL(π*‖π) of the linear update from its sums, with its η-derivative.
LINALIGN_HD KlPoint linear_kl_point(const LinearSums& s) {
  const float kl = s.a / s.n - flog(s.n);
  const float dkl = (s.da * s.n - s.a * s.dn) / (s.n * s.n) - s.dn / s.n;
  return KlPoint{kl, dkl};
}

// Completes a valid plan for the tilt update from the tilted moments at p.eta.
LINALIGN_HD void plan_finish_tilt(RowPlan& p, const SoftmaxMoments& t) {
  p.lse_t = lse_value(t);
  p.kl_base = p.eta * t.mean - (p.lse_t - p.lse_z);             // E*[ηd] − lse_t + lse_z
  p.kl_principle = (p.eta - 1.f) * t.mean - p.lse_t + p.lse_y;  // E*[(η−1)d] − lse_t + lse_y
  p.entropy = flog(t.s) - t.mean_lw;                            // lse_t − E*[lw]
}

// Completes a valid plan for the linear update from its sums at p.eta.
LINALIGN_HD void plan_finish_linear(RowPlan& p, const LinearSums& s) {
  p.log_n = flog(s.n);
  p.kl_base = s.a / s.n - p.log_n;
  const float e_delta = s.b / s.n - (p.lse_y - p.lse_z);  // E*[δ]
  p.kl_principle = p.kl_base - e_delta;
  p.entropy = -(s.c / s.n) - p.kl_base;
}

// ℓ_i, ℓᵖ_i and ℓ*_i of one token of a valid row (−inf outside S).
LINALIGN_HD float base_logprob(const RowPlan& p, float z, float y) {
  return in_support(z, y) ? z * p.inv_t - p.lse_z : -kInf;
}
LINALIGN_HD float principle_logprob(const RowPlan& p, float z, float y) {
  return in_support(z, y) ? y * p.inv_t - p.lse_y : -kInf;
}
LINALIGN_HD float aligned_logprob(const RowPlan& p, float z, float y) {
  if (!in_support(z, y)) return -kInf;
  const float zt = z * p.inv_t, d = y * p.inv_t - zt;
  if (p.update == int32_t(Update::kTilt)) return tilt_logit(zt, d, p.eta) - p.lse_t;
  const float g = linear_factor(d, p.mean_d, p.eta);
  if (!(g > 0.f)) return -kInf;
  return (zt - p.lse_z) + flog(g) - p.log_n;
}

}  // namespace math
}  // namespace linalign
