// Row addressing of the three input layouts (math/layout.hpp, shared by the
// CPU backend and the kernels), checked on the CPU against dense copies of
// the same rows: a strided pair whose base and principle strides differ, a
// pointer-array view and a paired [2B, V] view give the bits of the dense
// strided call, for align, sample and score.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "linalign/linalign.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;

struct Results {
  std::vector<float> lp;
  std::vector<int32_t> tokens;
  std::vector<float> scores;
};

Results run(Context& ctx, const LogitsView& v, int64_t B, int64_t V) {
  Params p;
  p.top_p = 0.8f;
  p.seed = 11;
  Results r;
  r.lp.assign(size_t(B * V), 0.f);
  r.tokens.assign(size_t(B), -7);
  r.scores.assign(size_t(B), 0.f);
  EXPECT_EQ(ctx.align(v, p, r.lp.data(), V, nullptr), Status::kSuccess) << ctx.last_error();
  EXPECT_EQ(ctx.sample(v, p, r.tokens.data(), nullptr, nullptr), Status::kSuccess)
      << ctx.last_error();
  std::vector<int32_t> targets(static_cast<size_t>(B));
  for (int64_t i = 0; i < B; ++i) targets[size_t(i)] = int32_t((i * 37) % V);
  linalign::ScoreOutputs o;
  o.aligned = r.scores.data();
  EXPECT_EQ(ctx.score(v, p, targets.data(), o, nullptr), Status::kSuccess) << ctx.last_error();
  return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Layouts, EveryLayoutAddressesTheSameRows) {
  std::unique_ptr<Context> ctx;
  ASSERT_EQ(Context::create({}, &ctx), Status::kSuccess);
  const int64_t B = 5, V = 1001, zs = 1003, ys = 1100;
  std::mt19937 rng(3);
  std::normal_distribution<float> n(0.f, 2.f);
  std::vector<float> z(size_t(B * V)), y(size_t(B * V));
  for (size_t i = 0; i < z.size(); ++i) {
    z[i] = n(rng);
    y[i] = z[i] + 0.5f * n(rng);
  }
  const Results dense = run(*ctx, LogitsView::strided(DType::kF32, B, V, z.data(), y.data()), B, V);

  // strided, each row with its own stride (padding filled with garbage that
  // must never be read)
  std::vector<float> zp(size_t(B * zs), 1e30f), yp(size_t(B * ys), -1e30f);
  for (int64_t r = 0; r < B; ++r) {
    std::memcpy(&zp[size_t(r * zs)], &z[size_t(r * V)], size_t(V) * 4);
    std::memcpy(&yp[size_t(r * ys)], &y[size_t(r * V)], size_t(V) * 4);
  }
  const Results strided =
      run(*ctx, LogitsView::strided(DType::kF32, B, V, zp.data(), yp.data(), zs, ys), B, V);

  // pointer arrays, rows in reverse order in memory
  std::vector<float> zr(z.size()), yr(y.size());
  std::vector<const void*> zptr(static_cast<size_t>(B)), yptr(static_cast<size_t>(B));
  for (int64_t r = 0; r < B; ++r) {
    const int64_t at = B - 1 - r;
    std::memcpy(&zr[size_t(at * V)], &z[size_t(r * V)], size_t(V) * 4);
    std::memcpy(&yr[size_t(at * V)], &y[size_t(r * V)], size_t(V) * 4);
    zptr[size_t(r)] = &zr[size_t(at * V)];
    yptr[size_t(r)] = &yr[size_t(at * V)];
  }
  const Results ptrs =
      run(*ctx, LogitsView::pointers(DType::kF32, B, V, zptr.data(), yptr.data()), B, V);

  // paired [2B, V]: principle rows first, then base rows
  std::vector<float> pairs(size_t(2 * B * V));
  std::vector<int64_t> index(static_cast<size_t>(2 * B));
  for (int64_t r = 0; r < B; ++r) {
    std::memcpy(&pairs[size_t((B + r) * V)], &z[size_t(r * V)], size_t(V) * 4);
    std::memcpy(&pairs[size_t(r * V)], &y[size_t(r * V)], size_t(V) * 4);
    index[size_t(2 * r)] = B + r;
    index[size_t(2 * r + 1)] = r;
  }
  const Results paired =
      run(*ctx, LogitsView::pairs(DType::kF32, B, V, pairs.data(), 2 * B, index.data()), B, V);

  for (const Results* r : {&strided, &ptrs, &paired}) {
    EXPECT_TRUE(same_bits(r->lp, dense.lp));
    EXPECT_EQ(r->tokens, dense.tokens);
    EXPECT_TRUE(same_bits(r->scores, dense.scores));
  }
}

}  // namespace
