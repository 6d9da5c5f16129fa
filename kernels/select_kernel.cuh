// Mask thresholds of SPEC §3 / docs/SEMANTICS.md 2 without a sort: the radix
// selections of math/radix_select.hpp (top-p τ, the top-k key, the
// min_tokens_to_keep key) over the fp32 bit patterns of lq, the
// log-probabilities of the nucleus source q, run as passes over the row.
//
// SelectPassKernel (slice, row) is one pass: every block of the same
// vocabulary slices as the other sweeps reads its slice (from L2: the group
// of rows was just read by the stats sweep), builds the pass's histograms in
// shared memory, and adds them to the row's histograms in the workspace with
// integer atomics (fixed-point mass, counts, complemented minima), so the
// sums do not depend on the order of the blocks. The last block of a row to
// finish (a counter per row; the threadfence-reduction pattern) takes the
// digit decisions, stores the row's new state and clears the histograms for
// the next pass; the row's RowMask is written when its selections are done.
// launch_call launches the host's select_passes(params) ≤ kMaxSelectPasses
// passes (enough for the selections that are on); rows that are done return
// at once. Every SM works on every pass whatever the batch size (B = 1 with
// 125 slices at V = 128256), and the decisions take one block-wide scan, not
// a serial walk over the bins.
//
// Histograms: warp-aggregated shared-memory atomics (one atomic per distinct
// digit per warp) keep the first passes — where most tokens share a few
// exponents — fast. The walk is uniform (every thread runs every step, with
// empty slots), so the warp collectives are made by whole warps.
#pragma once

#include "device.cuh"
#include "linalign/math/radix_select.hpp"

