// Instantiates every kernel of the CUDA backend for f32 inputs (one
// translation unit per element type, so the three build in parallel).
#include "launch_impl.cuh"

namespace linalign {
namespace kernels {

template LaunchResult launch_call<float>(const Args&, const LaunchShape&, cudaStream_t);

template cudaError_t fused_occupancy<float>(FusedOccupancy*);

}  // namespace kernels
}  // namespace linalign
