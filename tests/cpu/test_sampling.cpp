// Token selection tests of Context::sample (SPEC §3, §4; docs/SEMANTICS.md 1–3, 8, 9),
// through the public API only. Masks, Philox streams, Gumbel noise and the
// chi-square distribution are computed here by code that shares nothing with
// the library.
//
//   (a) reproducibility; per-row seeds make a row's token independent of its
//       position and of the other rows; a scalar seed uses the row index as the
//       Philox sub-stream; offsets select streams
//   (b) chi-square goodness of fit of the sampled tokens against π* restricted to
//       the mask (no mask, top-p on πᵖ, top-p on π*, top-k, min-p, combined)
//   (c) greedy: argmax with ties to the lower index, inside masks with ties,
//       min_tokens_to_keep
//   (d) tokens < vocab with padded strides; T = 0 means greedy
//
// LINALIGN_TEST_SCALE=small reduces the number of draws (for sanitizer builds).

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "linalign/linalign.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;

constexpr double kInf = std::numeric_limits<double>::infinity();

bool small_scale() {
  const char* s = std::getenv("LINALIGN_TEST_SCALE");
  return s != nullptr && std::strcmp(s, "small") == 0;
}

using linalign_test::make_context;

// ------------------------------------------------ Philox4x32-10 (SPEC §4) ---

using U4 = std::array<uint32_t, 4>;

U4 philox4x32_10(U4 c, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{0xD2511F53u} * c[0];
    const uint64_t p1 = uint64_t{0xCD9E8D57u} * c[2];
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c = U4{hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// Gumbel noise g_i of token i (in double, from the SPEC §4 uniform).
double gumbel(uint64_t seed, uint64_t sub, uint64_t offset, int64_t i) {
  const U4 x = philox4x32_10(U4{static_cast<uint32_t>(i / 4), static_cast<uint32_t>(sub),
                                static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)},
                             static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const double u = (double(x[i % 4] >> 8) + 0.5) * std::ldexp(1.0, -24);
  return -std::log(-std::log(u));
}

struct Prediction {
  int32_t token = -1;
  double margin = 0;  // gap between the best and the second best Gumbel score
};

// Gumbel-max over the candidates (all finite ℓ* when `cand` is null).
Prediction predict(const float* ls, int64_t vocab, const std::vector<char>* cand, uint64_t seed,
                   uint64_t sub, uint64_t offset) {
  Prediction p;
  double best = -kInf, second = -kInf;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!(ls[i] > -kInfF) || (cand && !(*cand)[i])) continue;
    const double s = double(ls[i]) + gumbel(seed, sub, offset, i);
    if (s > best) {
      second = best;
      best = s;
      p.token = static_cast<int32_t>(i);
    } else {
      second = std::max(second, s);
    }
  }
  p.margin = best - second;
  return p;
}

// ------------------------------------------------------- masks (SEMANTICS 2) ---

struct MaskSpec {
  double top_p = 1.0;
  int top_k = 0;
  double min_p = 0.0;
  int min_keep = 1;
};

// log_softmax(x/T) over S (−inf outside S), in double.
std::vector<double> log_softmax_over(const float* x, const float* other, int64_t vocab, double t) {
  std::vector<double> a(static_cast<size_t>(vocab), -kInf);
  double m = -kInf;
  for (int64_t i = 0; i < vocab; ++i)
    if (std::isfinite(x[i]) && std::isfinite(other[i])) {
      a[i] = double(x[i]) / t;
      m = std::max(m, a[i]);
    }
  double s = 0;
  for (double v : a)
    if (v > -kInf) s += std::exp(v - m);
  const double n = m + std::log(s);
  for (double& v : a)
    if (v > -kInf) v -= n;
  return a;
}

// The kept set ((top-p ∧ top-k ∧ min-p) ∨ rank < min_keep) ∧ S on q (log-probs,
// −inf outside S). `margin` gets the smallest distance of a top-p / min-p decision
// to its threshold (so that a test can make sure fp32 cannot flip it).
std::vector<char> keep_mask(const std::vector<double>& q, const MaskSpec& m, double* margin) {
  const size_t v = q.size();
  std::vector<size_t> order;
  for (size_t i = 0; i < v; ++i)
    if (q[i] > -kInf) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return q[a] > q[b]; });
  std::vector<size_t> rank(v, v);
  for (size_t k = 0; k < order.size(); ++k) rank[order[k]] = k;
  const double qmax = order.empty() ? 0 : std::exp(q[order[0]]);
  double mg = kInf;
  std::vector<char> keep(v, 0);
  for (size_t i = 0; i < v; ++i) {
    if (!(q[i] > -kInf)) continue;
    double above = 0;  // mass of tokens strictly more probable than i
    for (size_t j = 0; j < v; ++j)
      if (q[j] > q[i]) above += std::exp(q[j]);
    const double qi = std::exp(q[i]);
    const bool kp = above < m.top_p;
    const bool kk = m.top_k == 0 || rank[i] < static_cast<size_t>(m.top_k);
    const bool km = qi >= m.min_p * qmax;
    if (m.top_p < 1) mg = std::min(mg, std::fabs(above - m.top_p));
    if (m.min_p > 0) mg = std::min(mg, std::fabs(qi - m.min_p * qmax));
    keep[i] = (kp && kk && km) || rank[i] < static_cast<size_t>(m.min_keep);
  }
  if (margin) *margin = mg;
  return keep;
}