namespace linalign {
namespace kernels {

__device__ __forceinline__ void warp_add_count(unsigned* hist, bool on, unsigned digit) {
  const int lane = int(threadIdx.x & 31u);
  unsigned pending = __ballot_sync(kFullMask, on);
  while (pending != 0u) {  // uniform: a ballot gives every lane the same value
    const int leader = __ffs(int(pending)) - 1;
    const unsigned d = __shfl_sync(kFullMask, digit, leader);
    const unsigned group = __ballot_sync(kFullMask, on && digit == d);
    if (lane == leader) atomicAdd(&hist[d], unsigned(__popc(int(group))));
    pending &= ~group;
  }
}

__device__ __forceinline__ void warp_add_mass(unsigned long long* hist, bool on, unsigned digit,
                                              unsigned long long mass) {
  const int lane = int(threadIdx.x & 31u);
  unsigned pending = __ballot_sync(kFullMask, on);
  while (pending != 0u) {
    const int leader = __ffs(int(pending)) - 1;
    const unsigned d = __shfl_sync(kFullMask, digit, leader);
    const bool mine = on && digit == d;
    const unsigned group = __ballot_sync(kFullMask, mine);
    unsigned long long sum = mine ? mass : 0ull;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(kFullMask, sum, off);
    if (lane == leader) atomicAdd(&hist[d], sum);
    pending &= ~group;
  }
}

// Keeps the complement of the minimum key (max of ~key; 0: none).
__device__ __forceinline__ void warp_max_inv_key(unsigned long long* dst, bool on,
                                                 unsigned long long key) {
  unsigned long long inv = on ? ~key : 0ull;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long o = __shfl_xor_sync(kFullMask, inv, off);
    inv = o > inv ? o : inv;
  }
  if ((threadIdx.x & 31u) == 0u && inv != 0ull) atomicMax(dst, inv);
}

// One bin's decision inputs, found by the block scan.
struct SelectPick {
  int digit;
  unsigned long long sum;  // above_d (top-p) or below_d (rank)
};

struct SelectShared {
  unsigned long long mass[math::kRadixBins];
  unsigned count[2][math::kRadixBins];
  unsigned long long inv_min_key[2];
  unsigned long long n;
  unsigned max_key;
  unsigned gathered;   // first pass: candidates the row's blocks gathered
  SelectPick pick[3];  // 0: top-p, 1, 2: the rank selections
};

// Bins 2t, 2t + 1 of a histogram in scan order (descending bins for top-p),
// their exclusive prefix sum, and the whole sum — by the kT threads.
template <int kT, class T>
__device__ __forceinline__ void scan_pairs(const T* hist, bool descending, T h[2], T before[2],
                                           T* total) {
  static_assert(2 * kT == math::kRadixBins, "two bins per thread");
  const int t = int(threadIdx.x);
  const int b0 = descending ? math::kRadixBins - 1 - 2 * t : 2 * t;
  const int b1 = descending ? b0 - 1 : b0 + 1;
  h[0] = hist[b0];
  h[1] = hist[b1];
  const T first = block_exclusive_sum<kT>(T(h[0] + h[1]), total);
  before[0] = first;
  before[1] = first + h[0];
}

// The last block's digit decisions for row state `st`, from the row's
// histograms in `sh` (every thread calls it; st is identical in all).
template <int kT>
__device__ __forceinline__ void select_decide(math::SelectState& st, SelectShared& sh) {
  const int t = int(threadIdx.x);
  if (st.top_p.active) {
    unsigned long long h[2], above[2], total = 0;
    scan_pairs<kT>(sh.mass, true, h, above, &total);
    if (math::mass_select_keeps_all(st.top_p, uint64_t(total))) {
      math::mass_select_keep_all(st.top_p);
    } else {
#pragma unroll
      for (int k = 0; k < 2; ++k) {
        const int d = math::kRadixBins - 1 - 2 * t - k;
        if (math::mass_digit_chosen(st.top_p, d, uint64_t(above[k]), uint64_t(h[k])))
          sh.pick[0] = SelectPick{d, above[k]};
      }
      __syncthreads();
      math::mass_select_apply(st.top_p, sh.pick[0].digit, uint64_t(sh.pick[0].sum));
    }
  }
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    if (!math::rank_select_busy(st.rank[q])) continue;
    if (st.rank[q].stage == math::kRankMin) {
      math::rank_select_take_min(st.rank[q], ~uint64_t(sh.inv_min_key[q]));
      continue;
    }
    unsigned h[2], below[2], total = 0;
    scan_pairs<kT>(sh.count[q], false, h, below, &total);
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const int d = 2 * t + k;
      if (math::rank_digit_chosen(st.rank[q], d, int64_t(below[k]), h[k]))
        sh.pick[1 + q] = SelectPick{d, below[k]};
    }
    __syncthreads();
    math::rank_select_apply(st.rank[q], sh.pick[1 + q].digit, int64_t(sh.pick[1 + q].sum));
  }
}

// Zeroes the block's histograms (by all kT threads; a barrier must come
// before anything is added to them).
template <int kT>
__device__ __forceinline__ void clear_histograms(SelectShared& sh) {
  const int t = int(threadIdx.x);
  for (int i = t; i < math::kRadixBins; i += kT) {
    sh.mass[i] = 0;
    sh.count[0][i] = 0;
    sh.count[1][i] = 0;
  }
  if (t < 2) sh.inv_min_key[t] = 0;
}

// One token's vote into the block's histograms (whole warps: the walks are
// uniform).
__device__ __forceinline__ void add_vote(SelectShared& sh, const math::SelectState& st,
                                         const math::SelectVote& v) {
  if (st.top_p.active) warp_add_mass(sh.mass, v.mass_on, v.mass_digit, v.mass);
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    if (!math::rank_select_busy(st.rank[q])) continue;  // uniform
    if (st.rank[q].stage == math::kRankDigits) {
      warp_add_count(sh.count[q], v.rank_on[q], v.rank_digit[q]);
    } else {
      warp_max_inv_key(&sh.inv_min_key[q], v.min_on[q], v.key);
    }
  }
}

// Appends the lanes' candidates (`on`) to row r's list: one atomic per warp
// on the row's count; slots past the capacity are counted, not written.
__device__ __forceinline__ void warp_append(const Args& a, int64_t r, unsigned* count, bool on,
                                            const math::Candidate& c) {
  const unsigned ballot = __ballot_sync(kFullMask, on);
  if (ballot == 0u) return;  // uniform
  const int lane = int(threadIdx.x & 31u);
  const int leader = __ffs(int(ballot)) - 1;
  unsigned base = 0u;
  if (lane == leader) base = atomicAdd(count, unsigned(__popc(int(ballot))));
  base = __shfl_sync(kFullMask, base, leader);
  if (on) {
    const int64_t slot = int64_t(base) + __popc(int(ballot & ((1u << lane) - 1u)));
    if (slot < a.candidate_capacity) a.candidates[r * a.candidate_capacity + slot] = c;
  }
}

