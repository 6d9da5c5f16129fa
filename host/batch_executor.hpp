// How a backend runs the host API's batches (include/linalign/batcher.hpp).
//
// The batcher validates every step at submission and groups compatible steps;
// a BatchExecutor, made by the backend, runs one group as one call. It has
// `slots`: consecutive batches use different slots, so one batch's copy in,
// kernels and copy out can overlap the next one's (CUDA: a stream, an event,
// a pinned staging area, a device area and a workspace per slot; CPU: one
// slot, run on the calling thread). A slot's BatchIo holds the batch's
// host-side arrays in and its outputs back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "call.hpp"

namespace linalign {
namespace host {

struct BatchIo {
  // In (host memory), one entry per row.
  std::vector<const void*> base, principle;  // the rows (backend memory)
  std::vector<float> temperature, ratio, epsilon, eta_max, top_p, min_p;
  std::vector<int32_t> top_k, targets;
  std::vector<uint64_t> seed, offset;
  std::vector<float*> aligned;  // align: each row's ℓ* destination (backend memory)
  // Out (host memory), one entry per row.
  std::vector<int32_t> tokens;
  std::vector<float> logprob, score_base, score_principle;
  std::vector<RowDiagnostics> diagnostics;

  size_t rows() const { return base.size(); }
  void resize(size_t B) {
    base.resize(B);
    principle.resize(B);
    for (auto* v : {&temperature, &ratio, &epsilon, &eta_max, &top_p, &min_p}) v->resize(B);
    top_k.resize(B);
    targets.resize(B);
    seed.resize(B);
    offset.resize(B);
    aligned.resize(B);
    tokens.resize(B);
    for (auto* v : {&logprob, &score_base, &score_principle}) v->resize(B);
    diagnostics.resize(B);
  }
};

// What a batch is, beyond its rows: the operation, the rows' type and width,
// and the call-level parameters (rule, update, greedy, ... — the per-row ones
// come from BatchIo).
struct BatchShape {
  Op op = Op::kSample;
  DType dtype = DType::kF32;
  int64_t vocab = 0;
  Params call_level;
};

// Where a batch's per-row arrays live for the call (host vectors of BatchIo
// for the CPU backend; a device staging area for CUDA).
struct BatchArrays {
  const void* const* base = nullptr;
  const void* const* principle = nullptr;
  const float *temperature = nullptr, *ratio = nullptr, *epsilon = nullptr, *eta_max = nullptr;
  const float *top_p = nullptr, *min_p = nullptr;
  const int32_t* top_k = nullptr;
  const uint64_t *seed = nullptr, *offset = nullptr;
};

// One per-row parameter of a batch: a scalar when every row has the same
// value (bit for bit) — the direct one-row call's own path, e.g. no ranking
// pass for top_k = 0 everywhere — else the array at `where`.
template <class T>
PerRow<T> batch_value(const std::vector<T>& rows, const T* where) {
  for (const T& v : rows)
    if (std::memcmp(&v, rows.data(), sizeof(T)) != 0) return PerRow<T>::array(where);
  return rows.empty() ? PerRow<T>::array(where) : PerRow<T>(rows.front());
}

// The batch's parameters: the call-level fields of `shape`; each per-row
// field from `io`'s host values (a scalar when uniform, see batch_value) or
// the array at `a`; the seed always an array (per-row seeds: sub-stream 0,
// SPEC §4, so a row's draw does not depend on its place in the batch).
inline Params batch_params(const BatchShape& shape, const BatchArrays& a, const BatchIo& io) {
  Params p = shape.call_level;
  p.temperature = batch_value(io.temperature, a.temperature);
  p.ratio = batch_value(io.ratio, a.ratio);
  p.epsilon = batch_value(io.epsilon, a.epsilon);
  p.eta_max = batch_value(io.eta_max, a.eta_max);
  p.top_p = batch_value(io.top_p, a.top_p);
  p.top_k = batch_value(io.top_k, a.top_k);
  p.min_p = batch_value(io.min_p, a.min_p);
  p.seed = PerRow<uint64_t>::array(a.seed);
  p.offset = batch_value(io.offset, a.offset);
  return p;
}

// Where the batch call writes (the backend's memory), [B] each; `aligned`
// is a [B, vocab] staging buffer the executor then copies row by row to
// BatchIo::aligned.
struct BatchOutputs {
  int32_t* tokens = nullptr;
  float *logprob = nullptr, *score_base = nullptr, *score_principle = nullptr;
  RowDiagnostics* diagnostics = nullptr;
  float* aligned = nullptr;
  const int32_t* targets = nullptr;
  ScoreOutputs score;  // filled by batch_call
};

// The batch as one call on the pointer-array layout (the rows stay where the
// callers put them). `p` (from batch_params) and `o` must outlive the call.
inline Call batch_call(const BatchShape& s, int64_t rows, const BatchArrays& a, const Params& p,
                       BatchOutputs& o) {
  Call c;
  c.op = s.op;
  c.name = op_name(s.op);
  c.logits = LogitsView::pointers(s.dtype, rows, s.vocab, a.base, a.principle);
  c.params = &p;
  c.diagnostics = o.diagnostics;
  switch (s.op) {
    case Op::kAlign:
      c.out = o.aligned;
      c.out_dtype = DType::kF32;
      break;
    case Op::kScore:
      o.score.aligned = o.logprob;
      o.score.base = o.score_base;
      o.score.principle = o.score_principle;
      c.targets = o.targets;
      c.score = &o.score;
      break;
    default:
      c.tokens = o.tokens;
      c.token_logprob = o.logprob;
      break;
  }
  return c;
}

class BatchExecutor {
 public:
  virtual ~BatchExecutor() = default;
  virtual int slots() const = 0;
  // Checks a one-row call holding only a step's own pointers (its rows, an
  // align step's output) as this backend's calls check memory (CUDA: device,
  // managed or mapped pinned), so that a step that would fail its batch is
  // refused at submission instead. validate_call has already passed.
  virtual Status check_step_memory(const Call& call, std::string* message) = 0;
  // Starts the batch of io.rows() rows in `slot`, whose previous batch has
  // finished. kSuccess means finish() will report the batch's outcome.
  virtual Status start(int slot, const BatchShape& shape, BatchIo& io, std::string* message) = 0;
  // Waits for the slot's batch; on kSuccess its outputs are in io (and the
  // align rows at their destinations).
  virtual Status finish(int slot, BatchIo& io, std::string* message) = 0;
};

}  // namespace host
}  // namespace linalign
