// Bad-input tests (SPEC §5; docs/SEMANTICS.md 6, 7, 11), through the public API only.
//
// Call-level errors: for every one, the returned Status is the right one,
// Context::last_error() names the argument, and every output (pre-filled with a
// sentinel) is left untouched.
// Row-level errors: a NaN, a +inf or an empty support in one row flags that row
// (NaN log-probs, token −1, NaN token log-prob / score / diagnostics) and every
// other row is bit for bit the result it has when computed alone.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "call.hpp"  // host/: op_name
#include "linalign/linalign.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;

using linalign_test::make_context;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Sentinels written before each call: a NaN with a distinctive payload (floats),
// an impossible token, and a byte pattern (diagnostics).
float sentinel_f() {
  const uint32_t bits = 0x7fa1b2c3u;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
constexpr int32_t kSentinelToken = -777777;
constexpr unsigned char kSentinelByte = 0xA7;

template <class T>
bool bytes_are(const std::vector<T>& v, const std::vector<T>& ref) {
  return v.size() == ref.size() && std::memcmp(v.data(), ref.data(), v.size() * sizeof(T)) == 0;
}

bool bits_equal(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

// ------------------------------------------------------- call-level setup ---

// A valid call of every operation (B = 4, V = 37, padded strides), with every
// output pre-filled with sentinels. Tests break one thing and check the outcome.
struct CallSetup {
  static constexpr int64_t kRows = 4, kVocab = 37, kStride = 40, kOutStride = 41;
  std::vector<float> z, y;
  LogitsView view;
  Params params;
  // align
  std::vector<float> out;
  int64_t out_stride = kOutStride;
  std::vector<RowDiagnostics> diag;
  // sample
  std::vector<int32_t> tokens;
  std::vector<float> token_logprob;
  // score
  std::vector<int32_t> targets;
  std::vector<float> s_aligned, s_base, s_principle, q_aligned, q_base, q_principle;
  std::vector<int64_t> seq_offsets;
  ScoreOutputs score_out;
  // the pointers passed (tests may null them)
  float* out_ptr = nullptr;
  int32_t* tokens_ptr = nullptr;
  const int32_t* targets_ptr = nullptr;
  // workspace (nullptr: the context's own)
  void* workspace = nullptr;
  size_t workspace_bytes = 0;

  CallSetup() {
    std::mt19937_64 g(0xbad1b00dULL);
    std::normal_distribution<double> nd(0.0, 1.5);
    z.assign(kRows * kStride, 0.0f);
    y.assign(kRows * kStride, 0.0f);
    for (size_t i = 0; i < z.size(); ++i) {
      z[i] = static_cast<float>(nd(g));
      y[i] = static_cast<float>(nd(g));
    }
    view = LogitsView::strided(DType::kF32, kRows, kVocab, z.data(), y.data(), kStride, kStride);
    out.assign(kRows * kOutStride, sentinel_f());
    diag.resize(kRows);
    std::memset(diag.data(), kSentinelByte, diag.size() * sizeof(RowDiagnostics));
    tokens.assign(kRows, kSentinelToken);
    token_logprob.assign(kRows, sentinel_f());
    targets = {3, 36, -100, 0};
    s_aligned.assign(kRows, sentinel_f());
    s_base = s_aligned;
    s_principle = s_aligned;
    seq_offsets = {0, 1, 4};
    q_aligned.assign(2, sentinel_f());
    q_base = q_aligned;
    q_principle = q_aligned;
    score_out.aligned = s_aligned.data();
    score_out.base = s_base.data();
    score_out.principle = s_principle.data();
    score_out.seq_offsets = seq_offsets.data();
    score_out.num_sequences = 2;
    score_out.seq_aligned = q_aligned.data();
    score_out.seq_base = q_base.data();
    score_out.seq_principle = q_principle.data();
    out_ptr = out.data();
    tokens_ptr = tokens.data();
    targets_ptr = targets.data();
  }
  CallSetup(const CallSetup&) = delete;
  CallSetup& operator=(const CallSetup&) = delete;

  Status run(Context& ctx, Op op) {
    switch (op) {
      case Op::kAlign:
        return ctx.align(view, params, out_ptr, out_stride, diag.data(), workspace,
                         workspace_bytes);
      case Op::kSample:
        return ctx.sample(view, params, tokens_ptr, token_logprob.data(), diag.data(), workspace,
                          workspace_bytes);
      case Op::kScore:
        return ctx.score(view, params, targets_ptr, score_out, diag.data(), workspace,
                         workspace_bytes);
      case Op::kShardStats:  // tested in test_shards.cpp
      case Op::kAlignShard:
        break;
    }
    return Status::kInternal;
  }

  // True when no output holds anything but its sentinel.
  ::testing::AssertionResult untouched() const {
    const CallSetup fresh_ref_shape;  // sentinels of the same shapes
    std::string what;
    if (!bytes_are(out, fresh_ref_shape.out)) what += " out";
    if (!bytes_are(tokens, fresh_ref_shape.tokens)) what += " tokens";
    if (!bytes_are(token_logprob, fresh_ref_shape.token_logprob)) what += " token_logprob";
    std::vector<unsigned char> d(diag.size() * sizeof(RowDiagnostics));
    std::memcpy(d.data(), diag.data(), d.size());
    if (std::any_of(d.begin(), d.end(), [](unsigned char c) { return c != kSentinelByte; }))
      what += " diagnostics";
    if (!bytes_are(s_aligned, fresh_ref_shape.s_aligned)) what += " score.aligned";
    if (!bytes_are(s_base, fresh_ref_shape.s_base)) what += " score.base";
    if (!bytes_are(s_principle, fresh_ref_shape.s_principle)) what += " score.principle";
    if (!bytes_are(q_aligned, fresh_ref_shape.q_aligned)) what += " seq_aligned";
    if (!bytes_are(q_base, fresh_ref_shape.q_base)) what += " seq_base";
    if (!bytes_are(q_principle, fresh_ref_shape.q_principle)) what += " seq_principle";
    if (what.empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "written despite the error:" << what;
  }
};

// The prefix of every call's messages (the library's one definition).
using linalign::host::op_name;

class bad_input : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = make_context();
    ASSERT_NE(ctx_, nullptr);
  }

  // Breaks a fresh valid setup with `mutate`, runs `op`, checks status, message
  // (contains `keyword`, case-insensitive; any non-empty message when keyword is
  // empty) and that nothing was written. Then a valid call clears last_error().
  void expect_error(Op op, const std::string& name, const std::function<void(CallSetup&)>& mutate,
                    Status want, const std::string& keyword) {
    SCOPED_TRACE(std::string(op_name(op)) + ": " + name);
    CallSetup s;
    mutate(s);
    const Status got = s.run(*ctx_, op);
    EXPECT_EQ(got, want) << "status " << linalign::status_string(got);
    const std::string msg = ctx_->last_error() ? ctx_->last_error() : "";
    EXPECT_FALSE(msg.empty()) << "no message";
    if (!keyword.empty()) {
      EXPECT_NE(lower(msg).find(lower(keyword)), std::string::npos)
          << "message \"" << msg << "\" does not name \"" << keyword << "\"";
    }
    EXPECT_TRUE(s.untouched());
    CallSetup ok;
    ASSERT_EQ(ok.run(*ctx_, op), Status::kSuccess) << ctx_->last_error();
    EXPECT_STREQ(ctx_->last_error(), "") << "last_error() not cleared by a successful call";
  }

  void expect_ok(Op op, const std::string& name, const std::function<void(CallSetup&)>& mutate) {
    SCOPED_TRACE(std::string(op_name(op)) + ": " + name);
    CallSetup s;
    mutate(s);
    EXPECT_EQ(s.run(*ctx_, op), Status::kSuccess) << ctx_->last_error();
    EXPECT_STREQ(ctx_->last_error(), "");
  }

  std::unique_ptr<Context> ctx_;
};

constexpr Op kAllOps[] = {Op::kAlign, Op::kSample, Op::kScore};

// --------------------------------------------------------- status strings ---

TEST(bad_input_status, StatusStringsAreNonEmpty) {
  for (int32_t s = 0; s <= 6; ++s) {
    const char* str = linalign::status_string(static_cast<Status>(s));
    ASSERT_NE(str, nullptr) << s;
    EXPECT_GT(std::strlen(str), 0u) << s;
  }
  EXPECT_NE(linalign::status_string(static_cast<Status>(1234)), nullptr);
}

TEST_F(bad_input, ValidCallsSucceedWithEmptyLastError) {
  for (Op op : kAllOps) expect_ok(op, "valid", [](CallSetup&) {});
  expect_ok(Op::kAlign, "zero rows", [](CallSetup& s) { s.view.rows = 0; });
  expect_ok(Op::kSample, "zero rows", [](CallSetup& s) { s.view.rows = 0; });
  expect_ok(Op::kScore, "zero rows", [](CallSetup& s) {
    s.view.rows = 0;
    s.seq_offsets = {0, 0, 0};
    s.score_out.seq_offsets = s.seq_offsets.data();
  });
  // strides of 0 mean vocab
  for (Op op : kAllOps)
    expect_ok(op, "stride 0 means vocab", [](CallSetup& s) {
      s.view.base_stride = 0;
      s.view.principle_stride = 0;
      s.out_stride = 0;
    });
}

// -------------------------------------------------------- null pointers ---

TEST_F(bad_input, NullPointers) {
  for (Op op : kAllOps) {
    expect_error(
        op, "base null", [](CallSetup& s) { s.view.base = nullptr; }, Status::kInvalidArgument,
        "base");
    expect_error(
        op, "principle null", [](CallSetup& s) { s.view.principle = nullptr; },
        Status::kInvalidArgument, "principle");
  }
  expect_error(
      Op::kAlign, "out null", [](CallSetup& s) { s.out_ptr = nullptr; }, Status::kInvalidArgument,
      "out");
  expect_error(
      Op::kSample, "tokens null", [](CallSetup& s) { s.tokens_ptr = nullptr; },
      Status::kInvalidArgument, "tokens");
  expect_error(
      Op::kScore, "targets null", [](CallSetup& s) { s.targets_ptr = nullptr; },
      Status::kInvalidArgument, "targets");
  expect_error(
      Op::kScore, "score aligned null", [](CallSetup& s) { s.score_out.aligned = nullptr; },
      Status::kInvalidArgument, "aligned");
}

// -------------------------------------------------------------- shapes ---

TEST_F(bad_input, Shapes) {
  for (Op op : kAllOps) {
    expect_error(
        op, "vocab 0", [](CallSetup& s) { s.view.vocab = 0; }, Status::kInvalidArgument, "vocab");
    expect_error(
        op, "vocab -5", [](CallSetup& s) { s.view.vocab = -5; }, Status::kInvalidArgument, "vocab");
    expect_error(
        op, "rows -1", [](CallSetup& s) { s.view.rows = -1; }, Status::kInvalidArgument, "rows");
    expect_error(
        op, "base_stride < vocab", [](CallSetup& s) { s.view.base_stride = CallSetup::kVocab - 1; },
        Status::kInvalidArgument, "stride");
    expect_error(
        op, "principle_stride < vocab",
        [](CallSetup& s) { s.view.principle_stride = CallSetup::kVocab - 1; },
        Status::kInvalidArgument, "stride");
    expect_error(
        op, "negative base_stride", [](CallSetup& s) { s.view.base_stride = -40; },
        Status::kInvalidArgument, "stride");
    expect_error(
        op, "unsupported dtype", [](CallSetup& s) { s.view.dtype = static_cast<DType>(7); },
        Status::kNotSupported, "dtype");
    expect_error(
        op, "negative dtype", [](CallSetup& s) { s.view.dtype = static_cast<DType>(-1); },
        Status::kNotSupported, "dtype");
  }
  expect_error(
      Op::kAlign, "out_stride < vocab", [](CallSetup& s) { s.out_stride = CallSetup::kVocab - 1; },
      Status::kInvalidArgument, "stride");
  expect_error(
      Op::kAlign, "negative out_stride", [](CallSetup& s) { s.out_stride = -1; },
      Status::kInvalidArgument, "stride");
}

// ------------------------------------------------------------- layouts ---

struct PtrRows {
  std::vector<const void*> zp, yp;
  explicit PtrRows(CallSetup& s) {
    for (int64_t r = 0; r < CallSetup::kRows; ++r) {
      zp.push_back(s.z.data() + r * CallSetup::kStride);
      yp.push_back(s.y.data() + r * CallSetup::kStride);
    }
  }
};

TEST_F(bad_input, Layouts) {
  // pointer arrays and pairs are valid on their own
  std::vector<int64_t> pairs;
  for (int64_t r = 0; r < CallSetup::kRows; ++r) {
    pairs.push_back(r);
    pairs.push_back(CallSetup::kRows + r);
  }
  for (Op op : kAllOps) {
    {
      CallSetup s;
      PtrRows pr(s);
      s.view = LogitsView::pointers(DType::kF32, CallSetup::kRows, CallSetup::kVocab, pr.zp.data(),
                                    pr.yp.data());
      EXPECT_EQ(s.run(*ctx_, op), Status::kSuccess) << op_name(op) << ctx_->last_error();
    }
    // z rows 0..3 then y rows 0..3, one [2B, stride] buffer
    std::vector<float> buf;
    {
      CallSetup s;
      buf.assign(s.z.begin(), s.z.end());
      buf.insert(buf.end(), s.y.begin(), s.y.end());
      s.view = LogitsView::pairs(DType::kF32, CallSetup::kRows, CallSetup::kVocab, buf.data(),
                                 2 * CallSetup::kRows, pairs.data(), CallSetup::kStride);
      EXPECT_EQ(s.run(*ctx_, op), Status::kSuccess) << op_name(op) << ctx_->last_error();
    }

    expect_error(
        op, "no layout",
        [](CallSetup& s) {
          s.view.base = nullptr;
          s.view.principle = nullptr;
        },
        Status::kInvalidArgument, "");
    expect_error(
        op, "strided + pointer arrays",
        [](CallSetup& s) {
          static std::vector<const void*> zp, yp;
          zp.assign(CallSetup::kRows, s.z.data());
          yp.assign(CallSetup::kRows, s.y.data());
          s.view.base_ptrs = zp.data();
          s.view.principle_ptrs = yp.data();
        },
        Status::kInvalidArgument, "");
    expect_error(
        op, "strided + paired",
        [&](CallSetup& s) {
          s.view.paired = buf.data();
          s.view.paired_rows = 2 * CallSetup::kRows;
          s.view.pair_index = pairs.data();
          s.view.paired_stride = CallSetup::kStride;
        },
        Status::kInvalidArgument, "");
    expect_error(
        op, "principle_ptrs null",
        [](CallSetup& s) {
          static std::vector<const void*> zp;
          zp.assign(CallSetup::kRows, s.z.data());
          s.view = LogitsView::pointers(DType::kF32, CallSetup::kRows, CallSetup::kVocab, zp.data(),
                                        nullptr);
        },
        Status::kInvalidArgument, "principle");
    expect_error(
        op, "a null base row pointer",
        [](CallSetup& s) {
          static std::vector<const void*> zp, yp;
          zp.assign(CallSetup::kRows, s.z.data());
          yp.assign(CallSetup::kRows, s.y.data());
          zp[2] = nullptr;
          s.view = LogitsView::pointers(DType::kF32, CallSetup::kRows, CallSetup::kVocab, zp.data(),
                                        yp.data());
        },
        Status::kInvalidArgument, "base");
    auto paired = [&](CallSetup& s, const int64_t* idx, int64_t stride) {
      s.view = LogitsView::pairs(DType::kF32, CallSetup::kRows, CallSetup::kVocab, buf.data(),
                                 2 * CallSetup::kRows, idx, stride);
    };
    static std::vector<int64_t> bad_idx;
    bad_idx = pairs;
    bad_idx[5] = 2 * CallSetup::kRows;  // == paired_rows: out of range
    expect_error(
        op, "pair_index == paired_rows",
        [&](CallSetup& s) { paired(s, bad_idx.data(), CallSetup::kStride); },
        Status::kInvalidArgument, "pair_index");
    static std::vector<int64_t> neg_idx;
    neg_idx = pairs;
    neg_idx[0] = -1;
    expect_error(
        op, "pair_index -1", [&](CallSetup& s) { paired(s, neg_idx.data(), CallSetup::kStride); },
        Status::kInvalidArgument, "pair_index");
    expect_error(
        op, "pair_index null", [&](CallSetup& s) { paired(s, nullptr, CallSetup::kStride); },
        Status::kInvalidArgument, "pair_index");
    expect_error(
        op, "paired_stride < vocab",
        [&](CallSetup& s) { paired(s, pairs.data(), CallSetup::kVocab - 1); },
        Status::kInvalidArgument, "stride");
    expect_error(
        op, "paired null",
        [&](CallSetup& s) {
          paired(s, pairs.data(), CallSetup::kStride);
          s.view.paired = nullptr;
          s.view.pair_index = pairs.data();
        },
        Status::kInvalidArgument, "");
  }
}

// -------------------------------------------------------- parameters ---

TEST_F(bad_input, Temperature) {
  for (float t : {0.0f, -1.0f, kNanF, kInfF}) {
    const std::string name = "temperature " + std::to_string(t);
    expect_error(
        Op::kAlign, name, [t](CallSetup& s) { s.params.temperature = t; }, Status::kInvalidArgument,
        "temperature");
    expect_error(
        Op::kScore, name, [t](CallSetup& s) { s.params.temperature = t; }, Status::kInvalidArgument,
        "temperature");
    if (t != 0.0f)
      expect_error(
          Op::kSample, name, [t](CallSetup& s) { s.params.temperature = t; },
          Status::kInvalidArgument, "temperature");
  }
  expect_ok(Op::kSample, "temperature 0 (greedy)",
            [](CallSetup& s) { s.params.temperature = 0.0f; });
  // per-row arrays: one bad row is a call-level error naming the row
  static const float bad_t[] = {1.0f, 0.7f, kNanF, 1.0f};
  for (Op op : kAllOps) {
    SCOPED_TRACE(op_name(op));
    CallSetup s;
    s.params.temperature = PerRow<float>::array(bad_t);
    EXPECT_EQ(s.run(*ctx_, op), Status::kInvalidArgument);
    const std::string msg = lower(ctx_->last_error());
    EXPECT_NE(msg.find("temperature"), std::string::npos) << msg;
    EXPECT_NE(msg.find('2'), std::string::npos) << "message does not name row 2: " << msg;
    EXPECT_TRUE(s.untouched());
  }
  static const float neg_t[] = {1.0f, 1.0f, 1.0f, -0.5f};
  for (Op op : kAllOps)
    expect_error(
        op, "temperature array row 3 negative",
        [](CallSetup& s) { s.params.temperature = PerRow<float>::array(neg_t); },
        Status::kInvalidArgument, "temperature");
  static const float zero_t[] = {1.0f, 0.0f, 1.0f, 1.0f};
  expect_error(
      Op::kAlign, "temperature array row 1 zero",
      [](CallSetup& s) { s.params.temperature = PerRow<float>::array(zero_t); },
      Status::kInvalidArgument, "temperature");
  expect_ok(Op::kSample, "temperature array with a 0 row",
            [](CallSetup& s) { s.params.temperature = PerRow<float>::array(zero_t); });
}

TEST_F(bad_input, StepRuleParameters) {
  for (Op op : kAllOps) {
    expect_error(
        op, "ratio NaN", [](CallSetup& s) { s.params.ratio = kNanF; }, Status::kInvalidArgument,
        "ratio");
    expect_error(
        op, "ratio inf", [](CallSetup& s) { s.params.ratio = kInfF; }, Status::kInvalidArgument,
        "ratio");
    static const float bad_ratio[] = {2.0f, kNanF, 2.0f, 2.0f};
    expect_error(
        op, "ratio array row 1 NaN",
        [](CallSetup& s) { s.params.ratio = PerRow<float>::array(bad_ratio); },
        Status::kInvalidArgument, "ratio");
    for (StepRule rule : {StepRule::kTrustRegion, StepRule::kExactKl}) {
      const std::string rn = rule == StepRule::kTrustRegion ? "trust_region " : "exact_kl ";
      for (float e : {kNanF, 0.0f, -0.1f, kInfF}) {
        expect_error(
            op, rn + "epsilon " + std::to_string(e),
            [rule, e](CallSetup& s) {
              s.params.rule = rule;
              s.params.epsilon = e;
            },
            Status::kInvalidArgument, "epsilon");
      }
      static const float bad_eps[] = {0.1f, 0.1f, 0.1f, 0.0f};
      expect_error(
          op, rn + "epsilon array row 3 zero",
          [rule](CallSetup& s) {
            s.params.rule = rule;
            s.params.epsilon = PerRow<float>::array(bad_eps);
          },
          Status::kInvalidArgument, "epsilon");
      for (float em : {-1.0f, kNanF}) {
        expect_error(
            op, rn + "eta_max " + std::to_string(em),
            [rule, em](CallSetup& s) {
              s.params.rule = rule;
              s.params.eta_max = em;
            },
            Status::kInvalidArgument, "eta_max");
      }
    }
    // SEMANTICS 4/11: ε is only range-checked for trust_region and exact_kl,
    // but a NaN ratio or ε is refused whatever the rule (issue 18).
    expect_ok(op, "fixed rule ignores epsilon 0", [](CallSetup& s) { s.params.epsilon = 0.0f; });
    expect_ok(op, "trust_region ignores ratio inf", [](CallSetup& s) {
      s.params.rule = StepRule::kTrustRegion;
      s.params.ratio = kInfF;
    });
    expect_error(
        op, "fixed rule, epsilon NaN", [](CallSetup& s) { s.params.epsilon = kNanF; },
        Status::kInvalidArgument, "epsilon");
    expect_error(
        op, "fixed rule, eta_max NaN", [](CallSetup& s) { s.params.eta_max = kNanF; },
        Status::kInvalidArgument, "eta_max");
    for (StepRule rule : {StepRule::kTrustRegion, StepRule::kExactKl}) {
      expect_error(
          op, "trust_region / exact_kl, ratio NaN",
          [rule](CallSetup& s) {
            s.params.rule = rule;
            s.params.ratio = kNanF;
          },
          Status::kInvalidArgument, "ratio");
      expect_error(
          op, "trust_region / exact_kl, ratio array row 1 NaN",
          [rule](CallSetup& s) {
            s.params.rule = rule;
            s.params.ratio = PerRow<float>::array(bad_ratio);
          },
          Status::kInvalidArgument, "ratio[1]");
    }
  }
}

TEST_F(bad_input, MaskParameters) {
  for (float p : {0.0f, -0.5f, 1.5f, kNanF})
    expect_error(
        Op::kSample, "top_p " + std::to_string(p), [p](CallSetup& s) { s.params.top_p = p; },
        Status::kInvalidArgument, "top_p");
  expect_error(
      Op::kSample, "top_k -1", [](CallSetup& s) { s.params.top_k = -1; }, Status::kInvalidArgument,
      "top_k");
  for (float m : {-0.1f, 1.1f, kNanF})
    expect_error(
        Op::kSample, "min_p " + std::to_string(m), [m](CallSetup& s) { s.params.min_p = m; },
        Status::kInvalidArgument, "min_p");
  for (int k : {0, -2})
    expect_error(
        Op::kSample, "min_tokens_to_keep " + std::to_string(k),
        [k](CallSetup& s) { s.params.min_tokens_to_keep = k; }, Status::kInvalidArgument,
        "min_tokens_to_keep");
  static const float bad_p[] = {0.9f, 0.0f, 0.9f, 0.9f};
  expect_error(
      Op::kSample, "top_p array row 1 zero",
      [](CallSetup& s) { s.params.top_p = PerRow<float>::array(bad_p); }, Status::kInvalidArgument,
      "top_p");
  static const int32_t bad_k[] = {5, 5, -3, 5};
  expect_error(
      Op::kSample, "top_k array row 2 negative",
      [](CallSetup& s) { s.params.top_k = PerRow<int32_t>::array(bad_k); },
      Status::kInvalidArgument, "top_k");
  static const float bad_m[] = {0.1f, 0.1f, 0.1f, 2.0f};
  expect_error(
      Op::kSample, "min_p array row 3 > 1",
      [](CallSetup& s) { s.params.min_p = PerRow<float>::array(bad_m); }, Status::kInvalidArgument,
      "min_p");
  expect_ok(Op::kSample, "top_p 1, min_p 1, top_k 0 are valid", [](CallSetup& s) {
    s.params.top_p = 1.0f;
    s.params.min_p = 1.0f;
    s.params.top_k = 0;
  });
}

// ------------------------------------------------------------- score ---

TEST_F(bad_input, ScoreTargetsAndSequences) {
  for (int32_t t : {static_cast<int32_t>(CallSetup::kVocab), -1, -101, 1 << 30}) {
    expect_error(
        Op::kScore, "target " + std::to_string(t), [t](CallSetup& s) { s.targets[1] = t; },
        Status::kInvalidArgument, "target");
  }
  // a target equal to a custom ignore_index is fine; the default −100 then is not
  expect_ok(Op::kScore, "custom ignore_index", [](CallSetup& s) {
    s.params.ignore_index = -1;
    s.targets = {-1, 2, -1, 5};
  });
  expect_error(
      Op::kScore, "-100 with a custom ignore_index",
      [](CallSetup& s) { s.params.ignore_index = -1; }, Status::kInvalidArgument, "target");
  auto offsets = [](std::vector<int64_t> o, int64_t n) {
    return [o, n](CallSetup& s) {
      s.seq_offsets = o;
      s.score_out.seq_offsets = s.seq_offsets.data();
      s.score_out.num_sequences = n;
    };
  };
  expect_error(Op::kScore, "decreasing offsets", offsets({0, 3, 2}, 2), Status::kInvalidArgument,
               "seq_offsets");
  expect_error(Op::kScore, "offset beyond B", offsets({0, 2, 5}, 2), Status::kInvalidArgument,
               "seq_offsets");
  expect_error(Op::kScore, "negative offset", offsets({-1, 2, 4}, 2), Status::kInvalidArgument,
               "seq_offsets");
  expect_error(Op::kScore, "num_sequences < 0", offsets({0, 2, 4}, -1), Status::kInvalidArgument,
               "");
  expect_error(
      Op::kScore, "seq_offsets null with sums",
      [](CallSetup& s) { s.score_out.seq_offsets = nullptr; }, Status::kInvalidArgument,
      "seq_offsets");
  expect_error(
      Op::kScore, "seq_aligned null with offsets",
      [](CallSetup& s) { s.score_out.seq_aligned = nullptr; }, Status::kInvalidArgument, "seq");
  // SEMANTICS choice: non-decreasing offsets within [0, B]; the first need not be 0
  expect_ok(Op::kScore, "first offset 1, empty sequence", offsets({1, 1, 4}, 2));
}

// --------------------------------------------------------- workspace ---

TEST_F(bad_input, InsufficientWorkspace) {
  for (Op op : kAllOps) {
    SCOPED_TRACE(op_name(op));
    size_t need = 0;
    {
      CallSetup s;
      need = ctx_->workspace_size(op, s.view, s.params);
    }
    // 256-byte aligned buffer with room to spare
    std::vector<unsigned char> raw(need + 512);
    void* aligned = raw.data() + (256 - reinterpret_cast<uintptr_t>(raw.data()) % 256) % 256;
    if (need > 0) {
      expect_error(
          op, "workspace one byte short",
          [&](CallSetup& s) {
            s.workspace = aligned;
            s.workspace_bytes = need - 1;
          },
          Status::kInsufficientWorkspace, "workspace");
    }
    if (need == 0) std::printf("[   NOTE   ] %s: workspace_size() is 0\n", op_name(op));
    expect_ok(op, "workspace of the queried size", [&](CallSetup& s) {
      s.workspace = aligned;
      s.workspace_bytes = need;
    });
  }
}

// ----------------------------------------------------------- backends ---

TEST(bad_input_context, CudaBackendWithoutDeviceFailsCleanly) {
  if (linalign::cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  ContextOptions o;
  o.backend = Backend::kCuda;
  std::unique_ptr<Context> ctx;
  std::string err;
  const Status s = Context::create(o, &ctx, &err);
  EXPECT_TRUE(s == Status::kNoDevice || s == Status::kNotSupported) << linalign::status_string(s);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_FALSE(err.empty());
  const Status s2 = Context::create(o, &ctx);  // without an error string
  EXPECT_EQ(s2, s);
  EXPECT_EQ(ctx, nullptr);
  // kAuto falls back to the CPU
  o.backend = Backend::kAuto;
  ASSERT_EQ(Context::create(o, &ctx), Status::kSuccess);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(ctx->backend(), Backend::kCpu);
}

TEST(bad_input_context, CreateWithNullOutput) {
  ContextOptions o;
  EXPECT_NE(Context::create(o, nullptr), Status::kSuccess);
}

// --------------------------------------------------- row-level errors ---

// A batch with valid and invalid rows. Valid rows use per-row seeds/offsets/
// temperatures so that each can be recomputed alone with the same parameters.
struct RowCase {
  int64_t rows = 0, vocab = 0;
  std::vector<float> z, y;
  std::vector<uint32_t> want;  // expected status flags per row
  std::vector<int32_t> targets;
  std::vector<uint64_t> seeds, offsets;
  std::vector<float> temps;
};

RowCase make_row_case(int64_t vocab) {
  RowCase c;
  c.rows = 9;
  c.vocab = vocab;
  std::mt19937_64 g(0xbad2b00dULL + static_cast<uint64_t>(vocab));
  std::normal_distribution<double> nd(0.0, 1.0);
  // values that are multiples of 1/8 in [−8, 8]: exact in bf16 and fp16 too
  auto q8 = [&] {
    return static_cast<float>(std::round(std::clamp(nd(g) * 2.0, -7.9, 7.9) * 8) / 8);
  };
  for (int64_t k = 0; k < c.rows * vocab; ++k) {
    c.z.push_back(q8());
    c.y.push_back(q8());
  }
  auto Z = [&](int64_t r, int64_t i) -> float& { return c.z[r * vocab + i]; };
  auto Y = [&](int64_t r, int64_t i) -> float& { return c.y[r * vocab + i]; };
  const int64_t mid = vocab / 2, last = vocab - 1;
  c.want.assign(static_cast<size_t>(c.rows), linalign::kRowOk);
  // row 0: valid, with −inf masks (not an error)
  Z(0, mid) = -kInfF;
  Y(0, last) = -kInfF;
  // row 1: NaN in the base row
  Z(1, mid) = kNanF;
  c.want[1] = linalign::kRowNaN;
  // row 2: valid
  // row 3: +inf in the principle row
  Y(3, last) = kInfF;
  c.want[3] = linalign::kRowPosInf;
  // row 4: all −inf in the base row: S empty
  for (int64_t i = 0; i < vocab; ++i) Z(4, i) = -kInfF;
  c.want[4] = linalign::kRowEmptySupport;
  // row 5: valid
  // row 6: z and y each masked on complementary halves: S empty, neither row all −inf
  for (int64_t i = 0; i < vocab; ++i) (i % 2 == 0 ? Z(6, i) : Y(6, i)) = -kInfF;
  c.want[6] = linalign::kRowEmptySupport;
  // row 7: NaN in the principle row and +inf in the base row
  Y(7, 0) = kNanF;
  Z(7, last) = kInfF;
  c.want[7] = linalign::kRowNaN | linalign::kRowPosInf;
  // row 8: valid, −inf in the principle row
  Y(8, 0) = -kInfF;
  if (vocab == 1) {  // row 6 needs two columns; with one, make it all −inf in y
    Z(6, 0) = 0.5f;
    Y(6, 0) = -kInfF;
    Z(0, 0) = 0.25f;  // keep the valid rows valid
    Y(0, 0) = 0.75f;
    Y(8, 0) = 1.0f;
  }
  // expected flags, from the data (SEMANTICS 6): NaN, +inf, empty S — a row may
  // carry several (with V = 1 or 2, a NaN or +inf also empties S)
  for (int64_t r = 0; r < c.rows; ++r) {
    uint32_t f = 0;
    bool any_s = false;
    for (int64_t i = 0; i < vocab; ++i) {
      const float a = Z(r, i), b = Y(r, i);
      if (std::isnan(a) || std::isnan(b)) f |= linalign::kRowNaN;
      if (a == kInfF || b == kInfF) f |= linalign::kRowPosInf;
      any_s = any_s || (std::isfinite(a) && std::isfinite(b));
    }
    if (!any_s) f |= linalign::kRowEmptySupport;
    EXPECT_EQ(f & c.want[r], c.want[r]) << "test setup, row " << r;
    c.want[r] = f;
  }
  for (int64_t r = 0; r < c.rows; ++r) {
    c.targets.push_back(static_cast<int32_t>((r * 7) % vocab));
    c.seeds.push_back(g());
    c.offsets.push_back(g() >> 20);
    c.temps.push_back(r % 3 == 0 ? 0.7f : 1.0f);
  }
  c.targets[5] = -100;  // ignored, valid row
  c.targets[3] = -100;  // ignored, invalid row: still scores 0
  return c;
}

bool valid_row(const RowCase& c, int64_t r) {
  return c.want[r] == linalign::kRowOk;
}

uint16_t to_bf16(float f) {
  if (std::isnan(f)) return 0x7fc0;
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return static_cast<uint16_t>(b >> 16);  // exact for the values used here
}

uint16_t to_f16(float f) {
  if (std::isnan(f)) return 0x7e00;
  if (std::isinf(f)) return f > 0 ? 0x7c00 : 0xfc00;
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  if (f == 0.0f) return sign;
  const int e = static_cast<int>((b >> 23) & 0xff) - 127 + 15;  // normal, exact here
  return static_cast<uint16_t>(sign | (e << 10) | ((b & 0x7fffff) >> 13));
}

// Typed inputs for one row range [r0, r0 + n) of a case.
struct Inputs {
  DType dtype;
  std::vector<float> f32z, f32y;
  std::vector<uint16_t> hz, hy;
  int64_t rows, vocab;
  Inputs(const RowCase& c, DType t, int64_t r0, int64_t n) : dtype(t), rows(n), vocab(c.vocab) {
    const auto zb = c.z.begin() + r0 * c.vocab, ze = zb + n * c.vocab;
    const auto yb = c.y.begin() + r0 * c.vocab, ye = yb + n * c.vocab;
    f32z.assign(zb, ze);
    f32y.assign(yb, ye);
    for (float v : f32z) hz.push_back(t == DType::kBF16 ? to_bf16(v) : to_f16(v));
    for (float v : f32y) hy.push_back(t == DType::kBF16 ? to_bf16(v) : to_f16(v));
  }
  LogitsView view() const {
    if (dtype == DType::kF32)
      return LogitsView::strided(dtype, rows, vocab, f32z.data(), f32y.data());
    return LogitsView::strided(dtype, rows, vocab, hz.data(), hy.data());
  }
};

Params row_params(const RowCase& c, int64_t r0, int variant) {
  Params p;
  p.temperature = PerRow<float>::array(c.temps.data() + r0);
  p.seed = PerRow<uint64_t>::array(c.seeds.data() + r0);
  p.offset = PerRow<uint64_t>::array(c.offsets.data() + r0);
  switch (variant) {
    case 1:
      p.rule = StepRule::kExactKl;
      p.update = UpdateForm::kLinear;
      p.top_p = 0.8f;
      p.nucleus_source = linalign::NucleusSource::kAligned;
      break;
    case 2:
      p.rule = StepRule::kTrustRegion;
      p.top_k = 5;
      p.min_p = 0.05f;
      break;
    case 3:
      p.greedy = true;
      break;
    default:
      break;
  }
  return p;
}

struct AllOutputs {
  std::vector<float> ls, lp_tok, score_a, score_b, score_p;
  std::vector<int32_t> tok;
  std::vector<RowDiagnostics> dal, dsa, dsc;
};

AllOutputs run_all(Context& ctx, const RowCase& c, DType t, int64_t r0, int64_t n, int variant) {
  const Inputs in(c, t, r0, n);
  const Params p = row_params(c, r0, variant);
  AllOutputs o;
  o.ls.assign(static_cast<size_t>(n * c.vocab), 0.0f);
  o.dal.resize(n);
  o.dsa.resize(n);
  o.dsc.resize(n);
  o.tok.assign(n, -5);
  o.lp_tok.assign(n, 0.0f);
  o.score_a.assign(n, 0.0f);
  o.score_b.assign(n, 0.0f);
  o.score_p.assign(n, 0.0f);
  EXPECT_EQ(ctx.align(in.view(), p, o.ls.data(), 0, o.dal.data()), Status::kSuccess)
      << ctx.last_error();
  EXPECT_EQ(ctx.sample(in.view(), p, o.tok.data(), o.lp_tok.data(), o.dsa.data()), Status::kSuccess)
      << ctx.last_error();
  ScoreOutputs so;
  so.aligned = o.score_a.data();
  so.base = o.score_b.data();
  so.principle = o.score_p.data();
  EXPECT_EQ(ctx.score(in.view(), p, c.targets.data() + r0, so, o.dsc.data()), Status::kSuccess)
      << ctx.last_error();
  return o;
}

bool diag_bits_equal(const RowDiagnostics& a, const RowDiagnostics& b) {
  return bits_equal(a.eta, b.eta) && bits_equal(a.mu, b.mu) && bits_equal(a.sigma, b.sigma) &&
         bits_equal(a.kl_base, b.kl_base) && bits_equal(a.kl_principle, b.kl_principle) &&
         bits_equal(a.entropy, b.entropy) && a.support == b.support && a.status == b.status;
}

void expect_invalid_diag(const RowDiagnostics& d, uint32_t want) {
  EXPECT_EQ(d.status, want);
  EXPECT_TRUE(std::isnan(d.eta));
  EXPECT_TRUE(std::isnan(d.mu));
  EXPECT_TRUE(std::isnan(d.sigma));
  EXPECT_TRUE(std::isnan(d.kl_base));
  EXPECT_TRUE(std::isnan(d.kl_principle));
  EXPECT_TRUE(std::isnan(d.entropy));
  if (want & linalign::kRowEmptySupport) {
    EXPECT_EQ(d.support, 0);
  }
}

class bad_input_rows : public ::testing::TestWithParam<std::tuple<DType, int64_t>> {};

TEST_P(bad_input_rows, InvalidRowsAreFlaggedAndOtherRowsAreComputedAsIfAlone) {
  const DType dtype = std::get<0>(GetParam());
  const int64_t vocab = std::get<1>(GetParam());
  auto ctx = make_context();
  ASSERT_NE(ctx, nullptr);
  const RowCase c = make_row_case(vocab);
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    const AllOutputs all = run_all(*ctx, c, dtype, 0, c.rows, variant);
    for (int64_t r = 0; r < c.rows; ++r) {
      SCOPED_TRACE("row " + std::to_string(r));
      if (!valid_row(c, r)) {
        int non_nan = 0;
        for (int64_t i = 0; i < vocab; ++i) non_nan += !std::isnan(all.ls[r * vocab + i]);
        EXPECT_EQ(non_nan, 0) << "align: log-probs of an invalid row not all NaN";
        expect_invalid_diag(all.dal[r], c.want[r]);
        expect_invalid_diag(all.dsa[r], c.want[r]);
        expect_invalid_diag(all.dsc[r], c.want[r]);
        EXPECT_EQ(all.tok[r], -1);
        EXPECT_TRUE(std::isnan(all.lp_tok[r]));
        if (c.targets[r] == -100) {  // ignored: 0 in every score output
          EXPECT_EQ(all.score_a[r], 0.0f);
          EXPECT_EQ(all.score_b[r], 0.0f);
          EXPECT_EQ(all.score_p[r], 0.0f);
        } else {
          EXPECT_TRUE(std::isnan(all.score_a[r]));
          EXPECT_TRUE(std::isnan(all.score_b[r]));
          EXPECT_TRUE(std::isnan(all.score_p[r]));
        }
        continue;
      }
      // a valid row: bit for bit its result when computed alone
      const AllOutputs one = run_all(*ctx, c, dtype, r, 1, variant);
      EXPECT_EQ(all.dal[r].status, linalign::kRowOk);
      EXPECT_EQ(std::memcmp(all.ls.data() + r * vocab, one.ls.data(), vocab * sizeof(float)), 0)
          << "align log-probs differ from the row alone";
      EXPECT_TRUE(diag_bits_equal(all.dal[r], one.dal[0])) << "align diagnostics";
      EXPECT_TRUE(diag_bits_equal(all.dsa[r], one.dsa[0])) << "sample diagnostics";
      EXPECT_TRUE(diag_bits_equal(all.dsc[r], one.dsc[0])) << "score diagnostics";
      EXPECT_EQ(all.tok[r], one.tok[0]);
      EXPECT_TRUE(bits_equal(all.lp_tok[r], one.lp_tok[0])) << "token log-prob";
      EXPECT_TRUE(bits_equal(all.score_a[r], one.score_a[0])) << "score aligned";
      EXPECT_TRUE(bits_equal(all.score_b[r], one.score_b[0])) << "score base";
      EXPECT_TRUE(bits_equal(all.score_p[r], one.score_p[0])) << "score principle";
      EXPECT_GE(all.tok[r], 0);
      EXPECT_LT(all.tok[r], vocab);
      if (c.targets[r] == -100) {
        EXPECT_EQ(all.score_a[r], 0.0f);
      } else {
        EXPECT_FALSE(std::isnan(all.score_a[r]));
      }
    }
  }
}

std::string row_case_name(const ::testing::TestParamInfo<std::tuple<DType, int64_t>>& pi) {
  const DType dt = std::get<0>(pi.param);
  return std::string(dt == DType::kF32    ? "f32"
                     : dt == DType::kBF16 ? "bf16"
                                          : "f16") +
         "_V" + std::to_string(std::get<1>(pi.param));
}

INSTANTIATE_TEST_SUITE_P(dtypes_and_vocab, bad_input_rows,
                         ::testing::Combine(::testing::Values(DType::kF32, DType::kBF16,
                                                              DType::kF16),
                                            ::testing::Values(int64_t{1}, int64_t{2}, int64_t{37},
                                                              int64_t{1000}, int64_t{50257})),
                         row_case_name);

TEST_F(bad_input, SequenceSumsWithInvalidRows) {
  const RowCase c = make_row_case(37);
  const Inputs in(c, DType::kF32, 0, c.rows);
  const Params p = row_params(c, 0, 0);
  // sequences: [0,1) valid; [1,3) contains NaN row 1; [3,4) only the ignored
  // invalid row 3; [4,4) empty; [4,5) empty-support row 4; [5,6) the ignored valid
  // row 5; [6,8) invalid rows 6, 7; [8,9) valid
  const std::vector<int64_t> offs = {0, 1, 3, 4, 4, 5, 6, 8, 9};
  const int64_t ns = static_cast<int64_t>(offs.size()) - 1;
  std::vector<float> a(c.rows), b(c.rows), pr(c.rows), sa(ns), sb(ns), sp(ns);
  ScoreOutputs so;
  so.aligned = a.data();
  so.base = b.data();
  so.principle = pr.data();
  so.seq_offsets = offs.data();
  so.num_sequences = ns;
  so.seq_aligned = sa.data();
  so.seq_base = sb.data();
  so.seq_principle = sp.data();
  ASSERT_EQ(ctx_->score(in.view(), p, c.targets.data(), so, nullptr), Status::kSuccess)
      << ctx_->last_error();
  auto seq_expect = [&](int64_t s) {
    double ea = 0, eb = 0, ep = 0;
    bool nan = false;
    for (int64_t r = offs[s]; r < offs[s + 1]; ++r) {
      if (c.targets[r] == -100) continue;
      if (!valid_row(c, r)) nan = true;
      ea += a[r];
      eb += b[r];
      ep += pr[r];
    }
    SCOPED_TRACE("sequence " + std::to_string(s));
    if (nan) {
      EXPECT_TRUE(std::isnan(sa[s]));
      EXPECT_TRUE(std::isnan(sb[s]));
      EXPECT_TRUE(std::isnan(sp[s]));
    } else {
      EXPECT_NEAR(sa[s], ea, 1e-5 * std::max(1.0, std::fabs(ea)));
      EXPECT_NEAR(sb[s], eb, 1e-5 * std::max(1.0, std::fabs(eb)));
      EXPECT_NEAR(sp[s], ep, 1e-5 * std::max(1.0, std::fabs(ep)));
    }
  };
  for (int64_t s = 0; s < ns; ++s) seq_expect(s);
  EXPECT_TRUE(std::isnan(sa[1]));
  EXPECT_EQ(sa[2], 0.0f);  // only an ignored (invalid) row
  EXPECT_EQ(sa[3], 0.0f);  // empty
  EXPECT_TRUE(std::isnan(sa[4]));
  EXPECT_EQ(sa[5], 0.0f);  // only an ignored valid row
  EXPECT_TRUE(std::isnan(sa[6]));
  EXPECT_TRUE(std::isfinite(sa[0]) && std::isfinite(sa[7]));
}

TEST_F(bad_input, NaNInPaddingIsNotARowError) {
  const int64_t rows = 3, vocab = 37, stride = 45;
  std::vector<float> z(rows * stride, kNanF), y(rows * stride, kInfF);
  std::mt19937_64 g(0xbad3b00dULL);
  std::normal_distribution<double> nd(0.0, 1.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < vocab; ++i) {
      z[r * stride + i] = static_cast<float>(nd(g));
      y[r * stride + i] = static_cast<float>(nd(g));
    }
  const LogitsView v =
      LogitsView::strided(DType::kF32, rows, vocab, z.data(), y.data(), stride, stride);
  std::vector<float> out(rows * vocab);
  std::vector<RowDiagnostics> d(rows);
  ASSERT_EQ(ctx_->align(v, Params{}, out.data(), 0, d.data()), Status::kSuccess);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(d[r].status, linalign::kRowOk);
    EXPECT_EQ(d[r].support, vocab);
  }
}

}  // namespace

