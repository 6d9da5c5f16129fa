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

// u = ((x >> 8) + 0.5) · 2⁻²⁴: exact in fp32, strictly inside (0, 1).
LINALIGN_HD float uniform_from_bits(uint32_t x) {
  return (float(x >> 8) + 0.5f) * 5.9604644775390625e-8f;
}

// Gumbel noise g = −log(−log(u)) (SPEC §3).
LINALIGN_HD float gumbel_from_bits(uint32_t x) {
  return -flog(-flog(uniform_from_bits(x)));
}

}  // namespace math
}  // namespace linalign