// Candidates (SEMANTICS 3): kept tokens with ℓ* > −inf, else every finite ℓ*.
std::vector<char> candidates(const std::vector<char>& keep, const float* ls, int64_t vocab) {
  std::vector<char> c(static_cast<size_t>(vocab), 0);
  bool any = false;
  for (int64_t i = 0; i < vocab; ++i) {
    c[i] = keep[i] && ls[i] > -kInfF;
    any = any || c[i];
  }
  if (!any)
    for (int64_t i = 0; i < vocab; ++i) c[i] = ls[i] > -kInfF;
  return c;
}

MaskSpec mask_of(const Params& p) {
  MaskSpec m;
  m.top_p = p.top_p.value;
  m.top_k = p.top_k.value;
  m.min_p = p.min_p.value;
  m.min_keep = p.min_tokens_to_keep;
  return m;
}

// q of the nucleus source: πᵖ in double from the inputs, or the library's ℓ*.
std::vector<double> nucleus_q(const Params& p, const float* z, const float* y, int64_t vocab,
                              const float* ls) {
  if (p.nucleus_source == NucleusSource::kAligned) return std::vector<double>(ls, ls + vocab);
  const double t = p.temperature.value == 0.0f ? 1.0 : p.temperature.value;
  return log_softmax_over(y, z, vocab, t);
}

// --------------------------------------------------------- chi-square ---

// Regularised upper incomplete gamma Q(a, x) (series / continued fraction).
double gamma_q(double a, double x) {
  if (x <= 0) return 1.0;
  const double lead = std::exp(-x + a * std::log(x) - std::lgamma(a));
  if (x < a + 1) {
    double ap = a, del = 1.0 / a, sum = del;
    for (int n = 0; n < 10000; ++n) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (std::fabs(del) < std::fabs(sum) * 1e-16) break;
    }
    return 1.0 - sum * lead;
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-16) break;
  }
  return lead * h;
}

double chi_square_p_value(double stat, int df) {
  return gamma_q(0.5 * df, 0.5 * stat);
}

// ---------------------------------------------------------- fixtures ---

struct Rows {
  int64_t rows = 0, vocab = 0;
  std::vector<float> z, y;
  LogitsView view() const {
    return LogitsView::strided(DType::kF32, rows, vocab, z.data(), y.data());
  }
  const float* zr(int64_t r) const { return z.data() + r * vocab; }
  const float* yr(int64_t r) const { return y.data() + r * vocab; }
};

Rows random_rows(std::mt19937_64& g, int64_t rows, int64_t vocab, double scale,
                 double mask_fraction = 0.0) {
  std::normal_distribution<double> nd(0.0, scale);
  std::uniform_real_distribution<double> u(0, 1);
  Rows b;
  b.rows = rows;
  b.vocab = vocab;
  for (int64_t k = 0; k < rows * vocab; ++k) {
    const double z = nd(g);
    b.z.push_back(static_cast<float>(z));
    b.y.push_back(static_cast<float>(0.6 * z + nd(g)));
  }
  if (mask_fraction > 0)
    for (int64_t k = 0; k < rows * vocab; ++k) {
      if (k % vocab == 0) continue;  // keep S non-empty
      if (u(g) < mask_fraction) b.z[k] = -kInfF;
      if (u(g) < mask_fraction) b.y[k] = -kInfF;
    }
  return b;
}

Rows repeat_row(const Rows& one, int64_t rows) {
  Rows b;
  b.rows = rows;
  b.vocab = one.vocab;
  for (int64_t r = 0; r < rows; ++r) {
    b.z.insert(b.z.end(), one.z.begin(), one.z.begin() + one.vocab);
    b.y.insert(b.y.end(), one.y.begin(), one.y.begin() + one.vocab);
  }
  return b;
}

std::vector<float> align_out(Context& ctx, const Rows& b, const Params& p,
                             std::vector<RowDiagnostics>* diag = nullptr) {
  std::vector<float> out(static_cast<size_t>(b.rows * b.vocab));
  if (diag) diag->resize(static_cast<size_t>(b.rows));
  EXPECT_EQ(ctx.align(b.view(), p, out.data(), 0, diag ? diag->data() : nullptr), Status::kSuccess)
      << ctx.last_error();
  return out;
}

std::vector<int32_t> sample_tokens(Context& ctx, const Rows& b, const Params& p,
                                   std::vector<float>* logprob = nullptr,
                                   std::vector<RowDiagnostics>* diag = nullptr) {
  std::vector<int32_t> t(static_cast<size_t>(b.rows), -7);
  if (logprob) logprob->assign(static_cast<size_t>(b.rows), 0.0f);
  if (diag) diag->resize(static_cast<size_t>(b.rows));
  EXPECT_EQ(ctx.sample(b.view(), p, t.data(), logprob ? logprob->data() : nullptr,
                       diag ? diag->data() : nullptr),
            Status::kSuccess)
      << ctx.last_error();
  return t;
}

std::vector<uint64_t> random_u64(std::mt19937_64& g, size_t n) {
  std::vector<uint64_t> v(n);
  for (uint64_t& x : v) x = g();
  return v;
}

class sampling : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_ = make_context();
    ASSERT_NE(ctx_, nullptr);
  }
  std::unique_ptr<Context> ctx_;
};

// ------------------------------------------------ self-checks of helpers ---

