// The CUDA select kernel's threshold search (math/radix_select.hpp), run on
// the CPU pass by pass as kernels/select_kernel.cuh runs it (per-slice
// histograms from the same per-token votes, added up, then the digit
// decisions; the first pass also counting |q| and lq_max), against the mask of docs/SEMANTICS.md 2
// computed here by a full sort in double. Rows with many exact fp32 ties, −inf tokens, one-hot rows
// and the parameter edges (top_k ≥ |q|, min_keep ≥ |q|, p tiny, p = 1).

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "launch_policy.hpp"
#include "linalign/linalign.hpp"
#include "linalign/math/nucleus.hpp"
#include "linalign/math/partition.hpp"
#include "linalign/math/radix_select.hpp"

namespace {

namespace h = linalign::host;
namespace sel = linalign::math;
namespace m = linalign::math;

constexpr float kInfF = std::numeric_limits<float>::infinity();

struct SelectRun {
  m::MaskThresholds th;
  int64_t n;
  int passes;
};

// Adds a slice's histograms into the row's (the kernels' integer atomics).
void add_bins(sel::SelectBins& to, const sel::SelectBins& from) {
  for (int d = 0; d < sel::kRadixBins; ++d) {
    to.mass[d] += from.mass[d];
    to.count[0][d] += from.count[0][d];
    to.count[1][d] += from.count[1][d];
  }
  for (int q = 0; q < 2; ++q) to.inv_min_key[q] = std::max(to.inv_min_key[q], from.inv_min_key[q]);
  to.n += from.n;
  to.max_key = std::max(to.max_key, from.max_key);
}

// The select kernel's passes, sequentially: each pass builds the histograms
// of every vocabulary slice of the row from the same per-token votes, adds
// them up, and takes the digit decisions (select_pass_done).
SelectRun run_select(const std::vector<float>& lq, float top_p, int32_t top_k, float min_p,
                     int32_t min_keep, int64_t slices = 3) {
  sel::SelectState s = sel::select_begin(top_p, top_k, min_keep);
  const int64_t V = int64_t(lq.size());
  int passes = 0;
  for (int pass = 0; pass < sel::kMaxSelectPasses && sel::select_busy(s); ++pass) {
    sel::SelectBins total{};
    for (int64_t sl = 0; sl < slices; ++sl) {
      const m::Span span = m::slice_span(V, slices, sl, 4);
      sel::SelectBins part{};
      for (int64_t i = span.begin; i < span.end; ++i) {
        sel::select_add(part, sel::select_vote(s, lq[size_t(i)], i));
        if (pass == 0 && lq[size_t(i)] > -kInfF) {
          part.n += 1;
          part.max_key = std::max(part.max_key, sel::ascending_key(lq[size_t(i)]));
        }
      }
      add_bins(total, part);
    }
    sel::select_pass_done(s, total, pass == 0);
    ++passes;
  }
  EXPECT_FALSE(sel::select_busy(s)) << "still selecting after kMaxSelectPasses passes";
  return SelectRun{sel::select_thresholds(s, top_k, min_p, min_keep), s.n, passes};
}

struct Entry {
  float lq;
  int64_t index;
};

// SEMANTICS 2 by a full sort, masses in double.
std::vector<char> reference_kept(const std::vector<float>& lq, float top_p, int32_t top_k,
                                 float min_p, int32_t min_keep, std::vector<Entry>* sorted) {
  std::vector<Entry> e;
  for (size_t i = 0; i < lq.size(); ++i)
    if (lq[i] > -kInfF) e.push_back(Entry{lq[i], int64_t(i)});
  std::sort(e.begin(), e.end(), [](const Entry& a, const Entry& b) {
    return a.lq > b.lq || (a.lq == b.lq && a.index < b.index);
  });
  std::vector<char> kept(lq.size(), 0);
  double above = 0;
  const float lq_max = e.empty() ? -kInfF : e[0].lq;
  for (size_t j = 0; j < e.size();) {
    size_t j2 = j;
    double group = 0;
    while (j2 < e.size() && e[j2].lq == e[j].lq) group += std::exp(double(e[j2++].lq));
    const bool keep_p = top_p >= 1.0f || above < double(top_p);
    for (size_t q = j; q < j2; ++q) {
      const bool keep_k = top_k <= 0 || int64_t(q) < top_k;
      const bool keep_min = min_p <= 0.f || std::exp(e[q].lq - lq_max) >= min_p;
      const bool forced = int64_t(q) < min_keep;
      kept[size_t(e[q].index)] = char(((keep_p && keep_k && keep_min) || forced) ? 1 : 0);
    }
    above += group;
    j = j2;
  }
  *sorted = e;
  return kept;
}

// log_softmax in float of raw logits (−inf stays −inf).
std::vector<float> log_softmax(const std::vector<float>& x) {
  double mx = -kInfF;
  for (float v : x) mx = std::max(mx, double(v));
  double s = 0;
  for (float v : x)
    if (v > -kInfF) s += std::exp(double(v) - mx);
  const double lse = mx + std::log(s);
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] > -kInfF ? float(double(x[i]) - lse) : -kInfF;
  return out;
}

