// Host/device portability for the math headers (SPEC §6: one arithmetic for
// every backend). These headers compile with plain g++ and with nvcc, include
// no CUDA header and never read threadIdx: kernels compose them.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define LINALIGN_HD __host__ __device__ __forceinline__
#else
#define LINALIGN_HD inline
#endif

// Full unrolling of the per-element loops of the chunk functions on the
// device, where a GPU thread's chunk is a register array: a loop left rolled
// would index it dynamically and move it to local memory. Empty on the host.
#if defined(__CUDA_ARCH__)
#define LINALIGN_UNROLL _Pragma("unroll")
#else
#define LINALIGN_UNROLL
#endif

namespace linalign {
namespace math {

constexpr float kInf = __builtin_huge_valf();
constexpr float kNaN = __builtin_nanf("");

// The only place that picks the exp/log implementations used by the kernels
// and the CPU backend. Full-precision expf/logf on both sides: the SPEC §6
// tolerances (1e-4 on ℓ*) leave room for __expf (2 ulp + range reduction
// error ~1e-6 relative at |x| ≤ 100), but identical greedy tokens between
// backends are easier to keep with the accurate functions; the kernels are
// memory-bound, so the accurate versions cost no measurable time there.
LINALIGN_HD float fexp(float x) {
  return ::expf(x);
}
LINALIGN_HD float flog(float x) {
  return ::logf(x);
}
LINALIGN_HD float flog1p(float x) {
  return ::log1pf(x);
}
LINALIGN_HD float fexpm1(float x) {
  return ::expm1f(x);
}
LINALIGN_HD float fsqrt(float x) {
  return ::sqrtf(x);
}
LINALIGN_HD bool is_finite(float x) {
  return x - x == 0.0f;
}  // false for ±inf and NaN
LINALIGN_HD bool is_nan(float x) {
  return x != x;
}
LINALIGN_HD float fmaxf_(float a, float b) {
  return a > b ? a : b;
}

// exp(a - m) where a may be -inf and m may be -inf (an empty set): never NaN.
LINALIGN_HD float exp_shift(float a, float m) {
  return a == -kInf ? 0.0f : fexp(a - m);
}

}  // namespace math
}  // namespace linalign