TEST(sampling_helpers, PhiloxMatchesPublishedKnownAnswers) {
  EXPECT_EQ(philox4x32_10(U4{0, 0, 0, 0}, 0, 0),
            (U4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10(U4{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffu,
                          0xffffffffu),
            (U4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10(U4{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0xa4093822u,
                          0x299f31d0u),
            (U4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(sampling_helpers, ChiSquarePValueMatchesTables) {
  EXPECT_NEAR(chi_square_p_value(3.841459, 1), 0.05, 1e-6);
  EXPECT_NEAR(chi_square_p_value(23.209251, 10), 0.01, 1e-6);
  EXPECT_NEAR(chi_square_p_value(35.564, 20), 0.0173, 1e-3);
  EXPECT_NEAR(chi_square_p_value(0.0, 5), 1.0, 1e-12);
  EXPECT_NEAR(chi_square_p_value(48.268, 15), 2.5e-5, 3e-6);
}

// ---------------------------------------------------------------- (a) ---

TEST_F(sampling, ReproducibleForFixedSeedAndOffset) {
  std::mt19937_64 g(0xa11ce001ULL);
  const Rows b = random_rows(g, 16, 1000, 1.5, 0.02);
  Params p;
  p.seed = uint64_t{0x1234567890abcdefULL};
  p.offset = uint64_t{42};
  p.top_p = 0.9f;
  const auto t1 = sample_tokens(*ctx_, b, p);
  const auto t2 = sample_tokens(*ctx_, b, p);
  EXPECT_EQ(t1, t2);
  auto other = make_context(1);  // another context, one thread
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(sample_tokens(*other, b, p), t1);
  for (int32_t t : t1) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 1000);
  }
}

TEST_F(sampling, PerRowSeedTokenDoesNotDependOnPositionOrOtherRows) {
  std::mt19937_64 g(0xa11ce002ULL);
  const int64_t rows = 16, vocab = 500;
  const Rows b = random_rows(g, rows, vocab, 1.0, 0.02);
  const auto seeds = random_u64(g, rows);
  const auto offsets = random_u64(g, rows);
  Params p;
  p.seed = PerRow<uint64_t>::array(seeds.data());
  p.offset = PerRow<uint64_t>::array(offsets.data());
  p.top_k = 50;
  const auto t = sample_tokens(*ctx_, b, p);

  // permute rows together with their seeds and offsets: tokens follow
  std::vector<int64_t> perm(rows);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), g);
  Rows q = b;
  std::vector<uint64_t> s2(rows), o2(rows);
  for (int64_t k = 0; k < rows; ++k) {
    std::copy(b.zr(perm[k]), b.zr(perm[k]) + vocab, q.z.begin() + k * vocab);
    std::copy(b.yr(perm[k]), b.yr(perm[k]) + vocab, q.y.begin() + k * vocab);
    s2[k] = seeds[perm[k]];
    o2[k] = offsets[perm[k]];
  }
  Params p2 = p;
  p2.seed = PerRow<uint64_t>::array(s2.data());
  p2.offset = PerRow<uint64_t>::array(o2.data());
  const auto t2 = sample_tokens(*ctx_, q, p2);
  for (int64_t k = 0; k < rows; ++k) EXPECT_EQ(t2[k], t[perm[k]]) << "position " << k;

  // each row alone, and each row among other (fresh) rows
  for (int64_t r = 0; r < rows; ++r) {
    Rows one;
    one.rows = 1;
    one.vocab = vocab;
    one.z.assign(b.zr(r), b.zr(r) + vocab);
    one.y.assign(b.yr(r), b.yr(r) + vocab);
    Params p1 = p;
    p1.seed = PerRow<uint64_t>::array(&seeds[r]);
    p1.offset = PerRow<uint64_t>::array(&offsets[r]);
    EXPECT_EQ(sample_tokens(*ctx_, one, p1)[0], t[r]) << "row " << r << " alone";
  }
  Rows fresh = random_rows(g, rows, vocab, 1.0, 0.02);
  const int64_t keep_row = 5;
  std::copy(b.zr(keep_row), b.zr(keep_row) + vocab, fresh.z.begin() + keep_row * vocab);
  std::copy(b.yr(keep_row), b.yr(keep_row) + vocab, fresh.y.begin() + keep_row * vocab);
  EXPECT_EQ(sample_tokens(*ctx_, fresh, p)[keep_row], t[keep_row]);
}

// Uniform rows (z = y = 0): ℓ* is the same for every token, so the token is the
// argmax of the Philox uniforms, predicted here exactly.
TEST_F(sampling, ScalarSeedUsesRowIndexAsSubStream) {
  const int64_t rows = 64, vocab = 1000;
  Rows b;
  b.rows = rows;
  b.vocab = vocab;
  b.z.assign(static_cast<size_t>(rows * vocab), 0.0f);
  b.y = b.z;
  const uint64_t seed = 0x0123456789abcdefULL, offset = 0x100000007ULL;  // both use hi32
  Params p;
  p.seed = seed;
  p.offset = offset;
  const auto ls = align_out(*ctx_, b, p);
  const auto t = sample_tokens(*ctx_, b, p);
  std::set<int32_t> distinct(t.begin(), t.end());
  EXPECT_GE(distinct.size(), 48u) << "identical rows with one seed must draw from different "
                                     "sub-streams";
  for (int64_t r = 0; r < rows; ++r) {
    const Prediction pr = predict(ls.data() + r * vocab, vocab, nullptr, seed, r, offset);
    if (pr.margin > 1e-4) {
      EXPECT_EQ(t[r], pr.token) << "row " << r << ": Philox sub-stream should be " << r;
    }
  }
  // the same rows with a per-row seed array holding the same seed: sub-stream 0
  // for every row, identical rows draw identical tokens
  const std::vector<uint64_t> seeds(rows, seed);
  Params ps = p;
  ps.seed = PerRow<uint64_t>::array(seeds.data());
  const auto t0 = sample_tokens(*ctx_, b, ps);
  const Prediction pr0 = predict(ls.data(), vocab, nullptr, seed, 0, offset);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(t0[r], t0[0]) << "row " << r;
  }
  if (pr0.margin > 1e-4) {
    EXPECT_EQ(t0[0], pr0.token);
  }
}

TEST_F(sampling, OffsetsSelectDifferentStreams) {
  const int64_t rows = 64, vocab = 1000;
  Rows b;
  b.rows = rows;
  b.vocab = vocab;
  b.z.assign(static_cast<size_t>(rows * vocab), 0.0f);
  b.y = b.z;
  const uint64_t seed = 987654321ULL;
  std::vector<uint64_t> seeds(rows, seed), offsets(rows);
  for (int64_t r = 0; r < rows; ++r) offsets[r] = (r % 2 == 0) ? uint64_t(r) : (uint64_t(r) << 32);
  Params p;
  p.seed = PerRow<uint64_t>::array(seeds.data());
  p.offset = PerRow<uint64_t>::array(offsets.data());
  const auto ls = align_out(*ctx_, b, p);
  const auto t = sample_tokens(*ctx_, b, p);
  std::set<int32_t> distinct(t.begin(), t.end());
  EXPECT_GE(distinct.size(), 48u);
  for (int64_t r = 0; r < rows; ++r) {
    const Prediction pr = predict(ls.data() + r * vocab, vocab, nullptr, seed, 0, offsets[r]);
    if (pr.margin > 1e-4) {
      EXPECT_EQ(t[r], pr.token) << "offset " << offsets[r];
    }
  }
  // a scalar offset stepping over calls also changes the stream
  std::set<int32_t> per_call;
  for (uint64_t o = 0; o < 16; ++o) {
    Params q;
    q.seed = seed;
    q.offset = o;
    per_call.insert(sample_tokens(*ctx_, b, q)[0]);
  }
  EXPECT_GE(per_call.size(), 12u);
}

// Random rows: the token is the Gumbel-max of align()'s ℓ* with the SPEC §4 noise,
// except where the top two scores are within 1e-4 (fp32 vs float64 noise).
TEST_F(sampling, TokenIsGumbelMaxOfAlignedLogProbs) {
  std::mt19937_64 g(0xa11ce003ULL);
  const int64_t rows = 64, vocab = 300;
  const Rows b = random_rows(g, rows, vocab, 1.5, 0.05);
  const auto seeds = random_u64(g, rows);
  const auto offsets = random_u64(g, rows);
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    Params p;
    p.seed = PerRow<uint64_t>::array(seeds.data());
    p.offset = PerRow<uint64_t>::array(offsets.data());
    if (variant == 1) {
      p.top_k = 20;
      p.nucleus_source = NucleusSource::kAligned;
    }
    if (variant == 2) {
      p.update = UpdateForm::kLinear;
      p.temperature = 0.7f;
    }
    const auto ls = align_out(*ctx_, b, p);
    std::vector<float> lp;
    const auto t = sample_tokens(*ctx_, b, p, &lp);
    int checked = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float* l = ls.data() + r * vocab;
      const auto q = nucleus_q(p, b.zr(r), b.yr(r), vocab, l);
      const auto cand = candidates(keep_mask(q, mask_of(p), nullptr), l, vocab);
      const Prediction pr = predict(l, vocab, &cand, seeds[r], 0, offsets[r]);
      if (pr.margin > 1e-4) {
        ++checked;
        EXPECT_EQ(t[r], pr.token) << "row " << r;
      }
      ASSERT_GE(t[r], 0);
      ASSERT_LT(t[r], vocab);
      EXPECT_NEAR(lp[r], l[t[r]], 1e-5 * std::max(1.0f, std::fabs(l[t[r]])));
    }
    EXPECT_GE(checked, rows * 9 / 10);
  }
}

