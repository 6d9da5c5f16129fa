// Comparison of Context::score (CPU backend) with the float64 oracle of
// tests/oracle/oracle.hpp (SPEC §3.3, §5, §6; docs/SEMANTICS.md 6, 7).
//
// Per-row scores ℓ*_t (and optionally ℓ_t, ℓᵖ_t), ignore_index (default and
// custom, including an ignore_index that is a valid token id), targets
// outside S (−inf), invalid rows (NaN, but 0 when the target is ignored),
// ragged per-sequence sums with empty sequences and offsets that do not
// start at 0 or end at B, and the diagnostics. LINALIGN_TEST_SCALE=small
// drops V ≥ 128256 and batch 99.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
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
using oracle::Update;

using namespace oracle_glue;

// -------------------------------------------------------------- API glue ---
// (shared glue in oracle/glue.hpp)

// What to request from score().
struct Outputs {
  bool base = true, principle = true, seq = true, seq_base = true, seq_principle = true;
};

// Runs score() and compares every output with the oracle.
template <class RowParamsFn>
void run_and_compare(la::Context& ctx, const Batch& b, const la::Params& params, RowParamsFn rp,
                     const std::vector<int32_t>& targets, const std::vector<int64_t>& offsets,
                     const Outputs& want_out, const std::string& name) {
  const size_t n = static_cast<size_t>(b.rows) + 1;
  const int64_t nseq = static_cast<int64_t>(offsets.size()) - 1;
  const size_t ns = static_cast<size_t>(std::max<int64_t>(nseq, 0)) + 1;
  std::vector<float> aligned(n, kSentinel), base(n, kSentinel), principle(n, kSentinel);
  std::vector<float> seq_a(ns, kSentinel), seq_b(ns, kSentinel), seq_p(ns, kSentinel);
  std::vector<la::RowDiagnostics> diag(n, sentinel_diag());
  la::ScoreOutputs out;
  out.aligned = aligned.data();
  out.base = want_out.base ? base.data() : nullptr;
  out.principle = want_out.principle ? principle.data() : nullptr;
  if (want_out.seq && nseq >= 0) {
    out.seq_offsets = offsets.data();
    out.num_sequences = nseq;
    out.seq_aligned = seq_a.data();
    out.seq_base = want_out.seq_base ? seq_b.data() : nullptr;
    out.seq_principle = want_out.seq_principle ? seq_p.data() : nullptr;
  }
  const la::Status st = ctx.score(view_of(b), params, targets.data(), out, diag.data());
  ASSERT_EQ(st, la::Status::kSuccess) << name << ": " << ctx.last_error();

  oracle::Report rep;
  const int32_t ign = params.ignore_index;
  std::vector<oracle::ScoreRow> want(b.rows);
  std::vector<double> tol_a(b.rows), tol_b(b.rows);
  std::vector<char> skip(b.rows, 0);
  for (int64_t r = 0; r < b.rows; ++r) {
    const oracle::RowResult ref = oracle::reference_row(b.z[r], b.y[r], rp(r), diag[r].eta);
    const std::string rc =
        name + oracle::fmt(" row=%lld target=%d", static_cast<long long>(r), targets[r]);
    oracle::compare_diag(ref, diag_of(diag[r]), rc, rep);
    const oracle::ScoreRow w = oracle::score_row(ref, targets[r], ign);
    want[r] = w;
    tol_a[r] = ref.valid() ? oracle::tol_lstar(ref) : 0.0;
    tol_b[r] = 1e-4 * ref.scale;
    const bool ill = !w.ignored && ref.valid() &&
                     (ref.eta_ill_conditioned || oracle::linear_ill_conditioned(ref, targets[r]));
    skip[r] = ill;
    // ℓ*_t
    if (ill) {
      ++rep.skipped;
    } else {
      ++rep.compared;
      const bool ok =
          w.ignored ? aligned[r] == 0.0f : oracle::score_ok(w.aligned, aligned[r], tol_a[r]);
      if (!ok)
        rep.fail(rc + oracle::fmt(
                          ": ℓ*_t want %.9g got %.9g (tol %.3g)%s", w.aligned, aligned[r], tol_a[r],
                          ref.valid() && !w.ignored
                              ? (" " + oracle::row_desc(ref, b.z[r], b.y[r], targets[r])).c_str()
                              : ""));
    }
    // ℓ_t, ℓᵖ_t
    const struct {
      bool on;
      double want;
      float got;
      const char* what;
    } extra[2] = {{want_out.base, w.base, base[r], "ℓ_t"},
                  {want_out.principle, w.principle, principle[r], "ℓᵖ_t"}};
    for (const auto& e : extra) {
      if (!e.on) continue;
      ++rep.compared;
      const bool ok = w.ignored ? e.got == 0.0f : oracle::score_ok(e.want, e.got, tol_b[r]);
      if (!ok)
        rep.fail(rc + oracle::fmt(": %s want %.9g got %.9g (tol %.3g)", e.what, e.want, e.got,
                                  tol_b[r]));
    }
  }
  // Optional outputs that were not requested stay untouched; nothing past B.
  for (size_t i = 0; i < n; ++i) {
    const bool past = static_cast<int64_t>(i) >= b.rows;
    if ((past && aligned[i] != kSentinel) || ((past || !want_out.base) && base[i] != kSentinel) ||
        ((past || !want_out.principle) && principle[i] != kSentinel) ||
        (past && diag[i].support != -7))
      rep.fail(name + oracle::fmt(": wrote an output it was not asked for (index %zu)", i));
  }
  // Sequence sums.
  if (want_out.seq && nseq >= 0) {
    for (int64_t s = 0; s < nseq; ++s) {
      double sa = 0, sb = 0, sp = 0, ta = 0, tb = 0;
      bool skipped = false;
      for (int64_t r = offsets[s]; r < offsets[s + 1]; ++r) {
        const oracle::ScoreRow& w = want[r];
        if (w.ignored) continue;
        skipped |= skip[r] != 0;
        sa += w.aligned;
        sb += w.base;
        sp += w.principle;
        if (std::isfinite(w.aligned)) ta += tol_a[r] * std::max(1.0, std::fabs(w.aligned) / 20.0);
        if (std::isfinite(w.base))
          tb +=
              tol_b[r] * std::max(1.0, std::max(std::fabs(w.base), std::fabs(w.principle)) / 20.0);
      }
      const std::string sc =
          name + oracle::fmt(" seq=%lld rows [%lld, %lld)", static_cast<long long>(s),
                             static_cast<long long>(offsets[s]),
                             static_cast<long long>(offsets[s + 1]));
      auto check = [&](double wv, float got, double tol, const char* what) {
        ++rep.compared;
        bool ok;
        if (std::isnan(wv))
          ok = std::isnan(got);
        else if (std::isinf(wv))
          ok = got == wv;
        else
          ok = std::fabs(got - wv) <= tol + 1e-6 * std::fabs(wv);
        if (!ok)
          rep.fail(sc + oracle::fmt(": %s want %.9g got %.9g (tol %.3g)", what, wv, got, tol));
      };
      if (skipped) {
        ++rep.skipped;
      } else {
        check(sa, seq_a[s], ta, "Σℓ*_t");
      }
      if (want_out.seq_base) check(sb, seq_b[s], tb, "Σℓ_t");
      if (want_out.seq_principle) check(sp, seq_p[s], tb, "Σℓᵖ_t");
    }
    if (seq_a[nseq] != kSentinel || seq_b[nseq] != kSentinel || seq_p[nseq] != kSentinel)
      rep.fail(name + ": wrote past the last sequence");
    if (!want_out.seq_base && seq_b[0] != kSentinel) rep.fail(name + ": wrote seq_base");
    if (!want_out.seq_principle && seq_p[0] != kSentinel) rep.fail(name + ": wrote seq_principle");
  }
  EXPECT_EQ(rep.failures, 0) << name << "\n" << rep.text();
}

