// CPU backend (see cpu_backend.hpp). The phases of one call (run_typed),
// mirroring the kernels':
//   1. first_sweep  (row, slice) RowStats of each vocabulary slice, chunk by
//      chunk (the tilted moments too when η is known up front: fixed + tilt);
//   2. plan_rows    (row) merge the slices, finalise μ, σ, choose η
//      (exact_kl: the safeguarded Newton solver, one full-row sweep per
//      evaluation);
//   3. second_sweep (row, slice) at the chosen η when needed (trust_region,
//      exact_kl, or the linear update), then (row) merge and finish the plan;
//   4. the operation: align_rows (row, slice) ℓ*, sample_rows (row) token
//      selection, score_rows (row) target look-up and sequence sums.
#include "cpu_backend.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "cpu_lanes.hpp"
#include "linalign/math/dtype.hpp"
#include "linalign/math/nucleus.hpp"
#include "linalign/math/partition.hpp"
#include "linalign/math/philox.hpp"
#include "linalign/math/radix_select.hpp"
#include "linalign/math/row_stats.hpp"
#include "linalign/math/step_rule.hpp"
#include "linalign/math/update.hpp"

namespace linalign {
namespace host {
namespace {

using namespace linalign::math;

// ShardStats is the public, opaque image of a RowStats (SPEC §7).
static_assert(sizeof(ShardStats) == sizeof(RowStats), "ShardStats holds one RowStats");
static_assert(std::is_trivially_copyable<RowStats>::value, "RowStats travels as bytes");

size_t align64(size_t x) {
  return (x + 63) & ~size_t(63);
}

template <class E>
struct RowData {
  const E* z;
  const E* y;
};

template <class E>
RowData<E> row_data(const LogitsView& v, int64_t r) {
  const void* z;
  const void* y;
  row_pointers(v, r, &z, &y);
  return RowData<E>{static_cast<const E*>(z), static_cast<const E*>(y)};
}

// Runs chunk(loader, n) over [span.begin, span.end) in kCpuChunk pieces and
// merges the results pairwise in order (math::PairwiseMerge).
template <class E, class T, class ChunkFn, class MergeFn>
T sweep(const RowData<E>& row, Span span, T empty, const ChunkFn& chunk, const MergeFn& merge) {
  auto acc = pairwise<T>(merge);
  for (int64_t b = span.begin; b < span.end; b += kCpuChunk) {
    const E* z = row.z + b;
    const E* y = row.y + b;
    auto load = [z, y](int64_t k, float* a, float* c) {
      *a = load_as_float(z, k);
      *c = load_as_float(y, k);
    };
    acc.push(chunk(load, std::min(kCpuChunk, span.end - b)));
  }
  return acc.result(empty);
}

// The merge of n consecutive partials (a row's slices), pairwise.
template <class T, class MergeFn>
T merge_parts(const T* parts, int64_t n, const T& empty, const MergeFn& merge) {
  auto acc = pairwise<T>(merge);
  for (int64_t i = 0; i < n; ++i) acc.push(parts[i]);
  return acc.result(empty);
}

}  // namespace

CpuLayout CpuBackend::layout(const Call& call) const {
  const int64_t B = call.logits.rows, V = call.logits.vocab;
  const int64_t T = pool_.size();
  CpuLayout L;
  L.slices = ceil_div(V, kCpuSliceTokens);
  const size_t parts = size_t(B * L.slices);
  size_t off = 0;
  L.stats_off = off;
  off = align64(off + parts * sizeof(RowStats));
  L.sweep_off = off;
  off = align64(off + parts * std::max(sizeof(TiltSweep), sizeof(LinearSums)));
  L.plan_off = off;
  off = align64(off + size_t(B) * sizeof(RowPlan));
  L.select_off = off;
  if (call.op == Op::kSample && B > 0 && masks_possible(*call.params)) {
    L.select_bytes = align64(size_t(V) * sizeof(SelectEntry));
    off += L.select_bytes * size_t(T);
  }
  L.total = off + 64;  // + slack: a caller's workspace need not be 64-byte aligned
  return L;
}

Status CpuBackend::run(const Call& call, void* workspace, size_t workspace_bytes,
                       std::string* message) {
  const CpuLayout L = layout(call);
  if (workspace_bytes < L.total) {
    *message = std::string(call.name) + ": workspace_bytes (" + std::to_string(workspace_bytes) +
               ") is smaller than the " + std::to_string(L.total) +
               " bytes workspace_size() reports";
    return Status::kInsufficientWorkspace;
  }
  if (call.logits.rows == 0) {
    if (call.op == Op::kScore) {  // every sequence is empty: its sums are 0
      const ScoreOutputs& o = *call.score;
      for (int64_t s = 0; s < o.num_sequences; ++s) {
        if (o.seq_aligned != nullptr) o.seq_aligned[s] = 0.f;
        if (o.seq_base != nullptr) o.seq_base[s] = 0.f;
        if (o.seq_principle != nullptr) o.seq_principle[s] = 0.f;
      }
    }
    return Status::kSuccess;
  }
  // the layout's offsets are relative to the first 64-byte boundary
  char* ws =
      reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(workspace) + 63) & ~uintptr_t(63));
  if (!dispatch_dtype(call.logits.dtype, [&](auto e) { run_typed<decltype(e)>(call, L, ws); })) {
    *message = std::string(call.name) + ": logits.dtype is not supported";
    return Status::kNotSupported;
  }
  return Status::kSuccess;
}