// Issue 18's silently wrong rows: parameters accepted as "finite and > 0"
// whose scaled logits overflow fp32 once applied (T = 1e-38, ratio = 3e38,
// T = 1e-30 with ratio = 1e30; the linear update at T = 1e-6, ratio = 17.2)
// gave NaN ℓ*, token −1 or an aligned score of +inf with status OK. Now such a
// row is flagged kRowOverflow (SEMANTICS 6) and is invalid like a NaN row;
// every row either carries that flag or has finite outputs whose
// exponentials sum to 1, and the other rows are computed as if alone.
TEST_F(bad_input, OverflowingParametersFlagTheRow) {
  struct Case {
    const char* name;
    StepRule rule;
    UpdateForm update;
    float temperature, ratio;
  };
  const Case cases[] = {
      {"T 1e-38", StepRule::kFixed, UpdateForm::kTilt, 1e-38f, 2.f},
      {"ratio 3e38", StepRule::kFixed, UpdateForm::kTilt, 1.f, 3e38f},
      {"T 1e-30 ratio 1e30", StepRule::kFixed, UpdateForm::kTilt, 1e-30f, 1e30f},
      {"linear T 1e-6 ratio 17.2", StepRule::kFixed, UpdateForm::kLinear, 1e-6f, 17.2f},
      {"linear T 1e-38", StepRule::kFixed, UpdateForm::kLinear, 1e-38f, 2.f},
      {"trust_region T 1e-38", StepRule::kTrustRegion, UpdateForm::kTilt, 1e-38f, 2.f},
      {"exact_kl linear T 1e-38", StepRule::kExactKl, UpdateForm::kLinear, 1e-38f, 2.f},
  };
  for (const Case& k : cases) {
    for (Op op : kAllOps) {
      SCOPED_TRACE(std::string(op_name(op)) + ": " + k.name);
      // Row 1 takes the case's temperature, the others T = 1 (per-row array).
      const float temps[CallSetup::kRows] = {1.f, k.temperature, 1.f, 1.f};
      CallSetup s;
      s.params.rule = k.rule;
      s.params.update = k.update;
      s.params.ratio = k.rule == StepRule::kFixed ? k.ratio : 2.f;
      s.params.temperature = PerRow<float>::array(temps);
      for (float& v : s.z) v *= 3.f;
      for (float& v : s.y) v *= 3.f;
      ASSERT_EQ(s.run(*ctx_, op), Status::kSuccess) << ctx_->last_error();
      bool flagged_any = false;
      for (int64_t r = 0; r < CallSetup::kRows; ++r) {
        SCOPED_TRACE("row " + std::to_string(r));
        const RowDiagnostics& d = s.diag[size_t(r)];
        if (d.status != linalign::kRowOk) {
          EXPECT_EQ(d.status, uint32_t(linalign::kRowOverflow));
          expect_invalid_diag(d, linalign::kRowOverflow);
          flagged_any = true;
          if (op == Op::kAlign) {
            for (int64_t i = 0; i < CallSetup::kVocab; ++i)
              EXPECT_TRUE(std::isnan(s.out[size_t(r * CallSetup::kOutStride + i)]));
          } else if (op == Op::kSample) {
            EXPECT_EQ(s.tokens[size_t(r)], -1);
            EXPECT_TRUE(std::isnan(s.token_logprob[size_t(r)]));
          } else if (s.targets[size_t(r)] != -100) {
            EXPECT_TRUE(std::isnan(s.s_aligned[size_t(r)]));
          }
          continue;
        }
        EXPECT_TRUE(std::isfinite(d.eta) && std::isfinite(d.mu) && std::isfinite(d.sigma) &&
                    std::isfinite(d.kl_base) && std::isfinite(d.kl_principle) &&
                    std::isfinite(d.entropy));
        if (op == Op::kAlign) {
          double mass = 0.0;
          for (int64_t i = 0; i < CallSetup::kVocab; ++i) {
            const float l = s.out[size_t(r * CallSetup::kOutStride + i)];
            EXPECT_FALSE(std::isnan(l) || l == kInfF) << "token " << i << ": " << l;
            mass += std::exp(double(l));
          }
          EXPECT_NEAR(mass, 1.0, 1e-4);
        } else if (op == Op::kSample) {
          EXPECT_GE(s.tokens[size_t(r)], 0);
          EXPECT_LT(s.tokens[size_t(r)], CallSetup::kVocab);
          EXPECT_TRUE(std::isfinite(s.token_logprob[size_t(r)]));
        } else if (s.targets[size_t(r)] != -100) {
          // The linear form clips tokens to π* = 0 (SPEC §2): −inf is a real score there.
          const float a = s.s_aligned[size_t(r)];
          const bool clipped_ok = k.update == UpdateForm::kLinear && a == -kInfF;
          EXPECT_TRUE(a <= 0.f && (a > -kInfF || clipped_ok)) << a;
        }
      }
      // T = 1e-38 makes z/T itself overflow: that row must be the flagged one.
      if (k.temperature == 1e-38f) {
        EXPECT_EQ(s.diag[1].status, uint32_t(linalign::kRowOverflow));
      }
      if (k.ratio >= 1e30f) {
        EXPECT_TRUE(flagged_any);
      }
    }
  }
}