// Random ragged sequence offsets over [0, B]: empty sequences included, the
// first offset not always 0 and the last not always B.
std::vector<int64_t> ragged_offsets(int64_t B, std::mt19937_64& rng) {
  const int64_t nseq = 1 + static_cast<int64_t>(rng() % 9);
  std::vector<int64_t> off(nseq + 1);
  for (auto& o : off) o = B ? static_cast<int64_t>(rng() % (B + 1)) : 0;
  std::sort(off.begin(), off.end());
  if (rng() % 3) off.front() = 0;
  if (rng() % 3) off.back() = B;
  if (nseq >= 3) off[2] = off[1];  // an empty sequence
  return off;
}

// Targets: random tokens; some ignore_index; for rows with −inf masks,
// often a token outside S; and, when ignore_index is a valid token id, some
// rows that target exactly that id.
std::vector<int32_t> make_targets(const Batch& b, int32_t ignore_index, std::mt19937_64& rng) {
  std::vector<int32_t> t(static_cast<size_t>(b.rows) + 1, 0);
  for (int64_t r = 0; r < b.rows; ++r) {
    const uint64_t dice = rng() % 20;
    int32_t v = static_cast<int32_t>(rng() % b.V);
    if (dice < 3) {
      v = ignore_index;
    } else if (dice < 9) {
      for (int k = 0; k < 8; ++k) {  // prefer a token outside S
        const int32_t c = static_cast<int32_t>(rng() % b.V);
        if (!std::isfinite(b.z[r][c]) || !std::isfinite(b.y[r][c])) {
          v = c;
          break;
        }
      }
    } else if (dice < 14) {  // the argmax of y: a high-probability target
      v = static_cast<int32_t>(std::max_element(b.y[r].begin(), b.y[r].end()) - b.y[r].begin());
    }
    if (v == ignore_index && (ignore_index < 0 || ignore_index >= b.V) && dice >= 3)
      v = 0;  // keep targets in [0, V) unless deliberately ignored
    t[r] = v;
  }
  return t;
}

