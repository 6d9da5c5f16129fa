// The CPU backend's first sweep over one chunk, written for the compiler's
// vectoriser: fixed-size local arrays, no data-dependent branches, and an
// inline polynomial exp instead of a libm call. The chunk-local statistics
// are exact two-pass moments (maxima, then weights and first moments, then
// centred second moments over the cached weights); chunks then merge with
// the shared math::row_stats_merge, exactly as the online chunk_stats
// partials do. Measured (bench/NOTES.md): the scalar online sweep spent ~17 ns
// per token, mostly in 3 libm expf calls and 2 divisions.
#pragma once

#include <cstdint>
#include <cstring>

#include "linalign/math/row_stats.hpp"

namespace linalign {
namespace host {

// Tokens per vectorised chunk (the CPU backend's kCpuChunk; see there).
constexpr int kLaneChunk = 64;

// exp(x) for finite x, branch-free: Cody–Waite reduction x = n·ln2 + r,
// |r| ≤ ln2/2, Cephes' degree-5 minimax polynomial for (e^r − 1 − r)/r²,
// 2^n by exponent arithmetic. Arguments below −87.3 return ≈ 1e-38 rather
// than 0 (callers mask them); above 88.7 are clamped. Error against double
// over [−87, 0]: at most 2 ulp (tests/cpu/test_cpu_lanes.cpp).
// The clamps are written so that NaN (a masked lane's −inf − −inf) becomes
// −87.3: otherwise int32_t(n) below would convert a NaN, which is undefined
// behaviour (found by tests/fuzz/fuzz_calls_cpu under UBSan). Same
// instructions (maxps/minps), same results for every other x.
inline float exp_poly(float x) {
  x = x > -87.3f ? x : -87.3f;
  x = x < 88.7f ? x : 88.7f;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // rint
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &p, 4);
  bits += int32_t(n) * (1 << 23);
  std::memcpy(&p, &bits, 4);
  return p;
}

// RowStats of the first n ≤ kLaneChunk tokens of z[], y[] (fp32 arrays of
// kLaneChunk initialised floats). The tilt is a template parameter so each
// loop body is branch-free. One function of four commented phases (masked
// load, maxima, weights and first moments, centred second moments) rather
// than four: the phases share seven kLaneChunk-float arrays that stay on this
// frame, and each 8-lane loop vectorises as written; the order of every sum is
// the CPU backend's bit-exact contract (tests/cpu), so it is not reshuffled.
template <bool kTilt>
inline math::RowStats lane_chunk_stats_impl(const float* z, const float* y, int n, float inv_t,
                                            float eta) {
  constexpr bool with_tilt = kTilt;
  constexpr int N = kLaneChunk;
  constexpr float kNegInf = -math::kInf;
  float zt[N], yt[N], d[N], lt[N];
  float zf[N], yf[N];  // zt, yt in S, 0 elsewhere (finite: weight × (zf − m) is 0, not NaN)
  float keep[N];       // 1 for tokens in S, 0 otherwise
  uint32_t flags = 0;
  for (int i = 0; i < n; ++i) flags |= math::element_flags(z[i], y[i]);
  int count = 0;
  float d_ref = 0.f;  // a d of the chunk: sums of d − d_ref lose nothing to a common offset
  for (int i = 0; i < n; ++i) {
    if (math::in_support(z[i], y[i])) {
      d_ref = y[i] * inv_t - z[i] * inv_t;
      break;
    }
  }
  for (int i = 0; i < N; ++i) {
    // branch-free: z[i], y[i] past n are read (the arrays hold kLaneChunk
    // initialised floats) and masked out
    const bool in = (i < n) & math::is_finite(z[i]) & math::is_finite(y[i]);
    keep[i] = in ? 1.f : 0.f;
    const float a = z[i] * inv_t, b = y[i] * inv_t;
    zt[i] = in ? a : kNegInf;
    yt[i] = in ? b : kNegInf;
    zf[i] = in ? a : 0.f;
    yf[i] = in ? b : 0.f;
    d[i] = in ? b - a : 0.f;
    lt[i] = in ? math::tilt_logit(a, b - a, eta) : kNegInf;
    count += in ? 1 : 0;
  }
  math::RowStats r = math::row_stats_empty();
  r.flags = flags;
  r.count = count;
  if (count == 0) return r;

  // maxima, 8 lanes at a time (elementwise a > b ? a : b vectorises to maxps)
  constexpr int L = 8;
  float mz8[L], my8[L], mt8[L];
  for (int j = 0; j < L; ++j) mz8[j] = my8[j] = mt8[j] = kNegInf;
  for (int i = 0; i < N; i += L) {
    for (int j = 0; j < L; ++j) {
      mz8[j] = zt[i + j] > mz8[j] ? zt[i + j] : mz8[j];
      my8[j] = yt[i + j] > my8[j] ? yt[i + j] : my8[j];
      mt8[j] = lt[i + j] > mt8[j] ? lt[i + j] : mt8[j];
    }
  }
  float mz = kNegInf, my = kNegInf, mt = kNegInf;
  for (int j = 0; j < L; ++j) {
    mz = math::fmaxf_(mz, mz8[j]);
    my = math::fmaxf_(my, my8[j]);
    mt = math::fmaxf_(mt, mt8[j]);
  }

  // weights and first moments. Masked tokens have x − m = −inf, which the
  // clamps turn into finite values; × keep = 0 then removes them. (These
  // selects are if-converted only under -fno-trapping-math, which
  // host/CMakeLists.txt sets for this backend's sources.)
  float wz[N], wt[N];
  float sz8[L] = {}, dz8[L] = {}, lz8[L] = {}, sy8[L] = {};
  float st8[L] = {}, dt8[L] = {}, ltt8[L] = {}, zt8[L] = {}, yt8[L] = {};
  for (int i = 0; i < N; i += L) {
    for (int j = 0; j < L; ++j) {
      const int k = i + j;
      const float k1 = keep[k];
      float ez = zt[k] - mz, ey = yt[k] - my;
      ez = ez < -200.f ? -200.f : ez;
      ey = ey < -200.f ? -200.f : ey;
      const float w1 = exp_poly(ez) * k1;
      wz[k] = w1;
      sz8[j] += w1;
      dz8[j] += w1 * (d[k] - d_ref);
      lz8[j] += w1 * ez;
      sy8[j] += exp_poly(ey) * k1;
      if constexpr (with_tilt) {
        float et = lt[k] - mt;
        et = et < -200.f ? -200.f : et;
        const float w2 = exp_poly(et) * k1;
        wt[k] = w2;
        st8[j] += w2;
        dt8[j] += w2 * (d[k] - d_ref);
        ltt8[j] += w2 * et;
        // The tilted means of zt, yt take the unclamped offsets: the token
        // that carries π*'s mass may sit far below the base maximum (a wide
        // logit range, a small T), and KL(π*‖π) = −H − E*[ℓ] needs its true
        // ℓ. Masked tokens (weight 0) take their finite zf, yf, so add 0
        // instead of 0·(−inf) — without a select, which kept this loop
        // from vectorising (bench/NOTES.md, issue 20's regression).
        zt8[j] += w2 * (zf[k] - mz);
        yt8[j] += w2 * (yf[k] - my);
      }
    }
  }
  float sz = 0.f, dz = 0.f, lz = 0.f, sy = 0.f, st = 0.f, dt = 0.f, ltt = 0.f, zm = 0.f, ym = 0.f;
  for (int j = 0; j < L; ++j) {
    sz += sz8[j];
    dz += dz8[j];
    lz += lz8[j];
    sy += sy8[j];
    st += st8[j];
    dt += dt8[j];
    ltt += ltt8[j];
    zm += zt8[j];
    ym += yt8[j];
  }
  const float mean_z = d_ref + dz / sz;
  const float mean_t = with_tilt ? d_ref + dt / st : 0.f;

  // centred second moments over the cached weights
  float m2z8[L] = {}, m2t8[L] = {};
  for (int i = 0; i < N; i += L) {
    for (int j = 0; j < L; ++j) {
      const int k = i + j;
      const float cz = d[k] - mean_z;
      m2z8[j] += wz[k] * cz * cz;
      if constexpr (with_tilt) {
        const float ct = d[k] - mean_t;
        m2t8[j] += wt[k] * ct * ct;
      }
    }
  }
  float m2z = 0.f, m2t = 0.f;
  for (int j = 0; j < L; ++j) {
    m2z += m2z8[j];
    m2t += m2t8[j];
  }
  r.base = math::SoftmaxMoments{mz, sz, mean_z, m2z, lz / sz};
  r.principle = math::LogSumExp{my, sy};
  if (with_tilt) {
    // tilted means of zt, yt relative to this chunk's maxima (the references
    // row_stats_merge expects: base.m and principle.m of the same part)
    r.tilt =
        math::TiltMoments{math::SoftmaxMoments{mt, st, mean_t, m2t, ltt / st}, zm / st, ym / st};
  }
  return r;
}

inline math::RowStats lane_chunk_stats(const float* z, const float* y, int n, float inv_t,
                                       bool with_tilt, float eta) {
  return with_tilt ? lane_chunk_stats_impl<true>(z, y, n, inv_t, eta)
                   : lane_chunk_stats_impl<false>(z, y, n, inv_t, eta);
}

}  // namespace host
}  // namespace linalign