// ℓ* of every (row, slice) into out (float, or bf16 bits through `cvt`).
template <class E, class OutT, class CvtT>
void CpuBackend::align_rows(const Call& call, const CpuLayout& L, const RowPlan* plans, OutT* out0,
                            const CvtT& cvt) {
  const LogitsView& v = call.logits;
  const int64_t S = L.slices;
  pool_.parallel_for(v.rows * S, [&](int64_t w) {
    const int64_t r = w / S;
    const RowPlan& plan = plans[r];
    const RowData<E> row = row_data<E>(v, r);
    const Span sp = slice_span(v.vocab, S, w % S, kCpuSliceTokens);
    OutT* out = out0 + r * call.out_stride;
    if (!plan_valid(plan)) {
      std::fill(out + sp.begin, out + sp.end, cvt(kNaN));
      return;
    }
    if (plan.update == int32_t(Update::kTilt)) {
      // aligned_logprob's tilt branch, hoisted so the loop is branch-free
      // and vectorises (same expression, same rounding)
      for (int64_t i = sp.begin; i < sp.end; ++i) {
        const float z = load_as_float(row.z, i), y = load_as_float(row.y, i);
        const float zt = z * plan.inv_t, d = y * plan.inv_t - zt;
        const float l = (plan_tilt_logit(plan, zt, d, plan.eta) - plan.m_t) - plan.ls_t;
        out[i] = cvt(in_support(z, y) ? l : -kInf);
      }
    } else {
      for (int64_t i = sp.begin; i < sp.end; ++i)
        out[i] = cvt(aligned_logprob(plan, load_as_float(row.z, i), load_as_float(row.y, i)));
    }
  });
}

// What every phase of one call needs to know.
struct CpuBackend::Setup {
  int64_t B, V, S;
  Update update;
  bool tilt_in_first;  // fixed + tilt: the tilted moments in the first sweep
  RowStats* stats;
  RowPlan* plans;
  static Setup of(const Call& call, const CpuLayout& L, char* ws) {
    const Params& p = *call.params;
    Setup u;
    u.B = call.logits.rows;
    u.V = call.logits.vocab;
    u.S = L.slices;
    u.update = p.update == UpdateForm::kTilt ? Update::kTilt : Update::kLinear;
    u.tilt_in_first = p.rule == StepRule::kFixed && u.update == Update::kTilt;
    u.stats = reinterpret_cast<RowStats*>(ws + L.stats_off);
    u.plans = reinterpret_cast<RowPlan*>(ws + L.plan_off);
    return u;
  }
  Span span_of(int64_t s) const { return slice_span(V, S, s, kCpuSliceTokens); }
};

