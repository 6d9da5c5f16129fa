// linalign — C++ API.
//
// Linear Alignment (Gao et al., ICML 2024) at decode time: for each row (one
// decoding step of one request) the library takes the logits of the plain
// context `z` ("base") and of the context with a principle `y` ("principle"),
// and computes, fused over the whole vocabulary (../shared/SPEC.md §2–§3):
//   * aligned log-probabilities ℓ*                              (Context::align)
//   * the next token, greedy or seeded Gumbel-max sampling,
//     under top-p / top-k / min-p masks                          (Context::sample)
//   * log-probs of given target tokens and per-sequence sums     (Context::score)
//   * per-row diagnostics: η, μ, σ, KL(π*‖π), KL(π*‖πᵖ), H(π*),
//     support size and row status                                (all three calls)
//
// Error model (SPEC §5): no call throws. A call-level error (null pointer,
// bad shape, bad parameter, too small workspace, no device) returns a Status
// other than kSuccess, writes nothing, and leaves a message naming the
// argument in Context::last_error(). A row-level error (NaN / +inf logit,
// empty support) is reported in that row's status; that row's outputs are
// NaN / token -1 and every other row is computed exactly as if it were alone.
//
// Memory (docs/SEMANTICS.md item 17). The structs (Params, LogitsView,
// ScoreOutputs) are read on the host during the call and may be reused as
// soon as it returns. Every pointer they and the calls carry is dereferenced
// by the backend, and must be in the memory of that backend:
//   * CPU backend: host memory (pageable, pinned or managed); not checked.
//   * CUDA backend: memory the device can address — device (cudaMalloc),
//     managed (cudaMallocManaged) or mapped pinned host memory
//     (cudaMallocHost, cudaHostAlloc, cudaHostRegister; through UVA). Every
//     call checks every non-null pointer on the host with
//     cudaPointerGetAttributes (no synchronisation; legal under stream
//     capture): plain pageable host memory (cudaMemoryTypeUnregistered) is a
//     call-level kInvalidArgument whose message names the argument, e.g.
//     "sample: params.seed is host memory (cudaMemoryTypeUnregistered); ...",
//     and nothing is launched or written. The row pointers stored inside
//     LogitsView::base_ptrs / principle_ptrs are themselves in device memory,
//     out of the host's sight without a copy: the kernels flag a null or
//     misaligned one per row (kRowBadParameter), but one that points to
//     pageable host memory is not detected (an illegal-address fault).
// The comment above Context::align lists the memory of every argument.
//
// Thread safety: a Context may be used by one thread at a time (its last
// error message and its internal workspace are per Context). Use one Context
// per thread, or serialise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "linalign/math/config.hpp"

