// The radix selections behind the CUDA backend's mask thresholds (SPEC §3,
// docs/SEMANTICS.md 2), as host/device math (shared by the kernels and the
// CPU tests): the select kernel builds
// the histograms of one pass over a row, and these functions decide the next
// digit. CPU tests run the same functions over whole rows and compare the
// thresholds with a sort (tests/cpu/test_radix_select.cpp).
//
//   top-p: τ = the smallest value v of lq with Σ_{lq_j > v} exp(lq_j) < p.
//          Keys ascending in lq (32 bits, four 8-bit digits from the top);
//          histograms hold the mass in 64-bit fixed point (2⁻⁶² units), so
//          sums are exact integers and do not depend on the order of the
//          atomics. At each level the digit is the smallest d whose mass
//          strictly above (above + Σ_{d' > d} h[d']) is < p. If the whole mass
//          is < p, every token is kept (τ = −inf).
//   rank:  the key of rank ρ in the order (lq desc, index asc), for top-k
//          (ρ = k − 1) and min_tokens_to_keep (ρ = m − 1): MSB radix selection
//          on the 64-bit composite key (~ascending(lq), index), so fp32 ties
//          are broken by the lower index exactly. As soon as the wanted rank
//          is the first of its prefix group, one pass takes the group's
//          minimum composite key instead of more digits.
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"
#include "linalign/math/dtype.hpp"
#include "linalign/math/nucleus.hpp"

