// Instantiates every kernel of the CUDA backend for bf16 inputs (one
// translation unit per element type, so the three build in parallel).
#include "launch_impl.cuh"

namespace linalign {
namespace kernels {

template LaunchResult launch_call<math::Bf16Bits>(const Args&, const LaunchShape&, cudaStream_t);

template cudaError_t fused_occupancy<math::Bf16Bits>(FusedOccupancy*);

}  // namespace kernels
}  // namespace linalign
