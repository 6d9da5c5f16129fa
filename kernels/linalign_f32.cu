// Instantiates every kernel of the CUDA backend for f32 inputs (one
// translation unit per element type, so the three build in parallel).
#include "launch_impl.cuh"

namespace linalign {
namespace kernels {

template LaunchResult launch_call<float>(const Args&, const host::LaunchPolicy&, cudaStream_t);

template cudaError_t fused_occupancy<float>(host::FusedOccupancy*);

}  // namespace kernels
}  // namespace linalign