namespace {
// 1/T of row r; T = 0 (sample only): greedy, statistics at T = 1.
float inv_t_of(const Params& p, int64_t r) {
  const float t = p.temperature.at(r);
  return t > 0.f ? 1.0f / t : 1.0f;
}
}  // namespace

template <class E>
void CpuBackend::run_typed(const Call& call, const CpuLayout& L, char* ws) {
  const Setup u = Setup::of(call, L, ws);
  if (call.op != Op::kAlignShard) first_sweep<E>(call, u);  // align_shard: merged statistics
  plan_rows<E>(call, u);
  if (!u.tilt_in_first) second_sweep<E>(call, L, u, ws);
  if (call.op == Op::kShardStats) return;
  if (call.diagnostics != nullptr) {
    for (int64_t r = 0; r < u.B; ++r) {
      const RowPlan& q = u.plans[r];
      call.diagnostics[r] = RowDiagnostics{q.eta,          q.mu,      q.sigma, q.kl_base,
                                           q.kl_principle, q.entropy, q.count, q.flags};
    }
  }
  switch (call.op) {
    case Op::kShardStats:  // returned above
      break;
    case Op::kAlign:
    case Op::kAlignShard:
      if (call.out_dtype == DType::kBF16) {
        align_rows<E>(call, L, u.plans, static_cast<uint16_t*>(call.out),
                      [](float x) { return float_to_bf16(x); });
      } else {
        align_rows<E>(call, L, u.plans, static_cast<float*>(call.out), [](float x) { return x; });
      }
      break;
    case Op::kSample:
      sample_rows<E>(call, L, u, ws);
      break;
    case Op::kScore:
      score_rows<E>(call, u);
      break;
  }
}

// ---- 1. first sweep per (row, slice)
template <class E>
void CpuBackend::first_sweep(const Call& call, const Setup& u) {
  const Params& p = *call.params;
  pool_.parallel_for(u.B * u.S, [&](int64_t w) {
    const int64_t r = w / u.S;
    const float inv_t = inv_t_of(p, r);
    const float eta = u.tilt_in_first ? eta_fixed(p.ratio.at(r)) : 0.f;
    // decode each chunk to fp32, then the vectorised chunk statistics
    const RowData<E> row = row_data<E>(call.logits, r);
    const Span sp = u.span_of(w % u.S);
    auto acc = pairwise<RowStats>(row_stats_merge);
    float zc[kLaneChunk] = {}, yc[kLaneChunk] = {};  // past n: initialised, masked
    for (int64_t b = sp.begin; b < sp.end; b += kLaneChunk) {
      const int n = int(std::min<int64_t>(kLaneChunk, sp.end - b));
      for (int k = 0; k < n; ++k) {
        zc[k] = load_as_float(row.z, b + k);
        yc[k] = load_as_float(row.y, b + k);
      }
      acc.push(lane_chunk_stats(zc, yc, n, inv_t, u.tilt_in_first, eta));
    }
    u.stats[w] = acc.result(row_stats_empty());
  });
}

