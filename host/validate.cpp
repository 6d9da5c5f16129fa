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

// The one way a check fails: when `ok` does not hold, the enclosing check
// returns `status` with "<call>: <what>" (`what` is built only then).
#define LINALIGN_REQUIRE(ok, status, what)            \
  do {                                                \
    if (!(ok)) return c.fail(Status::status, (what)); \
  } while (0)
// A pointer the call needs.
#define LINALIGN_REQUIRE_SET(ptr, name) \
  LINALIGN_REQUIRE((ptr) != nullptr, kInvalidArgument, std::string(name) + " is null")
// A row stride (elements): at least the vocabulary.
#define LINALIGN_REQUIRE_STRIDE(stride, name, vocab) \
  LINALIGN_REQUIRE(                                  \
      (stride) >= (vocab), kInvalidArgument,         \
      std::string(name) + " (" + show(stride) + ") must be >= logits.vocab (" + show(vocab) + ")")

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
  LINALIGN_REQUIRE(int(v.dtype) >= 0 && int(v.dtype) <= 2, kNotSupported,
                   "logits.dtype " + show(int(v.dtype)) + " is not supported (f32, bf16, f16)");
  LINALIGN_REQUIRE(v.rows >= 0, kInvalidArgument, "logits.rows must be >= 0");
  LINALIGN_REQUIRE(v.vocab > 0, kInvalidArgument,
                   "logits.vocab must be >= 1 (got " + show(v.vocab) + ")");
  LINALIGN_REQUIRE(v.vocab <= INT32_MAX, kNotSupported,
                   "logits.vocab must fit in int32 (token ids are int32)");
  // Every stride that is set, whichever layout is in use and however many
  // rows: the workspace query sees no pointers, so it cannot tell the
  // layouts apart, and the call must refuse what the query refuses.
  const struct {
    int64_t stride;
    const char* name;
  } strides[] = {{v.base_stride, "logits.base_stride"},
                 {v.principle_stride, "logits.principle_stride"},
                 {v.paired_stride, "logits.paired_stride"}};
  for (const auto& st : strides)
    if (st.stride != 0) LINALIGN_REQUIRE_STRIDE(st.stride, st.name, v.vocab);
  return Status::kSuccess;
}
}  // namespace

Status validate_shape(const Call& call, std::string* message) {
  Checker c{call.name, message};
  const Status s = check_shape(call.logits, c);
  if (s != Status::kSuccess) return s;
  LINALIGN_REQUIRE(int(call.op) >= 0 && int(call.op) <= int(Op::kAlignShard), kInvalidArgument,
                   "op " + show(int(call.op)) + " is unknown");
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
  LINALIGN_REQUIRE(int(strided) + int(ptrs) + int(paired) <= 1, kInvalidArgument,
                   "logits: set exactly one layout (base/principle, base_ptrs/principle_ptrs, "
                   "or paired/pair_index), not several");
  if (v.base_stride == 0) v.base_stride = v.vocab;
  if (v.principle_stride == 0) v.principle_stride = v.vocab;
  if (v.paired_stride == 0) v.paired_stride = v.vocab;
  if (v.rows > 0) {
    LINALIGN_REQUIRE(strided || ptrs || paired, kInvalidArgument,
                     "logits.base is null (no input layout is set)");
    if (strided) {
      LINALIGN_REQUIRE_SET(v.base, "logits.base");
      LINALIGN_REQUIRE_SET(v.principle, "logits.principle");
      LINALIGN_REQUIRE_STRIDE(v.base_stride, "logits.base_stride", v.vocab);
      LINALIGN_REQUIRE_STRIDE(v.principle_stride, "logits.principle_stride", v.vocab);
    } else if (ptrs) {
      LINALIGN_REQUIRE_SET(v.base_ptrs, "logits.base_ptrs");
      LINALIGN_REQUIRE_SET(v.principle_ptrs, "logits.principle_ptrs");
      for (int64_t r = 0; host_arrays && r < v.rows; ++r) {
        LINALIGN_REQUIRE_SET(v.base_ptrs[r], "logits.base_ptrs[" + show(r) + "]");
        LINALIGN_REQUIRE_SET(v.principle_ptrs[r], "logits.principle_ptrs[" + show(r) + "]");
      }
    } else {
      LINALIGN_REQUIRE_SET(v.paired, "logits.paired");
      LINALIGN_REQUIRE_SET(v.pair_index, "logits.pair_index");
      LINALIGN_REQUIRE_STRIDE(v.paired_stride, "logits.paired_stride", v.vocab);
      LINALIGN_REQUIRE(v.paired_rows > 0, kInvalidArgument, "logits.paired_rows must be >= 1");
      for (int64_t k = 0; host_arrays && k < 2 * v.rows; ++k)
        LINALIGN_REQUIRE(v.pair_index[k] >= 0 && v.pair_index[k] < v.paired_rows, kInvalidArgument,
                         "logits.pair_index[" + show(k) + "] = " + show(v.pair_index[k]) +
                             " is outside [0, paired_rows = " + show(v.paired_rows) + ")");
    }
  }

  return Status::kSuccess;
}

