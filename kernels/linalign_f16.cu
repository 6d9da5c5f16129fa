// Instantiates every kernel of the CUDA backend for f16 inputs (one
// translation unit per element type, so the three build in parallel).
#include "launch_impl.cuh"

namespace linalign {
namespace kernels {

template LaunchResult launch_call<math::Fp16Bits>(const Args&, const LaunchShape&, cudaStream_t);

template cudaError_t fused_occupancy<math::Fp16Bits>(FusedOccupancy*);

}  // namespace kernels
}  // namespace linalign