// ---------------------------------------------------------------- (b) ---

struct ChiSquareOutcome {
  double stat = 0, p_value = 1;
  int df = 0, kept = 0;
  int64_t outside = 0;
};

// Draws N tokens of one row (N identical rows, per-row seeds — or a fixed seed and
// per-row offsets when vary_offset), and tests them against π* over the candidates.
ChiSquareOutcome chi_square_case(Context& ctx, const Rows& one, Params p, bool vary_offset) {
  const int64_t n = small_scale() ? 5000 : 20000;
  const int64_t vocab = one.vocab;
  ChiSquareOutcome o;
  const auto ls = align_out(ctx, one, p);
  const auto q = nucleus_q(p, one.zr(0), one.yr(0), vocab, ls.data());
  double margin = 0;
  const auto cand = candidates(keep_mask(q, mask_of(p), &margin), ls.data(), vocab);
  EXPECT_GT(margin, 1e-4) << "test setup: a mask decision is too close to its threshold";
  std::vector<double> w(static_cast<size_t>(vocab), 0.0);
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i)
    if (cand[i]) {
      w[i] = std::exp(double(ls[i]));
      total += w[i];
      ++o.kept;
    }
  for (double& x : w) x /= total;

  const Rows b = repeat_row(one, n);
  std::mt19937_64 g(0xc0ffee00ULL + static_cast<uint64_t>(o.kept));
  std::vector<uint64_t> seeds, offsets;
  if (vary_offset) {
    seeds.assign(static_cast<size_t>(n), g());
    offsets.resize(static_cast<size_t>(n));
    for (int64_t r = 0; r < n; ++r) offsets[r] = 1000 + static_cast<uint64_t>(r);
    p.offset = PerRow<uint64_t>::array(offsets.data());
  } else {
    seeds = random_u64(g, static_cast<size_t>(n));
  }
  p.seed = PerRow<uint64_t>::array(seeds.data());
  const auto t = sample_tokens(ctx, b, p);
  std::vector<int64_t> counts(static_cast<size_t>(vocab), 0);
  for (int32_t tok : t) {
    if (tok < 0 || tok >= vocab || !cand[tok])
      ++o.outside;
    else
      ++counts[tok];
  }
  // bins with expected count ≥ 5; the rest pooled (the pool joins the smallest
  // regular bin when its own expectation is below 5)
  std::vector<std::pair<double, double>> bins;  // (expected, observed)
  double pool_e = 0, pool_o = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!cand[i]) continue;
    const double e = w[i] * double(n);
    if (e >= 5)
      bins.emplace_back(e, double(counts[i]));
    else {
      pool_e += e;
      pool_o += double(counts[i]);
    }
  }
  if (pool_e >= 5 || bins.empty()) {
    bins.emplace_back(pool_e, pool_o);
  } else if (pool_e > 0) {
    auto it = std::min_element(bins.begin(), bins.end());
    it->first += pool_e;
    it->second += pool_o;
  }
  for (const auto& bo : bins) o.stat += (bo.second - bo.first) * (bo.second - bo.first) / bo.first;
  o.df = static_cast<int>(bins.size()) - 1;
  o.p_value = o.df > 0 ? chi_square_p_value(o.stat, o.df) : 1.0;
  return o;
}