namespace linalign {

// ---------------------------------------------------------------- status ---

// Stable values: they are also the values of the C API's linalign_status_t.
enum class Status : int32_t {
  kSuccess = 0,
  kInvalidArgument = 1,        // a null pointer, bad shape/stride, bad parameter value,
                               // pageable host memory passed to the CUDA backend
  kNotSupported = 2,           // e.g. unsupported dtype, backend not compiled in
  kInsufficientWorkspace = 3,  // workspace_bytes < the queried size
  kNoDevice = 4,               // a CUDA call without a usable CUDA device
  kCudaError = 5,              // the CUDA runtime reported an error (text in last_error)
  kInternal = 6,               // a bug: please report
  // The host API's request lifecycle (linalign/batcher.hpp):
  kCancelled = 7,         // the step was cancelled before it ran
  kDeadlineExceeded = 8,  // the step's deadline passed before it ran
  kShutdown = 9,          // the batcher shut down (submission refused, or a pending step failed)
  kQueueFull = 10,        // the bounded queue had no room (try-submit, or the wait timed out)
};

// Short static name of a status ("success", "invalid argument", ...).
const char* status_string(Status s);

// Row status flags (SPEC §5 row-level errors). 0 means the row is valid.
enum RowStatus : uint32_t {
  kRowOk = 0,
  kRowNaN = 1u << 0,           // a NaN logit in the base or principle row (within V_valid)
  kRowPosInf = 1u << 1,        // a +inf logit in the base or principle row
  kRowEmptySupport = 1u << 2,  // no token is finite in both rows (S is empty)
  kRowBadParameter = 1u << 3,  // CUDA backend only: a per-row parameter in a device
                               // array was out of range (host arrays are checked
                               // at call level instead)
  kRowOverflow = 1u << 4,      // the row's logits are finite, but at its parameters a
                               // derived quantity (z/T, y/T, η·δ, a normaliser, μ,
                               // σ, a KL, H) is not representable in fp32, e.g.
                               // T = 1e-38 or ratio = 3e38 (docs/SEMANTICS.md 6)
};

// ------------------------------------------------------------ parameters ---

enum class DType : int32_t { kF32 = 0, kBF16 = 1, kF16 = 2 };

// Step rule choosing η per row (SPEC §2).
enum class StepRule : int32_t {
  kFixed = 0,        // η = 1 + ratio
  kTrustRegion = 1,  // η = min(η_max, sqrt(2ε)/σ), η = 0 when σ = 0
  kExactKl = 2,  // η ∈ [0, η_max] with KL(π*‖π) = ε (to 1e-4·ε), η_max if unreachable
};

// Update form producing π* from π, δ and η (SPEC §2).
enum class UpdateForm : int32_t {
  kTilt = 0,    // ℓ* = log_softmax(ℓ + η δ) over S
  kLinear = 1,  // π* ∝ max(0, π (1 + η (δ − μ))) over S
};

// Which distribution the top-p / top-k / min-p masks are computed on (SPEC §3).
enum class NucleusSource : int32_t {
  kPrinciple = 0,  // πᵖ (the reference model.py)
  kAligned = 1,    // π* (the reference demo.py, usual engine order)
};

// A parameter that is either one value for every row, or an array with one
// value per row (CPU backend: host memory; CUDA: device, managed or mapped
// pinned memory, checked on the host per call — see "Memory" at the top).
// The kernels receive it as it is (kernels::Args) and call at() too.
template <class T>
struct PerRow {
  T value{};
  const T* values = nullptr;  // when non-null, row r uses values[r]
  PerRow() = default;
  PerRow(T v) : value(v) {}  // NOLINT: implicit on purpose, `params.ratio = 3.f`
  static PerRow array(const T* p) {
    PerRow r;
    r.values = p;
    return r;
  }
  LINALIGN_HD T at(int64_t row) const { return values ? values[row] : value; }
};

// Every parameter of SPEC §2–§4 with its default.
struct Params {
  // Temperature T > 0. T = 0 is accepted by sample() only and means greedy
  // (the limit T → 0); statistics and diagnostics are then computed at T = 1.
  PerRow<float> temperature = 1.0f;
  StepRule rule = StepRule::kFixed;
  PerRow<float> ratio = 2.0f;    // fixed rule: η = 1 + ratio
  PerRow<float> epsilon = 0.1f;  // trust_region / exact_kl: KL budget ε > 0
  PerRow<float> eta_max = 8.0f;  // trust_region / exact_kl: upper bound of η (≥ 0)
  UpdateForm update = UpdateForm::kTilt;

  // Token selection (sample()).
  bool greedy = false;         // argmax instead of Gumbel-max sampling
  PerRow<float> top_p = 1.0f;  // in (0, 1]; 1 disables
  PerRow<int32_t> top_k = 0;   // ≥ 0; 0 disables
  PerRow<float> min_p = 0.0f;  // in [0, 1]; 0 disables
  NucleusSource nucleus_source = NucleusSource::kPrinciple;
  int32_t min_tokens_to_keep = 1;  // ≥ 1; the masks always keep this many top tokens
  // Philox4x32-10 key and offset (SPEC §4). With a scalar seed, one seed
  // serves the whole call and the Philox sub-stream is the row index; with a
  // per-row seed array, every row has sub-stream 0, so its token does not
  // depend on its position in the batch.
  PerRow<uint64_t> seed = uint64_t{0};
  PerRow<uint64_t> offset = uint64_t{0};

