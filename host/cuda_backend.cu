// The CUDA backend behind linalign::Context (host code only; the kernels are
// in linalign_{f32,bf16,f16}.cu). run() checks on the host that every
// pointer the call dereferences is aligned and addressable by the device,
// then enqueues the kernels of a validated call on the caller's stream: it
// allocates nothing and never synchronises, so a call given a workspace is
// CUDA-graph capturable. Device facts (SM count, L2 size) are queried once
// per device and cached.
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend.hpp"
#include "kernel_args.hpp"
#include "launch_policy.hpp"

namespace linalign {

static_assert(sizeof(ShardStats) == sizeof(math::RowStats), "ShardStats holds one RowStats");
namespace host {
namespace {

// Records the CUDA error text in *message, clears the (non-sticky) error
// state of the runtime and returns kCudaError.
Status cuda_failure(cudaError_t e, const char* what, const char* call, std::string* message) {
  (void)cudaGetLastError();
  *message = std::string(call) + ": " + what + " failed: " + cudaGetErrorName(e) + " (" +
             cudaGetErrorString(e) + ")";
  return Status::kCudaError;
}

#define LINALIGN_CHECK_CUDA(expr, call, message)                                \
  do {                                                                          \
    const cudaError_t linalign_e_ = (expr);                                     \
    if (linalign_e_ != cudaSuccess)                                             \
      return ::linalign::host::cuda_failure(linalign_e_, #expr, call, message); \
  } while (0)

// Makes `device` current for the scope of a call and restores the caller's.
class DeviceScope {
 public:
  DeviceScope() = default;
  cudaError_t enter(int device) {
    cudaError_t e = cudaGetDevice(&previous_);
    if (e != cudaSuccess) return e;
    if (previous_ == device) return cudaSuccess;
    e = cudaSetDevice(device);
    if (e == cudaSuccess) switched_ = true;
    return e;
  }
  ~DeviceScope() {
    if (switched_) (void)cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = -1;
  bool switched_ = false;
};

// Device facts per input dtype, indexed by the DType's value.
using DeviceFactsByType = std::array<DeviceFacts, 3>;
static_assert(int(DType::kF32) == 0 && int(DType::kBF16) == 1 && int(DType::kF16) == 2,
              "DeviceFactsByType is indexed by DType");

// Per-device facts, queried once per device (a process-wide cache); the
// fused kernel's occupancy depends on the dtype's instance.
Status device_facts(int device, DeviceFactsByType* out, std::string* message) {
  static std::mutex mutex;
  static std::map<int, DeviceFactsByType> cache;
  std::lock_guard<std::mutex> lock(mutex);
  const auto it = cache.find(device);
  if (it != cache.end()) {
    *out = it->second;
    return Status::kSuccess;
  }
  DeviceFactsByType f;
  int sms = 0, l2 = 0;
  LINALIGN_CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                      "Context::create", message);
  LINALIGN_CHECK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device),
                      "Context::create", message);
  // LINALIGN_CUDA_FUSED=0: never the fused kernels (the multi-kernel path,
  // for comparisons and tests on a device that holds a row's slices).
  const char* fused_env = std::getenv("LINALIGN_CUDA_FUSED");
  const bool fused = fused_env == nullptr || std::string(fused_env) != "0";
  DeviceScope scope;  // (the occupancy query asks the current device)
  LINALIGN_CHECK_CUDA(scope.enter(device), "Context::create", message);
  for (size_t i = 0; i < f.size(); ++i) {
    const DType t = DType(i);
    DeviceFacts& d = f[i];
    d.sm_count = sms;
    d.l2_bytes = l2;
    cudaError_t e = cudaSuccess;
    dispatch_dtype(t, [&](auto v) { e = kernels::fused_occupancy<decltype(v)>(&d.fused); });
    LINALIGN_CHECK_CUDA(e, "Context::create (occupancy)", message);
    if (!fused) d.fused = host::FusedOccupancy{};
  }
  cache[device] = f;
  *out = f;
  return Status::kSuccess;
}

class CudaBackendImpl final : public BackendImpl {
 public:
  CudaBackendImpl(int device, const DeviceFactsByType& facts) : device_(device), facts_(facts) {}
  ~CudaBackendImpl() override {
    DeviceScope scope;
    if (scope.enter(device_) != cudaSuccess) return;
    if (owned_ != nullptr) (void)cudaFree(owned_);
    if (owned_done_ != nullptr) (void)cudaEventDestroy(owned_done_);
    (void)cudaGetLastError();
  }
  CudaBackendImpl(const CudaBackendImpl&) = delete;
  CudaBackendImpl& operator=(const CudaBackendImpl&) = delete;

