// Strict parsing of command-line numbers (header-only).
//
// Every function returns false and sets *why to a short reason ("empty",
// "not a number", "out of range for float32", ...) instead of accepting a
// prefix ("1.5x"), surrounding space, or a value its type cannot hold.
#pragma once

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>

namespace linalign_cli {
namespace parse {

// A float32. Accepts what strtod accepts in full (decimal, hex float, inf, nan),
// so that parameter checks (T > 0, finite ratio, ...) are left to the library,
// but rejects values beyond the float32 range and non-zero values that
// underflow to zero.
inline bool to_f32(const std::string& s, float* out, std::string* why) {
  if (s.empty()) {
    *why = "empty value";
    return false;
  }
  const unsigned char c0 = static_cast<unsigned char>(s[0]);
  if (!(c0 == '+' || c0 == '-' || c0 == '.' || (c0 >= '0' && c0 <= '9') || c0 == 'i' || c0 == 'I' ||
        c0 == 'n' || c0 == 'N')) {
    *why = "not a number";
    return false;
  }
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(begin, &end);
  if (end == begin || *end != '\0') {
    *why = "not a number";
    return false;
  }
  if (errno == ERANGE && std::fabs(d) > 1.0) {
    *why = "out of range";
    return false;
  }
  if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max())) {
    // Values that round to FLT_MAX are fine; beyond that is out of range.
    const float f = static_cast<float>(d);
    if (std::isinf(f)) {
      *why = "out of range for float32";
      return false;
    }
  }
  const float f = static_cast<float>(d);
  if ((errno == ERANGE || (d != 0.0 && f == 0.0f)) && std::isfinite(d)) {
    *why = "out of range for float32 (underflows to zero)";
    return false;
  }
  *out = f;
  return true;
}

namespace detail {
// Parses an optional sign and decimal digits (or 0x hex digits when allow_hex)
// into a magnitude; false on anything else or overflow of uint64.
inline bool magnitude(const std::string& s, bool allow_hex, bool* negative, uint64_t* mag,
                      std::string* why) {
  size_t i = 0;
  *negative = false;
  if (s.empty()) {
    *why = "empty value";
    return false;
  }
  if (s[0] == '+' || s[0] == '-') {
    *negative = s[0] == '-';
    i = 1;
  }
  unsigned base = 10;
  if (allow_hex && s.size() > i + 2 && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    base = 16;
    i += 2;
  }
  if (i >= s.size()) {
    *why = "not an integer";
    return false;
  }
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      d = static_cast<unsigned>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      d = static_cast<unsigned>(c - 'A' + 10);
    } else {
      *why = "not an integer";
      return false;
    }
    if (v > (std::numeric_limits<uint64_t>::max() - d) / base) {
      *why = "out of range";
      return false;
    }
    v = v * base + d;
  }
  *mag = v;
  return true;
}
}  // namespace detail

// A signed decimal integer in [lo, hi].
inline bool to_i64(const std::string& s, int64_t lo, int64_t hi, int64_t* out, std::string* why) {
  bool neg;
  uint64_t mag;
  if (!detail::magnitude(s, false, &neg, &mag, why)) return false;
  const uint64_t limit = neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (mag > limit) {
    *why = "out of range";
    return false;
  }
  const int64_t v = neg ? static_cast<int64_t>(0 - mag) : static_cast<int64_t>(mag);
  if (v < lo || v > hi) {
    *why = "out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return false;
  }
  *out = v;
  return true;
}

inline bool to_i32(const std::string& s, int32_t* out, std::string* why) {
  int64_t v;
  if (!to_i64(s, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), &v, why))
    return false;
  *out = static_cast<int32_t>(v);
  return true;
}

// An unsigned 64-bit integer, decimal or 0x-prefixed hex; no sign.
inline bool to_u64(const std::string& s, uint64_t* out, std::string* why) {
  bool neg;
  uint64_t mag;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    *why = s[0] == '-' ? "must not be negative" : "not an integer";
    return false;
  }
  if (!detail::magnitude(s, true, &neg, &mag, why)) return false;
  *out = mag;
  return true;
}

}  // namespace parse
}  // namespace linalign_cli
