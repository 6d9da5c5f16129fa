// The C API (include/linalign/linalign.h) over linalign::Context.
//
// Every entry point is noexcept and catches everything: a C caller never
// sees a C++ exception (STYLE "Host API"). The layer only checks what is
// C-specific — NULL handle and struct pointers, struct_size, enum values held
// in int32_t fields — converts the structs to the C++ ones field by field, and
// otherwise forwards, so every result and every other error is the C++ API's.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "linalign/linalign.h"
#include "linalign/linalign.hpp"
#include "linalign/math/row_stats.hpp"

// The handle: a Context plus the last error message of calls on it. The
// message of an error the C layer finds itself lives here; a Context error is
// copied here from Context::last_error().
struct linalign_handle_s {
  std::unique_ptr<linalign::Context> context;
  std::string error;
  // Set instead of `error` when recording `error` failed (out of memory).
  const char* static_error = nullptr;
};

namespace {

using linalign::Backend;
using linalign::DType;
using linalign::NucleusSource;
using linalign::Op;
using linalign::Status;
using linalign::StepRule;
using linalign::UpdateForm;

// ------------------------------------------------ the C mirrors are exact ---

static_assert(static_cast<int>(Status::kSuccess) == LINALIGN_SUCCESS, "status");
static_assert(static_cast<int>(Status::kInvalidArgument) == LINALIGN_INVALID_ARGUMENT, "status");
static_assert(static_cast<int>(Status::kNotSupported) == LINALIGN_NOT_SUPPORTED, "status");
static_assert(static_cast<int>(Status::kInsufficientWorkspace) == LINALIGN_INSUFFICIENT_WORKSPACE,
              "status");
static_assert(static_cast<int>(Status::kNoDevice) == LINALIGN_NO_DEVICE, "status");
static_assert(static_cast<int>(Status::kCudaError) == LINALIGN_CUDA_ERROR, "status");
static_assert(static_cast<int>(Status::kInternal) == LINALIGN_INTERNAL, "status");
static_assert(static_cast<int>(Status::kCancelled) == LINALIGN_CANCELLED, "status");
static_assert(static_cast<int>(Status::kDeadlineExceeded) == LINALIGN_DEADLINE_EXCEEDED, "status");
static_assert(static_cast<int>(Status::kShutdown) == LINALIGN_SHUTDOWN, "status");
static_assert(static_cast<int>(Status::kQueueFull) == LINALIGN_QUEUE_FULL, "status");

static_assert(static_cast<int>(DType::kF32) == LINALIGN_DTYPE_F32, "dtype");
static_assert(static_cast<int>(DType::kBF16) == LINALIGN_DTYPE_BF16, "dtype");
static_assert(static_cast<int>(DType::kF16) == LINALIGN_DTYPE_F16, "dtype");
static_assert(static_cast<int>(StepRule::kFixed) == LINALIGN_STEP_FIXED, "rule");
static_assert(static_cast<int>(StepRule::kTrustRegion) == LINALIGN_STEP_TRUST_REGION, "rule");
static_assert(static_cast<int>(StepRule::kExactKl) == LINALIGN_STEP_EXACT_KL, "rule");
static_assert(static_cast<int>(UpdateForm::kTilt) == LINALIGN_UPDATE_TILT, "update");
static_assert(static_cast<int>(UpdateForm::kLinear) == LINALIGN_UPDATE_LINEAR, "update");
static_assert(static_cast<int>(NucleusSource::kPrinciple) == LINALIGN_NUCLEUS_PRINCIPLE, "nucleus");
static_assert(static_cast<int>(NucleusSource::kAligned) == LINALIGN_NUCLEUS_ALIGNED, "nucleus");
static_assert(static_cast<int>(Backend::kCpu) == LINALIGN_BACKEND_CPU, "backend");
static_assert(static_cast<int>(Backend::kCuda) == LINALIGN_BACKEND_CUDA, "backend");
static_assert(static_cast<int>(Backend::kAuto) == LINALIGN_BACKEND_AUTO, "backend");
static_assert(static_cast<int>(Op::kAlign) == LINALIGN_OP_ALIGN, "op");
static_assert(static_cast<int>(Op::kSample) == LINALIGN_OP_SAMPLE, "op");
static_assert(static_cast<int>(Op::kScore) == LINALIGN_OP_SCORE, "op");
static_assert(static_cast<int>(Op::kShardStats) == LINALIGN_OP_SHARD_STATS, "op");
static_assert(static_cast<int>(Op::kAlignShard) == LINALIGN_OP_ALIGN_SHARD, "op");
static_assert(sizeof(linalign_shard_stats_t) == sizeof(linalign::ShardStats), "shard stats");
static_assert(static_cast<uint32_t>(linalign::kRowOk) == LINALIGN_ROW_OK, "row status");
static_assert(static_cast<uint32_t>(linalign::kRowNaN) == LINALIGN_ROW_NAN, "row status");
static_assert(static_cast<uint32_t>(linalign::kRowPosInf) == LINALIGN_ROW_POS_INF, "row status");
static_assert(static_cast<uint32_t>(linalign::kRowEmptySupport) == LINALIGN_ROW_EMPTY_SUPPORT,
              "row status");
static_assert(static_cast<uint32_t>(linalign::kRowBadParameter) == LINALIGN_ROW_BAD_PARAMETER,
              "row status");
// The bits themselves are defined once, in math/row_stats.hpp (the kernels
// and the CPU backend set them); the public enums mirror them.
static_assert(static_cast<uint32_t>(linalign::kRowNaN) == linalign::math::kFlagNaN, "row status");
static_assert(static_cast<uint32_t>(linalign::kRowPosInf) == linalign::math::kFlagPosInf,
              "row status");
static_assert(static_cast<uint32_t>(linalign::kRowEmptySupport) == linalign::math::kFlagEmpty,
              "row status");
static_assert(static_cast<uint32_t>(linalign::kRowBadParameter) == linalign::math::kFlagBadParam,
              "row status");

// Diagnostics are written by the C++ API straight into the caller's array
// (device memory on CUDA, so no copy is possible): the layouts must be equal.
using CDiag = linalign_row_diagnostics_t;
using CxxDiag = linalign::RowDiagnostics;
static_assert(std::is_standard_layout<CDiag>::value && std::is_standard_layout<CxxDiag>::value,
              "diagnostics layout");
static_assert(std::is_trivially_copyable<CxxDiag>::value, "diagnostics layout");
static_assert(sizeof(CDiag) == sizeof(CxxDiag) && alignof(CDiag) == alignof(CxxDiag),
              "diagnostics layout");
static_assert(offsetof(CDiag, eta) == offsetof(CxxDiag, eta), "diagnostics layout");
static_assert(offsetof(CDiag, mu) == offsetof(CxxDiag, mu), "diagnostics layout");
static_assert(offsetof(CDiag, sigma) == offsetof(CxxDiag, sigma), "diagnostics layout");
static_assert(offsetof(CDiag, kl_base) == offsetof(CxxDiag, kl_base), "diagnostics layout");
static_assert(offsetof(CDiag, kl_principle) == offsetof(CxxDiag, kl_principle),
              "diagnostics layout");
static_assert(offsetof(CDiag, entropy) == offsetof(CxxDiag, entropy), "diagnostics layout");
static_assert(offsetof(CDiag, support) == offsetof(CxxDiag, support), "diagnostics layout");
static_assert(offsetof(CDiag, status) == offsetof(CxxDiag, status), "diagnostics layout");

// The versioned structs start with struct_size (the ABI rule of the header).
static_assert(offsetof(linalign_config_t, struct_size) == 0, "struct_size first");
static_assert(offsetof(linalign_params_t, struct_size) == 0, "struct_size first");
static_assert(offsetof(linalign_logits_t, struct_size) == 0, "struct_size first");
static_assert(offsetof(linalign_score_outputs_t, struct_size) == 0, "struct_size first");

// ------------------------------------------------------------ error text ---

constexpr const char* kOutOfMemoryMessage =
    "linalign: out of memory while recording an error message";

// Errors of calls without a handle (a failed create, a NULL handle).
thread_local std::string t_error;
thread_local const char* t_static_error = nullptr;

void record(linalign_handle_t handle, const char* message) noexcept {
  std::string& text = handle ? handle->error : t_error;
  const char*& fallback = handle ? handle->static_error : t_static_error;
  try {
    text.assign(message);
    fallback = nullptr;
  } catch (...) {
    fallback = kOutOfMemoryMessage;
  }
}

void clear(linalign_handle_t handle) noexcept {
  std::string& text = handle ? handle->error : t_error;
  text.clear();  // keeps the capacity: no allocation, no throw
  (handle ? handle->static_error : t_static_error) = nullptr;
}

// A C entry point's error context — not a call description (that is
// host::Call): where its errors go and the name they start with (as the C++
// API's "align: ..." messages do).
struct EntryPoint {
  linalign_handle_t handle;  // NULL: the thread's message
  const char* name;          // "linalign_align", ...
};

linalign_status_t fail(const EntryPoint& call, linalign_status_t status,
                       const std::string& message) {
  record(call.handle, (std::string(call.name) + ": " + message).c_str());
  return status;
}

linalign_status_t to_c(Status s) {
  return static_cast<linalign_status_t>(static_cast<int>(s));
}

// Runs `body` for a call on `handle` with the handle's message cleared; turns
// a NULL handle into LINALIGN_INVALID_ARGUMENT and any exception into
// LINALIGN_INTERNAL. `body` takes the EntryPoint.
template <class BodyT>
linalign_status_t guarded(linalign_handle_t handle, const char* name, BodyT&& body) noexcept {
  if (handle == nullptr) {
    try {
      return fail(EntryPoint{nullptr, name}, LINALIGN_INVALID_ARGUMENT,
                  "handle is NULL (create one with linalign_create)");
    } catch (...) {
      record(nullptr, kOutOfMemoryMessage);
      return LINALIGN_INVALID_ARGUMENT;
    }
  }
  clear(handle);
  try {
    return body(EntryPoint{handle, name});
  } catch (const std::bad_alloc&) {
    record(handle, "linalign: out of host memory");
  } catch (const std::exception& e) {
    try {
      record(handle, (std::string("linalign internal error in ") + name + ": " + e.what() +
                      " (please report)")
                         .c_str());
    } catch (...) {
      record(handle, "linalign internal error: an exception escaped (please report)");
    }
  } catch (...) {
    record(handle, "linalign internal error: an unknown exception escaped (please report)");
  }
  return LINALIGN_INTERNAL;
}

// Records the Context's own message (it names the argument) after a failure.
linalign_status_t forward(const EntryPoint& call, Status status) {
  if (status != Status::kSuccess) {
    const char* message = call.handle->context->last_error();
    if (message == nullptr || *message == '\0') {
      fail(call, to_c(status), linalign::status_string(status));
    } else {
      record(call.handle, message);
    }
  }
  return to_c(status);
}

// ------------------------------------------------------ versioned structs ---

// A struct_size this large is not a newer header: the struct was not
// initialised. Refusing it also bounds the bytes the zero check below reads.
constexpr size_t kMaxStructSize = 4096;

// The struct_size rule of the header: at least this library's layout (the
// first published one); a larger struct (newer header) only with its unknown
// trailing bytes zero.
template <class StructT>
linalign_status_t check_struct(const EntryPoint& call, const StructT* s, const char* name,
                               const char* init) {
  if (s == nullptr) return fail(call, LINALIGN_INVALID_ARGUMENT, std::string(name) + " is NULL");
  const size_t size = s->struct_size;
  if (size < sizeof(StructT) || size > kMaxStructSize) {
    return fail(call, LINALIGN_INVALID_ARGUMENT,
                std::string(name) + ".struct_size is " + std::to_string(size) +
                    "; this library expects " + std::to_string(sizeof(StructT)) +
                    " (initialise the struct with " + init + ")");
  }
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(s);
  for (size_t i = sizeof(StructT); i < size; ++i) {
    if (bytes[i] != 0) {
      return fail(call, LINALIGN_NOT_SUPPORTED,
                  std::string(name) + ".struct_size is " + std::to_string(size) +
                      " and fields beyond byte " + std::to_string(sizeof(StructT)) +
                      " are set; this library version (" + std::to_string(LINALIGN_VERSION_MAJOR) +
                      "." + std::to_string(LINALIGN_VERSION_MINOR) + "." +
                      std::to_string(LINALIGN_VERSION_PATCH) + ") does not know them");
    }
  }
  return LINALIGN_SUCCESS;
}

// ------------------------------------------------------------ conversions ---
// Enum values held in int32_t fields are not checked here: the C++ enums have
// a fixed underlying type int32_t, so any value converts, and the C++ API
// rejects unknown ones with the same field name (params.rule, logits.dtype).

template <class T>
linalign::PerRow<T> per_row(T value, const T* values) {
  linalign::PerRow<T> r(value);
  r.values = values;
  return r;
}

// *p (NULL: the defaults) as linalign::Params.
linalign_status_t to_params(const EntryPoint& call, const linalign_params_t* p,
                            linalign::Params* out) {
  if (p == nullptr) {
    *out = linalign::Params{};
    return LINALIGN_SUCCESS;
  }
  const linalign_status_t s = check_struct(call, p, "params", "LINALIGN_PARAMS_INIT");
  if (s != LINALIGN_SUCCESS) return s;
  linalign::Params q;
  q.temperature = per_row(p->temperature, p->temperature_per_row);
  q.rule = static_cast<StepRule>(p->rule);
  q.ratio = per_row(p->ratio, p->ratio_per_row);
  q.epsilon = per_row(p->epsilon, p->epsilon_per_row);
  q.eta_max = per_row(p->eta_max, p->eta_max_per_row);
  q.update = static_cast<UpdateForm>(p->update);
  q.greedy = p->greedy != 0;
  q.top_p = per_row(p->top_p, p->top_p_per_row);
  q.top_k = per_row(p->top_k, p->top_k_per_row);
  q.min_p = per_row(p->min_p, p->min_p_per_row);
  q.nucleus_source = static_cast<NucleusSource>(p->nucleus_source);
  q.min_tokens_to_keep = p->min_tokens_to_keep;
  q.seed = per_row(p->seed, p->seed_per_row);
  q.offset = per_row(p->offset, p->offset_per_row);
  q.ignore_index = p->ignore_index;
  *out = q;
  return LINALIGN_SUCCESS;
}

linalign_status_t to_view(const EntryPoint& call, const linalign_logits_t* v,
                          linalign::LogitsView* out) {
  const linalign_status_t s = check_struct(call, v, "logits", "LINALIGN_LOGITS_INIT");
  if (s != LINALIGN_SUCCESS) return s;
  linalign::LogitsView w;
  w.dtype = static_cast<DType>(v->dtype);
  w.rows = v->rows;
  w.vocab = v->vocab;
  w.base = v->base;
  w.principle = v->principle;
  w.base_stride = v->base_stride;
  w.principle_stride = v->principle_stride;
  w.base_ptrs = v->base_ptrs;
  w.principle_ptrs = v->principle_ptrs;
  w.paired = v->paired;
  w.pair_index = v->pair_index;
  w.paired_rows = v->paired_rows;
  w.paired_stride = v->paired_stride;
  *out = w;
  return LINALIGN_SUCCESS;
}

// The common front of the compute calls.
linalign_status_t prepare(const EntryPoint& call, const linalign_logits_t* logits,
                          const linalign_params_t* params, linalign::LogitsView* view,
                          linalign::Params* p) {
  const linalign_status_t s = to_view(call, logits, view);
  if (s != LINALIGN_SUCCESS) return s;
  return to_params(call, params, p);
}

CxxDiag* to_cxx(linalign_row_diagnostics_t* d) {
  return reinterpret_cast<CxxDiag*>(d);
}

}  // namespace