  Backend kind() const override { return Backend::kCuda; }
  bool host_arrays() const override { return false; }

  LaunchPolicy policy(const Call& call) const {
    return choose_launch_policy(call.op, call.logits.rows, call.logits.vocab,
                                dtype_bytes(call.logits.dtype), facts_[size_t(call.logits.dtype)],
                                call.params != nullptr ? call.params->rule : StepRule::kFixed);
  }
  size_t workspace_size(const Call& call) const override {
    return cuda_layout(call, policy(call)).total;
  }

  Status run(const Call& call, void* workspace, size_t workspace_bytes, void* stream_ptr,
             std::string* message) override;
  Status make_batch_executor(int slots, std::unique_ptr<BatchExecutor>* out,
                             std::string* message) override;
  int device() const { return device_; }

  Status own_workspace(size_t bytes, void** ptr, std::string* message) override {
    if (bytes > owned_bytes_ || owned_ == nullptr) {
      DeviceScope scope;
      LINALIGN_CHECK_CUDA(scope.enter(device_), "workspace", message);
      if (owned_ != nullptr) {
        // cudaFree waits for the work still using the old buffer.
        LINALIGN_CHECK_CUDA(cudaFree(owned_), "workspace", message);
        owned_ = nullptr;
        owned_bytes_ = 0;
      }
      LINALIGN_CHECK_CUDA(cudaMalloc(&owned_, bytes), "workspace", message);
      owned_bytes_ = bytes;
      if (owned_done_ == nullptr)
        LINALIGN_CHECK_CUDA(cudaEventCreateWithFlags(&owned_done_, cudaEventDisableTiming),
                            "workspace", message);
    }
    *ptr = owned_;
    return Status::kSuccess;
  }