enum class Shape { kNormal, kTies, kOneHot, kConstant, kMasked };

std::vector<float> make_row(Shape shape, int64_t V, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 3.f);
  std::vector<float> x(static_cast<size_t>(V));
  for (auto& v : x) v = nd(rng);
  switch (shape) {
    case Shape::kNormal:
      break;
    case Shape::kTies:  // bf16-like coarse values: many exact ties
      for (auto& v : x) v = std::round(v * 2.f) / 2.f;
      break;
    case Shape::kOneHot:
      for (auto& v : x) v = -30.f;
      x[size_t(V / 2)] = 30.f;
      break;
    case Shape::kConstant:
      for (auto& v : x) v = 1.5f;
      break;
    case Shape::kMasked:
      for (size_t i = 0; i < x.size(); ++i)
        if (i % 3 == 1) x[i] = -kInfF;
      break;
  }
  return log_softmax(x);
}

TEST(RadixSelect, KeysOrderLikeFloats) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 10.f);
  std::vector<float> v = {0.f, -0.f, 1e-40f, -1e-40f, 3.f, -3.f, -kInfF, kInfF};
  for (int i = 0; i < 1000; ++i) v.push_back(nd(rng));
  for (float a : v)
    for (float b : {v[0], v[3], v[5], v[10], v[100]}) {
      EXPECT_EQ(a < b, sel::ascending_key(a) < sel::ascending_key(b)) << a << " " << b;
      EXPECT_EQ(a == b, sel::ascending_key(a) == sel::ascending_key(b)) << a << " " << b;
    }
  for (float a : v) {
    if (a == 0.f) continue;
    EXPECT_EQ(sel::value_of_ascending_key(sel::ascending_key(a)), a);
  }
  // composite key order is the rank order (lq desc, index asc)
  for (int i = 0; i < 200; ++i) {
    const float a = v[size_t(i)], b = v[size_t(i + 1)];
    const int64_t ia = i % 7, ib = i % 5;
    EXPECT_EQ(m::rank_before(a, ia, b, ib), sel::composite_key(a, ia) < sel::composite_key(b, ib));
  }
  const m::RankKey k = sel::rank_key_of(sel::composite_key(-2.5f, 12345));
  EXPECT_EQ(k.lq, -2.5f);
  EXPECT_EQ(k.index, 12345);
}

TEST(RadixSelect, ThresholdsKeepTheSameSetAsASort) {
  std::mt19937 rng(1234);
  const int64_t vocabs[] = {1, 2, 3, 37, 1000, 32001};
  const float top_ps[] = {1.0f, 0.95f, 0.8f, 0.5f, 1e-3f, 1e-30f};
  const float min_ps[] = {0.f, 0.05f, 1.f};
  int checked = 0;
  for (int64_t V : vocabs) {
    const int32_t top_ks[] = {0, 1, 2, 5, 50, int32_t(V - 1), int32_t(V), int32_t(V + 3)};
    const int32_t keeps[] = {1, 2, 7, int32_t(V), int32_t(V + 1)};
    for (Shape shape :
         {Shape::kNormal, Shape::kTies, Shape::kOneHot, Shape::kConstant, Shape::kMasked}) {
      const std::vector<float> lq = make_row(shape, V, rng);
      for (float top_p : top_ps)
        for (int32_t top_k : top_ks)
          for (float min_p : min_ps)
            for (int32_t keep : keeps) {
              if (V > 1000 && (min_p == 0.05f || keep == 7 || top_k == 2 || top_k == 5 ||
                               top_k == int32_t(V + 3)))
                continue;                                       // keep the run short
              if (m::masks_off(top_p, top_k, min_p)) continue;  // the kernel skips such rows
              const SelectRun run = run_select(lq, top_p, top_k, min_p, keep);
              std::vector<Entry> sorted;
              const std::vector<char> want = reference_kept(lq, top_p, top_k, min_p, keep, &sorted);
              ASSERT_EQ(run.n, int64_t(sorted.size()));
              ASSERT_LE(run.passes, sel::kMaxSelectPasses);
              linalign::Params params;  // the CUDA backend launches this many passes
              params.top_p = top_p;
              params.top_k = top_k;
              params.min_p = min_p;
              params.min_tokens_to_keep = keep;
              ASSERT_LE(run.passes, h::select_passes(params))
                  << "top_p=" << top_p << " top_k=" << top_k << " keep=" << keep;
              if (run.th.has_topk) {
                EXPECT_EQ(run.th.kth.lq, sorted[size_t(top_k - 1)].lq);
                EXPECT_EQ(run.th.kth.index, sorted[size_t(top_k - 1)].index);
              }
              if (run.th.has_keep) {
                EXPECT_EQ(run.th.keep_last.lq, sorted[size_t(keep - 1)].lq);
                EXPECT_EQ(run.th.keep_last.index, sorted[size_t(keep - 1)].index);
              }
              for (size_t i = 0; i < lq.size(); ++i) {
                if (!(lq[i] > -kInfF)) continue;
                const bool got = m::mask_keep(run.th, lq[i], int64_t(i));
                ASSERT_EQ(got, want[i] != 0)
                    << "V=" << V << " shape=" << int(shape) << " top_p=" << top_p
                    << " top_k=" << top_k << " min_p=" << min_p << " keep=" << keep << " token "
                    << i << " lq=" << lq[i] << " tau=" << run.th.tau_p;
              }
              ++checked;
            }
    }
  }
  EXPECT_GT(checked, 1000);
}

