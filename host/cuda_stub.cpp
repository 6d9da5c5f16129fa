// The CUDA entry points when the library is built without the CUDA backend.
#include "backend.hpp"

#ifndef LINALIGN_WITH_CUDA
namespace linalign {
namespace host {

Status make_cuda_backend(int, std::unique_ptr<BackendImpl>*, std::string* message) {
  *message =
      "Context::create: this build of linalign has no CUDA backend (configure with "
      "LINALIGN_ENABLE_CUDA=ON and a CUDA toolkit)";
  return Status::kNotSupported;
}
int cuda_device_count() {
  return 0;
}
bool cuda_compiled() {
  return false;
}

}  // namespace host
}  // namespace linalign
#endif