void expect_fits(const ChiSquareOutcome& o, int min_kept) {
  EXPECT_EQ(o.outside, 0) << "tokens drawn outside the mask / support";
  EXPECT_GE(o.kept, min_kept) << "test setup";
  EXPECT_GE(o.df, 2) << "test setup";
  EXPECT_GT(o.p_value, 1e-4) << "chi2 = " << o.stat << " with " << o.df << " dof";
}

// Sorted log-probs descending.
std::vector<double> sorted_desc(const std::vector<double>& q) {
  std::vector<double> s;
  for (double v : q)
    if (v > -kInf) s.push_back(v);
  std::sort(s.begin(), s.end(), std::greater<double>());
  return s;
}

// top_p keeping exactly the `keep` most probable tokens of q: halfway between the
// mass of the top keep−1 and of the top keep.
float top_p_keeping(const std::vector<double>& q, size_t keep) {
  const auto s = sorted_desc(q);
  double c = 0;
  for (size_t k = 0; k + 1 < keep; ++k) c += std::exp(s[k]);
  return static_cast<float>(c + 0.5 * std::exp(s[keep - 1]));
}

// min_p keeping exactly the `keep` most probable tokens of q.
float min_p_keeping(const std::vector<double>& q, size_t keep) {
  const auto s = sorted_desc(q);
  return static_cast<float>(0.5 * (std::exp(s[keep - 1] - s[0]) + std::exp(s[keep] - s[0])));
}

Rows chi_square_row(uint64_t seed, int64_t vocab) {
  std::mt19937_64 g(seed);
  return random_rows(g, 1, vocab, 0.7);
}

TEST_F(sampling, ChiSquareNoMask) {
  const Rows one = chi_square_row(0xbeef0001ULL, 12);
  Params p;  // defaults: fixed, ratio 2, tilt, T = 1
  expect_fits(chi_square_case(*ctx_, one, p, false), 12);
  p.ratio = 0.5f;
  p.temperature = 0.7f;
  expect_fits(chi_square_case(*ctx_, one, p, true), 12);
}

TEST_F(sampling, ChiSquareTopPOnPrinciple) {
  const Rows one = chi_square_row(0xbeef0002ULL, 16);
  Params p;
  p.ratio = 1.0f;
  p.nucleus_source = NucleusSource::kPrinciple;
  const auto q = log_softmax_over(one.yr(0), one.zr(0), 16, 1.0);
  p.top_p = top_p_keeping(q, 9);
  expect_fits(chi_square_case(*ctx_, one, p, false), 9);
}

TEST_F(sampling, ChiSquareTopPOnAligned) {
  const Rows one = chi_square_row(0xbeef0003ULL, 16);
  Params p;
  p.ratio = 0.5f;
  p.nucleus_source = NucleusSource::kAligned;
  const auto ls = align_out(*ctx_, one, p);
  p.top_p = top_p_keeping(std::vector<double>(ls.begin(), ls.end()), 7);
  expect_fits(chi_square_case(*ctx_, one, p, false), 7);
}

TEST_F(sampling, ChiSquareTopK) {
  const Rows one = chi_square_row(0xbeef0004ULL, 20);
  Params p;
  p.ratio = 1.0f;
  p.top_k = 8;
  p.nucleus_source = NucleusSource::kPrinciple;
  expect_fits(chi_square_case(*ctx_, one, p, false), 8);
  p.nucleus_source = NucleusSource::kAligned;
  p.top_k = 6;
  expect_fits(chi_square_case(*ctx_, one, p, true), 6);
}

