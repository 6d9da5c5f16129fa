// The statistics of a vocabulary slice held on chip (a GPU block's slice in
// its threads' registers), in three passes over the held elements instead of
// one online merge per element (issue 9: the online StatsKernel spent ≈ 180
// thread instructions per logit — a division and an exp per stream per
// element, plus a 16-word Chan merge per shuffle level).
//
//   1. maxima:  every holder reduces its elements to SliceMax (max of zt, yt
//               and the tilted log-weight; the count of S; the flags); the
//               slice combines them with slice_max_merge (max / + / |).
//   2. sums:    at the slice maxima M, every holder accumulates SliceSums —
//               Σ w, Σ w·d, Σ w·(lw − m) per stream, w = exp(lw − m) ≤ 1 —
//               combined by plain addition (slice_sums_merge).
//   3. spread:  at the slice means, Σ w·(d − mean)² (SliceSpread), added.
// slice_stats_finish assembles the RowStats of the slice, which then merges
// with the other slices through the usual row_stats_merge (Chan) — so the
// statistics of a row are still one associative merge (SPEC §6), and the
// second moments are centred sums, never E[d²] − E[d]².
//
// Cost per element on the GPU: 3 max, 3 exps, ≈ 12 FMA/add, 2 FMA for the
// spread, the finite/NaN tests — ≈ 35 thread instructions, and per holder
// three block reductions of 5 + 9 + 2 words (plain max/add, no exp or
// division per level), against one exp, one division and a rescale per
// stream per element before.
//
// Numerics (SPEC §6: 1e-4 relative on η, μ, σ, KL, H; 1e-4·max(1,|η|) on ℓ*).
// `wexp` may be a fast exponential (the kernels: __expf = ex2.approx of a
// pre-scaled argument, at most 2 + ⌊1.16·|x|⌋ ulp for the x ≤ 0 used here).
// Weights of x ≥ −20 (every weight above 2e-9 of the maximum) carry at most
// 25 ulp = 1.5e-6 relative error each; smaller weights at most 103 ulp
// (6.1e-6), and they are < 2e-9 each. A sum of positive terms keeps the
// largest relative error of its terms, so s, Σw·d and Σw·(lw − m) are within
// 6.1e-6 relative (plus fp32 summation: a holder adds ≤ 16 terms in order,
// 2^-24·16 = 1e-6; the block and row trees add log2 depth ≤ 17 levels of
// 6e-8), i.e. lse within 7e-6 absolute and the means within 7e-6 relative of
// their spread — 14× inside the 1e-4 bound. The centred spread pass
// subtracts the slice mean, so the second moment has the same relative
// error, with no cancellation.
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"
#include "linalign/math/row_stats.hpp"

