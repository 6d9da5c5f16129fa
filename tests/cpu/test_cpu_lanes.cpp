// The CPU backend's vectorised first-sweep chunk (host/cpu_lanes.hpp) against
// the shared online chunk_stats of the math headers (what the kernels run):
// same statistics within fp32 rounding, same flags and support, and the
// polynomial exp within 2 ulp of double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "cpu_lanes.hpp"

namespace lm = linalign::math;
using linalign::host::exp_poly;
using linalign::host::kLaneChunk;
using linalign::host::lane_chunk_stats;

namespace {

TEST(CpuLanes, ExpPolyWithinTwoUlp) {
  double worst = 0;
  for (float x = -87.0f; x <= 0.0f; x += 0.000731f) {
    const double e = std::exp(double(x));
    const double ulp = std::ldexp(1.0, std::ilogb(e) - 23);
    worst = std::max(worst, std::fabs(double(exp_poly(x)) - e) / ulp);
  }
  EXPECT_LE(worst, 2.0);
  EXPECT_EQ(exp_poly(0.f), 1.0f);
}

// Fuzzing regression (tests/fuzz/fuzz_calls_cpu, UBSan): a masked lane hands
// exp_poly a NaN (−inf − −inf); it must not reach the float → int
// conversion of 2^n, which is undefined for NaN. It clamps like −87.3.
TEST(CpuLanes, ExpPolyOfNaNIsTheLowClamp) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(exp_poly(nan), exp_poly(-87.3f));
  EXPECT_EQ(exp_poly(-std::numeric_limits<float>::infinity()), exp_poly(-87.3f));
  EXPECT_EQ(exp_poly(std::numeric_limits<float>::infinity()), exp_poly(88.7f));
}

void expect_rel(float a, float b, float tol, const char* what) {
  EXPECT_NEAR(a, b, tol * std::max(1.0f, std::fabs(b))) << what;
}

TEST(CpuLanes, MatchesOnlineChunkStats) {
  std::mt19937_64 rng(77);
  for (int trial = 0; trial < 400; ++trial) {
    const int n = 1 + int(rng() % kLaneChunk);
    // Every 19th trial spans hundreds of nats, so that the tilted policy's
    // mass sits on tokens more than 200 below the base maximum (the clamp of
    // the weights' exponents must not reach the tilted means).
    std::normal_distribution<float> nd(0.f,
                                       trial % 19 == 0 ? 150.f : 0.5f + float(trial % 5) * 2.f);
    float z[kLaneChunk], y[kLaneChunk];
    for (int i = 0; i < n; ++i) {
      z[i] = nd(rng) + (trial % 7 == 0 ? 100.f : 0.f);
      y[i] = nd(rng);
      const uint64_t u = rng() % 29;
      if (u == 0) z[i] = -INFINITY;
      if (u == 1) y[i] = -INFINITY;
      if (u == 2 && trial % 11 == 0) z[i] = NAN;
      if (u == 3 && trial % 13 == 0) y[i] = INFINITY;
    }
    if (trial % 17 == 0)
      for (int i = 0; i < n; ++i) z[i] = -INFINITY;  // empty support
    const float inv_t = trial % 3 == 0 ? 1.f / 0.3f : 1.f;
    const bool tilt = trial % 2 == 0;
    const float eta = 3.f;
    auto load = [&](int64_t k, float* a, float* b) {
      *a = z[k];
      *b = y[k];
    };
    const lm::RowStats want = lm::chunk_stats(load, n, inv_t, tilt, eta);
    const lm::RowStats got = lane_chunk_stats(z, y, n, inv_t, tilt, eta);
    SCOPED_TRACE("trial " + std::to_string(trial) + " n " + std::to_string(n));
    ASSERT_EQ(got.flags, want.flags);
    ASSERT_EQ(got.count, want.count);
    if (want.count == 0) continue;
    EXPECT_EQ(got.base.m, want.base.m);
    EXPECT_EQ(got.principle.m, want.principle.m);
    expect_rel(got.base.s, want.base.s, 1e-5f, "s_z");
    expect_rel(got.principle.s, want.principle.s, 1e-5f, "s_y");
    expect_rel(got.base.mean, want.base.mean, 1e-5f, "mean d");
    expect_rel(got.base.m2 / got.base.s, want.base.m2 / want.base.s, 1e-4f, "var d");
    expect_rel(got.base.mean_lw, want.base.mean_lw, 1e-5f, "mean lw");
    if (tilt) {
      EXPECT_EQ(got.tilt.t.m, want.tilt.t.m);
      expect_rel(got.tilt.t.s, want.tilt.t.s, 1e-5f, "s_t");
      expect_rel(got.tilt.t.mean, want.tilt.t.mean, 1e-5f, "tilt mean");
      expect_rel(got.tilt.t.m2 / got.tilt.t.s, want.tilt.t.m2 / want.tilt.t.s, 1e-4f, "tilt var");
      expect_rel(got.tilt.t.mean_lw, want.tilt.t.mean_lw, 1e-5f, "tilt mean lw");
      expect_rel(got.tilt.mean_z, want.tilt.mean_z, 1e-5f, "tilt mean z");
      expect_rel(got.tilt.mean_y, want.tilt.mean_y, 1e-5f, "tilt mean y");
    }
  }
}

}  // namespace