// ---- 2. merge the slices (or the shards), finalise, choose η
template <class E>
void CpuBackend::plan_rows(const Call& call, const Setup& u) {
  const Params& p = *call.params;
  const int64_t B = u.B;
  pool_.parallel_for(B, [&](int64_t r) {
    RowStats st = row_stats_empty();
    if (call.op == Op::kAlignShard) {  // the shards in order: the same merge on every device
      for (int64_t g = 0; g < call.num_shards; ++g) {
        RowStats part;
        std::memcpy(&part, &call.shard_in[g * B + r], sizeof part);
        st = row_stats_merge(st, part);
      }
    } else {
      st = merge_parts(u.stats + r * u.S, u.S, row_stats_empty(), row_stats_merge);
    }
    if (call.op == Op::kShardStats) {  // the shard's statistics are the result
      std::memcpy(&call.shard_out[r], &st, sizeof st);
      return;
    }
    RowPlan plan = plan_begin(st, inv_t_of(p, r), u.update, !u.tilt_in_first);
    if (plan_valid(plan)) {
      const RowData<E> row = row_data<E>(call.logits, r);
      const Span all{0, u.V};
      switch (p.rule) {
        case StepRule::kFixed:
          plan.eta = eta_fixed(p.ratio.at(r));
          break;
        case StepRule::kTrustRegion:
          plan.eta = eta_trust_region(plan.sigma, p.epsilon.at(r), p.eta_max.at(r));
          break;
        case StepRule::kExactKl: {
          auto eval = [&](float eta) {
            if (u.update == Update::kTilt) {
              const TiltSweep t = sweep(
                  row, all, tilt_sweep_empty(),
                  [&](const auto& load, int64_t n) {
                    return chunk_tilt_moments(load, n, plan, eta);
                  },
                  tilt_sweep_merge);
              return tilt_kl_point(t, plan, eta);
            }
            const LinearSums s = sweep(
                row, all, linear_empty(),
                [&](const auto& load, int64_t n) { return chunk_linear_sums(load, n, plan, eta); },
                linear_merge);
            return linear_kl_point(s);
          };
          plan.eta = eta_exact_kl(eval, plan.sigma, p.epsilon.at(r), p.eta_max.at(r));
          break;
        }
      }
      if (u.tilt_in_first) plan_finish_tilt(plan, st.tilt);
    }
    u.plans[r] = plan;
  });
}

// ---- 3. second sweep at the chosen η, then the plan's finish
template <class E>
void CpuBackend::second_sweep(const Call& call, const CpuLayout& L, const Setup& u, char* ws) {
  const int64_t S = u.S;
  TiltSweep* tm = reinterpret_cast<TiltSweep*>(ws + L.sweep_off);
  LinearSums* ls = reinterpret_cast<LinearSums*>(ws + L.sweep_off);
  pool_.parallel_for(u.B * S, [&](int64_t w) {
    const RowPlan& plan = u.plans[w / S];
    if (!plan_valid(plan)) return;
    const RowData<E> row = row_data<E>(call.logits, w / S);
    if (u.update == Update::kTilt) {
      tm[w] = sweep(
          row, u.span_of(w % S), tilt_sweep_empty(),
          [&](const auto& load, int64_t n) { return chunk_tilt_moments(load, n, plan, plan.eta); },
          tilt_sweep_merge);
    } else {
      ls[w] = sweep(
          row, u.span_of(w % S), linear_empty(),
          [&](const auto& load, int64_t n) { return chunk_linear_sums(load, n, plan, plan.eta); },
          linear_merge);
    }
  });
  pool_.parallel_for(u.B, [&](int64_t r) {
    RowPlan& plan = u.plans[r];
    if (!plan_valid(plan)) return;
    if (u.update == Update::kTilt) {
      plan_finish_tilt(plan, merge_parts(tm + r * S, S, tilt_sweep_empty(), tilt_sweep_merge));
    } else {
      plan_finish_linear(plan, merge_parts(ls + r * S, S, linear_empty(), linear_merge));
    }
  });
}

