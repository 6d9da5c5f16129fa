// Comparison of Context::sample (CPU backend) with the float64 oracle of
// tests/oracle/oracle.hpp (SPEC §3, §4, §6; docs/SEMANTICS.md 1–3, 8–10).
//
// Tokens must be identical to the oracle's (greedy and Gumbel-max over
// Philox4x32-10), except where the oracle shows that fp32 cannot decide: the
// top two candidate scores within 1e-5 (·max(1,|η|)·magnitude factor), or a
// mask boundary (top-p mass, top-k rank, min-p ratio) within fp32 rounding of
// a token that could win. The chosen token's log-prob and the diagnostics
// are compared with SPEC §6 tolerances. LINALIGN_TEST_SCALE=small drops
// V ≥ 128256 and batch 99.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "linalign/linalign.hpp"
#include "oracle/glue.hpp"
#include "oracle/oracle.hpp"

namespace {

namespace la = linalign;
using oracle::Batch;
using oracle::DType;
using oracle::Kind;
using oracle::Layout;
using oracle::Rule;
using oracle::Source;
using oracle::Update;

using namespace oracle_glue;

// -------------------------------------------------------------- API glue ---
// (shared glue in oracle/glue.hpp)

// Everything the oracle needs to know about one row of a sample() call.
struct RowSpec {
  oracle::RowParams rp;
  oracle::SelectParams sp;
  bool greedy = false;
};

struct Counts {
  int64_t rows = 0, compared = 0, ambiguous = 0, invalid = 0;
};

// Runs sample() and compares tokens, token log-probs and diagnostics.
template <class SpecFn>
Counts run_and_compare(la::Context& ctx, const Batch& b, const la::Params& params, SpecFn spec,
                       const std::string& name) {
  Counts cnt;
  const size_t n = static_cast<size_t>(std::max<int64_t>(1, b.rows));
  std::vector<int32_t> tokens(n + 1, -12345);
  std::vector<float> logprob(n + 1, kSentinel);
  std::vector<la::RowDiagnostics> diag(n + 1, sentinel_diag());
  const la::Status st = ctx.sample(view_of(b), params, tokens.data(), logprob.data(), diag.data(),
                                   nullptr, 0, nullptr);
  EXPECT_EQ(st, la::Status::kSuccess) << name << ": " << ctx.last_error();
  if (st != la::Status::kSuccess) return cnt;
  oracle::Report rep;
  for (int64_t r = 0; r < b.rows; ++r) {
    ++cnt.rows;
    const RowSpec s = spec(r);
    const oracle::RowResult ref = oracle::reference_row(b.z[r], b.y[r], s.rp, diag[r].eta);
    const std::string rc = name + oracle::fmt(" row=%lld", static_cast<long long>(r));
    oracle::compare_diag(ref, diag_of(diag[r]), rc, rep);
    if (!ref.valid()) {
      ++cnt.invalid;
      ++rep.compared;
      if (tokens[r] != -1 || !std::isnan(logprob[r]))
        rep.fail(rc + oracle::fmt(": invalid row, want token -1 / NaN, got %d / %.9g", tokens[r],
                                  logprob[r]));
      continue;
    }
    if (ref.eta_ill_conditioned) {
      ++cnt.ambiguous;
      ++rep.skipped;
      continue;
    }
    const oracle::Selection sel = oracle::select_token(ref, b.z[r], b.y[r], s.sp, s.greedy);
    if (sel.ambiguous) {
      if (std::getenv("ORACLE_VERBOSE"))
        std::printf("ambiguous %s: %s\n", rc.c_str(), sel.why.c_str());
      ++cnt.ambiguous;
      ++rep.skipped;
      // Still a valid token of the row.
      if (tokens[r] < 0 || tokens[r] >= b.V || !ref.in_s[tokens[r]])
        rep.fail(rc + oracle::fmt(": token %d is not a token of S", tokens[r]));
      continue;
    }
    ++cnt.compared;
    ++rep.compared;
    const std::string mask = oracle::fmt(
        " [%s top_p=%.9g top_k=%lld min_p=%.9g min_keep=%lld source=%s seed=%llu sub=%u "
        "offset=%llu T=%g]",
        s.greedy ? "greedy" : "sample", s.sp.top_p, static_cast<long long>(s.sp.top_k), s.sp.min_p,
        static_cast<long long>(s.sp.min_keep), oracle::source_name(s.sp.source),
        static_cast<unsigned long long>(s.sp.seed), s.sp.sub,
        static_cast<unsigned long long>(s.sp.offset), s.rp.T);
    if (tokens[r] != sel.token) {
      const int32_t t = tokens[r];
      const bool in_range = t >= 0 && t < b.V;
      rep.fail(rc +
               oracle::fmt(": token want %d (ℓ*=%.9g) got %d (ℓ*=%.9g, kept=%d)", sel.token,
                           sel.logprob, t, in_range ? ref.ls[t] : oracle::kNaN,
                           in_range ? static_cast<int>(sel.kept[t]) : -1) +
               mask);
      continue;
    }
    if (!oracle::score_ok(sel.logprob, logprob[r], oracle::tol_lstar(ref)))
      rep.fail(rc +
               oracle::fmt(": token %d log-prob want %.9g got %.9g (tol %.3g)", sel.token,
                           sel.logprob, logprob[r], oracle::tol_lstar(ref)) +
               mask);
  }
  for (size_t i = static_cast<size_t>(b.rows); i < tokens.size(); ++i)
    if (tokens[i] != -12345 || logprob[i] != kSentinel || diag[i].support != -7)
      rep.fail(name + ": wrote past the last row");
  EXPECT_EQ(rep.failures, 0) << name << "\n" << rep.text();
  return cnt;
}

void log_counts(const Counts& c) {
  std::printf("[ oracle   ] rows=%lld compared=%lld ambiguous=%lld invalid=%lld\n",
              static_cast<long long>(c.rows), static_cast<long long>(c.compared),
              static_cast<long long>(c.ambiguous), static_cast<long long>(c.invalid));
}

// ------------------------------------------------------ Philox answers ---

TEST(oraclePhilox, KnownAnswerVectors) {
  using P = oracle::Philox4;
  EXPECT_EQ(oracle::philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (P{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(oracle::philox4x32_10({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}),
            (P{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(oracle::philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                                  {0xa4093822u, 0x299f31d0u}),
            (P{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
  // u = (2k + 1)·2^-25 with k = x >> 8: strictly inside (0, 1).
  for (int64_t i = 0; i < 64; ++i) {
    const double u = oracle::philox_uniform(0x0123456789abcdefull, 3, 0xfedcba9876543210ull, i);
    EXPECT_GT(u, 0.0);
    EXPECT_LT(u, 1.0);
    const double odd = std::ldexp(u, 25);
    EXPECT_EQ(odd, std::floor(odd));
    EXPECT_EQ(std::fmod(odd, 2.0), 1.0);
  }
  // Token i: lane i % 4 of counter (i / 4, sub, lo32(offset), hi32(offset)),
  // key (lo32(seed), hi32(seed)).
  const oracle::Philox4 x =
      oracle::philox4x32_10({2, 3, 0x76543210u, 0xfedcba98u}, {0x89abcdefu, 0x01234567u});
  EXPECT_EQ(oracle::philox_uniform(0x0123456789abcdefull, 3, 0xfedcba9876543210ull, 10),
            ((x[2] >> 8) + 0.5) * std::ldexp(1.0, -24));
}

// Gumbel-max over the oracle's Philox stream reproduces π* (a check of the
// oracle's sampler, not of the library).
TEST(oracleSelf, GumbelMaxFollowsPolicy) {
  const std::vector<double> z{0, 1, 2, 0.5}, y{1, 0, 2, -1};
  const oracle::RowResult r = oracle::align_row(z, y, oracle::RowParams{});
  std::vector<int> count(4, 0);
  const int n = oracle::small_scale() ? 10000 : 40000;
  for (int s = 0; s < n; ++s) {
    oracle::SelectParams sp;
    sp.seed = 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(s + 1);
    sp.offset = static_cast<uint64_t>(s);
    const oracle::Selection sel = oracle::select_token(r, z, y, sp, false);
    ASSERT_FALSE(sel.ambiguous) << sel.why;
    ++count[sel.token];
  }
  const double tol = 5.0 * std::sqrt(0.25 / n);  // 5 standard errors
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(count[i] / double(n), std::exp(r.ls[i]), tol) << i;
}

// ------------------------------------------------------------ the grid ---

struct SampleCase {
  int id = 0;
  int64_t V = 0, B = 0;
  float T = 1.0f;
  Rule rule = Rule::kFixed;
  float ratio = 2.0f, eps = 0.1f;
  Update update = Update::kTilt;
  DType dtype = DType::kF32;
  Layout layout = Layout::kStrided;
  Source source = Source::kPrinciple;
  bool greedy = false;
  float top_p = 1.0f, min_p = 0.0f;
  int32_t top_k = 0, min_keep = 1;
  bool seed_array = false;
  uint64_t seed = 0, offset = 0;
  std::string name() const {
    return oracle::fmt(
        "case %d: V=%lld B=%lld T=%g rule=%s ratio=%g eps=%g update=%s dtype=%s layout=%s "
        "source=%s %s top_p=%g top_k=%d min_p=%g min_keep=%d seed%s=%llu offset=%llu",
        id, static_cast<long long>(V), static_cast<long long>(B), T, oracle::rule_name(rule), ratio,
        eps, oracle::update_name(update), oracle::dtype_name(dtype), oracle::layout_name(layout),
        oracle::source_name(source), greedy ? "greedy" : "sampled", top_p, top_k, min_p, min_keep,
        seed_array ? "[] base" : "", static_cast<unsigned long long>(seed),
        static_cast<unsigned long long>(offset));
  }
};

constexpr int kNumSampleCases = 48;

SampleCase sample_case(int c) {
  static const int64_t kV[] = {1, 2, 37, 32000, 32001, 50257, 128256, 151936};
  static const float kT[] = {0.0f, 0.3f, 1.0f, 2.0f};
  struct RuleVariant {
    Rule rule;
    float ratio;
  };
  static const RuleVariant kRules[] = {{Rule::kFixed, 2.0f},       {Rule::kFixed, -1.0f},
                                       {Rule::kFixed, 0.0f},       {Rule::kFixed, 0.5f},
                                       {Rule::kTrustRegion, 2.0f}, {Rule::kExactKl, 2.0f}};
  static const float kTopP[] = {1.0f, 0.8f, 0.5f, 0.95f, 0.3f};
  static const int32_t kTopK[] = {0, 1, 5, 50, 0, 3};
  static const float kMinP[] = {0.0f, 0.05f, 0.1f, 0.0f};
  static const int32_t kMinKeep[] = {1, 1, 3, 1};
  SampleCase a;
  a.id = c;
  a.rule = kRules[c % 6].rule;
  a.ratio = kRules[c % 6].ratio;
  a.eps = (c / 6) % 2 ? 0.1f : 0.5f;
  a.update = static_cast<Update>((c / 6) % 2);
  a.dtype = static_cast<DType>((c / 12 + c) % 3);
  a.layout = static_cast<Layout>((c / 4) % 3);
  a.source = static_cast<Source>((c / 3) % 2);
  a.greedy = (c / 5) % 2 == 1;
  a.top_p = kTopP[(c / 2) % 5];
  a.top_k = kTopK[(c / 3) % 6];
  a.min_p = kMinP[(c / 7) % 4];
  a.min_keep = kMinKeep[(c / 4) % 4];
  a.V = kV[c % 8];
  a.T = kT[(c + c / 8) % 4];
  static const int64_t kSmallB[] = {3, 99, 1, 0};
  static const int64_t kLargeB[] = {3, 1, 2};
  a.B = a.V <= 37 ? kSmallB[(c / 8 + c) % 4] : kLargeB[(c / 8 + c) % 3];
  if (c == 19) a.B = 99;  // one large batch at V = 32000
  a.seed_array = (c / 8) % 2 == 1;
  a.seed = 0xd1b54a32d192ed03ull * static_cast<uint64_t>(c + 7);
  a.offset = c % 3 == 0 ? 0 : c % 3 == 1 ? 17 : (uint64_t{5} << 32) + 9;
  return a;
}

class oracleSampleGrid : public ::testing::TestWithParam<int> {};

TEST_P(oracleSampleGrid, MatchesOracle) {
  SampleCase a = sample_case(GetParam());
  if (oracle::small_scale()) {
    if (a.V >= 128256) GTEST_SKIP() << "LINALIGN_TEST_SCALE=small";
    if (a.B == 99) a.B = 5;
  }
  SCOPED_TRACE(a.name());
  std::mt19937_64 rng(a.seed);
  std::vector<std::vector<double>> z, y;
  const std::string kinds = oracle::gen_rows(a.B, a.V, a.id, 7, rng, z, y);
  const Batch b = oracle::make_batch(a.dtype, a.layout, a.V, z, y, rng);
  std::vector<uint64_t> seeds(static_cast<size_t>(a.B) + 1);
  for (int64_t r = 0; r < a.B; ++r) seeds[r] = a.seed + 0x100000001ull * static_cast<uint64_t>(r);
  la::Params p;
  p.temperature = a.T;
  p.rule = to_la(a.rule);
  p.ratio = a.ratio;
  p.epsilon = a.eps;
  p.update = to_la(a.update);
  p.greedy = a.greedy;
  p.top_p = a.top_p;
  p.top_k = a.top_k;
  p.min_p = a.min_p;
  p.min_tokens_to_keep = a.min_keep;
  p.nucleus_source = to_la(a.source);
  p.seed = a.seed_array ? la::PerRow<uint64_t>::array(seeds.data()) : la::PerRow<uint64_t>(a.seed);
  p.offset = a.offset;
  auto spec = [&](int64_t r) {
    RowSpec s;
    s.rp.T = a.T;
    s.rp.rule = a.rule;
    s.rp.ratio = a.ratio;
    s.rp.eps = a.eps;
    s.rp.update = a.update;
    s.sp.top_p = a.top_p;
    s.sp.top_k = a.top_k;
    s.sp.min_p = a.min_p;
    s.sp.min_keep = a.min_keep;
    s.sp.source = a.source;
    s.sp.seed = a.seed_array ? seeds[r] : a.seed;
    s.sp.sub = a.seed_array ? 0u : static_cast<uint32_t>(r);
    s.sp.offset = a.offset;
    s.greedy = a.greedy || a.T == 0.0f;
    return s;
  };
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  log_counts(run_and_compare(*ctx, b, p, spec, a.name() + kinds));
}

INSTANTIATE_TEST_SUITE_P(Cover, oracleSampleGrid, ::testing::Range(0, kNumSampleCases));

// ----------------------------------------------------------- exact ties ---

// Rows whose logits come from a tiny grid, so that q and ℓ* have many exact
// ties: top-k ties go to the lower index, top-p keeps every token tied at the
// boundary, min-p at 1 keeps exactly the tied maxima, min_tokens_to_keep
// overrides the masks. Both nucleus sources, greedy and sampled.
TEST(oracleSample, MasksWithTies) {
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  struct MaskSet {
    float top_p;
    int32_t top_k;
    float min_p;
    int32_t min_keep;
  };
  const MaskSet masks[] = {{1.0f, 1, 0.0f, 1}, {1.0f, 2, 0.0f, 1},  {1.0f, 3, 0.0f, 1},
                           {1.0f, 7, 0.0f, 1}, {0.3f, 0, 0.0f, 1},  {0.5f, 0, 0.0f, 1},
                           {0.7f, 0, 0.0f, 1}, {0.9f, 0, 0.0f, 1},  {1.0f, 0, 0.5f, 1},
                           {1.0f, 0, 1.0f, 1}, {0.3f, 2, 0.9f, 1},  {0.2f, 1, 1.0f, 5},
                           {0.6f, 4, 0.2f, 2}, {0.05f, 0, 0.0f, 3}, {1.0f, 40, 0.0f, 1}};
  Counts total;
  int id = 0;
  for (int64_t V : {37, 64, 1000})
    for (const MaskSet& m : masks)
      for (Source src : {Source::kPrinciple, Source::kAligned})
        for (bool greedy : {true, false}) {
          ++id;
          const uint64_t seed = 0x7ee5ull * static_cast<uint64_t>(id);
          std::mt19937_64 rng(seed);
          const int64_t B = 6;
          std::vector<std::vector<double>> z(B), y(B);
          for (int64_t r = 0; r < B; ++r) oracle::gen_row(Kind::kTies, V, rng, z[r], y[r]);
          const Update up = id % 3 == 0 ? Update::kLinear : Update::kTilt;
          const DType dt = static_cast<DType>(id % 3);
          const Batch b = oracle::make_batch(dt, static_cast<Layout>(id % 3), V, z, y, rng);
          la::Params p;
          p.temperature = 0.9f;
          p.ratio = 1.0f;
          p.update = to_la(up);
          p.greedy = greedy;
          p.top_p = m.top_p;
          p.top_k = m.top_k;
          p.min_p = m.min_p;
          p.min_tokens_to_keep = m.min_keep;
          p.nucleus_source = to_la(src);
          p.seed = seed;
          p.offset = 3;
          auto spec = [&](int64_t r) {
            RowSpec s;
            s.rp.T = 0.9f;
            s.rp.ratio = 1.0f;
            s.rp.update = up;
            s.sp.top_p = m.top_p;
            s.sp.top_k = m.top_k;
            s.sp.min_p = m.min_p;
            s.sp.min_keep = m.min_keep;
            s.sp.source = src;
            s.sp.seed = seed;
            s.sp.sub = static_cast<uint32_t>(r);
            s.sp.offset = 3;
            s.greedy = greedy;
            return s;
          };
          const std::string name = oracle::fmt(
              "ties V=%lld top_p=%g top_k=%d min_p=%g min_keep=%d source=%s %s update=%s "
              "dtype=%s T=0.9 ratio=1 seed=%llu offset=3",
              static_cast<long long>(V), m.top_p, m.top_k, m.min_p, m.min_keep,
              oracle::source_name(src), greedy ? "greedy" : "sampled", oracle::update_name(up),
              oracle::dtype_name(dt), static_cast<unsigned long long>(seed));
          SCOPED_TRACE(name);
          const Counts c = run_and_compare(*ctx, b, p, spec, name);
          total.rows += c.rows;
          total.compared += c.compared;
          total.ambiguous += c.ambiguous;
        }
  log_counts(total);
  // The tie classes make almost every row decidable.
  EXPECT_GE(total.compared, total.rows * 3 / 4);
}

// ------------------------------------------------------ per-row params ---

// Per-row temperature (with T = 0 rows: greedy, statistics at T = 1),
// ratio, top-p, top-k, min-p, seed and offset arrays.
TEST(oracleSample, PerRowParameterArrays) {
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  const int64_t B = 16, V = 5003;
  std::mt19937_64 rng(0x5eed0010);
  std::vector<std::vector<double>> z(B), y(B);
  for (int64_t r = 0; r < B; ++r)
    oracle::gen_row(static_cast<Kind>(r % static_cast<int>(Kind::kCount)), V, rng, z[r], y[r]);
  const std::vector<float> temps = {0.0f, 1.0f, 0.3f, 2.0f, 0.0f, 0.7f, 1.0f, 1.5f,
                                    0.5f, 0.0f, 1.0f, 1.2f, 0.8f, 2.0f, 0.0f, 1.0f};
  const std::vector<float> ratios = {2.0f, -1.0f, 0.0f, 0.5f, 3.0f, 2.0f,  1.0f, 2.0f,
                                     4.0f, 0.1f,  2.0f, 2.5f, 2.0f, -0.5f, 2.0f, 2.0f};
  const std::vector<float> top_p = {1.0f, 0.8f, 0.5f, 0.95f, 0.3f,  1.0f, 0.9f, 0.8f,
                                    0.6f, 1.0f, 0.1f, 0.8f,  0.99f, 0.7f, 0.8f, 1.0f};
  const std::vector<int32_t> top_k = {0, 0, 5, 50, 1, 3, 0, 20, 0, 2, 0, 0, 100, 7, 0, 1};
  const std::vector<float> min_p = {0.0f, 0.1f, 0.0f, 0.05f, 0.0f, 0.2f, 0.0f, 0.0f,
                                    0.5f, 0.0f, 0.0f, 0.01f, 0.0f, 0.0f, 0.3f, 0.0f};
  std::vector<uint64_t> seeds(B), offsets(B);
  for (int64_t r = 0; r < B; ++r) {
    seeds[r] = rng();
    offsets[r] = r % 2 ? rng() : static_cast<uint64_t>(r);
  }
  Counts total;
  int li = 0;
  for (Source src : {Source::kPrinciple, Source::kAligned})
    for (Update up : {Update::kTilt, Update::kLinear}) {
      const Layout lay = static_cast<Layout>(li % 3);
      const DType dt = static_cast<DType>((li + 1) % 3);
      ++li;
      const Batch b = oracle::make_batch(dt, lay, V, z, y, rng);
      la::Params p;
      p.update = to_la(up);
      p.nucleus_source = to_la(src);
      p.temperature = la::PerRow<float>::array(temps.data());
      p.ratio = la::PerRow<float>::array(ratios.data());
      p.top_p = la::PerRow<float>::array(top_p.data());
      p.top_k = la::PerRow<int32_t>::array(top_k.data());
      p.min_p = la::PerRow<float>::array(min_p.data());
      p.seed = la::PerRow<uint64_t>::array(seeds.data());
      p.offset = la::PerRow<uint64_t>::array(offsets.data());
      p.min_tokens_to_keep = 2;
      auto spec = [&](int64_t r) {
        RowSpec s;
        s.rp.T = temps[r];
        s.rp.ratio = ratios[r];
        s.rp.update = up;
        s.sp.top_p = top_p[r];
        s.sp.top_k = top_k[r];
        s.sp.min_p = min_p[r];
        s.sp.min_keep = 2;
        s.sp.source = src;
        s.sp.seed = seeds[r];
        s.sp.sub = 0;
        s.sp.offset = offsets[r];
        s.greedy = temps[r] == 0.0f;
        return s;
      };
      const std::string name =
          oracle::fmt("per-row arrays source=%s update=%s dtype=%s layout=%s seed=0x5eed0010",
                      oracle::source_name(src), oracle::update_name(up), oracle::dtype_name(dt),
                      oracle::layout_name(lay));
      SCOPED_TRACE(name);
      const Counts c = run_and_compare(*ctx, b, p, spec, name);
      total.rows += c.rows;
      total.compared += c.compared;
      total.ambiguous += c.ambiguous;
    }
  log_counts(total);
}

// With per-row seeds a row's token does not depend on its position (sub = 0);
// with a scalar seed the sub-stream is the row index.
TEST(oracleSample, SeedSubStreams) {
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  const int64_t B = 24, V = 4096;
  std::mt19937_64 rng(0x5eed0011);
  std::vector<double> z0, y0;
  oracle::gen_row(Kind::kGumbel, V, rng, z0, y0);
  const std::vector<std::vector<double>> z(B, z0), y(B, y0);
  const Batch b = oracle::make_batch(DType::kF32, Layout::kStrided, V, z, y, rng);
  const oracle::RowResult ref = oracle::align_row(b.z[0], b.y[0], oracle::RowParams{});
  const uint64_t seed = 0xabcdef0123456789ull;
  std::vector<uint64_t> seeds(B, seed);
  std::vector<int32_t> tok_arr(B), tok_scalar(B);
  la::Params p;
  p.seed = la::PerRow<uint64_t>::array(seeds.data());
  p.offset = 11;
  ASSERT_EQ(ctx->sample(view_of(b), p, tok_arr.data(), nullptr, nullptr), la::Status::kSuccess);
  p.seed = seed;
  ASSERT_EQ(ctx->sample(view_of(b), p, tok_scalar.data(), nullptr, nullptr), la::Status::kSuccess);
  int distinct = 0;
  for (int64_t r = 0; r < B; ++r) {
    EXPECT_EQ(tok_arr[r], tok_arr[0]) << "per-row seeds: row " << r;
    oracle::SelectParams sp;
    sp.seed = seed;
    sp.offset = 11;
    sp.sub = static_cast<uint32_t>(r);
    const oracle::Selection sel = oracle::select_token(ref, b.z[0], b.y[0], sp, false);
    if (!sel.ambiguous) {
      EXPECT_EQ(tok_scalar[r], sel.token) << "scalar seed: row " << r;
      if (r == 0) {
        EXPECT_EQ(tok_arr[0], sel.token) << "sub 0";
      }
    }
    distinct += tok_scalar[r] != tok_scalar[0];
  }
  EXPECT_GT(distinct, 0) << "a scalar seed must give each row its own sub-stream";
}

// ------------------------------------------------------- row isolation ---

TEST(oracleSample, InvalidRowsGiveMinusOne) {
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  const int64_t B = 5, V = 32001;
  std::mt19937_64 rng(0x5eed0012);
  std::vector<std::vector<double>> z(B), y(B);
  for (int64_t r = 0; r < B; ++r) oracle::gen_row(Kind::kNormal, V, rng, z[r], y[r]);
  z[1][5] = oracle::kNaN;
  y[2][V - 1] = oracle::kInf;
  for (int64_t i = 0; i < V; ++i) (i % 3 ? z[3][i] : y[3][i]) = -oracle::kInf;
  for (bool greedy : {true, false}) {
    const Batch b = oracle::make_batch(DType::kBF16, Layout::kPaired, V, z, y, rng);
    la::Params p;
    p.greedy = greedy;
    p.top_p = 0.8f;
    p.seed = 99;
    auto spec = [&](int64_t r) {
      RowSpec s;
      s.sp.top_p = 0.8f;
      s.sp.seed = 99;
      s.sp.sub = static_cast<uint32_t>(r);
      s.greedy = greedy;
      return s;
    };
    const std::string name = std::string("invalid rows ") + (greedy ? "greedy" : "sampled");
    SCOPED_TRACE(name);
    const Counts c = run_and_compare(*ctx, b, p, spec, name);
    EXPECT_EQ(c.invalid, 3);
  }
}

}  // namespace
