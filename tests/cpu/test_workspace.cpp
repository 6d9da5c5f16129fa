// The two-phase workspace (SPEC §7, STYLE "Host API"): a caller's buffer of
// exactly the queried size works wherever it starts (no alignment demanded),
// gives the same bits as the context's own buffer, and one byte less is
// refused without writing anything.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "linalign/linalign.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;

TEST(Workspace, AnyStartAddressExactSizeSameBits) {
  std::unique_ptr<Context> ctx;
  ASSERT_EQ(Context::create({}, &ctx), Status::kSuccess);
  const int64_t B = 3, V = 40000;
  std::mt19937 g(3);
  std::normal_distribution<float> n(0.f, 2.f);
  std::vector<float> z(size_t(B * V)), y(size_t(B * V));
  for (auto& x : z) x = n(g);
  for (auto& x : y) x = n(g);
  const auto v = LogitsView::strided(DType::kF32, B, V, z.data(), y.data());
  Params p;
  p.top_p = 0.9f;
  p.seed = 77;
  for (Op op : {Op::kAlign, Op::kSample}) {
    const size_t need = ctx->workspace_size(op, v, p);
    std::vector<float> ref(size_t(B * V)), out(size_t(B * V));
    std::vector<int32_t> ref_tok(B), tok(B);
    auto call = [&](float* o, int32_t* t, void* ws, size_t bytes) {
      return op == Op::kAlign ? ctx->align(v, p, o, 0, nullptr, ws, bytes)
                              : ctx->sample(v, p, t, nullptr, nullptr, ws, bytes);
    };
    ASSERT_EQ(call(ref.data(), ref_tok.data(), nullptr, 0), Status::kSuccess);  // own buffer
    std::vector<unsigned char> buf(need + 8);
    for (size_t shift : {size_t(0), size_t(1), size_t(3), size_t(7)}) {
      ASSERT_EQ(call(out.data(), tok.data(), buf.data() + shift, need), Status::kSuccess)
          << ctx->last_error();
      if (op == Op::kAlign) {
        EXPECT_EQ(std::memcmp(out.data(), ref.data(), out.size() * sizeof(float)), 0) << shift;
      } else {
        EXPECT_EQ(tok, ref_tok) << shift;
      }
    }
    std::fill(out.begin(), out.end(), 5.f);
    std::fill(tok.begin(), tok.end(), 5);
    EXPECT_EQ(call(out.data(), tok.data(), buf.data() + 1, need - 1),
              Status::kInsufficientWorkspace);
    for (float x : out) ASSERT_EQ(x, 5.f);
    for (int32_t t : tok) ASSERT_EQ(t, 5);
  }
}

}  // namespace

namespace {

// The query reports a shape no call could take (issue 10, item 6): a status
// naming the argument and 0 bytes, never a made-up size; a good shape gives
// the same bytes as the value form. No data pointer is needed.
TEST(Workspace, QueryReportsBadShapes) {
  std::unique_ptr<Context> ctx;
  ASSERT_EQ(Context::create({}, &ctx), Status::kSuccess);
  const Params p;
  LogitsView good;
  good.dtype = DType::kBF16;
  good.rows = 4;
  good.vocab = 1000;
  size_t bytes = 123;
  ASSERT_EQ(ctx->workspace_size(Op::kSample, good, p, &bytes), Status::kSuccess)
      << ctx->last_error();
  EXPECT_EQ(bytes, ctx->workspace_size(Op::kSample, good, p));
  EXPECT_STREQ(ctx->last_error(), "");

  struct Bad {
    LogitsView v;
    Op op;
    Status want;
    const char* names;
  };
  std::vector<Bad> bad;
  LogitsView v = good;
  v.rows = -1;
  bad.push_back({v, Op::kAlign, Status::kInvalidArgument, "logits.rows"});
  v = good;
  v.vocab = 0;
  bad.push_back({v, Op::kAlign, Status::kInvalidArgument, "logits.vocab"});
  v = good;
  v.base_stride = 999;
  bad.push_back({v, Op::kAlign, Status::kInvalidArgument, "logits.base_stride"});
  v = good;
  v.paired_stride = 10;
  bad.push_back({v, Op::kSample, Status::kInvalidArgument, "logits.paired_stride"});
  v = good;
  v.dtype = static_cast<DType>(7);
  bad.push_back({v, Op::kScore, Status::kNotSupported, "logits.dtype"});
  bad.push_back({good, static_cast<Op>(42), Status::kInvalidArgument, "op"});
  for (const Bad& b : bad) {
    bytes = 123;
    EXPECT_EQ(ctx->workspace_size(b.op, b.v, p, &bytes), b.want) << b.names;
    EXPECT_EQ(bytes, 0u) << b.names;
    EXPECT_NE(std::strstr(ctx->last_error(), b.names), nullptr)
        << b.names << ": " << ctx->last_error();
    EXPECT_EQ(ctx->workspace_size(b.op, b.v, p), 0u) << b.names;
  }
  EXPECT_EQ(ctx->workspace_size(Op::kAlign, good, p, nullptr), Status::kInvalidArgument);
  EXPECT_NE(std::strstr(ctx->last_error(), "bytes"), nullptr);
}

}  // namespace
