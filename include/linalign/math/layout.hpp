// Where row r's base and principle logits start in each of the three input
// layouts (SPEC §7; linalign.hpp LogitsView), for the CPU backend
// (host/call.hpp row_pointers) and the kernels (kernels/device.cuh row_in):
// one rule. `V` is any view with LogitsView's member names (the host's
// LogitsView, the kernels' Source).
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

enum class Layout : int32_t { kStrided = 0, kPointers = 1, kPaired = 2 };

struct RowAddress {
  const char* z;  // nullptr: a paired row index outside [0, paired_rows)
  const char* y;
};

// eb: bytes per element. A pair index outside [0, paired_rows) gives null
// addresses (the host rejects such host-visible indices before; the kernels
// flag the row), never an out-of-bounds address.
template <class V>
LINALIGN_HD RowAddress row_address(const V& v, Layout layout, int64_t r, int64_t eb) {
  if (layout == Layout::kStrided)
    return RowAddress{static_cast<const char*>(v.base) + r * v.base_stride * eb,
                      static_cast<const char*>(v.principle) + r * v.principle_stride * eb};
  if (layout == Layout::kPointers)
    return RowAddress{static_cast<const char*>(v.base_ptrs[r]),
                      static_cast<const char*>(v.principle_ptrs[r])};
  const int64_t a = v.pair_index[2 * r], b = v.pair_index[2 * r + 1];
  if (a < 0 || a >= v.paired_rows || b < 0 || b >= v.paired_rows)
    return RowAddress{nullptr, nullptr};
  return RowAddress{static_cast<const char*>(v.paired) + a * v.paired_stride * eb,
                    static_cast<const char*>(v.paired) + b * v.paired_stride * eb};
}

}  // namespace math
}  // namespace linalign
