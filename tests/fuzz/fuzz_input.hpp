// The fuzz targets' one way to turn libFuzzer's bytes into decisions. Reads
// past the end give zeros, so every input decodes to some call and a short
// input is a small, valid-looking one: the mutator's edits near the start
// change the call's shape, later bytes its values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

namespace linalign_fuzz {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : p_(data), n_(size) {}

  uint8_t byte() { return i_ < n_ ? p_[i_++] : 0; }
  uint16_t u16() { return uint16_t(byte() | (uint16_t(byte()) << 8)); }
  uint32_t u32() { return uint32_t(u16()) | (uint32_t(u16()) << 16); }
  uint64_t u64() { return uint64_t(u32()) | (uint64_t(u32()) << 32); }
  bool flag() { return (byte() & 1u) != 0; }
  // A value in [0, n) (n ≥ 1).
  uint32_t below(uint32_t n) { return n <= 256 ? byte() % n : u32() % n; }
  // A value in [lo, hi].
  int64_t range(int64_t lo, int64_t hi) { return lo + int64_t(below(uint32_t(hi - lo + 1))); }
  size_t left() const { return i_ < n_ ? n_ - i_ : 0; }

  // A float parameter: mostly an ordinary value, often one of the values
  // where parameters go wrong (the ends of fp32, ±0, NaN, ±inf, the issue's
  // overflowing temperatures and ratios, denormals), sometimes raw bits.
  float param(float lo, float hi) {
    static const float kSpecial[] = {0.f,
                                     -0.f,
                                     1.f,
                                     -1.f,
                                     0.5f,
                                     2.f,
                                     17.2f,
                                     1e-38f,
                                     1e-30f,
                                     1e-6f,
                                     1e-3f,
                                     1e3f,
                                     1e30f,
                                     3e38f,
                                     -3e38f,
                                     1e-45f,
                                     1.0001f,
                                     0.9999f,
                                     8.f,
                                     1e6f,
                                     -1e6f,
                                     std::numeric_limits<float>::quiet_NaN(),
                                     std::numeric_limits<float>::infinity(),
                                     -std::numeric_limits<float>::infinity()};
    const uint8_t k = byte();
    if (k < 160) return lo + (hi - lo) * float(byte()) / 255.f;
    if (k < 248) return kSpecial[k % (sizeof kSpecial / sizeof kSpecial[0])];
    return raw_float();
  }
  float raw_float() {
    const uint32_t b = u32();
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
  }
  // An int32 parameter: small values, the ends of int32, and raw bits.
  int32_t param_i32(int32_t lo, int32_t hi) {
    const uint8_t k = byte();
    if (k < 200) return int32_t(range(lo, hi));
    static const int32_t kSpecial[] = {
        0, -1, 1, std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(), -100};
    if (k < 250) return kSpecial[k % (sizeof kSpecial / sizeof kSpecial[0])];
    return int32_t(u32());
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t i_ = 0;
};

// Stops the fuzzer with a message when a property fails (libFuzzer saves the
// input as a crash file; run the target on it to reproduce).
[[noreturn]] inline void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "linalign fuzz: property failed: %s\n  %s\n", what, detail.c_str());
  std::abort();
}
#define LINALIGN_FUZZ_CHECK(cond, detail)                \
  do {                                                   \
    if (!(cond)) ::linalign_fuzz::fail(#cond, (detail)); \
  } while (0)

}  // namespace linalign_fuzz
