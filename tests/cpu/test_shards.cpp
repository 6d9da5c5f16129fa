// Vocabulary-parallel use (SPEC §7): shard_stats on each vocabulary shard,
// an all-gather of the records, align_shard on each shard — the same result
// as one align() over the whole vocabulary.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "linalign/linalign.hpp"
#include "linalign/math/dtype.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;

std::unique_ptr<Context> cpu() {
  std::unique_ptr<Context> ctx;
  EXPECT_EQ(Context::create({}, &ctx), Status::kSuccess);
  return ctx;
}

struct Rows {
  int64_t B, V;
  std::vector<float> z, y;
};

Rows make_rows(int64_t B, int64_t V, uint32_t seed) {
  Rows r{B, V, std::vector<float>(size_t(B * V)), std::vector<float>(size_t(B * V))};
  std::mt19937 g(seed);
  std::normal_distribution<float> n(0.f, 3.f);
  for (auto& x : r.z) x = n(g);
  for (size_t i = 0; i < r.y.size(); ++i) r.y[i] = r.z[i] + n(g) / 3.f;
  for (size_t i = 0; i < r.z.size(); i += 97) r.z[i] = -INFINITY;  // masked tokens
  return r;
}

// Runs the two-phase protocol over shards with the given column boundaries.
void sharded_align(Context& ctx, const Rows& rows, const Params& p,
                   const std::vector<int64_t>& cuts, std::vector<float>* out,
                   std::vector<std::vector<RowDiagnostics>>* diags) {
  const int64_t B = rows.B, V = rows.V, G = int64_t(cuts.size()) - 1;
  std::vector<ShardStats> all(size_t(G * B));
  for (int64_t g = 0; g < G; ++g) {  // each "GPU": its own statistics ...
    const auto shard = LogitsView::strided(DType::kF32, B, cuts[g + 1] - cuts[g],
                                           rows.z.data() + cuts[g], rows.y.data() + cuts[g], V, V);
    ASSERT_EQ(ctx.shard_stats(shard, p, all.data() + g * B), Status::kSuccess) << ctx.last_error();
  }
  out->assign(size_t(B * V), -7.f);  // ... the all-gather is `all` ...
  diags->assign(size_t(G), std::vector<RowDiagnostics>(size_t(B)));
  for (int64_t g = 0; g < G; ++g) {  // ... and each finalises its columns
    const auto shard = LogitsView::strided(DType::kF32, B, cuts[g + 1] - cuts[g],
                                           rows.z.data() + cuts[g], rows.y.data() + cuts[g], V, V);
    ASSERT_EQ(ctx.align_shard(shard, p, all.data(), G, out->data() + cuts[g], V,
                              (*diags)[size_t(g)].data()),
              Status::kSuccess)
        << ctx.last_error();
  }
}

TEST(Shards, EqualTheWholeRowResult) {
  auto ctx = cpu();
  const Rows rows = make_rows(3, 50257, 9);
  for (float ratio : {2.f, -1.f, 0.5f}) {
    Params p;
    p.ratio = ratio;
    p.temperature = 0.7f;
    std::vector<float> whole(rows.z.size());
    std::vector<RowDiagnostics> wd(size_t(rows.B));
    ASSERT_EQ(
        ctx->align(LogitsView::strided(DType::kF32, rows.B, rows.V, rows.z.data(), rows.y.data()),
                   p, whole.data(), 0, wd.data()),
        Status::kSuccess);
    std::vector<float> out;
    std::vector<std::vector<RowDiagnostics>> sd;
    sharded_align(*ctx, rows, p, {0, 10000, 10017, 40000, rows.V}, &out, &sd);
    for (size_t i = 0; i < whole.size(); ++i) {
      if (std::isinf(whole[i])) {
        ASSERT_EQ(out[i], whole[i]) << i;
      } else {
        ASSERT_NEAR(out[i], whole[i], 2e-5f * std::max(1.f, std::fabs(whole[i]))) << i;
      }
    }
    for (const auto& d : sd) {
      for (int64_t r = 0; r < rows.B; ++r) {
        const RowDiagnostics& a = d[size_t(r)];
        const RowDiagnostics& b = wd[size_t(r)];
        EXPECT_EQ(a.eta, b.eta);
        EXPECT_NEAR(a.mu, b.mu, 1e-5f * std::max(1.f, std::fabs(b.mu)));
        EXPECT_NEAR(a.sigma, b.sigma, 1e-5f * std::max(1.f, b.sigma));
        EXPECT_NEAR(a.kl_base, b.kl_base, 1e-5f * std::max(1.f, b.kl_base));
        EXPECT_NEAR(a.kl_principle, b.kl_principle, 1e-5f * std::max(1.f, b.kl_principle));
        EXPECT_NEAR(a.entropy, b.entropy, 1e-5f * std::max(1.f, b.entropy));
        EXPECT_EQ(a.support, b.support);
        EXPECT_EQ(a.status, b.status);
      }
    }
    // every shard reports the same diagnostics, bit for bit
    for (size_t g = 1; g < sd.size(); ++g)
      EXPECT_EQ(std::memcmp(sd[g].data(), sd[0].data(), sd[0].size() * sizeof(RowDiagnostics)), 0);
  }
}

