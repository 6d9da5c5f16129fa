// Input element types. bf16 and fp16 travel as uint16_t bit patterns on the
// host; decoding is exact (every bf16/fp16 value is an fp32 value), so the CPU
// and CUDA backends read the same fp32 numbers (SPEC §6: arithmetic in fp32).
#pragma once

#include <cstdint>
#include <cstring>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

struct Bf16Bits {
  uint16_t bits;
};
struct Fp16Bits {
  uint16_t bits;
};

LINALIGN_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

LINALIGN_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

LINALIGN_HD float bf16_to_float(uint16_t h) {
  return bits_to_float(uint32_t(h) << 16);
}

// IEEE binary16 → binary32, exact (normals, subnormals, ±inf, NaN).
LINALIGN_HD float fp16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return bits_to_float(sign);  // ±0
  // subnormal: value = mant · 2^-24, normalise
  int e = -1;
  do {
    mant <<= 1;
    ++e;
  } while ((mant & 0x400u) == 0);
  return bits_to_float(sign | (uint32_t(112 - e) << 23) | ((mant & 0x3ffu) << 13));
}

// binary32 → bf16 bits, round to nearest even; NaN stays NaN.
LINALIGN_HD uint16_t float_to_bf16(float f) {
  const uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// binary32 → fp16 bits, round to nearest even (overflow → inf, NaN stays NaN).
LINALIGN_HD uint16_t float_to_fp16(float f) {
  const uint32_t u = float_to_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to ≥ 65520 → inf
  if (a < 0x38800000u) {                                  // below the fp16 normal range
    if (a < 0x33000000u) return uint16_t(sign);           // < 2^-25 → ±0
    const uint32_t e = a >> 23;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = ((a >> 13) - (112u << 10));
  const uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;
  return uint16_t(sign | r);
}

// Loading one element of each input type as fp32.
LINALIGN_HD float load_as_float(const float* p, int64_t i) {
  return p[i];
}
LINALIGN_HD float load_as_float(const Bf16Bits* p, int64_t i) {
  return bf16_to_float(p[i].bits);
}
LINALIGN_HD float load_as_float(const Fp16Bits* p, int64_t i) {
  return fp16_to_float(p[i].bits);
}

}  // namespace math
}  // namespace linalign
