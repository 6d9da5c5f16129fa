// The per-row statistics of SPEC §2 as ONE associative merge (SPEC §6).
//
// Every level of the library — a CPU chunk, a GPU thread's registers, a warp,
// a block, a vocabulary slice, a GPU holding a vocabulary shard — reduces its
// part of a row to a RowStats and merges it with merge(). The merge is exact
// in real arithmetic, so any split of the vocabulary gives the statistics of
// the whole row up to fp32 rounding.
//
// Notation (per row, T the temperature, invT = 1/T):
//   zt_i = z_i·invT, yt_i = y_i·invT, d_i = yt_i − zt_i.
// Then ℓ_i = zt_i − lse(zt), ℓᵖ_i = yt_i − lse(yt) and
//   δ_i = ℓᵖ_i − ℓ_i = d_i − (lse(yt) − lse(zt)),
// so weighted moments of δ are moments of d shifted by a constant:
//   μ = E_π[d] − (lse(yt) − lse(zt)),   σ² = Var_π[d].
// The tilted policy of the `tilt` update has log-weights zt_i + η d_i
// (= ℓ_i + η δ_i + const), so its normaliser and moments are SoftmaxMoments
// too; for the fixed rule η is known up front and they are merged in the
// same sweep (SPEC §2, issue: "one read of each logit").
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

// Moments of a value v under the softmax weights w_i = exp(lw_i):
//   m       = max lw (−inf when empty)
//   s       = Σ exp(lw − m)                (so lse(lw) = m + log s)
//   mean    = Σ w v / Σ w                  (weighted mean of v)
//   m2      = Σ exp(lw − m) (v − mean)²   (so Var_w[v] = m2 / s)
//   mean_lw = Σ w (lw − m) / Σ w          (so E_w[lw] = m + mean_lw, for entropies)
// Merged by online log-sum-exp (rescale to the larger max) and Chan's
// parallel variance update — never E[v²] − E[v]².
struct SoftmaxMoments {
  float m;
  float s;
  float mean;
  float m2;
  float mean_lw;
};

LINALIGN_HD SoftmaxMoments moments_empty() {
  return SoftmaxMoments{-kInf, 0.f, 0.f, 0.f, 0.f};
}

// Merge; *fb_out (optional) receives part b's share of the merged weight.
LINALIGN_HD SoftmaxMoments moments_merge(const SoftmaxMoments& a, const SoftmaxMoments& b,
                                         float* fb_out = nullptr) {
  if (b.s == 0.f) {  // a non-empty part always has s ≥ 1
    if (fb_out) *fb_out = 0.f;
    return a;
  }
  if (a.s == 0.f) {
    if (fb_out) *fb_out = 1.f;
    return b;
  }
  const float m = fmaxf_(a.m, b.m);
  const float ea = fexp(a.m - m), eb = fexp(b.m - m);  // one of them is exactly 1
  const float wa = a.s * ea, wb = b.s * eb;
  const float w = wa + wb;
  const float fb = wb / w;  // share of part b
  const float dv = b.mean - a.mean;
  const float la = a.mean_lw + (a.m - m), lb = b.mean_lw + (b.m - m);
  SoftmaxMoments r;
  r.m = m;
  r.s = w;
  r.mean = a.mean + dv * fb;
  r.m2 = a.m2 * ea + b.m2 * eb + dv * dv * wa * fb;
  r.mean_lw = la + (lb - la) * fb;
  if (fb_out) *fb_out = fb;
  return r;
}

// The tilted policy π* ∝ exp(lw): SoftmaxMoments of v = d (whose variance
// gives dKL/dη), plus the π*-means of zt and yt taken relative to references
// ref_z, ref_y that are the base and principle maxima of the same part:
//   mean_z = E*[zt − ref_z],  mean_y = E*[yt − ref_y].
// Then E*[ℓ] = mean_z − log s_z and E*[ℓᵖ] = mean_y − log s_y, and
// KL(π*‖π) = −H(π*) − E*[ℓ], KL(π*‖πᵖ) = −H(π*) − E*[ℓᵖ] come out without
// cancelling two large log-normalisers (one-hot rows, large η).
struct TiltMoments {
  SoftmaxMoments t;
  float mean_z;
  float mean_y;
};

LINALIGN_HD TiltMoments tilt_empty() {
  return TiltMoments{moments_empty(), 0.f, 0.f};
}