TEST_F(sampling, ChiSquareMinP) {
  const Rows one = chi_square_row(0xbeef0005ULL, 16);
  Params p;
  p.ratio = 0.5f;
  p.nucleus_source = NucleusSource::kAligned;
  const auto ls = align_out(*ctx_, one, p);
  p.min_p = min_p_keeping(std::vector<double>(ls.begin(), ls.end()), 8);
  expect_fits(chi_square_case(*ctx_, one, p, false), 8);
  p.nucleus_source = NucleusSource::kPrinciple;
  p.min_p = min_p_keeping(log_softmax_over(one.yr(0), one.zr(0), 16, 1.0), 10);
  expect_fits(chi_square_case(*ctx_, one, p, false), 5);  // π* may clip nothing here
}

TEST_F(sampling, ChiSquareCombinedMasksLinearUpdateAndMinTokens) {
  const Rows one = chi_square_row(0xbeef0006ULL, 20);
  Params p;
  p.update = UpdateForm::kLinear;
  p.ratio = 0.5f;
  p.temperature = 0.8f;
  p.nucleus_source = NucleusSource::kPrinciple;
  const auto q = log_softmax_over(one.yr(0), one.zr(0), 20, 0.8);
  p.top_k = 12;
  p.top_p = top_p_keeping(q, 4);  // top-p keeps 4 ...
  p.min_tokens_to_keep = 6;       // ... min_tokens_to_keep keeps 6
  expect_fits(chi_square_case(*ctx_, one, p, true), 4);
  p.rule = StepRule::kExactKl;
  p.update = UpdateForm::kTilt;
  p.epsilon = 0.2f;
  p.min_tokens_to_keep = 1;
  p.min_p = min_p_keeping(q, 9);
  p.top_p = 1.0f;
  expect_fits(chi_square_case(*ctx_, one, p, false), 5);
}

// ---------------------------------------------------------------- (c) ---

TEST_F(sampling, GreedyPicksArgmaxWithTiesToLowerIndex) {
  std::mt19937_64 g(0xa11ce004ULL);
  Rows b = random_rows(g, 1, 16, 0.5);
  for (int64_t i : {3, 7, 12}) {  // identical (z, y): identical ℓ*, the maximum
    b.z[i] = -1.0f;
    b.y[i] = 4.0f;
  }
  Params p;
  const auto ls = align_out(*ctx_, b, p);
  ASSERT_EQ(std::memcmp(&ls[3], &ls[7], sizeof(float)), 0) << "ℓ* of identical inputs differ";
  ASSERT_EQ(std::memcmp(&ls[3], &ls[12], sizeof(float)), 0) << "ℓ* of identical inputs differ";
  ASSERT_EQ(*std::max_element(ls.begin(), ls.end()), ls[3]);
  p.greedy = true;
  std::vector<float> lp;
  EXPECT_EQ(sample_tokens(*ctx_, b, p, &lp)[0], 3);
  EXPECT_NEAR(lp[0], ls[3], 1e-5 * std::max(1.0f, std::fabs(ls[3])));
  for (NucleusSource src : {NucleusSource::kPrinciple, NucleusSource::kAligned}) {
    Params q = p;
    q.nucleus_source = src;
    q.top_k = 1;
    EXPECT_EQ(sample_tokens(*ctx_, b, q)[0], 3) << "top_k 1, source " << static_cast<int>(src);
    q.top_k = 2;
    EXPECT_EQ(sample_tokens(*ctx_, b, q)[0], 3);
  }
  Params t0;
  t0.temperature = 0.0f;  // T = 0: greedy
  EXPECT_EQ(sample_tokens(*ctx_, b, t0)[0], 3);
  // with the lowest tied token masked out (−inf in y), the next tied one wins
  b.y[3] = -kInfF;
  EXPECT_EQ(sample_tokens(*ctx_, b, p)[0], 7);
}

// q = πᵖ ties at tokens 1, 2, 3; π* prefers 3 > 2 > 1 > 0 among the first four.
//   y = [2, 1.3, 1.3, 1.3, −3, −3] → πᵖ ≈ [0.3995, 0.1984 ×3, 0.0027 ×2]
//   z = [5, 0.3, 0.2, 0.1, −2, −2] → ℓ* ∝ −2z + 3y = [−4, 3.3, 3.5, 3.7, −5, −5]
Rows tie_row() {
  Rows b;
  b.rows = 1;
  b.vocab = 6;
  b.y = {2.0f, 1.3f, 1.3f, 1.3f, -3.0f, -3.0f};
  b.z = {5.0f, 0.3f, 0.2f, 0.1f, -2.0f, -2.0f};
  return b;
}