 private:
  int device_;
  DeviceFactsByType facts_;
  void* owned_ = nullptr;
  size_t owned_bytes_ = 0;
  cudaEvent_t owned_done_ = nullptr;  // last use of owned_ (calls on different streams)
};

namespace {

// Checks every pointer a call's kernels dereference on the host, before
// anything is launched or written (docs/SEMANTICS.md item 17). (Longer than
// most functions here: its table has one line per pointer, on purpose — a
// new device argument is one more line, checked like the others.)
Status check_device_pointers(const Call& call, const void* workspace, std::string* message) {
  const char* name = call.name;
  const LogitsView& v = call.logits;
  const Params& p = *call.params;
  // Every pointer the kernels dereference, in one table: what each holds
  // (its alignment), its name in messages, and whether the device reads it,
  // writes it or both. One loop below checks each non-null entry on the host
  // before anything is launched or written (docs/SEMANTICS.md item 17):
  //   * alignment (the size of the values the kernels load or store there):
  //     a misaligned buffer would be a sticky misaligned-address fault;
  //   * memory: cudaPointerGetAttributes (no synchronisation, not a stream
  //     operation, so legal under stream capture) must report device, managed
  //     or host-pinned (mapped, UVA) memory; plain pageable host memory
  //     (cudaMemoryTypeUnregistered) would be an illegal-address fault that
  //     loses the context for every later call of the process.
  // The row pointers held inside base_ptrs / principle_ptrs live in device
  // memory: the host cannot see them; the kernels flag null or misaligned ones
  // per row (kRowBadParameter).
  const uintptr_t eb = uintptr_t(dtype_bytes(v.dtype));
  const ScoreOutputs* so = call.score;
  const char* const kReads = "reads";
  const char* const kWrites = "writes";
  struct DevicePointer {
    const void* p;
    uintptr_t align;
    const char* name;
    const char* access;  // what the device does with it, for the message
  };
  const DevicePointer pointers[] = {
      {v.base, eb, "logits.base", kReads},
      {v.principle, eb, "logits.principle", kReads},
      {v.base_ptrs, 8, "logits.base_ptrs", kReads},
      {v.principle_ptrs, 8, "logits.principle_ptrs", kReads},
      {v.paired, eb, "logits.paired", kReads},
      {v.pair_index, 8, "logits.pair_index", kReads},
      {p.temperature.values, 4, "params.temperature", kReads},
      {p.ratio.values, 4, "params.ratio", kReads},
      {p.epsilon.values, 4, "params.epsilon", kReads},
      {p.eta_max.values, 4, "params.eta_max", kReads},
      {p.top_p.values, 4, "params.top_p", kReads},
      {p.top_k.values, 4, "params.top_k", kReads},
      {p.min_p.values, 4, "params.min_p", kReads},
      {p.seed.values, 8, "params.seed", kReads},
      {p.offset.values, 8, "params.offset", kReads},
      {call.targets, 4, "targets", kReads},
      {call.shard_in, 4, "shards", kReads},
      {call.out, call.out_dtype == DType::kBF16 ? uintptr_t(2) : uintptr_t(4), "out", kWrites},
      {call.tokens, 4, "tokens", kWrites},
      {call.token_logprob, 4, "token_logprob", kWrites},
      {call.diagnostics, 4, "diagnostics", kWrites},
      {call.shard_out, 4, "out", kWrites},
      {so ? so->aligned : nullptr, 4, "out.aligned", kWrites},
      {so ? so->base : nullptr, 4, "out.base", kWrites},
      {so ? so->principle : nullptr, 4, "out.principle", kWrites},
      {so ? so->seq_offsets : nullptr, 8, "out.seq_offsets", kReads},
      {so ? so->seq_aligned : nullptr, 4, "out.seq_aligned", kWrites},
      {so ? so->seq_base : nullptr, 4, "out.seq_base", kWrites},
      {so ? so->seq_principle : nullptr, 4, "out.seq_principle", kWrites},
      {workspace, 1, "workspace", "reads and writes"},
  };

  for (const DevicePointer& d : pointers) {
    if (d.p == nullptr) continue;  // an optional output not asked for, an unused layout
    if (reinterpret_cast<uintptr_t>(d.p) % d.align != 0) {
      *message = std::string(name) + ": " + d.name + " must be aligned to " +
                 std::to_string(d.align) + " bytes";
      return Status::kInvalidArgument;
    }
    cudaPointerAttributes attr{};
    const cudaError_t e = cudaPointerGetAttributes(&attr, d.p);
    if (e != cudaSuccess || attr.type == cudaMemoryTypeUnregistered) {
      std::string what;
      if (e != cudaSuccess) {
        (void)cudaGetLastError();
        what = std::string(" is not memory the CUDA runtime knows (cudaPointerGetAttributes: ") +
               cudaGetErrorName(e) + ")";
      } else {
        what = " is host memory (cudaMemoryTypeUnregistered)";
      }
      *message = std::string(name) + ": " + d.name + what + "; the CUDA backend " + d.access +
                 " it on the device: pass device, managed or mapped pinned memory";
      return Status::kInvalidArgument;
    }
  }

  return Status::kSuccess;
}

// The kernels' arguments: the call's arrays, its parameters and the
// workspace records carved from `workspace` (aligned to kWorkspaceAlignment).
// (One assignment per field of kernels::Args, hence its length.)
kernels::Args marshal_args(const Call& call, const LaunchPolicy& pol, const CudaLayout& L,
                           void* workspace) {
  const LogitsView& v = call.logits;
  const Params& p = *call.params;
  kernels::Args a{};
  a.src.vocab = v.vocab;
  a.src.layout = int32_t(layout_of(v));
  if (v.base != nullptr) {
    a.src.base = v.base;
    a.src.principle = v.principle;
    a.src.base_stride = v.base_stride;
    a.src.principle_stride = v.principle_stride;
  } else if (v.base_ptrs != nullptr) {
    a.src.base_ptrs = v.base_ptrs;
    a.src.principle_ptrs = v.principle_ptrs;
  } else {
    a.src.paired = v.paired;
    a.src.pair_index = v.pair_index;
    a.src.paired_rows = v.paired_rows;
    a.src.paired_stride = v.paired_stride;
  }
  a.rows = v.rows;
  a.slices = pol.vocab_slices;
  a.op = int32_t(call.op);
  a.rule = int32_t(p.rule);  // StepRule and math::Rule share their values
  a.update = int32_t(p.update);
  a.from_principle = p.nucleus_source == NucleusSource::kPrinciple ? 1 : 0;
  a.min_keep = p.min_tokens_to_keep;
  a.ignore_index = p.ignore_index;
  a.greedy = p.greedy;
  a.tilt_in_first = p.rule == StepRule::kFixed && p.update == UpdateForm::kTilt;
  a.masks_possible = call.op == Op::kSample && masks_possible(p);
  a.per_row_seed = p.seed.values != nullptr;
  a.temperature = p.temperature;
  a.ratio = p.ratio;
  a.epsilon = p.epsilon;
  a.eta_max = p.eta_max;
  a.top_p = p.top_p;
  a.min_p = p.min_p;
  a.top_k = p.top_k;
  a.seed = p.seed;
  a.offset = p.offset;
  if (call.out_dtype == DType::kBF16) {
    a.out_bf16 = static_cast<uint16_t*>(call.out);
  } else {
    a.out = static_cast<float*>(call.out);
  }
  a.out_stride = call.out_stride;
  a.tokens = call.tokens;
  a.token_logprob = call.token_logprob;
  a.diagnostics = call.diagnostics;
  a.targets = call.targets;
  a.shard_out = reinterpret_cast<math::RowStats*>(call.shard_out);
  a.shard_in = reinterpret_cast<const math::RowStats*>(call.shard_in);
  a.num_shards = call.num_shards;
  if (call.op == Op::kScore) {
    const ScoreOutputs& o = *call.score;
    a.score_aligned = o.aligned;
    a.score_base = o.base;
    a.score_principle = o.principle;
    a.seq_offsets = o.seq_offsets;
    a.num_sequences = o.seq_offsets != nullptr ? o.num_sequences : 0;
    a.seq_aligned = o.seq_aligned;
    a.seq_base = o.seq_base;
    a.seq_principle = o.seq_principle;
  }
  const uintptr_t base = round_to_alignment(reinterpret_cast<uintptr_t>(workspace));
  char* ws = reinterpret_cast<char*>(base);
  a.stats = reinterpret_cast<math::RowStats*>(ws + L.stats_off);
  a.tilt_partials = reinterpret_cast<math::TiltSweep*>(ws + L.sweep_off);
  a.linear_partials = reinterpret_cast<math::LinearSums*>(ws + L.sweep_off);
  a.plans = reinterpret_cast<math::RowPlan*>(ws + L.plan_off);
  a.solve = reinterpret_cast<SolveRow*>(ws + L.solve_off);
  a.masks = reinterpret_cast<RowMask*>(ws + L.mask_off);
  a.select = reinterpret_cast<math::SelectRow*>(ws + L.select_off);
  a.candidates = reinterpret_cast<math::Candidate*>(ws + L.candidates_off);
  a.candidate_capacity = candidate_capacity(call.logits.vocab);
  a.select_passes = a.masks_possible ? select_passes(p) : 0;
  a.argmax = reinterpret_cast<kernels::ArgMaxPair*>(ws + L.argmax_off);
  a.stats_done = reinterpret_cast<uint32_t*>(ws + L.stats_done_off);
  a.sample_done = reinterpret_cast<uint32_t*>(ws + L.sample_done_off);
  a.row_scores = reinterpret_cast<kernels::ScoreTriple*>(ws + L.score_off);
  a.seq_temp = ws + L.seq_temp_off;
  a.seq_temp_bytes = kSeqTempBytes;

  return a;
}

}  // namespace

// One call: the workspace size, the pointer checks, the arguments, then the
// kernels on the caller's stream (ordered after the previous user of the
// context's own workspace).
Status CudaBackendImpl::run(const Call& call, void* workspace, size_t workspace_bytes,
                            void* stream_ptr, std::string* message) {
  const char* name = call.name;
  const LaunchPolicy pol = policy(call);
  const CudaLayout L = cuda_layout(call, pol);
  if (workspace_bytes < L.total) {
    *message = std::string(name) + ": workspace_bytes (" + std::to_string(workspace_bytes) +
               ") is smaller than the " + std::to_string(L.total) +
               " bytes workspace_size() reports";
    return Status::kInsufficientWorkspace;
  }
  const LogitsView& v = call.logits;
  // B = 0 launches nothing, except that a score call's sequences (all empty)
  // still get their sums (0), as on the CPU backend.
  const bool empty_sums = call.op == Op::kScore && call.score->num_sequences > 0;
  if (v.rows == 0 && !empty_sums) return Status::kSuccess;

  DeviceScope scope;
  LINALIGN_CHECK_CUDA(scope.enter(device_), name, message);
  const Status checked = check_device_pointers(call, workspace, message);
  if (checked != Status::kSuccess) return checked;
  const kernels::Args a = marshal_args(call, pol, L, workspace);

  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);

