// The optional bf16 output of ℓ* (SPEC §3 output 1): the same values as the
// fp32 output, rounded to nearest even — bit for bit — with −inf, NaN rows
// and padding handled as in fp32; other output types are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
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

TEST(AlignBf16, EqualsRoundedFp32OutputBitForBit) {
  auto ctx = cpu();
  const int64_t B = 3, V = 50257, stride = 50264;
  std::mt19937 g(5);
  std::normal_distribution<float> n(0.f, 3.f);
  std::vector<float> z(size_t(B * V)), y(size_t(B * V));
  for (auto& x : z) x = n(g);
  for (auto& x : y) x = n(g);
  z[7] = -INFINITY;            // a masked token: −inf in both outputs
  y[size_t(2 * V + 3)] = NAN;  // row 2 is invalid: NaN in both outputs
  for (int rule = 0; rule < 3; ++rule) {
    for (int upd = 0; upd < 2; ++upd) {
      Params p;
      p.rule = linalign::StepRule(rule);
      p.update = linalign::UpdateForm(upd);
      p.temperature = 0.7f;
      const auto v = LogitsView::strided(DType::kF32, B, V, z.data(), y.data());
      std::vector<float> f32(size_t(B * stride));
      std::vector<uint16_t> b16(size_t(B * stride), 0xabcd);
      ASSERT_EQ(ctx->align(v, p, f32.data(), stride, nullptr), Status::kSuccess);
      ASSERT_EQ(ctx->align(v, p, b16.data(), DType::kBF16, stride, nullptr), Status::kSuccess)
          << ctx->last_error();
      for (int64_t r = 0; r < B; ++r) {
        for (int64_t i = 0; i < V; ++i) {
          const size_t k = size_t(r * stride + i);
          ASSERT_EQ(b16[k], linalign::math::float_to_bf16(f32[k]))
              << "rule " << rule << " update " << upd << " row " << r << " token " << i;
        }
        for (int64_t i = V; i < stride; ++i) ASSERT_EQ(b16[size_t(r * stride + i)], 0xabcd);
      }
      EXPECT_EQ(b16[7], 0xff80);  // −inf
      EXPECT_TRUE(std::isnan(linalign::math::bf16_to_float(b16[size_t(2 * stride)])));
    }
  }
}

TEST(AlignBf16, OtherOutputTypesAreRefusedAndNothingIsWritten) {
  auto ctx = cpu();
  const int64_t V = 16;
  std::vector<float> z(V, 0.5f), y(V, 1.f);
  std::vector<uint16_t> out(V, 0x1234);
  const auto v = LogitsView::strided(DType::kF32, 1, V, z.data(), y.data());
  EXPECT_EQ(ctx->align(v, Params{}, out.data(), DType::kF16, 0, nullptr), Status::kNotSupported);
  EXPECT_NE(std::string(ctx->last_error()).find("out_dtype"), std::string::npos);
  for (uint16_t x : out) EXPECT_EQ(x, 0x1234);
}

}  // namespace