// Moves the references by (old − new) when they change.
LINALIGN_HD void tilt_rebase(TiltMoments& a, float dz, float dy) {
  if (a.t.s > 0.f) {
    a.mean_z += dz;
    a.mean_y += dy;
  }
}

// Merge of two parts in the same reference frame.
LINALIGN_HD TiltMoments tilt_merge(const TiltMoments& a, const TiltMoments& b) {
  float fb;
  TiltMoments r;
  r.t = moments_merge(a.t, b.t, &fb);
  r.mean_z = a.mean_z + (b.mean_z - a.mean_z) * fb;
  r.mean_y = a.mean_y + (b.mean_y - a.mean_y) * fb;
  return r;
}

// Log-sum-exp only (the principle row needs nothing else).
struct LogSumExp {
  float m;
  float s;
};
LINALIGN_HD LogSumExp lse_empty() {
  return LogSumExp{-kInf, 0.f};
}
LINALIGN_HD LogSumExp lse_merge(const LogSumExp& a, const LogSumExp& b) {
  if (b.s == 0.f) return a;
  if (a.s == 0.f) return b;
  const float m = fmaxf_(a.m, b.m);
  return LogSumExp{m, a.s * fexp(a.m - m) + b.s * fexp(b.m - m)};
}
LINALIGN_HD float lse_value(const LogSumExp& a) {
  return a.m + flog(a.s);
}
LINALIGN_HD float lse_value(const SoftmaxMoments& a) {
  return a.m + flog(a.s);
}

// The statistics of (part of) a row.
struct RowStats {
  SoftmaxMoments base;  // lw = zt, v = d
  LogSumExp principle;  // lw = yt
  TiltMoments tilt;     // lw = zt + η d, v = d, refs base.m / principle.m
                        // (only when η is known during the sweep: fixed rule)
  int32_t count;        // tokens in S
  uint32_t flags;       // RowStatus bits seen (NaN, +inf)
};

LINALIGN_HD RowStats row_stats_empty() {
  return RowStats{moments_empty(), lse_empty(), tilt_empty(), 0, 0u};
}

LINALIGN_HD RowStats row_stats_merge(const RowStats& a, const RowStats& b) {
  RowStats r;
  r.base = moments_merge(a.base, b.base);
  r.principle = lse_merge(a.principle, b.principle);
  // bring both tilted parts to the merged references (the merged maxima)
  TiltMoments ta = a.tilt, tb = b.tilt;
  tilt_rebase(ta, a.base.m - r.base.m, a.principle.m - r.principle.m);
  tilt_rebase(tb, b.base.m - r.base.m, b.principle.m - r.principle.m);
  r.tilt = tilt_merge(ta, tb);
  r.count = a.count + b.count;
  r.flags = a.flags | b.flags;
  return r;
}

// Merges a sequence of partial statistics (chunks of a slice, slices of a
// row) as a balanced binary tree over their positions, like pairwise
// summation: push them in order, then take result(). A sequential fold
// rounds every small partial into a dominant one — a near one-hot row loses
// up to a few ulps of μ per merge, tens over a slice, which the linear
// update multiplies by η — while the tree's error grows with log n. The tree
// depends on the count alone, so results stay reproducible.
template <class T, class Merge>
struct PairwiseMerge {
  static constexpr int kLevels = 48;  // 2^48 partials
  T part[kLevels];                    // part[l]: the merge of 2^l consecutive partials
  uint64_t count = 0;
  Merge merge;
  LINALIGN_HD explicit PairwiseMerge(const Merge& m) : merge(m) {}
  LINALIGN_HD void push(const T& x) {
    T c = x;
    int l = 0;
    for (uint64_t k = count; (k & 1u) != 0u; k >>= 1) c = merge(part[l++], c);  // earlier left
    part[l] = c;
    ++count;
  }
  // The merge of everything pushed (`empty` when nothing was).
  LINALIGN_HD T result(const T& empty) const {
    T acc = empty;
    bool any = false;
    for (int l = 0; l < kLevels; ++l) {
      if (((count >> l) & 1u) == 0u) continue;
      acc = any ? merge(part[l], acc) : part[l];  // higher levels hold earlier partials
      any = true;
    }
    return acc;
  }
};
template <class T, class Merge>
LINALIGN_HD PairwiseMerge<T, Merge> pairwise(Merge m) {  // by value: functions decay
  return PairwiseMerge<T, Merge>(m);
}