// ================================================================ entry points

extern "C" {

unsigned linalign_version(void) noexcept {
  return LINALIGN_VERSION_NUMBER;
}

const char* linalign_status_string(linalign_status_t status) noexcept {
  const int s = static_cast<int>(status);
  if (s < LINALIGN_SUCCESS || s > LINALIGN_QUEUE_FULL) return "unknown status";
  try {
    const char* text = linalign::status_string(static_cast<Status>(s));
    return text ? text : "unknown status";
  } catch (...) {
    return "unknown status";
  }
}

void linalign_config_init(linalign_config_t* config) noexcept {
  if (config == nullptr) return;
  const linalign_config_t defaults = LINALIGN_CONFIG_INIT;
  *config = defaults;
}

void linalign_params_init(linalign_params_t* params) noexcept {
  if (params == nullptr) return;
  const linalign_params_t defaults = LINALIGN_PARAMS_INIT;
  *params = defaults;
}

linalign_status_t linalign_create(const linalign_config_t* config,
                                  linalign_handle_t* out) noexcept {
  const EntryPoint call{nullptr, "linalign_create"};
  try {
    if (out == nullptr) return fail(call, LINALIGN_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    linalign_config_t c = LINALIGN_CONFIG_INIT;
    if (config != nullptr) {
      const linalign_status_t s = check_struct(call, config, "config", "LINALIGN_CONFIG_INIT");
      if (s != LINALIGN_SUCCESS) return s;
      c = *config;
    }
    // Checked here too so that the message names the C field.
    if (c.backend < LINALIGN_BACKEND_CPU || c.backend > LINALIGN_BACKEND_AUTO) {
      return fail(call, LINALIGN_INVALID_ARGUMENT,
                  "config.backend " + std::to_string(c.backend) + " is not a linalign_backend_t");
    }
    if (c.num_threads < 0) {
      return fail(call, LINALIGN_INVALID_ARGUMENT,
                  "config.num_threads must be >= 0 (got " + std::to_string(c.num_threads) + ")");
    }
    linalign::ContextOptions options;
    options.backend = static_cast<Backend>(c.backend);
    options.num_threads = c.num_threads;
    options.device = c.device;

    std::unique_ptr<linalign::Context> context;
    std::string error;
    Status s = linalign::Context::create(options, &context, &error);
    if (s == Status::kSuccess && context == nullptr) s = Status::kInternal;
    if (s != Status::kSuccess) {
      if (error.empty()) return fail(call, to_c(s), linalign::status_string(s));
      record(nullptr, error.c_str());
      return to_c(s);
    }
    std::unique_ptr<linalign_handle_s> handle(new linalign_handle_s);
    handle->context = std::move(context);
    clear(nullptr);
    *out = handle.release();
    return LINALIGN_SUCCESS;
  } catch (const std::bad_alloc&) {
    record(nullptr, "linalign_create: out of host memory");
  } catch (...) {
    record(nullptr,
           "linalign internal error in linalign_create: an exception escaped (please report)");
  }
  return LINALIGN_INTERNAL;
}

void linalign_destroy(linalign_handle_t handle) noexcept {
  delete handle;
}

const char* linalign_last_error(linalign_handle_t handle) noexcept {
  if (handle == nullptr) return t_static_error ? t_static_error : t_error.c_str();
  return handle->static_error ? handle->static_error : handle->error.c_str();
}

linalign_status_t linalign_get_backend(linalign_handle_t handle,
                                       linalign_backend_t* backend) noexcept {
  return guarded(handle, "linalign_get_backend", [&](const EntryPoint& call) -> linalign_status_t {
    if (backend == nullptr) return fail(call, LINALIGN_INVALID_ARGUMENT, "backend is NULL");
    *backend = static_cast<linalign_backend_t>(static_cast<int>(handle->context->backend()));
    return LINALIGN_SUCCESS;
  });
}

int linalign_cuda_compiled(void) noexcept {
  try {
    return linalign::cuda_compiled() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int linalign_cuda_device_count(void) noexcept {
  try {
    return linalign::cuda_device_count();
  } catch (...) {
    return 0;
  }
}

linalign_status_t linalign_workspace_size(linalign_handle_t handle, linalign_op_t op,
                                          const linalign_logits_t* logits,
                                          const linalign_params_t* params, size_t* bytes) noexcept {
  return guarded(
      handle, "linalign_workspace_size", [&](const EntryPoint& call) -> linalign_status_t {
        const int o = static_cast<int>(op);
        if (o < LINALIGN_OP_ALIGN || o > LINALIGN_OP_ALIGN_SHARD) {
          return fail(call, LINALIGN_INVALID_ARGUMENT,
                      "op " + std::to_string(o) + " is not a linalign_op_t");
        }
        if (bytes == nullptr) return fail(call, LINALIGN_INVALID_ARGUMENT, "bytes is NULL");
        linalign::LogitsView view;
        linalign::Params p;
        const linalign_status_t s = prepare(call, logits, params, &view, &p);
        if (s != LINALIGN_SUCCESS) return s;
        return forward(call, handle->context->workspace_size(static_cast<Op>(o), view, p, bytes));
      });
}

linalign_status_t linalign_align(linalign_handle_t handle, const linalign_logits_t* logits,
                                 const linalign_params_t* params, float* out, int64_t out_stride,
                                 linalign_row_diagnostics_t* diagnostics, void* workspace,
                                 size_t workspace_bytes, void* stream) noexcept {
  return guarded(handle, "linalign_align", [&](const EntryPoint& call) -> linalign_status_t {
    linalign::LogitsView view;
    linalign::Params p;
    const linalign_status_t s = prepare(call, logits, params, &view, &p);
    if (s != LINALIGN_SUCCESS) return s;
    return forward(call, handle->context->align(view, p, out, out_stride, to_cxx(diagnostics),
                                                workspace, workspace_bytes, stream));
  });
}

linalign_status_t linalign_align_typed(linalign_handle_t handle, const linalign_logits_t* logits,
                                       const linalign_params_t* params, void* out,
                                       int32_t out_dtype, int64_t out_stride,
                                       linalign_row_diagnostics_t* diagnostics, void* workspace,
                                       size_t workspace_bytes, void* stream) noexcept {
  return guarded(handle, "linalign_align_typed", [&](const EntryPoint& call) -> linalign_status_t {
    linalign::LogitsView view;
    linalign::Params p;
    const linalign_status_t s = prepare(call, logits, params, &view, &p);
    if (s != LINALIGN_SUCCESS) return s;
    return forward(call,
                   handle->context->align(view, p, out, linalign::DType(out_dtype), out_stride,
                                          to_cxx(diagnostics), workspace, workspace_bytes, stream));
  });
}

linalign_status_t linalign_shard_stats(linalign_handle_t handle, const linalign_logits_t* logits,
                                       const linalign_params_t* params, linalign_shard_stats_t* out,
                                       void* workspace, size_t workspace_bytes,
                                       void* stream) noexcept {
  return guarded(handle, "linalign_shard_stats", [&](const EntryPoint& call) -> linalign_status_t {
    linalign::LogitsView view;
    linalign::Params p;
    const linalign_status_t s = prepare(call, logits, params, &view, &p);
    if (s != LINALIGN_SUCCESS) return s;
    return forward(
        call, handle->context->shard_stats(view, p, reinterpret_cast<linalign::ShardStats*>(out),
                                           workspace, workspace_bytes, stream));
  });
}

linalign_status_t linalign_align_shard(linalign_handle_t handle, const linalign_logits_t* logits,
                                       const linalign_params_t* params,
                                       const linalign_shard_stats_t* shards, int64_t num_shards,
                                       float* out, int64_t out_stride,
                                       linalign_row_diagnostics_t* diagnostics, void* workspace,
                                       size_t workspace_bytes, void* stream) noexcept {
  return guarded(handle, "linalign_align_shard", [&](const EntryPoint& call) -> linalign_status_t {
    linalign::LogitsView view;
    linalign::Params p;
    const linalign_status_t s = prepare(call, logits, params, &view, &p);
    if (s != LINALIGN_SUCCESS) return s;
    return forward(
        call, handle->context->align_shard(
                  view, p, reinterpret_cast<const linalign::ShardStats*>(shards), num_shards, out,
                  out_stride, to_cxx(diagnostics), workspace, workspace_bytes, stream));
  });
}

linalign_status_t linalign_sample(linalign_handle_t handle, const linalign_logits_t* logits,
                                  const linalign_params_t* params, int32_t* tokens,
                                  float* token_logprob, linalign_row_diagnostics_t* diagnostics,
                                  void* workspace, size_t workspace_bytes, void* stream) noexcept {
  return guarded(handle, "linalign_sample", [&](const EntryPoint& call) -> linalign_status_t {
    linalign::LogitsView view;
    linalign::Params p;
    const linalign_status_t s = prepare(call, logits, params, &view, &p);
    if (s != LINALIGN_SUCCESS) return s;
    return forward(call,
                   handle->context->sample(view, p, tokens, token_logprob, to_cxx(diagnostics),
                                           workspace, workspace_bytes, stream));
  });
}

linalign_status_t linalign_score(linalign_handle_t handle, const linalign_logits_t* logits,
                                 const linalign_params_t* params, const int32_t* targets,
                                 const linalign_score_outputs_t* outputs,
                                 linalign_row_diagnostics_t* diagnostics, void* workspace,
                                 size_t workspace_bytes, void* stream) noexcept {
  return guarded(handle, "linalign_score", [&](const EntryPoint& call) -> linalign_status_t {
    linalign::LogitsView view;
    linalign::Params p;
    linalign_status_t s = prepare(call, logits, params, &view, &p);
    if (s != LINALIGN_SUCCESS) return s;
    s = check_struct(call, outputs, "outputs", "LINALIGN_SCORE_OUTPUTS_INIT");
    if (s != LINALIGN_SUCCESS) return s;
    linalign::ScoreOutputs o;
    o.aligned = outputs->aligned;
    o.base = outputs->base;
    o.principle = outputs->principle;
    o.seq_offsets = outputs->seq_offsets;
    o.num_sequences = outputs->num_sequences;
    o.seq_aligned = outputs->seq_aligned;
    o.seq_base = outputs->seq_base;
    o.seq_principle = outputs->seq_principle;
    return forward(call, handle->context->score(view, p, targets, o, to_cxx(diagnostics), workspace,
                                                workspace_bytes, stream));
  });
}

}  // extern "C"