// The bin-by-bin digit decisions the kernel evaluates in parallel choose
// exactly one bin, the one the sequential step takes.
// The select kernel's first pass with candidates (radix_select.hpp,
// "selection from candidates"): the whole row once (|q|, lq_max, the first
// digit, the total mass), the tokens of mass ≥ c gathered; when they
// suffice, the remaining digits over them alone. *used tells which path ran.
SelectRun run_select_candidates(const std::vector<float>& lq, float top_p, int32_t top_k,
                                float min_p, int32_t min_keep, uint64_t capacity, bool* used) {
  sel::SelectState s = sel::select_begin(top_p, top_k, min_keep);
  const uint64_t c = sel::candidate_min_mass(top_p, int64_t(lq.size()));
  sel::SelectBins first{};
  std::vector<sel::Candidate> cand;
  for (size_t i = 0; i < lq.size(); ++i) {
    const sel::SelectVote v = sel::select_vote(s, lq[i], int64_t(i));
    sel::select_add(first, v);
    if (lq[i] > -kInfF) {
      first.n += 1;
      first.max_key = std::max(first.max_key, sel::ascending_key(lq[i]));
      if (s.top_p.active && v.mass >= c) cand.push_back(sel::Candidate{lq[i], int32_t(i), 0.f});
    }
  }
  uint64_t total = 0;
  for (int d = 0; d < sel::kRadixBins; ++d) total += first.mass[d];
  sel::select_pass_done(s, first, true);
  *used = sel::select_busy(s) &&
          sel::candidates_suffice(s, total, c, cand.size(), capacity, top_k, min_keep);
  int passes = 1;
  for (; passes < sel::kMaxSelectPasses && sel::select_busy(s); ++passes) {
    sel::SelectBins bins{};
    if (*used) {
      for (const sel::Candidate& e : cand)
        sel::select_add(bins, sel::select_vote(s, e.lq, e.index));
    } else {
      for (size_t i = 0; i < lq.size(); ++i)
        sel::select_add(bins, sel::select_vote(s, lq[i], int64_t(i)));
    }
    sel::select_pass_done(s, bins, false);
  }
  EXPECT_FALSE(sel::select_busy(s));
  return SelectRun{sel::select_thresholds(s, top_k, min_p, min_keep), s.n, passes};
}