namespace linalign {
namespace math {

constexpr int kRadixBins = 256;
// Levels (8-bit digits) of the top-p selection's 32-bit keys.
constexpr int kMassLevels = 4;

// fp32 → uint32 key, ascending with the value; −0 and +0 are one value.
LINALIGN_HD uint32_t ascending_key(float f) {
  if (f == 0.f) f = 0.f;
  const uint32_t b = math::float_to_bits(f);
  return b ^ ((b & 0x80000000u) != 0u ? 0xffffffffu : 0x80000000u);
}
LINALIGN_HD float value_of_ascending_key(uint32_t k) {
  return math::bits_to_float((k & 0x80000000u) != 0u ? (k ^ 0x80000000u) : ~k);
}

// x ∈ [0, 4) in units of 2⁻⁶² (exact: scaling by a power of two, then
// truncation of the fraction below 2⁻⁶²).
LINALIGN_HD uint64_t fixed_point(float x) {
  x = x > 0.f ? x : 0.f;
  x = x < 3.99f ? x : 3.99f;
  return uint64_t(x * 4.611686018427387904e18f);
}
// The top-p mass of a token with log-probability lq (0 for lq = −inf).
LINALIGN_HD uint64_t fixed_mass(float lq) {
  return fixed_point(math::fexp(lq));
}

// Rank order key: ascending composite key = (lq descending, index ascending).
LINALIGN_HD uint64_t composite_key(float lq, int64_t index) {
  return (uint64_t(~ascending_key(lq)) << 32) | uint64_t(uint32_t(index));
}
LINALIGN_HD math::RankKey rank_key_of(uint64_t key) {
  return math::RankKey{value_of_ascending_key(~uint32_t(key >> 32)), int64_t(key & 0xffffffffull)};
}

// ------------------------------------------------------------------ top-p ---

struct MassSelect {
  uint64_t p;       // p in fixed point
  uint64_t above;   // mass of the keys above the current prefix group
  uint32_t prefix;  // digits fixed so far (high bits)
  int32_t level;    // number of digits fixed (0..4)
  int32_t active;   // 1 while selecting (an int: the record has no padding)
  float tau;        // the result once !active (−inf: every token kept / top-p off)
};
static_assert(sizeof(MassSelect) == 8 + 8 + 4 + 4 + 4 + 4, "no padding");

LINALIGN_HD MassSelect mass_select_begin(float top_p) {
  MassSelect s;
  s.p = fixed_point(top_p);
  if (s.p == 0) s.p = 1;  // p below 2⁻⁶²: only the top value group has mass above < p
  s.above = 0;
  s.prefix = 0;
  s.level = 0;
  s.active = top_p < 1.0f ? 1 : 0;
  s.tau = -math::kInf;
  return s;
}

// Whether a token with this key and fixed-point mass enters this pass's
// histogram, and in which bin. Tokens of zero mass never move τ (it sits
// where the mass above jumps), so they are left out.
LINALIGN_HD bool mass_select_match(const MassSelect& s, uint32_t key, uint64_t mass,
                                   uint32_t* digit) {
  *digit = (key >> (24 - 8 * s.level)) & 0xffu;
  if (mass == 0) return false;
  return s.level == 0 || ((key ^ s.prefix) >> (32 - 8 * s.level)) == 0u;
}

// The digit decision of one level, in a form a parallel scan can evaluate
// bin by bin: with above_d = Σ_{d' > d} h[d'] (the mass of this level's bins
// above d), bin d is chosen iff the mass strictly above it is < p and either
// it brings the mass to ≥ p or it is the last bin. Exactly one bin
// qualifies (the sums grow as d falls; `above` < p is an invariant).
LINALIGN_HD bool mass_digit_chosen(const MassSelect& s, int d, uint64_t above_d, uint64_t h_d) {
  const uint64_t run = s.above + above_d;
  return run < s.p && (d == 0 || run + h_d >= s.p);
}
// Before the first digit: the whole mass (total = Σ h) is < p, so every
// token is kept (τ = −inf) and the selection ends.
LINALIGN_HD bool mass_select_keeps_all(const MassSelect& s, uint64_t total) {
  return s.level == 0 && s.above + total < s.p;
}
LINALIGN_HD void mass_select_keep_all(MassSelect& s) {
  s.tau = -math::kInf;
  s.active = 0;
}
// Takes digit d (with its above_d) as this level's.
LINALIGN_HD void mass_select_apply(MassSelect& s, int d, uint64_t above_d) {
  s.prefix |= uint32_t(d) << (24 - 8 * s.level);
  s.above += above_d;
  s.level += 1;
  if (s.level == kMassLevels) {
    s.tau = value_of_ascending_key(s.prefix);
    s.active = 0;
  }
}

// One level from this pass's histogram (kRadixBins bins of mass; any 64-bit
// unsigned bin type), bin by bin from the top.
template <class BinT>
LINALIGN_HD void mass_select_step(MassSelect& s, const BinT* hist) {
  static_assert(sizeof(BinT) == 8, "64-bit fixed-point bins");
  uint64_t total = 0;
  for (int d = 0; d < kRadixBins; ++d) total += uint64_t(hist[d]);
  if (mass_select_keeps_all(s, total)) {
    mass_select_keep_all(s);
    return;
  }
  uint64_t above_d = 0;
  for (int d = kRadixBins - 1; d >= 0; --d) {
    if (mass_digit_chosen(s, d, above_d, uint64_t(hist[d]))) {
      mass_select_apply(s, d, above_d);
      return;
    }
    above_d += uint64_t(hist[d]);
  }
}

// ------------------------------------------------------------ rank select ---

enum RankStage : int32_t { kRankIdle = 0, kRankDigits = 1, kRankMin = 2, kRankDone = 3 };

struct RankSelect {
  uint64_t prefix;  // composite-key digits fixed so far; the key itself once done
  int64_t rank;     // rank still wanted inside the prefix group
  int32_t level;    // 8-bit digits fixed (0..8)
  int32_t stage;    // RankStage
};

// Selection of rank k − 1 (k ≤ 0: nothing to select).
LINALIGN_HD RankSelect rank_select_begin(int64_t k) {
  RankSelect s;
  s.prefix = 0;
  s.rank = k - 1;
  s.level = 0;
  s.stage = k <= 0 ? kRankIdle : k == 1 ? kRankMin : kRankDigits;
  return s;
}
LINALIGN_HD bool rank_select_busy(const RankSelect& s) {
  return s.stage == kRankDigits || s.stage == kRankMin;
}
// After the first pass, with n = |q|: a rank ≥ n does not exist (the mask
// it belongs to is off), so the selection stops.
LINALIGN_HD void rank_select_limit(RankSelect& s, int64_t n) {
  if (rank_select_busy(s) && s.rank >= n) s.stage = kRankIdle;
}
// Whether a token's composite key is in the current prefix group, and its
// digit at the current level (used by the digit stage).
LINALIGN_HD bool rank_select_match(const RankSelect& s, uint64_t key, uint32_t* digit) {
  *digit = s.level < 8 ? uint32_t(key >> (56 - 8 * s.level)) & 0xffu : 0u;
  return s.level == 0 || ((key ^ s.prefix) >> (64 - 8 * s.level)) == 0ull;
}
// The digit decision, bin by bin: with below_d = Σ_{d' < d} h[d'], bin d is
// chosen iff the wanted rank falls inside it (or it is the last bin).
LINALIGN_HD bool rank_digit_chosen(const RankSelect& s, int d, int64_t below_d, uint32_t h_d) {
  return below_d <= s.rank && (d == kRadixBins - 1 || below_d + int64_t(h_d) > s.rank);
}
LINALIGN_HD void rank_select_apply(RankSelect& s, int d, int64_t below_d) {
  s.prefix |= uint64_t(d) << (56 - 8 * s.level);
  s.rank -= below_d;
  s.level += 1;
  if (s.level == 8) {
    s.stage = kRankDone;
  } else if (s.rank == 0) {
    s.stage = kRankMin;  // the first of its group: one minimum pass
  }
}
// One digit from this pass's count histogram.
LINALIGN_HD void rank_select_step(RankSelect& s, const uint32_t* hist) {
  int64_t below_d = 0;
  for (int d = 0; d < kRadixBins; ++d) {
    if (rank_digit_chosen(s, d, below_d, hist[d])) {
      rank_select_apply(s, d, below_d);
      return;
    }
    below_d += hist[d];
  }
}
// The end of a minimum pass: the group's minimum composite key.
LINALIGN_HD void rank_select_take_min(RankSelect& s, uint64_t min_key) {
  s.prefix = min_key;
  s.level = 8;
  s.stage = kRankDone;
}

// The thresholds once the selections are done, with n = |q| and
// lq_max = max lq (math::mask_keep then decides every token).
LINALIGN_HD math::MaskThresholds mask_thresholds(const MassSelect& p, const RankSelect& topk,
                                                 const RankSelect& keep, int64_t n, float lq_max,
                                                 int32_t top_k, float min_p, int32_t min_keep) {
  math::MaskThresholds t;
  t.tau_p = p.tau;
  t.lq_max = lq_max;
  t.min_p = min_p;
  t.has_topk = top_k > 0 && int64_t(top_k) < n;
  t.has_keep = int64_t(min_keep) < n;
  t.kth = t.has_topk ? rank_key_of(topk.prefix) : math::RankKey{0.f, 0};
  t.keep_last = t.has_keep ? rank_key_of(keep.prefix) : math::RankKey{0.f, 0};
  return t;
}

// ------------------------------------------------------ one row's passes ---

// Passes any row needs: top-p fixes 4 digits, one per pass; a rank selection
// fixes ≤ 8 digits, or j < 8 digits and then one minimum pass (≤ 8 in all);
// all selections of a row run in the same passes. The kernels launch this
// many passes and rows that are done skip the rest.
constexpr int kMaxSelectPasses = 8;

// Every selection of one row between passes.
struct SelectState {
  MassSelect top_p;
  RankSelect rank[2];  // 0: top-k (rank k − 1), 1: min_tokens_to_keep (rank m − 1)
  int64_t n;           // |q|, once the first pass is done
  float lq_max;        // max lq, once the first pass is done
  uint32_t unused;     // (no padding: the kernels copy the record word by word)
};
static_assert(sizeof(SelectState) == sizeof(MassSelect) + 2 * sizeof(RankSelect) + 8 + 4 + 4,
              "no padding");

LINALIGN_HD SelectState select_begin(float top_p, int32_t top_k, int32_t min_keep) {
  SelectState s;
  s.top_p = mass_select_begin(top_p);
  s.rank[0] = rank_select_begin(top_k);
  s.rank[1] = rank_select_begin(min_keep);
  s.n = 0;
  s.lq_max = -math::kInf;
  s.unused = 0;
  return s;
}
LINALIGN_HD bool select_busy(const SelectState& s) {
  return s.top_p.active || rank_select_busy(s.rank[0]) || rank_select_busy(s.rank[1]);
}

// What one token (lq > −inf for a candidate, any lq otherwise; index i)
// contributes to a pass's histograms.
struct SelectVote {
  bool mass_on;  // top-p bin mass_digit gets `mass`
  uint32_t mass_digit;
  uint64_t mass;
  bool rank_on[2];  // rank selection q: a count in rank_digit[q] (digit stage)
  uint32_t rank_digit[2];
  bool min_on[2];  // ... or a candidate for the minimum `key` (minimum stage)
  uint64_t key;    // composite key (lq desc, index asc)
};
LINALIGN_HD SelectVote select_vote(const SelectState& s, float lq, int64_t i) {
  SelectVote v;
  const bool valid = lq > -math::kInf;
  v.mass = valid && s.top_p.active ? fixed_mass(lq) : 0;
  v.mass_digit = 0;
  v.mass_on = valid && s.top_p.active &&
              mass_select_match(s.top_p, ascending_key(lq), v.mass, &v.mass_digit);
  v.key = composite_key(lq, i);
  for (int q = 0; q < 2; ++q) {
    v.rank_digit[q] = 0;
    const bool match = valid && rank_select_busy(s.rank[q]) &&
                       rank_select_match(s.rank[q], v.key, &v.rank_digit[q]);
    v.rank_on[q] = match && s.rank[q].stage == kRankDigits;
    v.min_on[q] = match && s.rank[q].stage == kRankMin;
  }
  return v;
}

// One pass's histograms of one row, summed over the whole row. The kernels
// keep one per row in the workspace (zeroed before the first pass) and add
// every block's partial histograms with integer atomics, so the sums do not
// depend on the order of the blocks; the minima are kept complemented
// (max of ~key) so that zero means "none".
struct SelectBins {
  uint64_t mass[kRadixBins];
  uint32_t count[2][kRadixBins];
  uint64_t inv_min_key[2];  // ~(minimum composite key); 0: none
  uint64_t n;               // first pass: tokens with lq > −inf
  uint32_t max_key;         // first pass: max ascending_key(lq) over them; 0: none
  uint32_t done;            // kernels: blocks of the row done with this pass
  uint32_t candidates;      // first pass: tokens gathered as candidates (even past capacity)
  uint32_t unused;
};
// A row's selection in the CUDA workspace.
struct SelectRow {
  SelectState state;
  SelectBins bins;
};

LINALIGN_HD void select_add(SelectBins& b, const SelectVote& v) {
  if (v.mass_on) b.mass[v.mass_digit] += v.mass;
  for (int q = 0; q < 2; ++q) {
    if (v.rank_on[q]) b.count[q][v.rank_digit[q]] += 1;
    if (v.min_on[q] && ~v.key > b.inv_min_key[q]) b.inv_min_key[q] = ~v.key;
  }
}

// The end of the first pass: |q| and lq_max; a rank ≥ |q| does not exist.
LINALIGN_HD void select_first_pass_done(SelectState& s, uint64_t n, uint32_t max_key) {
  s.n = int64_t(n);
  s.lq_max = n > 0 ? value_of_ascending_key(max_key) : -math::kInf;
  rank_select_limit(s.rank[0], s.n);
  rank_select_limit(s.rank[1], s.n);
}

// The end of a pass over the whole row's histograms (sequentially; the
// kernels evaluate the same digit decisions bin by bin in parallel).
LINALIGN_HD void select_pass_done(SelectState& s, const SelectBins& b, bool first) {
  if (first) select_first_pass_done(s, b.n, b.max_key);
  if (s.top_p.active) mass_select_step(s.top_p, b.mass);
  for (int q = 0; q < 2; ++q) {
    if (!rank_select_busy(s.rank[q])) continue;
    if (s.rank[q].stage == kRankDigits) {
      rank_select_step(s.rank[q], b.count[q]);
    } else {
      rank_select_take_min(s.rank[q], ~b.inv_min_key[q]);
    }
  }
}

LINALIGN_HD math::MaskThresholds select_thresholds(const SelectState& s, int32_t top_k, float min_p,
                                                   int32_t min_keep) {
  return mask_thresholds(s.top_p, s.rank[0], s.rank[1], s.n, s.lq_max, top_k, min_p, min_keep);
}

// ------------------------------------------- selection from candidates ---
//
// Top-p needs four passes over the row, one digit each — unless the tokens
// that can matter are few and gathered in the first. Which can matter:
// let τ be the top-p threshold, M the row's total fixed-point mass (the sum
// of the first pass's mass histogram, exact) and n = |q|. The tokens with
// lq ≤ τ carry M − (mass strictly above τ) > M − p, and there are at most n
// of them, each of mass ≤ mass(τ) (fixed_mass is monotone in lq); so
//   mass(τ) > (M − p) / n,
// and every token with lq ≥ τ has mass ≥ c for any c ≤ ⌊(M − p) / n⌋. The
// candidates — the tokens of mass ≥ c — are then an upper set of the rank
// order holding every token with lq ≥ τ, and the selections run over them
// take exactly the decisions they take over the whole row:
//   * top-p, at each level: the bins above the chosen one hold only tokens
//     above τ (all candidates, identical sums); the chosen bin still brings
//     the running mass to ≥ p (the tokens with lq ≥ τ alone do); so the same
//     digit qualifies first;
//   * a rank selection of rank ρ < |candidates|: the tokens ranked at or
//     before ρ are candidates, so the counts up to the chosen bin, and each
//     group's minimum key, are identical.
// |q| and lq_max come from the first pass over the whole row. The first
// pass gathers with c fixed before M and n are known (a lower bound from
// |S| ≥ n and M ≥ 1 − 2⁻¹⁰ of the unit, see candidate_min_mass); its last
// block checks the bound with the exact M and n (candidates_suffice) and
// otherwise the passes go on over the whole row as before — the result is
// the same either way, only the work differs.

// A gathered candidate (the CUDA workspace: [B × capacity]).
struct Candidate {
  float lq;
  int32_t index;
  float score;  // the draw's score ℓ* (+ Gumbel noise), −inf when ℓ* = −inf
};

// The gathering threshold c of a row: ⌊((1 − 2⁻¹⁰) − p) / n_bound⌋ in fixed
// point (0 — gather nothing useful — when p is that close to 1), with
// n_bound ≥ |q| (the plan's |S|).
LINALIGN_HD uint64_t candidate_min_mass(float top_p, int64_t n_bound) {
  const float share = (0.9990234375f - top_p) / float(n_bound > 0 ? n_bound : 1);
  return share > 0.f ? fixed_point(share) : 0;
}

// Whether the candidates gathered with threshold c (n_cand of them, all
// stored when n_cand ≤ capacity) decide the row: top-p on, the bound holds
// for the exact total mass and |q|, and every busy rank selection's rank
// lies among them.
LINALIGN_HD bool candidates_suffice(const SelectState& first, uint64_t total_mass, uint64_t c,
                                    uint64_t n_cand, uint64_t capacity, int32_t top_k,
                                    int32_t min_keep) {
  const MassSelect& p = first.top_p;
  if (c == 0 || n_cand == 0 || n_cand > capacity || first.n <= 0) return false;
  if (total_mass <= p.p || (total_mass - p.p) / uint64_t(first.n) < c) return false;
  for (int q = 0; q < 2; ++q) {
    const int64_t wanted = int64_t(q == 0 ? top_k : min_keep) - 1;
    if (rank_select_busy(first.rank[q]) && wanted >= int64_t(n_cand)) return false;
  }
  return true;
}

// ------------------------------------------------------- the CPU backend ---

// One candidate of a CPU row: fp32 log-probability under the nucleus source,
// token index, and its top-p mass in fixed point (computed once).
struct SelectEntry {
  float lq;
  int32_t index;
  uint64_t mass;
};

inline SelectEntry select_entry(float lq, int64_t index) {
  return SelectEntry{lq, int32_t(index), fixed_mass(lq)};
}

// The thresholds of SPEC §3's masks over the n candidates e[0..n) (each with
// lq > −inf, any order; the buffer is permuted): the same selections, digit by digit, as the CUDA
// select kernel — one pass over the candidates per level — so both backends
// keep exactly the same set for the same lq (exact fixed-point top-p mass, no
// order-dependent float sums).
inline math::MaskThresholds radix_thresholds(SelectEntry* e, int64_t n, float top_p, int32_t top_k,
                                             float min_p, int32_t min_keep) {
  SelectState s = select_begin(top_p, top_k, min_keep);
  uint32_t max_key = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t k = ascending_key(e[i].lq);
    max_key = k > max_key ? k : max_key;
  }
  select_first_pass_done(s, uint64_t(n), max_key);
  // The top-p selection only ever looks inside its current prefix group, so
  // after each level the matching candidates are moved to the front, e[0, m):
  // later mass passes touch a shrinking group (the rank selections scan all n
  // candidates in any order, so the permutation does not matter to them).
  int64_t m = n;
  for (int pass = 0; pass < kMaxSelectPasses && select_busy(s); ++pass) {
    const bool busy[2] = {rank_select_busy(s.rank[0]), rank_select_busy(s.rank[1])};
    SelectBins bins{};
    uint32_t d;
    if (s.top_p.active) {
      for (int64_t i = 0; i < m; ++i)
        if (mass_select_match(s.top_p, ascending_key(e[i].lq), e[i].mass, &d))
          bins.mass[d] += e[i].mass;
    }
    if (busy[0] || busy[1]) {
      for (int64_t i = 0; i < n; ++i) {
        const uint64_t ck = composite_key(e[i].lq, e[i].index);
        for (int q = 0; q < 2; ++q) {
          if (!busy[q] || !rank_select_match(s.rank[q], ck, &d)) continue;
          if (s.rank[q].stage == kRankDigits) {
            ++bins.count[q][d];
          } else if (~ck > bins.inv_min_key[q]) {
            bins.inv_min_key[q] = ~ck;
          }
        }
      }
    }
    select_pass_done(s, bins, false);  // the first pass's |q| and lq_max are set above
    if (s.top_p.active) {
      int64_t k = 0;
      for (int64_t i = 0; i < m; ++i) {
        if (mass_select_match(s.top_p, ascending_key(e[i].lq), e[i].mass, &d)) {
          const SelectEntry t = e[k];
          e[k++] = e[i];
          e[i] = t;
        }
      }
      m = k;
    }
  }
  return select_thresholds(s, top_k, min_p, min_keep);
}

}  // namespace math
}  // namespace linalign