// ---- 4b. sample: the masks' thresholds by the radix selection over the
// row's candidates, then the (Gumbel-)arg-max over the kept tokens
template <class E>
void CpuBackend::sample_rows(const Call& call, const CpuLayout& L, const Setup& u, char* ws) {
  const Params& p = *call.params;
  const int64_t V = u.V;
  pool_.parallel_for(u.B, [&](int64_t r) {
    const RowPlan& plan = u.plans[r];
    if (!plan_valid(plan)) {
      call.tokens[r] = -1;
      if (call.token_logprob != nullptr) call.token_logprob[r] = kNaN;
      return;
    }
    const RowData<E> row = row_data<E>(call.logits, r);
    const bool greedy = p.greedy || p.temperature.at(r) == 0.f;
    const RowRng rng =
        RowRng::make(p.seed.at(r), p.offset.at(r), p.seed.values != nullptr ? 0u : uint32_t(r));
    const float top_p = p.top_p.at(r), min_p = p.min_p.at(r);
    const int32_t top_k = p.top_k.at(r);
    const bool masked = !masks_off(top_p, top_k, min_p);
    const bool from_principle = p.nucleus_source == NucleusSource::kPrinciple;
    auto source_lq = [&](float z, float y) {
      return from_principle ? principle_logprob(plan, z, y) : aligned_logprob(plan, z, y);
    };
    MaskThresholds th{};
    if (masked) {
      SelectEntry* buf = reinterpret_cast<SelectEntry*>(
          ws + L.select_off + L.select_bytes * size_t(ThreadPool::thread_index()));
      int64_t n = 0;
      for (int64_t i = 0; i < V; ++i) {
        const float lq = source_lq(load_as_float(row.z, i), load_as_float(row.y, i));
        if (lq > -kInf) buf[n++] = select_entry(lq, i);
      }
      th = radix_thresholds(buf, n, top_p, top_k, min_p, p.min_tokens_to_keep);
    }
    // Candidates: kept tokens with ℓ* > −inf (SEMANTICS 3); fall back to
    // every token with ℓ* > −inf if the linear update clipped them all.
    ArgMax best = argmax_empty();
    for (int pass = 0; pass < 2 && best.index < 0; ++pass) {
      const bool use_mask = masked && pass == 0;
      Philox4 bits{};
      int64_t group = -1;
      for (int64_t i = 0; i < V; ++i) {
        const float z = load_as_float(row.z, i), y = load_as_float(row.y, i);
        const float a = aligned_logprob(plan, z, y);
        if (!(a > -kInf)) continue;
        if (use_mask && !mask_keep(th, source_lq(z, y), i)) continue;
        float score = a;
        if (!greedy) {
          if (i / 4 != group) {
            group = i / 4;
            bits = rng.group(uint64_t(group));
          }
          score = a + gumbel_from_bits(bits.v[i % 4]);
        }
        argmax_push(best, score, i);
      }
    }
    call.tokens[r] = int32_t(best.index);
    if (call.token_logprob != nullptr) {
      call.token_logprob[r] =
          aligned_logprob(plan, load_as_float(row.z, best.index), load_as_float(row.y, best.index));
    }
  });
}

// ---- 4c. score: the targets' ℓ*, ℓ, ℓᵖ and the per-sequence sums
template <class E>
void CpuBackend::score_rows(const Call& call, const Setup& u) {
  const Params& p = *call.params;
  const ScoreOutputs& o = *call.score;
  // ℓ*_t, ℓ_t, ℓᵖ_t of row r (0 when ignored, NaN when the row is invalid).
  auto row_scores = [&](int64_t r, float* a, float* b, float* c) {
    const int32_t t = call.targets[r];
    const RowPlan& plan = u.plans[r];
    *a = *b = *c = 0.f;
    if (t == p.ignore_index) return;
    if (!plan_valid(plan)) {
      *a = *b = *c = kNaN;
      return;
    }
    const RowData<E> row = row_data<E>(call.logits, r);
    const float z = load_as_float(row.z, t), y = load_as_float(row.y, t);
    *a = aligned_logprob(plan, z, y);
    *b = base_logprob(plan, z, y);
    *c = principle_logprob(plan, z, y);
  };
  for (int64_t r = 0; r < u.B; ++r) {
    float a, b, c;
    row_scores(r, &a, &b, &c);
    o.aligned[r] = a;
    if (o.base != nullptr) o.base[r] = b;
    if (o.principle != nullptr) o.principle[r] = c;
  }
  for (int64_t s = 0; s < o.num_sequences; ++s) {
    float sa = 0.f, sb = 0.f, sc = 0.f;
    for (int64_t r = o.seq_offsets[s]; r < o.seq_offsets[s + 1]; ++r) {
      if (call.targets[r] == p.ignore_index) continue;  // excluded from the sums
      float a, b, c;
      row_scores(r, &a, &b, &c);
      sa += a;
      sb += b;
      sc += c;
    }
    if (o.seq_aligned != nullptr) o.seq_aligned[s] = sa;
    if (o.seq_base != nullptr) o.seq_base[s] = sb;
    if (o.seq_principle != nullptr) o.seq_principle[s] = sc;
  }
}

}  // namespace host
}  // namespace linalign