TEST_F(sampling, GreedyMasksKeepBoundaryTiesAndRankTiesByIndex) {
  const Rows b = tie_row();
  struct Case {
    const char* name;
    float top_p;
    int32_t top_k;
    float min_p;
    int32_t min_keep;
    int32_t want;
  };
  const Case cases[] = {
      {"no mask", 1.0f, 0, 0.0f, 1, 3},
      // mass strictly above tokens 1..3 is 0.3995 < 0.45: all three tied tokens kept
      {"top_p 0.45 keeps the tie", 0.45f, 0, 0.0f, 1, 3},
      {"top_p 0.35", 0.35f, 0, 0.0f, 1, 0},
      {"top_k 2 (ties by index)", 1.0f, 2, 0.0f, 1, 1},
      {"top_k 3", 1.0f, 3, 0.0f, 1, 2},
      {"top_k 1 + min_keep 3", 1.0f, 1, 0.0f, 3, 2},
      {"top_p 0.35 + min_keep 2", 0.35f, 0, 0.0f, 2, 1},
      {"min_p 0.9", 1.0f, 0, 0.9f, 1, 0},
      {"min_p 0.45", 1.0f, 0, 0.45f, 1, 3},
      {"min_p 0.9 + min_keep 4", 1.0f, 0, 0.9f, 4, 3},
      {"top_p 0.45 + top_k 3", 0.45f, 3, 0.0f, 1, 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Params p;
    p.greedy = true;
    p.nucleus_source = NucleusSource::kPrinciple;
    p.top_p = c.top_p;
    p.top_k = c.top_k;
    p.min_p = c.min_p;
    p.min_tokens_to_keep = c.min_keep;
    EXPECT_EQ(sample_tokens(*ctx_, b, p)[0], c.want);
    // sampling stays inside the same kept set
    p.greedy = false;
    const auto keep = keep_mask(log_softmax_over(b.yr(0), b.zr(0), 6, 1.0), mask_of(p), nullptr);
    const Rows many = repeat_row(b, 256);
    std::vector<uint64_t> seeds(256);
    std::iota(seeds.begin(), seeds.end(), uint64_t{77});
    p.seed = PerRow<uint64_t>::array(seeds.data());
    for (int32_t t : sample_tokens(*ctx_, many, p)) {
      ASSERT_TRUE(t >= 0 && t < 6 && keep[t]) << "sampled token " << t << " outside the mask";
    }
  }
}

TEST_F(sampling, MinTokensToKeepOnAlignedSource) {
  const Rows b = tie_row();
  Params p;
  p.greedy = true;
  p.nucleus_source = NucleusSource::kAligned;
  p.top_k = 1;
  EXPECT_EQ(sample_tokens(*ctx_, b, p)[0], 3);
  // sampling: top-k 2 on π* keeps {3, 2}; min_tokens_to_keep 3 adds 1
  p.greedy = false;
  const Rows many = repeat_row(b, 512);
  std::vector<uint64_t> seeds(512);
  std::iota(seeds.begin(), seeds.end(), uint64_t{1});
  p.seed = PerRow<uint64_t>::array(seeds.data());
  p.top_k = 2;
  std::set<int32_t> seen;
  for (int32_t t : sample_tokens(*ctx_, many, p)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int32_t>{2, 3}));
  p.min_tokens_to_keep = 3;
  seen.clear();
  for (int32_t t : sample_tokens(*ctx_, many, p)) seen.insert(t);
  EXPECT_EQ(seen, (std::set<int32_t>{1, 2, 3}));
}

TEST_F(sampling, GreedyIsMaskedArgmaxOnRandomRows) {
  std::mt19937_64 g(0xa11ce005ULL);
  const int64_t rows = 64, vocab = 257;
  const Rows b = random_rows(g, rows, vocab, 2.0, 0.05);
  int checked = 0;
  for (int variant = 0; variant < 5; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    Params p;
    p.greedy = true;
    if (variant == 1) p.top_p = 0.8f;
    if (variant == 2) {
      p.top_k = 5;
      p.nucleus_source = NucleusSource::kAligned;
      p.update = UpdateForm::kLinear;
    }
    if (variant == 3) {
      p.min_p = 0.2f;
      p.top_p = 0.6f;
      p.min_tokens_to_keep = 2;
      p.temperature = 0.6f;
    }
    if (variant == 4) {
      p.rule = StepRule::kTrustRegion;
      p.top_k = 3;
      p.min_tokens_to_keep = 4;
    }
    const auto ls = align_out(*ctx_, b, p);
    std::vector<float> lp;
    const auto t = sample_tokens(*ctx_, b, p, &lp);
    for (int64_t r = 0; r < rows; ++r) {
      const float* l = ls.data() + r * vocab;
      double margin = 0;
      const auto cand = candidates(
          keep_mask(nucleus_q(p, b.zr(r), b.yr(r), vocab, l), mask_of(p), &margin), l, vocab);
      int32_t best = -1;
      float second = -kInfF;
      for (int64_t i = 0; i < vocab; ++i) {
        if (!cand[i]) continue;
        if (best < 0 || l[i] > l[best]) {
          if (best >= 0) second = std::max(second, l[best]);
          best = static_cast<int32_t>(i);
        } else {
          second = std::max(second, l[i]);
        }
      }
      if (margin > 1e-5 && double(l[best]) - second > 1e-5) {
        ++checked;
        EXPECT_EQ(t[r], best) << "row " << r;
        EXPECT_NEAR(lp[r], l[best], 1e-5 * std::max(1.0f, std::fabs(l[best])));
      }
    }
  }
  EXPECT_GE(checked, 5 * rows * 9 / 10);
}

// ---------------------------------------------------------------- (d) ---