// The last block of the first pass, once the first digit is decided: when
// the gathered candidates suffice (radix_select.hpp, "selection from
// candidates"), the remaining digits are taken over them here, round by
// round in shared memory, and the later passes find the row done.
template <int kT>
__device__ __forceinline__ bool select_over_candidates(const Args& a, int64_t r,
                                                       math::SelectState& st, SelectShared& sh,
                                                       unsigned long long total_mass,
                                                       uint64_t min_mass, uint64_t gathered,
                                                       int32_t top_k) {
  if (!math::candidates_suffice(st, uint64_t(total_mass), min_mass, gathered,
                                uint64_t(a.candidate_capacity), top_k, a.min_keep))
    return false;  // uniform
  const math::Candidate* cand = a.candidates + r * a.candidate_capacity;
  const int64_t n = int64_t(gathered);
  const int t = int(threadIdx.x);
  for (int round = 1; round < math::kMaxSelectPasses && math::select_busy(st); ++round) {
    // Every thread has read the last decision's inputs (a minimum stage reads
    // sh.inv_min_key with no barrier after it) before they are zeroed.
    __syncthreads();
    clear_histograms<kT>(sh);
    __syncthreads();
    for (int64_t j0 = 0; j0 < n; j0 += kT) {  // the same trip count in every thread
      const int64_t j = j0 + t;
      float lq = -math::kInf;
      int64_t index = 0;
      if (j < n) {  // written by the pass's blocks before their fence and count
        const math::Candidate e = load_coherent(cand + j);
        lq = e.lq;
        index = e.index;
      }
      add_vote(sh, st, math::select_vote(st, lq, index));
    }
    __syncthreads();
    select_decide<kT>(st, sh);
  }
  return true;
}

struct MergeArgMax {
  __device__ __forceinline__ math::ArgMax operator()(const math::ArgMax& a,
                                                     const math::ArgMax& b) const {
    return math::argmax_merge(a, b);
  }
};

// The draw over the candidates once they decided the row's masks: every
// kept token is a candidate (radix_select.hpp), each stored with its draw
// score, so the masked arg-max is SampleKernel's. Empty when every kept
// token has ℓ* = −inf (the linear update's clip): SampleKernel then draws
// from the whole row as usual.
template <int kT>
__device__ __forceinline__ math::ArgMax draw_from_candidates(const Args& a, int64_t r,
                                                             const math::MaskThresholds& th,
                                                             uint64_t gathered) {
  const math::Candidate* cand = a.candidates + r * a.candidate_capacity;
  math::ArgMax best = math::argmax_empty();
  for (int64_t j = threadIdx.x; j < int64_t(gathered); j += kT) {
    const math::Candidate e = load_coherent(cand + j);
    if (e.score > -math::kInf && math::mask_keep(th, e.lq, e.index))
      math::argmax_push(best, e.score, e.index);
  }
  return block_reduce<kT>(best, MergeArgMax{}, math::argmax_empty());
}

