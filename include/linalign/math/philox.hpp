// Philox4x32-10 exactly as SPEC §4 (Salmon et al., SC'11; the generator of
// cuRAND and PyTorch), and the Gumbel noise built on it.
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

struct Philox4 {
  uint32_t v[4];
};

LINALIGN_HD void mul_hi_lo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  *lo = uint32_t(p);
}

// Ten rounds of Philox4x32 on counter c with key k (SPEC §4, "One round").
LINALIGN_HD Philox4 philox4x32_10(Philox4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t kM0 = 0xd2511f53u, kM1 = 0xcd9e8d57u;
  constexpr uint32_t kW0 = 0x9e3779b9u, kW1 = 0xbb67ae85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mul_hi_lo(kM0, c.v[0], &hi0, &lo0);
    mul_hi_lo(kM1, c.v[2], &hi1, &lo1);
    const Philox4 n = {{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    c = n;
    k0 += kW0;
    k1 += kW1;
  }
  return c;
}

// The Philox stream of one row (SPEC §4): key (lo32(seed), hi32(seed)),
// counter (i/4, sub, lo32(offset), hi32(offset)), lane i%4.
struct RowRng {
  uint32_t k0, k1, sub, o_lo, o_hi;
  LINALIGN_HD static RowRng make(uint64_t seed, uint64_t offset, uint32_t sub) {
    return RowRng{uint32_t(seed), uint32_t(seed >> 32), sub, uint32_t(offset),
                  uint32_t(offset >> 32)};
  }
  // The four raw words for tokens 4g .. 4g+3.
  LINALIGN_HD Philox4 group(uint64_t g) const {
    const Philox4 c = {{uint32_t(g), sub, o_lo, o_hi}};
    return philox4x32_10(c, k0, k1);
  }
};

// u = ((x >> 8) + 0.5) · 2⁻²⁴, strictly inside (0, 1) (SPEC §4).
// For k = x >> 8 < 2²³ the value k + 0.5 has at most 24 significant bits, so
// u is exact in fp32. For k ≥ 2²³ the exact u is an odd multiple of 2⁻²⁵,
// which fp32 cannot hold (k = 2²⁴−1 would even round to u = 1 and g = +inf);
// there 1 − u = (2²⁴ − k − 0.5) · 2⁻²⁴ is exact instead. So the noise is
// computed from the exact u on both sides of ½, identically on every backend.
LINALIGN_HD float uniform_from_bits(uint32_t x) {
  return (float(x >> 8) + 0.5f) * 5.9604644775390625e-8f;  // exact for x < 2^31
}

// −log(u) for the exact u of x, never 0 and never +inf.
LINALIGN_HD float neg_log_uniform_from_bits(uint32_t x) {
  const uint32_t k = x >> 8;
  if (k < (1u << 23)) return -flog((float(k) + 0.5f) * 5.9604644775390625e-8f);
  const float one_minus_u = (float((1u << 24) - k) - 0.5f) * 5.9604644775390625e-8f;
  return -flog1p(-one_minus_u);
}

// Gumbel noise g = −log(−log(u)) (SPEC §3), finite for every x.
LINALIGN_HD float gumbel_from_bits(uint32_t x) {
  return -flog(neg_log_uniform_from_bits(x));
}

}  // namespace math
}  // namespace linalign
