// The batch executor of host-memory backends (batch_executor.hpp): the batch
// call runs on the calling thread (the batcher's dispatch thread) through the
// backend's own run(), with a workspace this executor owns.
#include <algorithm>
#include <vector>

#include "backend.hpp"

namespace linalign {
namespace host {
namespace {

class HostBatchExecutor final : public BatchExecutor {
 public:
  explicit HostBatchExecutor(BackendImpl& backend) : backend_(backend) {}
  int slots() const override { return 1; }
  // Host memory: validate_call has checked every pointer a step brings.
  Status check_step_memory(const Call&, std::string*) override { return Status::kSuccess; }
  Status start(int, const BatchShape& shape, BatchIo& io, std::string*) override {
    message_.clear();
    status_ = run(shape, io);
    return Status::kSuccess;
  }
  Status finish(int, BatchIo&, std::string* message) override {
    *message = message_;
    return status_;
  }

 private:
  Status run(const BatchShape& shape, BatchIo& io) {
    const size_t B = io.rows();
    const BatchArrays a{io.base.data(),  io.principle.data(), io.temperature.data(),
                        io.ratio.data(), io.epsilon.data(),   io.eta_max.data(),
                        io.top_p.data(), io.min_p.data(),     io.top_k.data(),
                        io.seed.data(),  io.offset.data()};
    const Params p = batch_params(shape, a, io);
    BatchOutputs o;
    o.tokens = io.tokens.data();
    o.logprob = io.logprob.data();
    o.score_base = io.score_base.data();
    o.score_principle = io.score_principle.data();
    o.diagnostics = io.diagnostics.data();
    o.targets = io.targets.data();
    if (shape.op == Op::kAlign) {
      aligned_.resize(B * size_t(shape.vocab));
      o.aligned = aligned_.data();
    }
    Call call = batch_call(shape, int64_t(B), a, p, o);
    Status s = validate_call(&call, backend_.host_arrays(), &message_);
    if (s != Status::kSuccess) return s;
    workspace_.resize(std::max(workspace_.size(), backend_.workspace_size(call)));
    s = backend_.run(call, workspace_.data(), workspace_.size(), nullptr, &message_);
    if (s != Status::kSuccess || shape.op != Op::kAlign) return s;
    for (size_t r = 0; r < B; ++r)
      std::copy_n(aligned_.data() + r * size_t(shape.vocab), size_t(shape.vocab), io.aligned[r]);
    return s;
  }

  BackendImpl& backend_;
  std::vector<unsigned char> workspace_;
  std::vector<float> aligned_;
  Status status_ = Status::kSuccess;
  std::string message_;
};

}  // namespace

std::unique_ptr<BatchExecutor> make_host_batch_executor(BackendImpl& backend) {
  return std::unique_ptr<BatchExecutor>(new HostBatchExecutor(backend));
}

}  // namespace host
}  // namespace linalign