// ------------------------------------------------------------ the grid ---

struct ScoreCase {
  int id = 0;
  int64_t V = 0, B = 0;
  float T = 1.0f;
  Rule rule = Rule::kFixed;
  float ratio = 2.0f, eps = 0.1f;
  Update update = Update::kTilt;
  DType dtype = DType::kF32;
  Layout layout = Layout::kStrided;
  int32_t ignore_index = -100;
  bool inject_invalid = false;
  Outputs outputs;
  uint64_t seed = 0;
  std::string name() const {
    return oracle::fmt(
        "case %d: V=%lld B=%lld T=%g rule=%s ratio=%g eps=%g update=%s dtype=%s layout=%s "
        "ignore_index=%d invalid_rows=%d outputs=%d%d%d%d%d seed=%llu",
        id, static_cast<long long>(V), static_cast<long long>(B), T, oracle::rule_name(rule), ratio,
        eps, oracle::update_name(update), oracle::dtype_name(dtype), oracle::layout_name(layout),
        ignore_index, inject_invalid, outputs.base, outputs.principle, outputs.seq,
        outputs.seq_base, outputs.seq_principle, static_cast<unsigned long long>(seed));
  }
};

constexpr int kNumScoreCases = 36;

ScoreCase score_case(int c) {
  static const int64_t kV[] = {1, 2, 37, 32000, 32001, 50257, 128256, 151936};
  static const float kT[] = {0.3f, 1.0f, 2.0f};
  struct RuleVariant {
    Rule rule;
    float ratio;
  };
  static const RuleVariant kRules[] = {{Rule::kFixed, 2.0f},       {Rule::kFixed, -1.0f},
                                       {Rule::kFixed, 0.0f},       {Rule::kFixed, 0.5f},
                                       {Rule::kTrustRegion, 2.0f}, {Rule::kExactKl, 2.0f}};
  static const int32_t kIgnore[] = {-100, -1, 7, -100};
  ScoreCase a;
  a.id = c;
  a.update = static_cast<Update>(c % 2);
  a.rule = kRules[(c / 2) % 6].rule;
  a.ratio = kRules[(c / 2) % 6].ratio;
  a.eps = c % 3 ? 0.1f : 0.7f;
  a.dtype = static_cast<DType>((c / 12 + c) % 3);
  a.layout = static_cast<Layout>((c / 3) % 3);
  a.V = kV[c % 8];
  a.T = kT[(c + c / 8) % 3];
  static const int64_t kSmallB[] = {3, 99, 1, 40, 3, 17, 40, 1, 99};
  static const int64_t kLargeB[] = {3, 1, 2, 1, 3, 2, 1, 3, 2};
  a.B = a.V <= 50257 ? kSmallB[(c / 8 + c) % 9] : kLargeB[(c / 8 + c) % 9];
  if (c == 10 || c == 29) a.B = 0;  // empty batch: empty sequences still sum to 0
  a.ignore_index = kIgnore[(c / 4) % 4];
  a.inject_invalid = c % 3 == 0;
  a.outputs.base = c % 4 != 1;
  a.outputs.principle = c % 5 != 2;
  a.outputs.seq = c % 7 != 3;
  a.outputs.seq_base = c % 3 != 2;
  a.outputs.seq_principle = c % 4 != 3;
  a.seed = 0xa0761d6478bd642full * static_cast<uint64_t>(c + 3);
  return a;
}

