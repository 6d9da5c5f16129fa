// Mask thresholds of SPEC §3 / docs/SEMANTICS.md 2 without a sort: one block
// per row runs the radix selections of host/radix_select.hpp (top-p τ, the
// top-k key, the min_tokens_to_keep key) over the fp32 bit patterns of lq,
// the log-probabilities of the nucleus source q. Every pass re-reads the row
// (from L2) and feeds all selections still running; the first pass also
// gives |q| and lq_max. Typical rows need 4–5 passes.
//
// Histograms live in shared memory. Warp-aggregated atomics (one atomic per
// distinct digit per warp) keep the first passes — where most tokens share a
// few exponents — fast, and the mass histogram is integer (fixed point), so
// the thresholds do not depend on the order of the atomics. The digit
// decisions are the host-tested functions of radix_select.hpp, each run by
// one thread of its own warp.
#pragma once

#include "device.cuh"
#include "radix_select.hpp"

namespace linalign {
namespace kernels {

// Elements each thread loads before processing them (loads in flight).
constexpr int kSelectUnroll = 4;

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

__device__ __forceinline__ void warp_min_key(unsigned long long* dst, unsigned long long key) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const unsigned long long o = __shfl_xor_sync(kFullMask, key, off);
    key = o < key ? o : key;
  }
  if ((threadIdx.x & 31u) == 0u && key != ~0ull) atomicMin(dst, key);
}

struct SelectShared {
  unsigned long long mass[host::kRadixBins];
  unsigned count[2][host::kRadixBins];
  unsigned long long min_key[2];
  host::MassSelect top_p;
  host::RankSelect rank[2];  // 0: top-k (rank k−1), 1: min_tokens_to_keep (rank m−1)
  int64_t n;                 // |q|: tokens with lq > −inf
  float lq_max;
};

template <class E>
__global__ void __launch_bounds__(host::kRowThreads) SelectKernel(const Args a, int64_t row0) {
  constexpr int kT = host::kRowThreads;
  static_assert(kT >= 96, "the three selections step on threads 0, 32 and 64");
  __shared__ SelectShared sh;
  const int64_t r = row0 + int64_t(blockIdx.x);
  const int t = int(threadIdx.x);
  const math::RowPlan plan = a.plans[r];
  const float top_p = a.top_p.at(r), min_p = a.min_p.at(r);
  const int32_t top_k = a.top_k.at(r);
  if (!math::plan_valid(plan) || math::masks_off(top_p, top_k, min_p)) {
    if (t == 0) {
      host::RowMask m{};
      m.masked = 0;
      a.masks[r] = m;
    }
    return;  // uniform
  }
  const RowIn<E> row = row_in<E>(a.src, r);  // valid plan: the row is readable
  const int64_t V = a.src.vocab;
  const bool from_principle = a.from_principle != 0;

  if (t == 0) {
    sh.top_p = host::mass_select_begin(top_p);
    sh.rank[0] = host::rank_select_begin(top_k);
    sh.rank[1] = host::rank_select_begin(a.min_keep);
    sh.min_key[0] = sh.min_key[1] = ~0ull;
  }

  bool first_pass = true;
  for (;;) {
    for (int i = t; i < host::kRadixBins; i += kT) {
      sh.mass[i] = 0;
      sh.count[0][i] = 0;
      sh.count[1][i] = 0;
    }
    __syncthreads();
    // This pass's state, identical in every thread (so every warp-level call
    // below is made by whole warps).
    const host::MassSelect ps = sh.top_p;
    const host::RankSelect rs[2] = {sh.rank[0], sh.rank[1]};
    int64_t count = 0;
    float mx = -math::kInf;

    for (int64_t i0 = 0; i0 < V; i0 += int64_t(kT) * kSelectUnroll) {  // uniform trip count
      float lq[kSelectUnroll];
#pragma unroll
      for (int u = 0; u < kSelectUnroll; ++u) {  // loads first: kSelectUnroll pairs in flight
        const int64_t i = i0 + int64_t(u) * kT + t;
        float z = -math::kInf, y = -math::kInf;
        if (i < V) {
          z = load_scalar(row.z, i);
          y = load_scalar(row.y, i);
        }
        lq[u] = from_principle ? math::principle_logprob(plan, z, y)
                               : math::aligned_logprob(plan, z, y);
      }
#pragma unroll
      for (int u = 0; u < kSelectUnroll; ++u) {
        const int64_t i = i0 + int64_t(u) * kT + t;
        const bool valid = lq[u] > -math::kInf;  // i < V, i ∈ S, not clipped
        if (first_pass && valid) {
          ++count;
          mx = math::fmaxf_(mx, lq[u]);
        }
        if (ps.active) {
          const unsigned long long m = valid ? host::fixed_mass(lq[u]) : 0ull;
          uint32_t digit = 0;
          const bool match =
              valid && host::mass_select_match(ps, host::ascending_key(lq[u]), m, &digit);
          warp_add_mass(sh.mass, match, digit, m);
        }
        const uint64_t key = host::composite_key(lq[u], i);
#pragma unroll
        for (int q = 0; q < 2; ++q) {
          if (!host::rank_select_busy(rs[q])) continue;
          uint32_t digit = 0;
          const bool match = valid && host::rank_select_match(rs[q], key, &digit);
          if (rs[q].stage == host::kRankDigits) {
            warp_add_count(sh.count[q], match, digit);
          } else {
            warp_min_key(&sh.min_key[q], match ? key : ~0ull);
          }
        }
      }
    }

    if (first_pass) {
      count = block_reduce<kT>(
          count, [](int64_t x, int64_t y) { return x + y; }, int64_t(0));
      mx = block_reduce<kT>(
          mx, [](float x, float y) { return math::fmaxf_(x, y); }, -math::kInf);
      if (t == 0) {
        sh.n = count;
        sh.lq_max = mx;
        host::rank_select_limit(sh.rank[0], count);
        host::rank_select_limit(sh.rank[1], count);
      }
    }
    __syncthreads();
    if (t == 0 && sh.top_p.active) host::mass_select_step(sh.top_p, sh.mass);
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      if (t == 32 * (q + 1) && host::rank_select_busy(sh.rank[q])) {
        if (sh.rank[q].stage == host::kRankDigits) {
          host::rank_select_step(sh.rank[q], sh.count[q]);
        } else {
          host::rank_select_take_min(sh.rank[q], sh.min_key[q]);
        }
        sh.min_key[q] = ~0ull;
      }
    }
    __syncthreads();
    first_pass = false;
    const bool busy =
        sh.top_p.active || host::rank_select_busy(sh.rank[0]) || host::rank_select_busy(sh.rank[1]);
    if (!busy) break;  // uniform
    __syncthreads();   // every thread has read the state before the next pass resets bins
  }

  if (t == 0) {
    host::RowMask m{};
    m.th = host::mask_thresholds(sh.top_p, sh.rank[0], sh.rank[1], sh.n, sh.lq_max, top_k, min_p,
                                 a.min_keep);
    m.masked = m.th.has_keep ? 1 : 0;  // min_keep ≥ |q|: every token is kept
    a.masks[r] = m;
  }
}

}  // namespace kernels
}  // namespace linalign