// The candidates decide exactly what the whole row decides — the same
// thresholds, field by field — whenever candidates_suffice says so, and
// they suffice for the usual rows (top-p below 0.999, not flat).
TEST(RadixSelect, CandidatesDecideLikeTheWholeRow) {
  std::mt19937 rng(99);
  int used_count = 0, checked = 0;
  for (int64_t V : {2, 37, 1000, 32001})
    for (Shape shape :
         {Shape::kNormal, Shape::kTies, Shape::kOneHot, Shape::kConstant, Shape::kMasked})
      for (float top_p : {0.99f, 0.9f, 0.5f, 1e-3f})
        for (int32_t top_k : {0, 1, 20, int32_t(V)})
          for (int32_t keep : {1, 3, int32_t(V)})
            for (uint64_t capacity : {uint64_t(16), uint64_t(1) << 20}) {
              const std::vector<float> lq = make_row(shape, V, rng);
              const SelectRun full = run_select(lq, top_p, top_k, 0.f, keep);
              bool used = false;
              const SelectRun cand =
                  run_select_candidates(lq, top_p, top_k, 0.f, keep, capacity, &used);
              used_count += used ? 1 : 0;
              ++checked;
              const auto where = [&]() {
                return "V=" + std::to_string(V) + " shape=" + std::to_string(int(shape)) +
                       " p=" + std::to_string(top_p) + " k=" + std::to_string(top_k) +
                       " keep=" + std::to_string(keep) + " cap=" + std::to_string(capacity) +
                       (used ? " (candidates)" : " (whole row)");
              };
              ASSERT_EQ(cand.n, full.n) << where();
              ASSERT_EQ(cand.th.tau_p, full.th.tau_p) << where();
              ASSERT_EQ(cand.th.lq_max, full.th.lq_max) << where();
              ASSERT_EQ(cand.th.has_topk, full.th.has_topk) << where();
              ASSERT_EQ(cand.th.has_keep, full.th.has_keep) << where();
              if (full.th.has_topk) {
                ASSERT_EQ(cand.th.kth.lq, full.th.kth.lq) << where();
                ASSERT_EQ(cand.th.kth.index, full.th.kth.index) << where();
              }
              if (full.th.has_keep) {
                ASSERT_EQ(cand.th.keep_last.lq, full.th.keep_last.lq) << where();
                ASSERT_EQ(cand.th.keep_last.index, full.th.keep_last.index) << where();
              }
            }
  EXPECT_GT(used_count, checked / 4) << "the candidates should decide most rows";
  EXPECT_LT(used_count, checked) << "and the tiny capacity must send some to the whole row";
}

TEST(RadixSelect, DigitDecisionsChooseExactlyOneBin) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint64_t> mass(sel::kRadixBins, 0);
    std::vector<uint32_t> count(sel::kRadixBins, 0);
    const int busy_bins = 1 + int(rng() % 6);
    uint64_t total_mass = 0;
    int64_t total_count = 0;
    for (int j = 0; j < busy_bins; ++j) {
      const size_t d = size_t(rng() % sel::kRadixBins);
      const uint64_t add = (rng() >> 4) % (uint64_t(1) << 60);
      mass[d] += add;
      total_mass += add;
      const uint32_t c = uint32_t(1 + rng() % 1000);
      count[d] += c;
      total_count += c;
    }
    sel::MassSelect ms = sel::mass_select_begin(0.5f);
    ms.p = 1 + rng() % (total_mass + total_mass / 4 + 1);  // sometimes above the whole mass
    sel::RankSelect rs = sel::rank_select_begin(2);
    rs.rank = int64_t(rng() % uint64_t(total_count));
    // mass: bins from the top
    int chosen = 0, chosen_d = -1;
    uint64_t above = 0;
    for (int d = sel::kRadixBins - 1; d >= 0; --d) {
      if (sel::mass_digit_chosen(ms, d, above, mass[size_t(d)])) {
        ++chosen;
        chosen_d = d;
      }
      above += mass[size_t(d)];
    }
    if (!sel::mass_select_keeps_all(ms, total_mass)) {
      ASSERT_EQ(chosen, 1) << "trial " << trial;
      sel::MassSelect seq = ms;
      sel::mass_select_step(seq, mass.data());
      EXPECT_EQ(seq.prefix >> 24, uint32_t(chosen_d));
    }
    chosen = 0;
    int64_t below = 0;
    for (int d = 0; d < sel::kRadixBins; ++d) {
      if (sel::rank_digit_chosen(rs, d, below, count[size_t(d)])) {
        ++chosen;
        chosen_d = d;
      }
      below += count[size_t(d)];
    }
    ASSERT_EQ(chosen, 1) << "trial " << trial;
    sel::RankSelect seq = rs;
    sel::rank_select_step(seq, count.data());
    EXPECT_EQ(int(seq.prefix >> 56), chosen_d);
  }
}

TEST(RadixSelect, PassCounts) {
  std::mt19937 rng(99);
  const std::vector<float> lq = make_row(Shape::kNormal, 32000, rng);
  EXPECT_EQ(run_select(lq, 1.0f, 0, 0.1f, 1).passes, 1);  // min-p: max + rank 0 in one pass
  EXPECT_LE(run_select(lq, 0.9f, 0, 0.f, 1).passes, 4);   // top-p: four digits
  EXPECT_LE(run_select(lq, 0.9f, 50, 0.f, 1).passes, 6);  // + top-k
}

}  // namespace