class oracleScoreGrid : public ::testing::TestWithParam<int> {};

TEST_P(oracleScoreGrid, MatchesOracle) {
  ScoreCase a = score_case(GetParam());
  if (oracle::small_scale()) {
    if (a.V >= 128256) GTEST_SKIP() << "LINALIGN_TEST_SCALE=small";
    if (a.B == 99) a.B = 5;
  }
  SCOPED_TRACE(a.name());
  std::mt19937_64 rng(a.seed);
  std::vector<std::vector<double>> z, y;
  const std::string kinds = oracle::gen_rows(a.B, a.V, a.id, 4, rng, z, y);
  if (a.inject_invalid && a.B >= 3) {
    z[1][rng() % a.V] = oracle::kNaN;        // NaN row (scored, unless its target is ignored)
    y[a.B - 1][rng() % a.V] = oracle::kInf;  // +inf row
  }
  const Batch b = oracle::make_batch(a.dtype, a.layout, a.V, z, y, rng);
  std::vector<int32_t> targets = make_targets(b, a.ignore_index, rng);
  if (a.inject_invalid && a.B >= 3) targets[a.B - 1] = a.ignore_index;  // ignored invalid row
  const std::vector<int64_t> offsets = ragged_offsets(a.B, rng);
  la::Params p;
  p.temperature = a.T;
  p.rule = to_la(a.rule);
  p.ratio = a.ratio;
  p.epsilon = a.eps;
  p.update = to_la(a.update);
  p.ignore_index = a.ignore_index;
  oracle::RowParams rp;
  rp.T = a.T;
  rp.rule = a.rule;
  rp.ratio = a.ratio;
  rp.eps = a.eps;
  rp.update = a.update;
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  std::string offs = " offsets=";
  for (int64_t o : offsets) offs += std::to_string(o) + ",";
  run_and_compare(
      *ctx, b, p, [&](int64_t) { return rp; }, targets, offsets, a.outputs,
      a.name() + kinds + offs);
}

INSTANTIATE_TEST_SUITE_P(Cover, oracleScoreGrid, ::testing::Range(0, kNumScoreCases));

// ------------------------------------------------------ per-row params ---