// One block's share of a pass: its slice's votes into the block's
// histograms (shared memory), then added to the row's (the workspace) with
// integer atomics; the first pass also counts |q| and lq_max and, when
// min_mass > 0 (a top-p row whose candidates' bound is positive), appends
// the tokens of mass ≥ min_mass with their draw scores to the row's
// candidates. From the slice held in registers when `held` is given (the
// fused kernel), else loaded.
template <class E>
__device__ __forceinline__ void select_slice_votes(const Args& a, int64_t r, int64_t s, int pass,
                                                   const math::SelectState& st,
                                                   const math::RowPlan& plan, SelectShared& sh,
                                                   uint64_t min_mass, const HeldSlice<E>* held) {
  constexpr int kT = kSweepThreads;
  const int t = int(threadIdx.x);
  clear_histograms<kT>(sh);
  __syncthreads();

  const bool from_principle = a.from_principle != 0;
  unsigned long long count = 0;
  unsigned max_key = 0;
  math::SelectBins& g = a.select[r].bins;
  // Only a gathering pass reads the row's seed and temperature.
  const bool gather = min_mass > 0;
  const bool greedy = gather && row_greedy(a, r);
  const math::RowRng rng = gather ? row_rng(a, r) : math::RowRng{};
  slice_steps<E, true>(a, r, s, held, [&](const Chunk<E>& ch) {
#pragma unroll
    for (int k = 0; k < Chunk<E>::kItems; ++k) {
      const int64_t i = ch.index(k);
      const float lq = i < 0 ? -math::kInf
                             : (from_principle ? math::principle_logprob(plan, ch.z[k], ch.y[k])
                                               : math::aligned_logprob(plan, ch.z[k], ch.y[k]));
      const math::SelectVote v = math::select_vote(st, lq, i);
      if (pass == 0 && lq > -math::kInf) {
        ++count;
        const unsigned key = math::ascending_key(lq);
        max_key = key > max_key ? key : max_key;
      }
      add_vote(sh, st, v);
      if (gather) {  // uniform
        const bool on = v.mass >= min_mass;
        float score = -math::kInf;
        if (on) {  // the draw's score (SampleKernel's): few tokens, one Philox call each
          const float al = from_principle ? math::aligned_logprob(plan, ch.z[k], ch.y[k]) : lq;
          if (al > -math::kInf)
            score =
                draw_score(greedy, al, greedy ? math::Philox4{} : rng.group(uint64_t(i >> 2)), i);
        }
        warp_append(a, r, &g.candidates, on, math::Candidate{lq, int32_t(i), score});
      }
    }
  });

  if (pass == 0) {
    count = block_reduce<kT>(
        count, [](unsigned long long x, unsigned long long y) { return x + y; }, 0ull);
    max_key = block_reduce<kT>(
        max_key, [](unsigned x, unsigned y) { return x > y ? x : y; }, 0u);
    if (t == 0) {
      if (count != 0ull) atomicAdd(reinterpret_cast<unsigned long long*>(&g.n), count);
      if (max_key != 0u) atomicMax(&g.max_key, max_key);
    }
  }
  __syncthreads();  // the block's histograms are complete
  for (int i = t; i < math::kRadixBins; i += kT) {
    if (sh.mass[i] != 0ull)
      atomicAdd(reinterpret_cast<unsigned long long*>(&g.mass[i]), sh.mass[i]);
    if (sh.count[0][i] != 0u) atomicAdd(&g.count[0][i], sh.count[0][i]);
    if (sh.count[1][i] != 0u) atomicAdd(&g.count[1][i], sh.count[1][i]);
  }
  if (t < 2 && sh.inv_min_key[t] != 0ull)
    atomicMax(reinterpret_cast<unsigned long long*>(&g.inv_min_key[t]), sh.inv_min_key[t]);
}