// Row status bits (values equal linalign::RowStatus).
constexpr uint32_t kFlagNaN = 1u << 0;
constexpr uint32_t kFlagPosInf = 1u << 1;
constexpr uint32_t kFlagEmpty = 1u << 2;
constexpr uint32_t kFlagBadParam = 1u << 3;
constexpr uint32_t kFlagOverflow = 1u << 4;  // math/update.hpp plan_check_range

// Classify one input pair: in S, or a row-level error, or masked (−inf).
LINALIGN_HD uint32_t element_flags(float z, float y) {
  uint32_t f = 0;
  if (is_nan(z) || is_nan(y)) f |= kFlagNaN;
  if (z == kInf || y == kInf) f |= kFlagPosInf;
  return f;
}
LINALIGN_HD bool in_support(float z, float y) {
  return is_finite(z) && is_finite(y);
}

// The tilted log-weight of one token: zt + η d. Used by the statistics AND by
// the output pass, so Σ exp(ℓ*) = 1 holds for the very numbers written.
LINALIGN_HD float tilt_logit(float zt, float d, float eta) {
  return zt + eta * d;
}

// Adds one element (log-weight lw, value v) to moments kept in the frame of
// their running maximum: on a new maximum the accumulators are rescaled by
// exp(m_old − m_new) (online log-sum-exp), then the weighted mean and M2 are
// updated as a merge with a one-element part (weighted Welford/Chan) — the
// mean tracks the data, so a large common offset in v costs no digits, and
// the variance never comes from E[v²] − E[v]².
// Returns the new element's share w/Σw of the updated weight.
LINALIGN_HD float moments_push(SoftmaxMoments& a, float lw, float v) {
  if (lw > a.m) {
    if (a.s > 0.f) {
      const float scale = fexp(a.m - lw);
      a.s *= scale;
      a.m2 *= scale;
      a.mean_lw += a.m - lw;
    }
    a.m = lw;
  }
  const float w = fexp(lw - a.m);
  const float s = a.s + w;
  const float f = w / s;
  const float dv = v - a.mean;
  a.mean += dv * f;
  // Chan's form dv²·s_old·w/s rather than West's w·dv·(v − mean_new): when a
  // heavy token follows light ones, f rounds to 1, v − mean_new to 0, and
  // West's form would drop the light tokens' whole contribution.
  a.m2 += dv * dv * a.s * f;
  a.mean_lw += ((lw - a.m) - a.mean_lw) * f;
  a.s = s;
  return f;
}

// Adds one element to tilted moments; zr = zt − ref_z, yr = yt − ref_y in
// the moments' current frame.
LINALIGN_HD void tilt_push(TiltMoments& a, float lw, float d, float zr, float yr) {
  const float f = moments_push(a.t, lw, d);
  a.mean_z += (zr - a.mean_z) * f;
  a.mean_y += (yr - a.mean_y) * f;
}

LINALIGN_HD void lse_push(LogSumExp& a, float x) {
  if (x > a.m) {
    a.s = a.s * exp_shift(a.m, x) + 1.0f;
    a.m = x;
  } else {
    a.s += fexp(x - a.m);
  }
}

// Statistics of the elements [0, n) of a chunk, given a loader
// `load(k, &z, &y)` returning the k-th pair as fp32: one pass, online. The
// chunk is a CPU chunk or a GPU thread's elements; chunks then merge with
// row_stats_merge.
template <class LoadT>
LINALIGN_HD RowStats chunk_stats(const LoadT& load, int64_t n, float inv_t, bool with_tilt,
                                 float eta) {
  RowStats r = row_stats_empty();
  LINALIGN_UNROLL
  for (int64_t k = 0; k < n; ++k) {
    float z, y;
    load(k, &z, &y);
    r.flags |= element_flags(z, y);
    if (!in_support(z, y)) continue;
    const float zt = z * inv_t, yt = y * inv_t, d = yt - zt;
    ++r.count;
    const float mz = r.base.m, my = r.principle.m;
    moments_push(r.base, zt, d);
    lse_push(r.principle, yt);
    if (with_tilt) {
      tilt_rebase(r.tilt, mz - r.base.m, my - r.principle.m);  // no-op unless a max moved
      tilt_push(r.tilt, tilt_logit(zt, d, eta), d, zt - r.base.m, yt - r.principle.m);
    }
  }
  return r;
}

}  // namespace math
}  // namespace linalign
