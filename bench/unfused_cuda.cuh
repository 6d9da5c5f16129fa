// The unfused CUDA peer of linalign's fused align kernel: the fixed-rule
// tilt update written the way eager PyTorch runs it, one simple kernel per
// framework operation, every intermediate a B×V fp32 tensor in device memory.
//
//   1. lz = log_softmax(z / T)         one block per row, three passes (max, sum, write)
//   2. ly = log_softmax(y / T)         as PyTorch's cunn_SoftMaxForward does
//   3. d  = ly − lz                    elementwise
//   4. μ  = Σ exp(lz) · d              one block per row
//   5. σ² = Σ exp(lz) · (d − μ)²       one block per row
//   6. u  = lz + η · d                 elementwise (fixed rule: η = 1 + ratio)
//   7. ℓ* = log_softmax(u)             in place, one block per row
//
// It computes fewer diagnostics than linalign (no KL(π*‖·), no entropy, no
// row status), so its time is a lower bound of the eager sequence. It is a
// benchmark peer and a cross-check of linalign's ℓ* (bench/gpu_bench.cu
// compares the two on the device); it is not part of the library.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace linalign_bench {

// ------------------------------------------------------------------ loads ---

__device__ __forceinline__ float ToFloat(float x) {
  return x;
}
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) {
  return __bfloat162float(x);
}

// ------------------------------------------------------ block reductions ---

// Threads per block of the row kernels (the largest block PyTorch's softmax uses).
constexpr int kRowThreads = 1024;
// Threads per block of the elementwise kernels.
constexpr int kElementThreads = 256;

__device__ __forceinline__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide max / sum; every thread gets the result. `scratch` holds 32
// floats; the trailing __syncthreads lets the caller reuse it at once.
__device__ __forceinline__ float BlockMax(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = WarpMax(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? scratch[lane] : -INFINITY;
  v = WarpMax(v);
  __syncthreads();
  return v;
}
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = WarpSum(v);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) >> 5;
  v = lane < warps ? scratch[lane] : 0.f;
  v = WarpSum(v);
  __syncthreads();
  return v;
}

// ----------------------------------------------------------------- kernels ---

// out[r, i] = x[r, i] * inv_t − log Σ_j exp(x[r, j] * inv_t); one block per
// row. `out` may alias `x` when InT is float: each thread reads its element
// before it writes it and the last pass reads nothing else.
template <class InT>
__global__ void __launch_bounds__(kRowThreads)
    LogSoftmaxKernel(const InT* x, float* out, int64_t vocab, float inv_t) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const InT* xr = x + row * vocab;
  float* outr = out + row * vocab;
  float m = -INFINITY;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) m = fmaxf(m, ToFloat(xr[i]) * inv_t);
  m = BlockMax(m, scratch);
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) s += expf(ToFloat(xr[i]) * inv_t - m);
  s = BlockSum(s, scratch);
  const float lse = m + logf(s);
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) outr[i] = ToFloat(xr[i]) * inv_t - lse;
}

// d = a − b, elementwise over n elements.
__global__ void SubtractKernel(const float* a, const float* b, float* d, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    d[i] = a[i] - b[i];
}

// mu[r] = Σ_i exp(lz[r, i]) · d[r, i]; one block per row.
__global__ void __launch_bounds__(kRowThreads)
    WeightedMeanKernel(const float* lz, const float* d, float* mu, int64_t vocab) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    s += expf(lz[row * vocab + i]) * d[row * vocab + i];
  s = BlockSum(s, scratch);
  if (threadIdx.x == 0) mu[row] = s;
}

// var[r] = Σ_i exp(lz[r, i]) · (d[r, i] − mu[r])²; one block per row.
__global__ void __launch_bounds__(kRowThreads)
    WeightedVarianceKernel(const float* lz, const float* d, const float* mu, float* var,
                           int64_t vocab) {
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float m = mu[row];
  float s = 0.f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    const float c = d[row * vocab + i] - m;
    s += expf(lz[row * vocab + i]) * c * c;
  }
  s = BlockSum(s, scratch);
  if (threadIdx.x == 0) var[row] = s;
}

// out = a + eta · d, elementwise over n elements.
__global__ void AxpyKernel(const float* a, const float* d, float eta, float* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x)
    out[i] = a[i] + eta * d[i];
}

// ------------------------------------------------------------------- host ---

// Device temporaries of the unfused sequence, each at least rows*vocab floats
// (lz, ly, d) or rows floats (mu, var).
struct UnfusedTemps {
  float* lz = nullptr;
  float* ly = nullptr;
  float* d = nullptr;
  float* mu = nullptr;
  float* var = nullptr;
};

// Grid of the elementwise kernels: enough blocks to fill the GPU, grid-stride beyond.
inline unsigned ElementGrid(int64_t n, int sm_count) {
  const int64_t blocks = (n + kElementThreads - 1) / kElementThreads;
  const int64_t cap = int64_t{sm_count} * 16;
  return static_cast<unsigned>(blocks < cap ? (blocks > 0 ? blocks : 1) : cap);
}

// Launches the seven kernels on `stream` (no synchronisation). ℓ* goes to
// out[rows*vocab] (fp32, contiguous rows). InT is float or __nv_bfloat16.
template <class InT>
cudaError_t LaunchUnfusedAlign(const InT* z, const InT* y, float* out, int64_t rows, int64_t vocab,
                               float temperature, float ratio, const UnfusedTemps& t, int sm_count,
                               cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  const int64_t n = rows * vocab;
  const float inv_t = 1.f / temperature;
  const float eta = 1.f + ratio;
  const unsigned grid_rows = static_cast<unsigned>(rows);
  const unsigned grid_n = ElementGrid(n, sm_count);
  LogSoftmaxKernel<InT><<<grid_rows, kRowThreads, 0, stream>>>(z, t.lz, vocab, inv_t);
  LogSoftmaxKernel<InT><<<grid_rows, kRowThreads, 0, stream>>>(y, t.ly, vocab, inv_t);
  SubtractKernel<<<grid_n, kElementThreads, 0, stream>>>(t.ly, t.lz, t.d, n);
  WeightedMeanKernel<<<grid_rows, kRowThreads, 0, stream>>>(t.lz, t.d, t.mu, vocab);
  WeightedVarianceKernel<<<grid_rows, kRowThreads, 0, stream>>>(t.lz, t.d, t.mu, t.var, vocab);
  AxpyKernel<<<grid_n, kElementThreads, 0, stream>>>(t.lz, t.d, eta, out, n);
  LogSoftmaxKernel<float><<<grid_rows, kRowThreads, 0, stream>>>(out, out, vocab, 1.f);
  return cudaPeekAtLastError();
}

}  // namespace linalign_bench