// The last block of a pass (every other block's atomics are visible: their
// fence came before their count): reads the row's sums past L1 and clears
// them for the next pass, takes the digit decisions from state `st` and,
// after a gathering first pass whose candidates suffice, finishes the
// selection and draws the token over them. Stores the row's new state and,
// when the selections are done (or this is the last pass), its RowMask.
template <class E>
__device__ __forceinline__ void select_row_decide(const Args& a, int64_t r, int pass,
                                                  math::SelectState st, const math::RowPlan& plan,
                                                  SelectShared& sh, uint64_t min_mass,
                                                  int32_t top_k, float min_p) {
  constexpr int kT = kSweepThreads;
  const int t = int(threadIdx.x);
  const bool gather = min_mass > 0;
  math::SelectRow* const row_sel = a.select + r;
  math::SelectBins& g = row_sel->bins;
  for (int i = t; i < math::kRadixBins; i += kT) {
    sh.mass[i] = load_coherent(reinterpret_cast<unsigned long long*>(&g.mass[i]));
    sh.count[0][i] = load_coherent(&g.count[0][i]);
    sh.count[1][i] = load_coherent(&g.count[1][i]);
    g.mass[i] = 0;
    g.count[0][i] = 0;
    g.count[1][i] = 0;
  }
  if (t < 2) {
    sh.inv_min_key[t] = load_coherent(reinterpret_cast<unsigned long long*>(&g.inv_min_key[t]));
    g.inv_min_key[t] = 0;
  }
  if (t == 0) {
    sh.n = load_coherent(reinterpret_cast<unsigned long long*>(&g.n));
    sh.max_key = load_coherent(&g.max_key);
    sh.gathered = gather ? load_coherent(&g.candidates) : 0u;
    g.done = 0;
  }
  __syncthreads();
  // The first pass's whole mass (exact: integer bins) for the candidates' bound.
  unsigned long long total_mass = 0;
  if (gather) {
    unsigned long long part = 0;
    for (int i = t; i < math::kRadixBins; i += kT) part += sh.mass[i];
    total_mass = block_reduce<kT>(
        part, [](unsigned long long x, unsigned long long y) { return x + y; }, 0ull);
  }
  if (pass == 0) math::select_first_pass_done(st, uint64_t(sh.n), sh.max_key);
  select_decide<kT>(st, sh);
  bool drawn = false;
  if (gather && math::select_busy(st) &&  // uniform
      select_over_candidates<kT>(a, r, st, sh, total_mass, min_mass, sh.gathered, top_k)) {
    const math::ArgMax pick = draw_from_candidates<kT>(
        a, r, math::select_thresholds(st, top_k, min_p, a.min_keep), sh.gathered);
    drawn = pick.index >= 0;  // uniform: the broadcast merge
    if (drawn && t == 0) store_token<E>(a, r, plan, pick.index);
  }
  if (t == 0) {
    row_sel->state = st;
    if (!math::select_busy(st) || pass == a.select_passes - 1) {
      RowMask m{};
      m.th = math::select_thresholds(st, top_k, min_p, a.min_keep);
      m.masked = m.th.has_keep ? 1 : 0;  // min_keep ≥ |q|: every token is kept
      m.drawn = drawn ? 1 : 0;
      a.masks[r] = m;
    }
  }
}

// The fixed-point mass bound of the candidates a first pass gathers for
// state `st` (0: none — not a top-p row, or p so close to 1 that the bound
// is 0).
__device__ __forceinline__ uint64_t gather_bound(const math::SelectState& st, int pass, float top_p,
                                                 const math::RowPlan& plan) {
  return pass == 0 && st.top_p.active ? math::candidate_min_mass(top_p, plan.count) : 0;
}

template <class E>
__global__ void __launch_bounds__(kSweepThreads)
    SelectPassKernel(const Args a, int64_t row0, int pass) {
  __shared__ SelectShared sh;
  const int64_t r = row0 + int64_t(blockIdx.y);
  const int64_t s = int64_t(blockIdx.x);
  const math::RowPlan plan = a.plans[r];
  const float top_p = a.top_p.at(r), min_p = a.min_p.at(r);
  const int32_t top_k = a.top_k.at(r);
  if (!math::plan_valid(plan) || math::masks_off(top_p, top_k, min_p)) {
    if (pass == 0 && s == 0 && threadIdx.x == 0) {
      RowMask m{};
      m.masked = 0;
      a.masks[r] = m;
    }
    return;  // uniform
  }
  math::SelectRow* const row_sel = a.select + r;
  const math::SelectState st =
      pass == 0 ? math::select_begin(top_p, top_k, a.min_keep) : row_sel->state;
  if (!math::select_busy(st)) return;  // uniform: done in an earlier pass
  const uint64_t min_mass = gather_bound(st, pass, top_p, plan);
  select_slice_votes<E>(a, r, s, pass, st, plan, sh, min_mass, nullptr);
  if (!last_block_of_row(&row_sel->bins.done, gridDim.x)) return;  // uniform
  select_row_decide<E>(a, r, pass, st, plan, sh, min_mass, top_k, min_p);
}

}  // namespace kernels
}  // namespace linalign
