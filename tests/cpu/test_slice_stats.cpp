// The three-pass slice statistics (include/linalign/math/slice_stats.hpp,
// the GPU statistics sweep) against the online per-element statistics
// (math::chunk_stats) and a float64 two-pass reference, on the same
// elements, split among "threads" the way a block holds a slice: equal
// within fp32 rounding (SPEC §6), the same count and flags, and the slice
// result merges with row_stats_merge like any other part.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "linalign/math/row_stats.hpp"
#include "linalign/math/slice_stats.hpp"

namespace {

namespace m = linalign::math;

struct Exp {
  float operator()(float x) const { return std::exp(x); }
};

// The slice statistics of z, y as `holders` holders each owning a strided
// share (holder h: elements h, h + holders, ...), combined in holder order.
m::RowStats three_pass(const std::vector<float>& z, const std::vector<float>& y, int holders,
                       float inv_t, bool with_tilt, float eta) {
  const size_t n = z.size();
  m::SliceMax mx = m::slice_max_empty();
  for (int h = 0; h < holders; ++h) {
    m::SliceMax part = m::slice_max_empty();
    for (size_t i = size_t(h); i < n; i += size_t(holders))
      m::slice_max_push(part, z[i], y[i], inv_t, with_tilt, eta);
    mx = m::slice_max_merge(mx, part);
  }
  if (mx.count == 0) {
    m::RowStats r = m::row_stats_empty();
    r.flags = mx.flags;
    return r;
  }
  std::vector<float> wz(n), wt(n);
  m::SliceSums sums = m::slice_sums_empty();
  for (int h = 0; h < holders; ++h) {
    m::SliceSums part = m::slice_sums_empty();
    for (size_t i = size_t(h); i < n; i += size_t(holders))
      m::slice_sums_push(part, mx, z[i], y[i], inv_t, with_tilt, eta, Exp{}, &wz[i], &wt[i]);
    sums = m::slice_sums_merge(sums, part);
  }
  const m::SliceMeans mean = m::slice_means(sums);
  m::SliceSpread q = m::slice_spread_empty();
  for (int h = 0; h < holders; ++h) {
    m::SliceSpread part = m::slice_spread_empty();
    for (size_t i = size_t(h); i < n; i += size_t(holders))
      m::slice_spread_push(part, mean, z[i], y[i], inv_t, wz[i], wt[i]);
    q = m::slice_spread_merge(q, part);
  }
  return m::slice_stats_finish(mx, sums, q, with_tilt);
}

m::RowStats online(const std::vector<float>& z, const std::vector<float>& y, float inv_t,
                   bool with_tilt, float eta) {
  auto load = [&](int64_t k, float* a, float* b) {
    *a = z[size_t(k)];
    *b = y[size_t(k)];
  };
  return m::chunk_stats(load, int64_t(z.size()), inv_t, with_tilt, eta);
}

// float64 two-pass reference of the base moments.
struct Ref {
  double lse_z, mean, var, lse_y, lse_t, mean_t, var_t;
};
Ref reference(const std::vector<float>& z, const std::vector<float>& y, double inv_t, double eta) {
  Ref r{};
  double mz = -INFINITY, my = -INFINITY, mt = -INFINITY;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!std::isfinite(z[i]) || !std::isfinite(y[i])) continue;
    const double a = z[i] * inv_t, b = y[i] * inv_t, t = a + eta * (b - a);
    mz = std::max(mz, a);
    my = std::max(my, b);
    mt = std::max(mt, t);
  }
  double sz = 0, sy = 0, st = 0, dz = 0, dt = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!std::isfinite(z[i]) || !std::isfinite(y[i])) continue;
    const double a = z[i] * inv_t, b = y[i] * inv_t, d = b - a, t = a + eta * d;
    sz += std::exp(a - mz);
    dz += std::exp(a - mz) * d;
    sy += std::exp(b - my);
    st += std::exp(t - mt);
    dt += std::exp(t - mt) * d;
  }
  r.mean = dz / sz;
  r.mean_t = dt / st;
  double vz = 0, vt = 0;
  for (size_t i = 0; i < z.size(); ++i) {
    if (!std::isfinite(z[i]) || !std::isfinite(y[i])) continue;
    const double a = z[i] * inv_t, b = y[i] * inv_t, d = b - a, t = a + eta * d;
    vz += std::exp(a - mz) * (d - r.mean) * (d - r.mean);
    vt += std::exp(t - mt) * (d - r.mean_t) * (d - r.mean_t);
  }
  r.var = vz / sz;
  r.var_t = vt / st;
  r.lse_z = mz + std::log(sz);
  r.lse_y = my + std::log(sy);
  r.lse_t = mt + std::log(st);
  return r;
}

void expect_close(double got, double want, double rel, const char* what) {
  EXPECT_NEAR(got, want, rel * std::max(1.0, std::fabs(want))) << what;
}

