// What one API call asks for, as the backends see it, and the checks of
// SPEC §5 shared by every backend (call-level errors: nothing is launched,
// nothing is written, the message names the argument).
#pragma once

#include <cstdint>
#include <string>

#include "linalign/linalign.hpp"
#include "linalign/math/dtype.hpp"
#include "linalign/math/layout.hpp"

namespace linalign {
namespace host {

// One call of the C++ API as both backends receive it (the three call
// descriptors: EntryPoint in c_api.cpp is only a C entry point's error
// context; Call is the call itself, the caller's pointers and parameters,
// validated and with strides resolved; kernels::Args is a Call marshalled
// for the kernels: device pointers, workspace records, launch shape).
struct Call {
  Op op = Op::kAlign;
  const char* name = "align";  // for messages
  LogitsView logits;           // strides resolved (0 → vocab)
  const Params* params = nullptr;
  // align
  void* out = nullptr;
  DType out_dtype = DType::kF32;  // kF32 or kBF16
  int64_t out_stride = 0;         // resolved (0 → vocab)
  // sample
  int32_t* tokens = nullptr;
  float* token_logprob = nullptr;
  // score
  const int32_t* targets = nullptr;
  const ScoreOutputs* score = nullptr;
  RowDiagnostics* diagnostics = nullptr;
  // vocabulary-parallel (SPEC §7)
  ShardStats* shard_out = nullptr;       // shard_stats: [B]
  const ShardStats* shard_in = nullptr;  // align_shard: [num_shards × B], shard-major
  int64_t num_shards = 0;
};

// The name a call's messages start with ("align: ...").
inline const char* op_name(Op op) {
  switch (op) {
    case Op::kAlign:
      return "align";
    case Op::kSample:
      return "sample";
    case Op::kScore:
      return "score";
    case Op::kShardStats:
      return "shard_stats";
    case Op::kAlignShard:
      return "align_shard";
  }
  return "?";
}

// Calls f(E{}) with E the element type of dtype t (float, math::Bf16Bits,
// math::Fp16Bits) — the one dtype switch of both backends. Returns false,
// calling nothing, for a dtype that is none of them.
template <class F>
bool dispatch_dtype(DType t, F&& f) {
  switch (t) {
    case DType::kF32:
      f(float{});
      return true;
    case DType::kBF16:
      f(math::Bf16Bits{});
      return true;
    case DType::kF16:
      f(math::Fp16Bits{});
      return true;
  }
  return false;
}

inline int64_t dtype_bytes(DType t) {
  return t == DType::kF32 ? 4 : 2;
}

// Resolves the zero strides to vocab and checks the whole call. With
// `host_arrays` the per-row parameter arrays, pointer arrays, pair indices,
// targets and sequence offsets are host memory and are checked element by
// element; otherwise (CUDA) only what the host can see is checked here.
Status validate_call(Call* call, bool host_arrays, std::string* message);
// The checks a workspace query can make (no pointer is needed yet): dtype,
// rows, vocab, the strides that are set, the op.
Status validate_shape(const Call& call, std::string* message);

// Row r's base and principle rows (valid after validate_call).
inline math::Layout layout_of(const LogitsView& v) {
  return v.base != nullptr        ? math::Layout::kStrided
         : v.base_ptrs != nullptr ? math::Layout::kPointers
                                  : math::Layout::kPaired;
}
inline void row_pointers(const LogitsView& v, int64_t r, const void** z, const void** y) {
  const math::RowAddress a = math::row_address(v, layout_of(v), r, dtype_bytes(v.dtype));
  *z = a.z;
  *y = a.y;
}

// Whether token selection may need the masks for some row.
inline bool masks_possible(const Params& p) {
  return p.top_p.values != nullptr || p.top_k.values != nullptr || p.min_p.values != nullptr ||
         p.top_p.value < 1.0f || p.top_k.value > 0 || p.min_p.value > 0.0f;
}

}  // namespace host
}  // namespace linalign