  // The context's own buffer may still be in use by a call on another
  // stream: order after it (no host synchronisation).
  // (Not while the stream is being captured: the own buffer is not graph-safe
  // anyway, and an event recorded outside the capture cannot be waited on.)
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  LINALIGN_CHECK_CUDA(cudaStreamIsCapturing(stream, &capture), name, message);
  const bool owned =
      workspace == owned_ && owned_done_ != nullptr && capture == cudaStreamCaptureStatusNone;
  if (owned) LINALIGN_CHECK_CUDA(cudaStreamWaitEvent(stream, owned_done_, 0), name, message);

  const kernels::LaunchShape shape{pol.rows_per_group, pol.fused_grid};
  kernels::LaunchResult res{cudaSuccess, ""};
  if (!dispatch_dtype(v.dtype,
                      [&](auto e) { res = kernels::launch_call<decltype(e)>(a, shape, stream); })) {
    *message = std::string(name) + ": logits.dtype is not supported";
    return Status::kNotSupported;
  }
  if (res.error != cudaSuccess) {
    (void)cudaGetLastError();
    *message = std::string(name) + ": launching " + res.kernel +
               " failed: " + cudaGetErrorName(res.error) + " (" + cudaGetErrorString(res.error) +
               ")";
    return Status::kCudaError;
  }
  if (owned) LINALIGN_CHECK_CUDA(cudaEventRecord(owned_done_, stream), name, message);
  return Status::kSuccess;
}

// ------------------------------------------------------ the host API's batches ---

// The layout of one batch's per-row arrays, the same in a slot's pinned host
// area and its device area: the inputs first (copied in as one block), then
// the outputs (copied back as one block).
struct BatchLayout {
  size_t base, principle, temperature, ratio, epsilon, eta_max, top_p, min_p, top_k, targets, seed,
      offset, in_end;
  size_t tokens, logprob, score_base, score_principle, diagnostics, end;
  explicit BatchLayout(size_t B) {
    size_t at = 0;
    auto take = [&](size_t bytes) {
      const size_t here = at;
      at = round_to_alignment(at + bytes);
      return here;
    };
    base = take(B * sizeof(void*));
    principle = take(B * sizeof(void*));
    temperature = take(B * 4);
    ratio = take(B * 4);
    epsilon = take(B * 4);
    eta_max = take(B * 4);
    top_p = take(B * 4);
    min_p = take(B * 4);
    top_k = take(B * 4);
    targets = take(B * 4);
    seed = take(B * 8);
    offset = take(B * 8);
    in_end = at;
    tokens = take(B * 4);
    logprob = take(B * 4);
    score_base = take(B * 4);
    score_principle = take(B * 4);
    diagnostics = take(B * sizeof(RowDiagnostics));
    end = at;
  }
};

// One stream, one event, a pinned staging area, a device area, a workspace
// and an align staging buffer per slot, each grown on demand (never shrunk)
// while the slot is idle: consecutive batches on different slots overlap
// their copies and kernels (the batcher waits for a slot's previous batch
// before starting the next one there).
class CudaBatchExecutor final : public BatchExecutor {
 public:
  explicit CudaBatchExecutor(CudaBackendImpl& backend) : backend_(backend) {}
  ~CudaBatchExecutor() override {
    DeviceScope scope;
    if (scope.enter(backend_.device()) != cudaSuccess) return;
    for (Slot& s : slots_) {
      if (s.stream != nullptr) (void)cudaStreamSynchronize(s.stream);
      if (s.host != nullptr) (void)cudaFreeHost(s.host);
      for (void* p : {static_cast<void*>(s.dev), s.workspace, static_cast<void*>(s.aligned)})
        if (p != nullptr) (void)cudaFree(p);
      if (s.done != nullptr) (void)cudaEventDestroy(s.done);
      if (s.stream != nullptr) (void)cudaStreamDestroy(s.stream);
    }
    (void)cudaGetLastError();
  }
  CudaBatchExecutor(const CudaBatchExecutor&) = delete;
  CudaBatchExecutor& operator=(const CudaBatchExecutor&) = delete;

