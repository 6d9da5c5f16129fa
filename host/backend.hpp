// The interface every backend implements behind linalign::Context.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

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
};

std::unique_ptr<BackendImpl> make_cpu_backend(int threads);

// Defined in kernels/ when the CUDA backend is compiled in; otherwise a stub
// returning kNotSupported.
Status make_cuda_backend(int device, std::unique_ptr<BackendImpl>* out, std::string* message);
int cuda_device_count();
bool cuda_compiled();

}  // namespace host
}  // namespace linalign
