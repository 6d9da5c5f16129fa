// Who touches which element: the index decomposition shared by the CPU
// backend and the kernels, walked exhaustively by tests (every element
// exactly once, never out of bounds).
#pragma once

#include <cstdint>

#include "linalign/math/config.hpp"

namespace linalign {
namespace math {

struct Span {
  int64_t begin;
  int64_t end;  // exclusive; begin == end for an empty span
};

LINALIGN_HD int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
LINALIGN_HD int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

// Slice s of `slices` contiguous slices of [0, n) whose inner boundaries are
// multiples of `granule` (a CPU chunk, a GPU tile): the first slices get
// ceil(granules / slices) granules each, trailing slices may be empty.
LINALIGN_HD Span slice_span(int64_t n, int64_t slices, int64_t s, int64_t granule) {
  const int64_t per = ceil_div(ceil_div(n, granule), slices) * granule;
  const int64_t b = min64(n, s * per);
  return Span{b, min64(n, b + per)};
}

// Head / vector body / tail of a row for vector loads of `width` elements of
// `elem_bytes` bytes each, given the row's address: the head is the scalar
// prefix up to the first `width*elem_bytes`-aligned element (0 when already
// aligned or when the address is not even element-aligned modulo the vector
// size, in which case the whole row is scalar), the body whole vectors, the
// tail the scalar remainder.
struct VectorSplit {
  int64_t head;     // scalar elements before the body
  int64_t vectors;  // number of full vectors in the body
  int64_t tail;     // scalar elements after the body
};

LINALIGN_HD VectorSplit vector_split(uint64_t address, int64_t n, int64_t width,
                                     int64_t elem_bytes) {
  const uint64_t vbytes = uint64_t(width * elem_bytes);
  VectorSplit v{n, 0, 0};
  if (width <= 1 || address % uint64_t(elem_bytes) != 0) return v;  // scalar row
  const uint64_t mis = address % vbytes;
  int64_t head = mis == 0 ? 0 : int64_t((vbytes - mis) / uint64_t(elem_bytes));
  if (head >= n) return v;
  v.head = head;
  v.vectors = (n - head) / width;
  v.tail = n - head - v.vectors * width;
  return v;
}

}  // namespace math
}  // namespace linalign