  // Scoring (score()).
  int32_t ignore_index = -100;
};

// --------------------------------------------------------------- inputs ---

// B rows of base logits z and principle logits y, in one of three layouts:
//   1. strided:        base + r*base_stride, principle + r*principle_stride
//   2. pointer arrays: base_ptrs[r], principle_ptrs[r] (rows in different buffers)
//   3. paired:         one [N, paired_stride] buffer `paired`; row r's base is
//                      paired row pair_index[2r] and its principle paired row
//                      pair_index[2r+1] (e.g. one [2B, V] LM-head output).
// Exactly one layout must be set. Strides are in elements. `vocab` is V_valid:
// columns at and beyond it are padding and are ignored; every token id
// returned is < vocab. Memory (see "Memory" at the top): CPU backend, host
// memory; CUDA backend, device, managed or mapped pinned memory for base,
// principle, base_ptrs, principle_ptrs, paired and pair_index, each checked
// on the host per call — and for the rows base_ptrs[r] / principle_ptrs[r]
// point to, which the host cannot check (they are read on the device).
struct LogitsView {
  DType dtype = DType::kF32;
  int64_t rows = 0;   // B ≥ 0
  int64_t vocab = 0;  // V_valid ≥ 1
  // layout 1
  const void* base = nullptr;
  const void* principle = nullptr;
  int64_t base_stride = 0;       // ≥ vocab (0 means vocab)
  int64_t principle_stride = 0;  // ≥ vocab (0 means vocab)
  // layout 2
  const void* const* base_ptrs = nullptr;
  const void* const* principle_ptrs = nullptr;
  // layout 3
  const void* paired = nullptr;
  const int64_t* pair_index = nullptr;  // 2*rows entries, each in [0, paired_rows)
  int64_t paired_rows = 0;
  int64_t paired_stride = 0;  // ≥ vocab (0 means vocab)

  static LogitsView strided(DType t, int64_t rows, int64_t vocab, const void* base,
                            const void* principle, int64_t base_stride = 0,
                            int64_t principle_stride = 0) {
    LogitsView v = of_shape(t, rows, vocab);
    v.base = base;
    v.principle = principle;
    v.base_stride = base_stride;
    v.principle_stride = principle_stride;
    return v;
  }
  static LogitsView pointers(DType t, int64_t rows, int64_t vocab, const void* const* base_ptrs,
                             const void* const* principle_ptrs) {
    LogitsView v = of_shape(t, rows, vocab);
    v.base_ptrs = base_ptrs;
    v.principle_ptrs = principle_ptrs;
    return v;
  }
  static LogitsView pairs(DType t, int64_t rows, int64_t vocab, const void* paired,
                          int64_t paired_rows, const int64_t* pair_index,
                          int64_t paired_stride = 0) {
    LogitsView v = of_shape(t, rows, vocab);
    v.paired = paired;
    v.paired_rows = paired_rows;
    v.pair_index = pair_index;
    v.paired_stride = paired_stride;
    return v;
  }