TEST(oracleScore, PerRowParameterArrays) {
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  const int64_t B = 10, V = 2001;
  std::mt19937_64 rng(0x5eed0020);
  std::vector<std::vector<double>> z(B), y(B);
  for (int64_t r = 0; r < B; ++r)
    oracle::gen_row(static_cast<Kind>(r % static_cast<int>(Kind::kCount)), V, rng, z[r], y[r]);
  const std::vector<float> temps = {0.3f, 1.0f, 2.0f, 0.5f, 0.7f, 1.5f, 1.0f, 0.4f, 3.0f, 1.0f};
  const std::vector<float> ratios = {2.0f, -1.0f, 0.0f, 0.5f, 3.0f, -2.0f, 1.0f, 2.0f, 6.0f, 0.2f};
  const std::vector<float> eps = {0.1f, 0.01f, 1.0f, 0.3f, 0.05f, 2.0f, 0.1f, 0.7f, 4.0f, 0.02f};
  const std::vector<float> eta_max = {8.0f, 1.0f, 4.0f, 8.0f, 0.5f, 16.0f, 3.0f, 8.0f, 0.0f, 2.0f};
  const RowArrays arrays{temps, ratios, eps, eta_max};
  for (Rule rule : {Rule::kFixed, Rule::kTrustRegion, Rule::kExactKl})
    for (Update up : {Update::kTilt, Update::kLinear}) {
      const Batch b = oracle::make_batch(DType::kBF16, Layout::kPaired, V, z, y, rng);
      const std::vector<int32_t> targets = make_targets(b, -100, rng);
      const std::vector<int64_t> offsets = {0, 3, 3, 7, 10};
      la::Params p;
      p.rule = to_la(rule);
      p.update = to_la(up);
      arrays.apply(&p);
      auto rp = [&](int64_t r) { return arrays.row(r, rule, up); };
      const std::string name =
          oracle::fmt("per-row arrays rule=%s update=%s dtype=bf16 layout=paired seed=0x5eed0020",
                      oracle::rule_name(rule), oracle::update_name(up));
      SCOPED_TRACE(name);
      run_and_compare(*ctx, b, p, rp, targets, offsets, Outputs{}, name);
    }
}

// -------------------------------------------------------- edge targets ---

// Every token of a small row as target, one row per target, so each score is
// compared; rows are copies, so the sums are exact multiples.
TEST(oracleScore, EveryTargetOfARow) {
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  const int64_t V = 37;
  std::mt19937_64 rng(0x5eed0021);
  std::vector<double> z0, y0;
  oracle::gen_row(Kind::kMaskedInf, V, rng, z0, y0);
  const int64_t B = V + 2;
  const std::vector<std::vector<double>> z(B, z0), y(B, y0);
  for (Update up : {Update::kTilt, Update::kLinear}) {
    const Batch b = oracle::make_batch(DType::kF32, Layout::kPointers, V, z, y, rng);
    std::vector<int32_t> targets(B + 1);
    for (int64_t r = 0; r < V; ++r) targets[r] = static_cast<int32_t>(r);
    targets[V] = -100;
    targets[V + 1] = -100;
    const std::vector<int64_t> offsets = {0, 0, 5, V, V + 2, B};
    la::Params p;
    p.update = to_la(up);
    p.ratio = 1.5f;
    oracle::RowParams rp;
    rp.update = up;
    rp.ratio = 1.5f;
    const std::string name =
        oracle::fmt("every target update=%s ratio=1.5 seed=0x5eed0021", oracle::update_name(up));
    SCOPED_TRACE(name);
    run_and_compare(
        *ctx, b, p, [&](int64_t) { return rp; }, targets, offsets, Outputs{}, name);
  }
}

// A sequence whose non-ignored rows include an invalid one sums to NaN; the
// same invalid row with an ignored target is excluded (sum finite, score 0).
TEST(oracleScore, InvalidRowsInSequences) {
  auto ctx = cpu_context();
  ASSERT_TRUE(ctx);
  const int64_t B = 8, V = 1000;
  std::mt19937_64 rng(0x5eed0022);
  std::vector<std::vector<double>> z(B), y(B);
  for (int64_t r = 0; r < B; ++r) oracle::gen_row(Kind::kNormal, V, rng, z[r], y[r]);
  z[1][3] = oracle::kNaN;
  y[5][9] = oracle::kInf;
  std::fill(z[6].begin(), z[6].end(), -oracle::kInf);
  const Batch b = oracle::make_batch(DType::kF16, Layout::kStrided, V, z, y, rng);
  const std::vector<int32_t> targets = {4, 4, 5, 6, 7, -100, 8, 9, 0};
  const std::vector<int64_t> offsets = {0, 2, 4, 7, 8};
  la::Params p;
  const std::string name = "invalid rows in sequences seed=0x5eed0022";
  SCOPED_TRACE(name);
  run_and_compare(
      *ctx, b, p, [&](int64_t) { return oracle::RowParams{}; }, targets, offsets, Outputs{}, name);
}

}  // namespace
