// linalign::Context: validation (SPEC §5), workspace policy and dispatch to
// the backend. Nothing here throws past the API.
#include <exception>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "backend.hpp"
#include "cpu_backend.hpp"
#include "linalign/linalign.hpp"

namespace linalign {

const char* status_string(Status s) {
  switch (s) {
    case Status::kSuccess:
      return "success";
    case Status::kInvalidArgument:
      return "invalid argument";
    case Status::kNotSupported:
      return "not supported";
    case Status::kInsufficientWorkspace:
      return "insufficient workspace";
    case Status::kNoDevice:
      return "no CUDA device";
    case Status::kCudaError:
      return "CUDA error";
    case Status::kInternal:
      return "internal error";
    case Status::kCancelled:
      return "cancelled";
    case Status::kDeadlineExceeded:
      return "deadline exceeded";
    case Status::kShutdown:
      return "shut down";
    case Status::kQueueFull:
      return "queue full";
  }
  return "unknown status";
}

namespace host {
namespace {

class CpuBackendImpl final : public BackendImpl {
 public:
  explicit CpuBackendImpl(int threads) : cpu_(threads) {}
  Backend kind() const override { return Backend::kCpu; }
  bool host_arrays() const override { return true; }
  size_t workspace_size(const Call& call) const override { return cpu_.layout(call).total; }
  Status run(const Call& call, void* ws, size_t bytes, void*, std::string* message) override {
    return cpu_.run(call, ws, bytes, message);
  }
  Status make_batch_executor(int, std::unique_ptr<BatchExecutor>* out, std::string*) override {
    *out = make_host_batch_executor(*this);
    return Status::kSuccess;
  }
  Status own_workspace(size_t bytes, void** ptr, std::string* message) override {
    try {
      if (buffer_.size() < bytes) buffer_.resize(bytes);
    } catch (const std::bad_alloc&) {
      *message = "workspace: cannot allocate " + std::to_string(bytes) + " bytes";
      return Status::kInternal;
    }
    *ptr = buffer_.data();
    return Status::kSuccess;
  }

 private:
  CpuBackend cpu_;
  std::vector<unsigned char> buffer_;
};

}  // namespace

std::unique_ptr<BackendImpl> make_cpu_backend(int threads) {
  return std::unique_ptr<BackendImpl>(new CpuBackendImpl(threads));
}

}  // namespace host

struct Context::Impl {
  std::unique_ptr<host::BackendImpl> backend;
  std::string error;

  Status fail(Status s, std::string msg) {
    error = std::move(msg);
    return s;
  }