 private:
  static LogitsView of_shape(DType t, int64_t rows, int64_t vocab) {
    LogitsView v;
    v.dtype = t;
    v.rows = rows;
    v.vocab = vocab;
    return v;
  }
};

// -------------------------------------------------------------- outputs ---

// Per-row diagnostics (SPEC §2). For an invalid row every float is NaN,
// support is the number of tokens in S that were counted, status != 0.
struct RowDiagnostics {
  float eta;           // step size η
  float mu;            // μ = E_π[δ] = −KL(π‖πᵖ)
  float sigma;         // σ = sqrt(Var_π[δ])
  float kl_base;       // KL(π*‖π)
  float kl_principle;  // KL(π*‖πᵖ)
  float entropy;       // H(π*) in nats
  int32_t support;     // |S|
  uint32_t status;     // RowStatus flags
};

// Where score() writes. `aligned` is required; the others may be null. Every
// pointer (seq_offsets included) is host memory for the CPU backend, device,
// managed or mapped pinned memory for CUDA (checked on the host per call).
struct ScoreOutputs {
  float* aligned = nullptr;    // [B]: ℓ*_t (0 for ignored rows, NaN for invalid rows)
  float* base = nullptr;       // [B]: ℓ_t   (optional)
  float* principle = nullptr;  // [B]: ℓᵖ_t  (optional)
  // Per-sequence sums over ragged sequences: sequence s is rows
  // [seq_offsets[s], seq_offsets[s+1]); rows whose target is ignore_index are
  // excluded; a sequence containing an invalid row sums to NaN. Both or none.
  const int64_t* seq_offsets = nullptr;  // num_sequences + 1 non-decreasing offsets in [0, B]
  int64_t num_sequences = 0;
  float* seq_aligned = nullptr;    // [num_sequences] Σ ℓ*_t
  float* seq_base = nullptr;       // [num_sequences] Σ ℓ_t   (optional)
  float* seq_principle = nullptr;  // [num_sequences] Σ ℓᵖ_t  (optional)
};

// ------------------------------------------------------------- context ---

enum class Backend : int32_t {
  kCpu = 0,
  kCuda = 1,
  kAuto = 2,  // CUDA when compiled in and a device is present, else CPU
};

// The most CPU worker threads a context starts (more is a call-level error,
// not a million threads started on a typo).
constexpr int kMaxThreads = 1024;

struct ContextOptions {
  Backend backend = Backend::kCpu;
  int num_threads = 0;  // CPU backend worker threads, 0..kMaxThreads; 0 = hardware concurrency
  int device = -1;      // CUDA device ordinal; -1 = the current device
};

// The operations, for workspace queries.
enum class Op : int32_t {
  kAlign = 0,
  kSample = 1,
  kScore = 2,
  kShardStats = 3,  // Context::shard_stats
  kAlignShard = 4,  // Context::align_shard
};

// Vocabulary-parallel use (SPEC §7): the partial statistics of one row over
// one vocabulary shard — the online log-sum-exp and weighted moments of the
// shard, 64 bytes, trivially copyable. An engine that shards the LM head over
// G GPUs calls shard_stats on each GPU, all-gathers the B·64 bytes (e.g.
// ncclAllGather, G×B records laid out shard-major: record [g·B + r]), and
// calls align_shard on each GPU with all G×B records: every GPU merges them
// in the same order and writes the ℓ* of its own columns, equal to the
// single-device result within SPEC §6.
struct ShardStats {
  uint32_t words[16];
};

class Batcher;

class Context {
 public:
  // Creates a context. On failure (e.g. Backend::kCuda without a device) the
  // status is returned and *out is left null; `error` (optional) gets the message.
  static Status create(const ContextOptions& options, std::unique_ptr<Context>* out,
                       std::string* error = nullptr);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Backend backend() const;         // the backend actually in use (never kAuto)
  const char* last_error() const;  // message of the last failed call ("" after success)

  // Bytes of workspace a call of `op` with these shapes needs, into *bytes.
  // Calls given a workspace of at least this size allocate nothing (and, on
  // CUDA, are graph-capturable). Passing workspace = nullptr lets the context
  // use a buffer it owns (grown on demand: may allocate, not graph-safe).
  // Needs no data pointer. kInvalidArgument / kNotSupported, naming the
  // argument (last_error()), for a shape no call could take — bytes null,
  // logits.rows < 0, logits.vocab < 1 or past int32, an unknown dtype or op,
  // a stride set below vocab — with *bytes = 0.
  Status workspace_size(Op op, const LogitsView& logits, const Params& params, size_t* bytes) const;
  // The same as a value: 0 for such a shape (the call itself then reports
  // the error).
  size_t workspace_size(Op op, const LogitsView& logits, const Params& params) const;