TEST(Shards, OneShardIsBitIdenticalToAlign) {
  auto ctx = cpu();
  const Rows rows = make_rows(2, 32001, 4);
  const Params p;
  std::vector<float> whole(rows.z.size());
  ASSERT_EQ(
      ctx->align(LogitsView::strided(DType::kF32, rows.B, rows.V, rows.z.data(), rows.y.data()), p,
                 whole.data(), 0, nullptr),
      Status::kSuccess);
  std::vector<float> out;
  std::vector<std::vector<RowDiagnostics>> sd;
  sharded_align(*ctx, rows, p, {0, rows.V}, &out, &sd);
  EXPECT_EQ(std::memcmp(out.data(), whole.data(), whole.size() * sizeof(float)), 0);
}

TEST(Shards, ARowErrorInOneShardInvalidatesTheRowEverywhere) {
  auto ctx = cpu();
  Rows rows = make_rows(3, 4000, 2);
  rows.y[size_t(1 * rows.V + 3500)] = NAN;  // row 1, last shard
  std::vector<float> out;
  std::vector<std::vector<RowDiagnostics>> sd;
  sharded_align(*ctx, rows, Params{}, {0, 1000, 2500, rows.V}, &out, &sd);
  for (int64_t i = 0; i < rows.V; ++i) ASSERT_TRUE(std::isnan(out[size_t(rows.V + i)])) << i;
  for (const auto& d : sd) EXPECT_NE(d[1].status & linalign::kRowNaN, 0u);
  // the other rows are valid and normalised over all shards together
  for (int64_t r : {0, 2}) {
    double s = 0;
    for (int64_t i = 0; i < rows.V; ++i) s += std::exp(double(out[size_t(r * rows.V + i)]));
    EXPECT_NEAR(s, 1.0, 1e-5) << r;
    EXPECT_EQ(sd[0][size_t(r)].status, 0u);
  }
}

TEST(Shards, UnsupportedRulesAndBadArgumentsAreRefused) {
  auto ctx = cpu();
  const Rows rows = make_rows(1, 64, 1);
  const auto v = LogitsView::strided(DType::kF32, 1, 64, rows.z.data(), rows.y.data());
  ShardStats st[2];
  std::memset(st, 0x5a, sizeof st);
  Params tr;
  tr.rule = linalign::StepRule::kTrustRegion;
  EXPECT_EQ(ctx->shard_stats(v, tr, st), Status::kNotSupported);
  EXPECT_NE(std::string(ctx->last_error()).find("rule"), std::string::npos);
  Params lin;
  lin.update = linalign::UpdateForm::kLinear;
  EXPECT_EQ(ctx->shard_stats(v, lin, st), Status::kNotSupported);
  EXPECT_EQ(ctx->shard_stats(v, Params{}, nullptr), Status::kInvalidArgument);
  EXPECT_NE(std::string(ctx->last_error()).find("out"), std::string::npos);
  std::vector<float> out(64, 3.f);
  EXPECT_EQ(ctx->align_shard(v, Params{}, st, 0, out.data(), 0, nullptr), Status::kInvalidArgument);
  EXPECT_NE(std::string(ctx->last_error()).find("num_shards"), std::string::npos);
  EXPECT_EQ(ctx->align_shard(v, Params{}, nullptr, 1, out.data(), 0, nullptr),
            Status::kInvalidArgument);
  EXPECT_NE(std::string(ctx->last_error()).find("shards"), std::string::npos);
  for (float x : out) EXPECT_EQ(x, 3.f);  // nothing written
  unsigned char probe[sizeof st];
  std::memset(probe, 0x5a, sizeof probe);
  EXPECT_EQ(std::memcmp(st, probe, sizeof st), 0);
}

}  // namespace