TEST_F(sampling, TokenAlwaysBelowVocabWithPaddedStride) {
  std::mt19937_64 g(0xa11ce006ULL);
  for (int64_t vocab : {1, 2, 37, 50257}) {
    const int64_t rows = vocab > 1000 ? 8 : 128;
    const int64_t stride = vocab + 11;
    const Rows dense = random_rows(g, rows, vocab, 1.0, vocab > 2 ? 0.05 : 0.0);
    // padding holds huge finite logits: an argmax that read it would pick it
    std::vector<float> z(static_cast<size_t>(rows * stride), 1e30f), y = z;
    for (int64_t r = 0; r < rows; ++r) {
      std::copy(dense.zr(r), dense.zr(r) + vocab, z.begin() + r * stride);
      std::copy(dense.yr(r), dense.yr(r) + vocab, y.begin() + r * stride);
    }
    const LogitsView v =
        LogitsView::strided(DType::kF32, rows, vocab, z.data(), y.data(), stride, stride);
    const auto seeds = random_u64(g, static_cast<size_t>(rows));
    for (int mode = 0; mode < 4; ++mode) {
      SCOPED_TRACE("V=" + std::to_string(vocab) + " mode " + std::to_string(mode));
      Params p;
      p.seed = PerRow<uint64_t>::array(seeds.data());
      if (mode == 1) p.greedy = true;
      if (mode == 2) p.temperature = 0.0f;
      if (mode == 3) {
        p.top_p = 0.9f;
        p.top_k = 40;
        p.update = UpdateForm::kLinear;
      }
      std::vector<int32_t> t(static_cast<size_t>(rows), -7);
      std::vector<RowDiagnostics> d(static_cast<size_t>(rows));
      ASSERT_EQ(ctx_->sample(v, p, t.data(), nullptr, d.data()), Status::kSuccess)
          << ctx_->last_error();
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_GE(t[r], 0);
        EXPECT_LT(t[r], vocab);
        EXPECT_EQ(d[r].status, linalign::kRowOk);
        if (t[r] >= 0 && t[r] < vocab) {
          EXPECT_TRUE(std::isfinite(dense.zr(r)[t[r]]) && std::isfinite(dense.yr(r)[t[r]]))
              << "token outside S";
        }
      }
    }
  }
}

TEST_F(sampling, MaskedTokensAreNeverSampled) {
  std::mt19937_64 g(0xa11ce007ULL);
  const int64_t vocab = 50;
  Rows one = random_rows(g, 1, vocab, 0.3);
  for (int64_t i = 0; i < vocab; ++i) {
    if (i % 3 == 1) one.z[i] = -kInfF;  // masked in the base context only
    if (i % 5 == 2) one.y[i] = -kInfF;  // masked in the principle context only
  }
  const int64_t n = small_scale() ? 2000 : 5000;
  const Rows b = repeat_row(one, n);
  const auto seeds = random_u64(g, static_cast<size_t>(n));
  for (UpdateForm u : {UpdateForm::kTilt, UpdateForm::kLinear}) {
    Params p;
    p.update = u;
    p.seed = PerRow<uint64_t>::array(seeds.data());
    int64_t bad = 0;
    for (int32_t t : sample_tokens(*ctx_, b, p))
      if (t < 0 || t >= vocab || t % 3 == 1 || t % 5 == 2) ++bad;
    EXPECT_EQ(bad, 0);
  }
}

TEST_F(sampling, TemperatureZeroIsGreedyAtTemperatureOne) {
  std::mt19937_64 g(0xa11ce008ULL);
  const int64_t rows = 32, vocab = 100;
  const Rows b = random_rows(g, rows, vocab, 2.0, 0.05);
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    Params greedy;
    greedy.greedy = true;
    if (variant == 1) greedy.top_p = 0.8f;
    if (variant == 2) {
      greedy.rule = StepRule::kExactKl;
      greedy.top_k = 4;
      greedy.nucleus_source = NucleusSource::kAligned;
    }
    Params t0 = greedy;
    t0.greedy = false;
    t0.temperature = 0.0f;
    t0.seed = uint64_t{99};
    std::vector<float> lp1, lp0;
    std::vector<RowDiagnostics> d1, d0;
    const auto tok1 = sample_tokens(*ctx_, b, greedy, &lp1, &d1);
    const auto tok0 = sample_tokens(*ctx_, b, t0, &lp0, &d0);
    EXPECT_EQ(tok0, tok1);
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_NEAR(lp0[r], lp1[r], 1e-6 * std::max(1.0f, std::fabs(lp1[r])));
      EXPECT_NEAR(d0[r].eta, d1[r].eta, 1e-6 * std::max(1.0f, std::fabs(d1[r].eta)));
      EXPECT_NEAR(d0[r].mu, d1[r].mu, 1e-6 * std::max(1.0f, std::fabs(d1[r].mu)));
      EXPECT_NEAR(d0[r].sigma, d1[r].sigma, 1e-6 * std::max(1.0f, std::fabs(d1[r].sigma)));
      EXPECT_NEAR(d0[r].kl_base, d1[r].kl_base, 1e-6 * std::max(1.0f, d1[r].kl_base));
      EXPECT_NEAR(d0[r].entropy, d1[r].entropy, 1e-6 * std::max(1.0f, d1[r].entropy));
    }
  }
  // per-row temperatures: rows with T = 0 are greedy, the others sample
  std::vector<float> temps(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) temps[r] = r % 2 == 0 ? 0.0f : 1.0f;
  Params mixed;
  mixed.temperature = PerRow<float>::array(temps.data());
  mixed.seed = uint64_t{5};
  Params greedy;
  greedy.greedy = true;
  const auto tg = sample_tokens(*ctx_, b, greedy);
  const auto tm = sample_tokens(*ctx_, b, mixed);
  for (int64_t r = 0; r < rows; r += 2) EXPECT_EQ(tm[r], tg[r]) << "row " << r;
}

}  // namespace
