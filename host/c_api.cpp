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

#include "c_api_support.hpp"
#include "linalign/linalign.h"
#include "linalign/linalign.hpp"
#include "linalign/math/row_stats.hpp"

namespace {

using namespace linalign::c_api;  // NOLINT: the entry points' shared vocabulary

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
static_assert(linalign::kMaxThreads == LINALIGN_MAX_THREADS, "thread bound");
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
static_assert(static_cast<uint32_t>(linalign::kRowOverflow) == LINALIGN_ROW_OVERFLOW, "row status");
static_assert(static_cast<uint32_t>(linalign::kRowOverflow) == linalign::math::kFlagOverflow,
              "row status");

// Diagnostics are written by the C++ API straight into the caller's array
// (device memory on CUDA, so no copy is possible): the layouts must be equal.
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
    if (c.num_threads < 0 || c.num_threads > LINALIGN_MAX_THREADS) {
      return fail(call, LINALIGN_INVALID_ARGUMENT,
                  "config.num_threads must be in [0, " + std::to_string(LINALIGN_MAX_THREADS) +
                      "] (got " + std::to_string(c.num_threads) + ")");
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