TEST(SliceStats, MatchesOnlineAndFloat64) {
  std::mt19937 rng(11);
  for (int n : {1, 2, 7, 16, 129, 1024, 2304})
    for (int holders : {1, 32, 128})
      for (float scale : {1.f, 8.f, 30.f})
        for (bool tilt : {false, true}) {
          std::normal_distribution<float> g(0.f, scale);
          std::vector<float> z(static_cast<size_t>(n)), y(static_cast<size_t>(n));
          for (int i = 0; i < n; ++i) {
            z[size_t(i)] = g(rng) + 50.f;  // a common offset costs no digits
            y[size_t(i)] = z[size_t(i)] + g(rng) * 0.3f;
          }
          const float inv_t = 1.f / 0.7f, eta = 3.f;
          const m::RowStats a = three_pass(z, y, holders, inv_t, tilt, eta);
          const m::RowStats b = online(z, y, inv_t, tilt, eta);
          const Ref r = reference(z, y, inv_t, eta);
          ASSERT_EQ(a.count, b.count);
          ASSERT_EQ(a.flags, b.flags);
          expect_close(m::lse_value(a.base), r.lse_z, 2e-6, "lse z");
          expect_close(m::lse_value(a.principle), r.lse_y, 2e-6, "lse y");
          expect_close(a.base.mean, r.mean, 1e-5, "mean");
          expect_close(a.base.m2 / a.base.s, r.var, 1e-4, "var");
          expect_close(a.base.mean, b.base.mean, 1e-5, "mean vs online");
          if (tilt) {
            expect_close(m::lse_value(a.tilt.t), r.lse_t, 2e-6, "lse tilt");
            expect_close(a.tilt.t.mean, r.mean_t, 1e-5, "tilt mean");
            expect_close(a.tilt.t.m2 / a.tilt.t.s, r.var_t, 1e-4, "tilt var");
            expect_close(a.tilt.mean_z, b.tilt.mean_z, 1e-5, "tilt mean_z vs online");
            expect_close(a.tilt.mean_y, b.tilt.mean_y, 1e-5, "tilt mean_y vs online");
            expect_close(a.tilt.t.mean_lw, b.tilt.t.mean_lw, 1e-5, "tilt mean_lw vs online");
          }
          expect_close(a.base.mean_lw, b.base.mean_lw, 1e-5, "mean_lw vs online");
        }
}

// Masked (−inf), NaN and +inf elements: outside S, flagged as chunk_stats
// flags them; an all-masked slice is the empty statistics.
TEST(SliceStats, MaskedAndBadElements) {
  const float inf = INFINITY, nan = NAN;
  const std::vector<float> z = {1.f, -inf, 2.f, nan, 0.5f, inf, -inf};
  const std::vector<float> y = {1.5f, 3.f, -inf, 1.f, 0.f, 2.f, -inf};
  for (bool tilt : {false, true}) {
    const m::RowStats a = three_pass(z, y, 3, 1.f, tilt, 2.f);
    const m::RowStats b = online(z, y, 1.f, tilt, 2.f);
    EXPECT_EQ(a.count, 2);
    EXPECT_EQ(a.count, b.count);
    EXPECT_EQ(a.flags, b.flags);
    EXPECT_NEAR(m::lse_value(a.base), m::lse_value(b.base), 1e-6);
    EXPECT_NEAR(a.base.mean, b.base.mean, 1e-6);
    EXPECT_NEAR(a.base.m2, b.base.m2, 1e-6);
  }
  const std::vector<float> none = {-inf, -inf};
  const m::RowStats e = three_pass(none, none, 2, 1.f, true, 2.f);
  EXPECT_EQ(e.count, 0);
  EXPECT_EQ(e.base.s, 0.f);
  EXPECT_EQ(e.principle.s, 0.f);
  EXPECT_EQ(e.tilt.t.s, 0.f);
}

// A slice's result merges with the others: the row from slices equals the
// row from one online pass.
TEST(SliceStats, SlicesMergeIntoTheRow) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.f, 4.f);
  const int n = 5000, slices = 7;
  std::vector<float> z(n), y(n);
  for (int i = 0; i < n; ++i) {
    z[size_t(i)] = g(rng);
    y[size_t(i)] = z[size_t(i)] + 0.5f * g(rng);
  }
  m::RowStats row = m::row_stats_empty();
  for (int s = 0; s < slices; ++s) {
    const size_t b = size_t(s) * n / slices, e = size_t(s + 1) * n / slices;
    const std::vector<float> zs(z.begin() + long(b), z.begin() + long(e));
    const std::vector<float> ys(y.begin() + long(b), y.begin() + long(e));
    row = m::row_stats_merge(row, three_pass(zs, ys, 128, 1.f, true, 2.5f));
  }
  const Ref r = reference(z, y, 1.0, 2.5);
  EXPECT_EQ(row.count, n);
  expect_close(m::lse_value(row.base), r.lse_z, 2e-6, "lse z");
  expect_close(m::lse_value(row.tilt.t), r.lse_t, 2e-6, "lse tilt");
  expect_close(row.base.mean, r.mean, 1e-5, "mean");
  expect_close(row.base.m2 / row.base.s, r.var, 1e-4, "var");
  expect_close(row.tilt.t.m2 / row.tilt.t.s, r.var_t, 1e-4, "tilt var");
}

}  // namespace