  // `stream` is a cudaStream_t for the CUDA backend (nullptr = default
  // stream) and ignored by the CPU backend. CUDA calls are asynchronous and
  // never synchronise; CPU calls return when the results are written.
  //
  // Memory of the pointer arguments of the calls below (see "Memory" at the
  // top). CPU backend: host memory. CUDA backend: device, managed or mapped
  // pinned memory, each non-null pointer checked on the host per call
  // (pageable host memory: kInvalidArgument naming it, nothing written):
  //   logits      base, principle, base_ptrs, principle_ptrs, paired,
  //               pair_index (the rows base_ptrs / principle_ptrs point to:
  //               the same memory, not checked on the host);
  //   params      the per-row arrays temperature, ratio, epsilon, eta_max,
  //               top_p, top_k, min_p, seed, offset (Params itself: host);
  //   align       out, diagnostics;
  //   sample      tokens, token_logprob, diagnostics;
  //   score       targets, every ScoreOutputs pointer, diagnostics;
  //   shard_stats out;   align_shard  shards, out, diagnostics;
  //   workspace   a caller's workspace (the context's own buffer, used when
  //               workspace = nullptr, is device memory it allocates).

  // Aligned log-probs ℓ* into out[r*out_stride + i] for i < vocab (fp32);
  // out_stride ≥ vocab (0 means vocab). Padding columns are not written.
  // `diagnostics` ([B]) is optional.
  Status align(const LogitsView& logits, const Params& params, float* out, int64_t out_stride,
               RowDiagnostics* diagnostics, void* workspace = nullptr, size_t workspace_bytes = 0,
               void* stream = nullptr);

  // The same with ℓ* written as `out_dtype`: DType::kF32 (float), or
  // DType::kBF16 (bf16 bit patterns in uint16_t, rounded to nearest even;
  // −inf and NaN kept). kF16 is kNotSupported (its range would clip ℓ*).
  Status align(const LogitsView& logits, const Params& params, void* out, DType out_dtype,
               int64_t out_stride, RowDiagnostics* diagnostics, void* workspace = nullptr,
               size_t workspace_bytes = 0, void* stream = nullptr);

  // Next token per row into tokens[B] (−1 for invalid rows); `token_logprob`
  // ([B], optional) gets ℓ*_token (NaN for invalid rows); `diagnostics` optional.
  Status sample(const LogitsView& logits, const Params& params, int32_t* tokens,
                float* token_logprob, RowDiagnostics* diagnostics, void* workspace = nullptr,
                size_t workspace_bytes = 0, void* stream = nullptr);

  // Scores of targets[B] (each in [0, vocab) or params.ignore_index) without
  // materialising B×V; see ScoreOutputs. `diagnostics` optional.
  Status score(const LogitsView& logits, const Params& params, const int32_t* targets,
               const ScoreOutputs& out, RowDiagnostics* diagnostics, void* workspace = nullptr,
               size_t workspace_bytes = 0, void* stream = nullptr);

  // ---- vocabulary-parallel use (SPEC §7); see ShardStats. Supported for the
  // fixed rule with the tilt update, where η is known before the statistics
  // are merged, so one all-gather suffices (trust_region, exact_kl and the
  // linear update would need a second exchange: kNotSupported).
  //
  // shard_stats: out[r] = the partial statistics of row r over this shard's
  // columns (`shard.vocab` of them). Per-row parameters as in align().
  Status shard_stats(const LogitsView& shard, const Params& params, ShardStats* out,
                     void* workspace = nullptr, size_t workspace_bytes = 0, void* stream = nullptr);
  // align_shard: merges shards[g·B + r] for g = 0..num_shards−1 (the same
  // order on every device), then writes ℓ* of this shard's columns into
  // out[r·out_stride + i], i < shard.vocab, and optional diagnostics (of the
  // whole row: identical on every shard). Row-level errors in any shard
  // invalidate the row everywhere.
  Status align_shard(const LogitsView& shard, const Params& params, const ShardStats* shards,
                     int64_t num_shards, float* out, int64_t out_stride,
                     RowDiagnostics* diagnostics, void* workspace = nullptr,
                     size_t workspace_bytes = 0, void* stream = nullptr);

  struct Impl;

 private:
  friend class Batcher;  // linalign/batcher.hpp runs its batches on this context's backend
  explicit Context(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when the library was built with the CUDA backend.
bool cuda_compiled();
// Number of usable CUDA devices (0 without CUDA support or without a device).
int cuda_device_count();

}  // namespace linalign
