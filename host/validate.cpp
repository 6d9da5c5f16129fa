// Call-level checks of SPEC §5, shared by the CPU and CUDA backends.
#include <cmath>
#include <sstream>

#include "call.hpp"
#include "linalign/math/param_ranges.hpp"

namespace linalign {
namespace host {
namespace {

struct Checker {
  const char* call;
  std::string* message;
  Status fail(Status s, const std::string& what) {
    *message = std::string(call) + ": " + what;
    return s;
  }
};

template <class T>
std::string show(T v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Checks a per-row parameter: the scalar always, the array when host-visible.
template <class T, class Pred>
bool check_param(const PerRow<T>& p, int64_t rows, bool host_arrays, Pred ok, const char* name,
                 const char* rule, Checker& c, Status* st) {
  if (p.values == nullptr) {
    if (!ok(p.value)) {
      *st = c.fail(Status::kInvalidArgument,
                   std::string("params.") + name + " " + rule + " (got " + show(p.value) + ")");
      return false;
    }
    return true;
  }
  if (!host_arrays) return true;  // device array: checked per row by the kernels
  for (int64_t r = 0; r < rows; ++r) {
    if (!ok(p.values[r])) {
      *st = c.fail(Status::kInvalidArgument, std::string("params.") + name + "[" + show(r) + "] " +
                                                 rule + " (got " + show(p.values[r]) + ")");
      return false;
    }
  }
  return true;
}

}  // namespace

namespace {
// The shape part of the checks: dtype, rows, vocab, and any stride that is
// set (0 means vocab, resolved by the caller). Needs no pointer.
Status check_shape(const LogitsView& v, Checker& c) {
  if (int(v.dtype) < 0 || int(v.dtype) > 2)
    return c.fail(Status::kNotSupported,
                  "logits.dtype " + show(int(v.dtype)) + " is not supported (f32, bf16, f16)");
  if (v.rows < 0) return c.fail(Status::kInvalidArgument, "logits.rows must be >= 0");
  if (v.vocab <= 0)
    return c.fail(Status::kInvalidArgument,
                  "logits.vocab must be >= 1 (got " + show(v.vocab) + ")");
  if (v.vocab > INT32_MAX)
    return c.fail(Status::kNotSupported, "logits.vocab must fit in int32 (token ids are int32)");
  return Status::kSuccess;
}
}  // namespace

Status validate_shape(const Call& call, std::string* message) {
  Checker c{call.name, message};
  const Status s = check_shape(call.logits, c);
  if (s != Status::kSuccess) return s;
  const LogitsView& v = call.logits;
  const struct {
    int64_t stride;
    const char* name;
  } strides[] = {{v.base_stride, "logits.base_stride"},
                 {v.principle_stride, "logits.principle_stride"},
                 {v.paired_stride, "logits.paired_stride"}};
  for (const auto& st : strides)
    if (st.stride != 0 && st.stride < v.vocab)
      return c.fail(Status::kInvalidArgument, std::string(st.name) + " (" + show(st.stride) +
                                                  ") must be >= logits.vocab (" + show(v.vocab) +
                                                  ")");
  if (int(call.op) < 0 || int(call.op) > int(Op::kAlignShard))
    return c.fail(Status::kInvalidArgument, "op " + show(int(call.op)) + " is unknown");
  return Status::kSuccess;
}

namespace {

// ---- shapes and layout (strides of 0 resolved to vocab here)
Status check_layout(Call* call, bool host_arrays, Checker& c) {
  LogitsView& v = call->logits;
  if (const Status s = check_shape(v, c); s != Status::kSuccess) return s;
  const bool strided = v.base != nullptr || v.principle != nullptr;
  const bool ptrs = v.base_ptrs != nullptr || v.principle_ptrs != nullptr;
  const bool paired = v.paired != nullptr || v.pair_index != nullptr;
  if (int(strided) + int(ptrs) + int(paired) > 1)
    return c.fail(Status::kInvalidArgument,
                  "logits: set exactly one layout (base/principle, base_ptrs/principle_ptrs, "
                  "or paired/pair_index), not several");
  if (v.base_stride == 0) v.base_stride = v.vocab;
  if (v.principle_stride == 0) v.principle_stride = v.vocab;
  if (v.paired_stride == 0) v.paired_stride = v.vocab;
  if (v.rows > 0) {
    if (!strided && !ptrs && !paired)
      return c.fail(Status::kInvalidArgument, "logits.base is null (no input layout is set)");
    if (strided) {
      if (v.base == nullptr) return c.fail(Status::kInvalidArgument, "logits.base is null");
      if (v.principle == nullptr)
        return c.fail(Status::kInvalidArgument, "logits.principle is null");
      if (v.base_stride < v.vocab)
        return c.fail(Status::kInvalidArgument, "logits.base_stride (" + show(v.base_stride) +
                                                    ") must be >= logits.vocab (" + show(v.vocab) +
                                                    ")");
      if (v.principle_stride < v.vocab)
        return c.fail(Status::kInvalidArgument,
                      "logits.principle_stride (" + show(v.principle_stride) +
                          ") must be >= logits.vocab (" + show(v.vocab) + ")");
    } else if (ptrs) {
      if (v.base_ptrs == nullptr)
        return c.fail(Status::kInvalidArgument, "logits.base_ptrs is null");
      if (v.principle_ptrs == nullptr)
        return c.fail(Status::kInvalidArgument, "logits.principle_ptrs is null");
      if (host_arrays) {
        for (int64_t r = 0; r < v.rows; ++r) {
          if (v.base_ptrs[r] == nullptr)
            return c.fail(Status::kInvalidArgument, "logits.base_ptrs[" + show(r) + "] is null");
          if (v.principle_ptrs[r] == nullptr)
            return c.fail(Status::kInvalidArgument,
                          "logits.principle_ptrs[" + show(r) + "] is null");
        }
      }
    } else {
      if (v.paired == nullptr) return c.fail(Status::kInvalidArgument, "logits.paired is null");
      if (v.pair_index == nullptr)
        return c.fail(Status::kInvalidArgument, "logits.pair_index is null");
      if (v.paired_stride < v.vocab)
        return c.fail(Status::kInvalidArgument, "logits.paired_stride (" + show(v.paired_stride) +
                                                    ") must be >= logits.vocab (" + show(v.vocab) +
                                                    ")");
      if (v.paired_rows <= 0)
        return c.fail(Status::kInvalidArgument, "logits.paired_rows must be >= 1");
      if (host_arrays) {
        for (int64_t k = 0; k < 2 * v.rows; ++k) {
          if (v.pair_index[k] < 0 || v.pair_index[k] >= v.paired_rows)
            return c.fail(Status::kInvalidArgument,
                          "logits.pair_index[" + show(k) + "] = " + show(v.pair_index[k]) +
                              " is outside [0, paired_rows = " + show(v.paired_rows) + ")");
        }
      }
    }
  }

  return Status::kSuccess;
}

// ---- per-call parameters
Status check_call_parameters(const Params& p, Checker& c) {
  if (int(p.rule) < 0 || int(p.rule) > 2)
    return c.fail(Status::kInvalidArgument, "params.rule " + show(int(p.rule)) + " is unknown");
  if (int(p.update) < 0 || int(p.update) > 1)
    return c.fail(Status::kInvalidArgument, "params.update " + show(int(p.update)) + " is unknown");
  if (int(p.nucleus_source) < 0 || int(p.nucleus_source) > 1)
    return c.fail(Status::kInvalidArgument,
                  "params.nucleus_source " + show(int(p.nucleus_source)) + " is unknown");
  if (p.min_tokens_to_keep < 1)
    return c.fail(Status::kInvalidArgument, "params.min_tokens_to_keep must be >= 1 (got " +
                                                show(p.min_tokens_to_keep) + ")");

  return Status::kSuccess;
}

// ---- per-row parameters (the ranges: math/param_ranges.hpp)
Status check_row_parameters(const Call& call, bool host_arrays, Checker& c) {
  const Params& p = *call.params;
  const int64_t B = call.logits.rows;
  Status st = Status::kSuccess;
  const bool sampling = call.op == Op::kSample;
  // (the ranges: math/param_ranges.hpp, which the kernels check too)
  if (!check_param(
          p.temperature, B, host_arrays,
          [sampling](float t) { return math::temperature_ok(t, sampling); }, "temperature",
          sampling ? "must be finite and >= 0 (0 = greedy)" : "must be finite and > 0", c, &st))
    return st;
  if (p.rule == StepRule::kFixed) {
    if (!check_param(p.ratio, B, host_arrays, math::ratio_ok, "ratio", "must be finite", c, &st))
      return st;
  } else {
    if (!check_param(p.epsilon, B, host_arrays, math::epsilon_ok, "epsilon",
                     "must be finite and > 0", c, &st))
      return st;
    if (!check_param(p.eta_max, B, host_arrays, math::eta_max_ok, "eta_max",
                     "must be finite and >= 0", c, &st))
      return st;
  }
  if (sampling) {
    if (!check_param(p.top_p, B, host_arrays, math::top_p_ok, "top_p", "must be in (0, 1]", c, &st))
      return st;
    if (!check_param(p.top_k, B, host_arrays, math::top_k_ok, "top_k", "must be >= 0", c, &st))
      return st;
    if (!check_param(p.min_p, B, host_arrays, math::min_p_ok, "min_p", "must be in [0, 1]", c, &st))
      return st;
  }

  return Status::kSuccess;
}

// ---- outputs
Status check_outputs(Call* call, bool host_arrays, Checker& c) {
  const Params& p = *call->params;
  const LogitsView& v = call->logits;
  const int64_t B = v.rows;
  const bool shard_op = call->op == Op::kShardStats || call->op == Op::kAlignShard;
  if (shard_op && (p.rule != StepRule::kFixed || p.update != UpdateForm::kTilt))
    return c.fail(Status::kNotSupported,
                  "params.rule / params.update: vocabulary-parallel calls support the fixed "
                  "rule with the tilt update (one exchange of statistics); trust_region, "
                  "exact_kl and the linear update need a second exchange");
  switch (call->op) {
    case Op::kShardStats:
      if (B > 0 && call->shard_out == nullptr)
        return c.fail(Status::kInvalidArgument, "out is null");
      break;
    case Op::kAlignShard:
      if (call->num_shards < 1)
        return c.fail(Status::kInvalidArgument,
                      "num_shards must be >= 1 (got " + show(call->num_shards) + ")");
      if (B > 0 && call->shard_in == nullptr)
        return c.fail(Status::kInvalidArgument, "shards is null");
      [[fallthrough]];
    case Op::kAlign:
      if (call->out_stride == 0) call->out_stride = v.vocab;
      if (B > 0 && call->out == nullptr) return c.fail(Status::kInvalidArgument, "out is null");
      if (call->out_dtype != DType::kF32 && call->out_dtype != DType::kBF16)
        return c.fail(Status::kNotSupported, "out_dtype " + show(int(call->out_dtype)) +
                                                 " is not supported for aligned log-probs (f32 "
                                                 "or bf16)");
      if (call->out_stride < v.vocab)
        return c.fail(Status::kInvalidArgument, "out_stride (" + show(call->out_stride) +
                                                    ") must be >= logits.vocab (" + show(v.vocab) +
                                                    ")");
      break;
    case Op::kSample:
      if (B > 0 && call->tokens == nullptr)
        return c.fail(Status::kInvalidArgument, "tokens is null");
      break;
    case Op::kScore: {
      const ScoreOutputs& o = *call->score;
      if (B > 0 && call->targets == nullptr)
        return c.fail(Status::kInvalidArgument, "targets is null");
      if (B > 0 && o.aligned == nullptr)
        return c.fail(Status::kInvalidArgument, "out.aligned is null");
      if (host_arrays) {
        for (int64_t r = 0; r < B; ++r) {
          const int32_t t = call->targets[r];
          if (!math::target_ok(t, p.ignore_index, v.vocab))
            return c.fail(Status::kInvalidArgument, "targets[" + show(r) + "] = " + show(t) +
                                                        " is outside [0, vocab = " + show(v.vocab) +
                                                        ") and is not ignore_index (" +
                                                        show(p.ignore_index) + ")");
        }
      }
      if (o.num_sequences < 0)
        return c.fail(Status::kInvalidArgument, "out.num_sequences must be >= 0");
      if (o.num_sequences > 0) {
        if (o.seq_offsets == nullptr)
          return c.fail(Status::kInvalidArgument, "out.seq_offsets is null");
        if (o.seq_aligned == nullptr)
          return c.fail(Status::kInvalidArgument, "out.seq_aligned is null");
        if (host_arrays) {
          for (int64_t s = 0; s <= o.num_sequences; ++s) {
            const int64_t x = o.seq_offsets[s];
            if (x < 0 || x > B)
              return c.fail(Status::kInvalidArgument,
                            "out.seq_offsets[" + show(s) + "] = " + show(x) +
                                " is outside [0, rows = " + show(B) + "]");
            if (s > 0 && x < o.seq_offsets[s - 1])
              return c.fail(Status::kInvalidArgument,
                            "out.seq_offsets must be non-decreasing (offset " + show(s) + ")");
          }
        }
      } else if (o.seq_aligned != nullptr || o.seq_base != nullptr || o.seq_principle != nullptr) {
        if (o.seq_offsets == nullptr)
          return c.fail(Status::kInvalidArgument,
                        "out.seq_offsets is null while sequence sums are requested");
      }
      break;
    }
  }
  return Status::kSuccess;
}

}  // namespace

// The phases in order; the first failure names the argument.
Status validate_call(Call* call, bool host_arrays, std::string* message) {
  Checker c{call->name, message};
  if (call->params == nullptr) return c.fail(Status::kInvalidArgument, "params is null");
  Status s = check_layout(call, host_arrays, c);
  if (s == Status::kSuccess) s = check_call_parameters(*call->params, c);
  if (s == Status::kSuccess) s = check_row_parameters(*call, host_arrays, c);
  if (s == Status::kSuccess) s = check_outputs(call, host_arrays, c);
  return s;
}

}  // namespace host
}  // namespace linalign