  Status init(int slots, std::string* message) {
    DeviceScope scope;
    LINALIGN_CHECK_CUDA(scope.enter(backend_.device()), "Batcher::create", message);
    slots_.resize(size_t(slots));
    for (Slot& s : slots_) {
      LINALIGN_CHECK_CUDA(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking),
                          "Batcher::create", message);
      LINALIGN_CHECK_CUDA(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming),
                          "Batcher::create", message);
    }
    return Status::kSuccess;
  }

  int slots() const override { return int(slots_.size()); }

  Status check_step_memory(const Call& call, std::string* message) override {
    DeviceScope scope;
    LINALIGN_CHECK_CUDA(scope.enter(backend_.device()), call.name, message);
    return check_device_pointers(call, nullptr, message);
  }

  Status start(int slot, const BatchShape& shape, BatchIo& io, std::string* message) override;
  Status finish(int slot, BatchIo& io, std::string* message) override;

 private:
  struct Slot {
    cudaStream_t stream = nullptr;
    cudaEvent_t done = nullptr;
    char* host = nullptr;  // pinned
    char* dev = nullptr;
    void* workspace = nullptr;
    float* aligned = nullptr;
    size_t host_bytes = 0, dev_bytes = 0, workspace_bytes = 0, aligned_bytes = 0;
  };

  // Grows a buffer of the idle slot to at least `need` bytes: `release` the
  // old one, `alloc` the new one (device or pinned host memory).
  template <class T, class AllocT, class ReleaseT>
  static cudaError_t grow(T** p, size_t* have, size_t need, AllocT alloc, ReleaseT release) {
    if (need <= *have && *p != nullptr) return cudaSuccess;
    if (*p != nullptr) {
      const cudaError_t e = release(static_cast<void*>(*p));
      *p = nullptr;
      *have = 0;
      if (e != cudaSuccess) return e;
    }
    void* q = nullptr;
    const cudaError_t e = alloc(&q, need);
    if (e == cudaSuccess) {
      *p = static_cast<T*>(q);
      *have = need;
    }
    return e;
  }
  template <class T>
  static cudaError_t grow_device(T** p, size_t* have, size_t need) {
    return grow(
        p, have, need, [](void** q, size_t n) { return cudaMalloc(q, n); },
        [](void* q) { return cudaFree(q); });
  }
  static cudaError_t grow_pinned(char** p, size_t* have, size_t need) {
    return grow(
        p, have, need, [](void** q, size_t n) { return cudaMallocHost(q, n); },
        [](void* q) { return cudaFreeHost(q); });
  }

  CudaBackendImpl& backend_;
  std::vector<Slot> slots_;
};

