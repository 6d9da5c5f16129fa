// The interface every backend implements behind linalign::Context.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "batch_executor.hpp"
#include "call.hpp"

namespace linalign {
namespace host {

class BackendImpl {
 public:
  virtual ~BackendImpl() = default;
  virtual Backend kind() const = 0;
  // Whether per-row arrays, pointer arrays, targets... are host memory
  // (checked element by element at call level) or device memory.
  virtual bool host_arrays() const = 0;
  // Workspace bytes of a validated call.
  virtual size_t workspace_size(const Call& call) const = 0;
  // Runs a validated call; `workspace` is non-null and at least
  // workspace_size(call) bytes unless the backend reports otherwise.
  virtual Status run(const Call& call, void* workspace, size_t workspace_bytes, void* stream,
                     std::string* message) = 0;
  // A buffer the context owns, for calls given no workspace (grown on demand).
  virtual Status own_workspace(size_t bytes, void** ptr, std::string* message) = 0;
  // The host API's batch runner over this backend (batch_executor.hpp), with
  // `slots` batches in flight at most (a backend may use fewer).
  virtual Status make_batch_executor(int slots, std::unique_ptr<BatchExecutor>* out,
                                     std::string* message) = 0;
};

// Runs batches with host-memory arrays on any backend whose calls return when
// their outputs are written (the CPU backend): one slot, on the calling thread.
std::unique_ptr<BatchExecutor> make_host_batch_executor(BackendImpl& backend);

// The backend behind a Context (for the host API, a friend of Context).
BackendImpl& backend_of(Context::Impl& context);

std::unique_ptr<BackendImpl> make_cpu_backend(int threads);

// Defined in kernels/ when the CUDA backend is compiled in; otherwise a stub
// returning kNotSupported.
Status make_cuda_backend(int device, std::unique_ptr<BackendImpl>* out, std::string* message);
int cuda_device_count();
bool cuda_compiled();

}  // namespace host
}  // namespace linalign