  Status execute(host::Call& call, void* ws, size_t ws_bytes, void* stream) {
    error.clear();
    try {
      Status st = host::validate_call(&call, backend->host_arrays(), &error);
      if (st != Status::kSuccess) return st;
      if (ws == nullptr) {
        if (ws_bytes != 0)
          return fail(Status::kInvalidArgument,
                      std::string(call.name) + ": workspace is null but workspace_bytes != 0");
        ws_bytes = backend->workspace_size(call);
        st = backend->own_workspace(ws_bytes, &ws, &error);
        if (st != Status::kSuccess) return st;
      }
      st = backend->run(call, ws, ws_bytes, stream, &error);
      if (st == Status::kSuccess) error.clear();
      return st;
    } catch (const std::bad_alloc&) {
      return fail(Status::kInternal, std::string(call.name) + ": out of memory");
    } catch (...) {
      return fail(Status::kInternal, std::string(call.name) + ": unexpected exception");
    }
  }
};

host::BackendImpl& host::backend_of(Context::Impl& context) {
  return *context.backend;
}

namespace {
// The common part of every call's description.
host::Call make_call(Op op, const LogitsView& logits, const Params& params) {
  host::Call call;
  call.op = op;
  call.name = host::op_name(op);
  call.logits = logits;
  call.params = &params;
  return call;
}
}  // namespace

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

Status Context::create(const ContextOptions& options, std::unique_ptr<Context>* out,
                       std::string* error) {
  std::string msg;
  auto set_error = [&](const std::string& m) {
    if (error != nullptr) *error = m;
  };
  if (out == nullptr) {
    set_error("Context::create: out is null");
    return Status::kInvalidArgument;
  }
  out->reset();
  try {
    auto impl = std::unique_ptr<Impl>(new Impl());
    Backend want = options.backend;
    if (int(want) < 0 || int(want) > 2) {
      set_error("Context::create: options.backend is unknown");
      return Status::kInvalidArgument;
    }
    if (options.num_threads < 0 || options.num_threads > kMaxThreads) {
      set_error("Context::create: options.num_threads must be in [0, " +
                std::to_string(kMaxThreads) + "] (got " + std::to_string(options.num_threads) +
                ")");
      return Status::kInvalidArgument;
    }
    if (want == Backend::kAuto)
      want = host::cuda_device_count() > 0 ? Backend::kCuda : Backend::kCpu;
    if (want == Backend::kCuda) {
      Status st = host::make_cuda_backend(options.device, &impl->backend, &msg);
      if (st != Status::kSuccess) {
        set_error(msg);
        return st;
      }
    } else {
      int threads = options.num_threads;
      if (threads == 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
      impl->backend = host::make_cpu_backend(threads);
    }
    out->reset(new Context(std::move(impl)));
    return Status::kSuccess;
  } catch (...) {
    set_error("Context::create: out of memory or thread creation failed");
    return Status::kInternal;
  }
}

Backend Context::backend() const {
  return impl_->backend->kind();
}
const char* Context::last_error() const {
  return impl_->error.c_str();
}

Status Context::workspace_size(Op op, const LogitsView& logits, const Params& params,
                               size_t* bytes) const {
  impl_->error.clear();
  if (bytes == nullptr) {
    impl_->error = "workspace_size: bytes is null";
    return Status::kInvalidArgument;
  }
  *bytes = 0;
  host::Call call = make_call(op, logits, params);
  call.name = "workspace_size";  // its messages name the query, not the op
  const Status s = host::validate_shape(call, &impl_->error);
  if (s != Status::kSuccess) return s;
  if (call.logits.base_stride == 0) call.logits.base_stride = logits.vocab;
  if (call.logits.principle_stride == 0) call.logits.principle_stride = logits.vocab;
  if (call.logits.paired_stride == 0) call.logits.paired_stride = logits.vocab;
  try {
    *bytes = impl_->backend->workspace_size(call);
  } catch (const std::exception& e) {
    impl_->error = std::string("workspace_size: ") + e.what();
    return Status::kInternal;
  }
  return Status::kSuccess;
}

size_t Context::workspace_size(Op op, const LogitsView& logits, const Params& params) const {
  size_t bytes = 0;
  return workspace_size(op, logits, params, &bytes) == Status::kSuccess ? bytes : 0;
}

Status Context::align(const LogitsView& logits, const Params& params, float* out,
                      int64_t out_stride, RowDiagnostics* diagnostics, void* workspace,
                      size_t workspace_bytes, void* stream) {
  return align(logits, params, out, DType::kF32, out_stride, diagnostics, workspace,
               workspace_bytes, stream);
}

Status Context::align(const LogitsView& logits, const Params& params, void* out, DType out_dtype,
                      int64_t out_stride, RowDiagnostics* diagnostics, void* workspace,
                      size_t workspace_bytes, void* stream) {
  host::Call call = make_call(Op::kAlign, logits, params);
  call.out = out;
  call.out_dtype = out_dtype;
  call.out_stride = out_stride;
  call.diagnostics = diagnostics;
  return impl_->execute(call, workspace, workspace_bytes, stream);
}

Status Context::sample(const LogitsView& logits, const Params& params, int32_t* tokens,
                       float* token_logprob, RowDiagnostics* diagnostics, void* workspace,
                       size_t workspace_bytes, void* stream) {
  host::Call call = make_call(Op::kSample, logits, params);
  call.tokens = tokens;
  call.token_logprob = token_logprob;
  call.diagnostics = diagnostics;
  return impl_->execute(call, workspace, workspace_bytes, stream);
}

Status Context::score(const LogitsView& logits, const Params& params, const int32_t* targets,
                      const ScoreOutputs& out, RowDiagnostics* diagnostics, void* workspace,
                      size_t workspace_bytes, void* stream) {
  host::Call call = make_call(Op::kScore, logits, params);
  call.targets = targets;
  call.score = &out;
  call.diagnostics = diagnostics;
  return impl_->execute(call, workspace, workspace_bytes, stream);
}

Status Context::shard_stats(const LogitsView& shard, const Params& params, ShardStats* out,
                            void* workspace, size_t workspace_bytes, void* stream) {
  host::Call call = make_call(Op::kShardStats, shard, params);
  call.shard_out = out;
  return impl_->execute(call, workspace, workspace_bytes, stream);
}

Status Context::align_shard(const LogitsView& shard, const Params& params, const ShardStats* shards,
                            int64_t num_shards, float* out, int64_t out_stride,
                            RowDiagnostics* diagnostics, void* workspace, size_t workspace_bytes,
                            void* stream) {
  host::Call call = make_call(Op::kAlignShard, shard, params);
  call.shard_in = shards;
  call.num_shards = num_shards;
  call.out = out;
  call.out_stride = out_stride;
  call.diagnostics = diagnostics;
  return impl_->execute(call, workspace, workspace_bytes, stream);
}

bool cuda_compiled() {
  return host::cuda_compiled();
}
int cuda_device_count() {
  return host::cuda_device_count();
}

}  // namespace linalign