// ---- per-call parameters
Status check_call_parameters(const Params& p, Checker& c) {
  LINALIGN_REQUIRE(int(p.rule) >= 0 && int(p.rule) <= 2, kInvalidArgument,
                   "params.rule " + show(int(p.rule)) + " is unknown");
  LINALIGN_REQUIRE(int(p.update) >= 0 && int(p.update) <= 1, kInvalidArgument,
                   "params.update " + show(int(p.update)) + " is unknown");
  LINALIGN_REQUIRE(int(p.nucleus_source) >= 0 && int(p.nucleus_source) <= 1, kInvalidArgument,
                   "params.nucleus_source " + show(int(p.nucleus_source)) + " is unknown");
  LINALIGN_REQUIRE(
      p.min_tokens_to_keep >= 1, kInvalidArgument,
      "params.min_tokens_to_keep must be >= 1 (got " + show(p.min_tokens_to_keep) + ")");

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
  // The rule's own parameters in their ranges; the others only not NaN.
  const bool fixed = p.rule == StepRule::kFixed;
  constexpr const char* kUnused = "must not be NaN (unused by this rule)";
  if (!check_param(p.ratio, B, host_arrays, fixed ? math::ratio_ok : math::unused_ok, "ratio",
                   fixed ? "must be finite" : kUnused, c, &st))
    return st;
  if (!check_param(p.epsilon, B, host_arrays, fixed ? math::unused_ok : math::epsilon_ok, "epsilon",
                   fixed ? kUnused : "must be finite and > 0", c, &st))
    return st;
  if (!check_param(p.eta_max, B, host_arrays, fixed ? math::unused_ok : math::eta_max_ok, "eta_max",
                   fixed ? kUnused : "must be finite and >= 0", c, &st))
    return st;
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
  LINALIGN_REQUIRE(!shard_op || (p.rule == StepRule::kFixed && p.update == UpdateForm::kTilt),
                   kNotSupported,
                   "params.rule / params.update: vocabulary-parallel calls support the fixed "
                   "rule with the tilt update (one exchange of statistics); trust_region, "
                   "exact_kl and the linear update need a second exchange");
  switch (call->op) {
    case Op::kShardStats:
      if (B > 0) LINALIGN_REQUIRE_SET(call->shard_out, "out");
      break;
    case Op::kAlignShard:
      LINALIGN_REQUIRE(call->num_shards >= 1, kInvalidArgument,
                       "num_shards must be >= 1 (got " + show(call->num_shards) + ")");
      if (B > 0) LINALIGN_REQUIRE_SET(call->shard_in, "shards");
      [[fallthrough]];
    case Op::kAlign:
      if (call->out_stride == 0) call->out_stride = v.vocab;
      if (B > 0) LINALIGN_REQUIRE_SET(call->out, "out");
      LINALIGN_REQUIRE(call->out_dtype == DType::kF32 || call->out_dtype == DType::kBF16,
                       kNotSupported,
                       "out_dtype " + show(int(call->out_dtype)) +
                           " is not supported for aligned log-probs (f32 or bf16)");
      LINALIGN_REQUIRE_STRIDE(call->out_stride, "out_stride", v.vocab);
      break;
    case Op::kSample:
      if (B > 0) LINALIGN_REQUIRE_SET(call->tokens, "tokens");
      break;
    case Op::kScore: {
      const ScoreOutputs& o = *call->score;
      if (B > 0) {
        LINALIGN_REQUIRE_SET(call->targets, "targets");
        LINALIGN_REQUIRE_SET(o.aligned, "out.aligned");
      }
      for (int64_t r = 0; host_arrays && r < B; ++r) {
        const int32_t t = call->targets[r];
        LINALIGN_REQUIRE(math::target_ok(t, p.ignore_index, v.vocab), kInvalidArgument,
                         "targets[" + show(r) + "] = " + show(t) +
                             " is outside [0, vocab = " + show(v.vocab) +
                             ") and is not ignore_index (" + show(p.ignore_index) + ")");
      }
      LINALIGN_REQUIRE(o.num_sequences >= 0, kInvalidArgument, "out.num_sequences must be >= 0");
      if (o.num_sequences > 0) {
        LINALIGN_REQUIRE_SET(o.seq_offsets, "out.seq_offsets");
        LINALIGN_REQUIRE_SET(o.seq_aligned, "out.seq_aligned");
        for (int64_t s = 0; host_arrays && s <= o.num_sequences; ++s) {
          const int64_t x = o.seq_offsets[s];
          LINALIGN_REQUIRE(x >= 0 && x <= B, kInvalidArgument,
                           "out.seq_offsets[" + show(s) + "] = " + show(x) +
                               " is outside [0, rows = " + show(B) + "]");
          LINALIGN_REQUIRE(s == 0 || x >= o.seq_offsets[s - 1], kInvalidArgument,
                           "out.seq_offsets must be non-decreasing (offset " + show(s) + ")");
        }
      } else if (o.seq_aligned != nullptr || o.seq_base != nullptr || o.seq_principle != nullptr) {
        LINALIGN_REQUIRE(o.seq_offsets != nullptr, kInvalidArgument,
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
  LINALIGN_REQUIRE_SET(call->params, "params");
  Status s = check_layout(call, host_arrays, c);
  if (s == Status::kSuccess) s = check_call_parameters(*call->params, c);
  if (s == Status::kSuccess) s = check_row_parameters(*call, host_arrays, c);
  if (s == Status::kSuccess) s = check_outputs(call, host_arrays, c);
  return s;
}

#undef LINALIGN_REQUIRE_STRIDE
#undef LINALIGN_REQUIRE_SET
#undef LINALIGN_REQUIRE

}  // namespace host
}  // namespace linalign