namespace linalign {
namespace math {

// Pass 1: maxima of the slice's three log-weight streams, |S| and flags.
struct SliceMax {
  float mz;  // max zt over S (−inf when empty)
  float my;  // max yt
  float mt;  // max tilted log-weight (with_tilt)
  int32_t count;
  uint32_t flags;
};
LINALIGN_HD SliceMax slice_max_empty() {
  return SliceMax{-kInf, -kInf, -kInf, 0, 0u};
}
LINALIGN_HD SliceMax slice_max_merge(const SliceMax& a, const SliceMax& b) {
  return SliceMax{fmaxf_(a.mz, b.mz), fmaxf_(a.my, b.my), fmaxf_(a.mt, b.mt), a.count + b.count,
                  a.flags | b.flags};
}

// One input pair at temperature 1/inv_t: its scaled logits, difference and
// tilted log-weight (the same formulas as chunk_stats: tilt_logit).
struct ScaledPair {
  float zt, yt, d, lt;
  bool in;  // in S
};
LINALIGN_HD ScaledPair scaled_pair(float z, float y, float inv_t, float eta) {
  ScaledPair p;
  p.in = in_support(z, y);
  p.zt = z * inv_t;
  p.yt = y * inv_t;
  p.d = p.yt - p.zt;
  p.lt = tilt_logit(p.zt, p.d, eta);
  return p;
}

LINALIGN_HD void slice_max_push(SliceMax& a, float z, float y, float inv_t, bool with_tilt,
                                float eta) {
  a.flags |= element_flags(z, y);
  const ScaledPair p = scaled_pair(z, y, inv_t, eta);
  if (!p.in) return;
  a.count += 1;
  a.mz = fmaxf_(a.mz, p.zt);
  a.my = fmaxf_(a.my, p.yt);
  if (with_tilt) a.mt = fmaxf_(a.mt, p.lt);
}

// Pass 2: weighted sums at the slice maxima.
struct SliceSums {
  float sz;   // Σ exp(zt − mz)
  float dz;   // Σ wz·d
  float lz;   // Σ wz·(zt − mz)
  float sy;   // Σ exp(yt − my)
  float st;   // Σ exp(lt − mt)
  float dt;   // Σ wt·d
  float lt;   // Σ wt·(lt − mt)
  float ztr;  // Σ wt·(zt − mz)
  float ytr;  // Σ wt·(yt − my)
};
LINALIGN_HD SliceSums slice_sums_empty() {
  return SliceSums{0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
}
LINALIGN_HD SliceSums slice_sums_merge(const SliceSums& a, const SliceSums& b) {
  return SliceSums{a.sz + b.sz, a.dz + b.dz, a.lz + b.lz,   a.sy + b.sy,  a.st + b.st,
                   a.dt + b.dt, a.lt + b.lt, a.ztr + b.ztr, a.ytr + b.ytr};
}

// Adds one pair at the slice maxima M (every element of S has lw ≤ m, so
// every weight is in (0, 1]). wz, wt receive the pair's weights (0 outside
// S) for pass 3. WExp: the exponential, exp(x) for x ≤ 0.
template <class WExp>
LINALIGN_HD void slice_sums_push(SliceSums& a, const SliceMax& M, float z, float y, float inv_t,
                                 bool with_tilt, float eta, const WExp& wexp, float* wz,
                                 float* wt) {
  const ScaledPair p = scaled_pair(z, y, inv_t, eta);
  *wz = 0.f;
  *wt = 0.f;
  if (!p.in) return;
  const float ez = p.zt - M.mz, ey = p.yt - M.my;
  const float w = wexp(ez);
  *wz = w;
  a.sz += w;
  a.dz += w * p.d;
  a.lz += w * ez;
  a.sy += wexp(ey);
  if (with_tilt) {
    const float et = p.lt - M.mt;
    const float v = wexp(et);
    *wt = v;
    a.st += v;
    a.dt += v * p.d;
    a.lt += v * et;
    a.ztr += v * ez;
    a.ytr += v * ey;
  }
}

// Pass 3: centred second moments at the slice means.
struct SliceSpread {
  float m2z;  // Σ wz·(d − mean_z)²
  float m2t;  // Σ wt·(d − mean_t)²
};
LINALIGN_HD SliceSpread slice_spread_empty() {
  return SliceSpread{0.f, 0.f};
}
LINALIGN_HD SliceSpread slice_spread_merge(const SliceSpread& a, const SliceSpread& b) {
  return SliceSpread{a.m2z + b.m2z, a.m2t + b.m2t};
}
// The means pass 3 centres on (0 for an empty stream).
struct SliceMeans {
  float z, t;
};
LINALIGN_HD SliceMeans slice_means(const SliceSums& s) {
  return SliceMeans{s.sz > 0.f ? s.dz / s.sz : 0.f, s.st > 0.f ? s.dt / s.st : 0.f};
}
LINALIGN_HD void slice_spread_push(SliceSpread& a, const SliceMeans& mean, float z, float y,
                                   float inv_t, float wz, float wt) {
  const float d = y * inv_t - z * inv_t;  // scaled_pair's d
  const float cz = d - mean.z, ct = d - mean.t;
  // weights are 0 outside S, where d may be NaN or inf: select, not multiply
  a.m2z += wz > 0.f ? wz * cz * cz : 0.f;
  a.m2t += wt > 0.f ? wt * ct * ct : 0.f;
}

// The slice's RowStats: what chunk_stats over the same elements gives, up
// to rounding (tests/cpu/test_slice_stats.cpp).
LINALIGN_HD RowStats slice_stats_finish(const SliceMax& M, const SliceSums& s, const SliceSpread& q,
                                        bool with_tilt) {
  RowStats r = row_stats_empty();
  r.flags = M.flags;
  r.count = M.count;
  if (M.count == 0) return r;
  const SliceMeans mean = slice_means(s);
  r.base = SoftmaxMoments{M.mz, s.sz, mean.z, q.m2z, s.lz / s.sz};
  r.principle = LogSumExp{M.my, s.sy};
  if (with_tilt && s.st > 0.f) {
    // tilted means of zt, yt relative to this slice's base / principle
    // maxima: the references row_stats_merge expects
    r.tilt = TiltMoments{SoftmaxMoments{M.mt, s.st, mean.t, q.m2t, s.lt / s.st}, s.ztr / s.st,
                         s.ytr / s.st};
  }
  return r;
}

}  // namespace math
}  // namespace linalign