Status CudaBatchExecutor::start(int slot, const BatchShape& shape, BatchIo& io,
                                std::string* message) {
  const char* name = op_name(shape.op);
  Slot& s = slots_[size_t(slot)];
  const size_t B = io.rows();
  const BatchLayout L(B);
  DeviceScope scope;
  LINALIGN_CHECK_CUDA(scope.enter(backend_.device()), name, message);
  LINALIGN_CHECK_CUDA(grow_pinned(&s.host, &s.host_bytes, L.end), name, message);
  LINALIGN_CHECK_CUDA(grow_device(&s.dev, &s.dev_bytes, L.end), name, message);
  auto put = [&](size_t at, const auto& v) {
    std::memcpy(s.host + at, v.data(), B * sizeof(v[0]));
  };
  put(L.base, io.base);
  put(L.principle, io.principle);
  put(L.temperature, io.temperature);
  put(L.ratio, io.ratio);
  put(L.epsilon, io.epsilon);
  put(L.eta_max, io.eta_max);
  put(L.top_p, io.top_p);
  put(L.min_p, io.min_p);
  put(L.top_k, io.top_k);
  put(L.targets, io.targets);
  put(L.seed, io.seed);
  put(L.offset, io.offset);
  LINALIGN_CHECK_CUDA(cudaMemcpyAsync(s.dev, s.host, L.in_end, cudaMemcpyHostToDevice, s.stream),
                      name, message);

  char* d = s.dev;
  const BatchArrays a{reinterpret_cast<const void* const*>(d + L.base),
                      reinterpret_cast<const void* const*>(d + L.principle),
                      reinterpret_cast<const float*>(d + L.temperature),
                      reinterpret_cast<const float*>(d + L.ratio),
                      reinterpret_cast<const float*>(d + L.epsilon),
                      reinterpret_cast<const float*>(d + L.eta_max),
                      reinterpret_cast<const float*>(d + L.top_p),
                      reinterpret_cast<const float*>(d + L.min_p),
                      reinterpret_cast<const int32_t*>(d + L.top_k),
                      reinterpret_cast<const uint64_t*>(d + L.seed),
                      reinterpret_cast<const uint64_t*>(d + L.offset)};
  const Params p = batch_params(shape, a, io);
  BatchOutputs o;
  o.tokens = reinterpret_cast<int32_t*>(d + L.tokens);
  o.logprob = reinterpret_cast<float*>(d + L.logprob);
  o.score_base = reinterpret_cast<float*>(d + L.score_base);
  o.score_principle = reinterpret_cast<float*>(d + L.score_principle);
  o.diagnostics = reinterpret_cast<RowDiagnostics*>(d + L.diagnostics);
  o.targets = reinterpret_cast<const int32_t*>(d + L.targets);
  const size_t row_bytes = size_t(shape.vocab) * sizeof(float);
  if (shape.op == Op::kAlign) {
    LINALIGN_CHECK_CUDA(grow_device(&s.aligned, &s.aligned_bytes, B * row_bytes), name, message);
    o.aligned = s.aligned;
  }
  Call call = batch_call(shape, int64_t(B), a, p, o);
  Status st = validate_call(&call, /*host_arrays=*/false, message);
  if (st != Status::kSuccess) return st;
  LINALIGN_CHECK_CUDA(grow_device(&s.workspace, &s.workspace_bytes, backend_.workspace_size(call)),
                      name, message);
  st = backend_.run(call, s.workspace, s.workspace_bytes, s.stream, message);
  if (st != Status::kSuccess) return st;
  LINALIGN_CHECK_CUDA(cudaMemcpyAsync(s.host + L.in_end, d + L.in_end, L.end - L.in_end,
                                      cudaMemcpyDeviceToHost, s.stream),
                      name, message);
  if (shape.op == Op::kAlign) {
    for (size_t r = 0; r < B; ++r)
      LINALIGN_CHECK_CUDA(cudaMemcpyAsync(io.aligned[r], s.aligned + r * size_t(shape.vocab),
                                          row_bytes, cudaMemcpyDeviceToDevice, s.stream),
                          name, message);
  }
  LINALIGN_CHECK_CUDA(cudaEventRecord(s.done, s.stream), name, message);
  return Status::kSuccess;
}

Status CudaBatchExecutor::finish(int slot, BatchIo& io, std::string* message) {
  Slot& s = slots_[size_t(slot)];
  const size_t B = io.rows();
  const BatchLayout L(B);
  DeviceScope scope;
  LINALIGN_CHECK_CUDA(scope.enter(backend_.device()), "batch", message);
  LINALIGN_CHECK_CUDA(cudaEventSynchronize(s.done), "batch", message);
  auto get = [&](size_t at, auto& v) { std::memcpy(v.data(), s.host + at, B * sizeof(v[0])); };
  get(L.tokens, io.tokens);
  get(L.logprob, io.logprob);
  get(L.score_base, io.score_base);
  get(L.score_principle, io.score_principle);
  get(L.diagnostics, io.diagnostics);
  return Status::kSuccess;
}

Status CudaBackendImpl::make_batch_executor(int slots, std::unique_ptr<BatchExecutor>* out,
                                            std::string* message) {
  std::unique_ptr<CudaBatchExecutor> e(new CudaBatchExecutor(*this));
  const Status s = e->init(slots, message);
  if (s != Status::kSuccess) return s;
  *out = std::move(e);
  return Status::kSuccess;
}

}  // namespace

Status make_cuda_backend(int device, std::unique_ptr<BackendImpl>* out, std::string* message) {
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count <= 0) {
    (void)cudaGetLastError();
    *message = std::string("Context::create: no usable CUDA device (") +
               (e != cudaSuccess ? cudaGetErrorString(e) : "cudaGetDeviceCount returned 0") + ")";
    return Status::kNoDevice;
  }
  if (device < -1 || device >= count) {
    *message = "Context::create: options.device " + std::to_string(device) + " is outside [0, " +
               std::to_string(count) + ") (or -1 for the current device)";
    return Status::kInvalidArgument;
  }
  if (device == -1) LINALIGN_CHECK_CUDA(cudaGetDevice(&device), "Context::create", message);
  DeviceFactsByType facts;
  const Status st = device_facts(device, &facts, message);
  if (st != Status::kSuccess) return st;
  out->reset(new CudaBackendImpl(device, facts));
  return Status::kSuccess;
}

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

bool cuda_compiled() {
  return true;
}

}  // namespace host
}  // namespace linalign
