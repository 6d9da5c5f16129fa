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
// multiples of `granule` (a CPU slice, a GPU warp's vectors): the
// G = ceil(n / granule) granules are spread evenly, slice s taking granules
// [⌊s·G/S⌋, ⌊(s+1)·G/S⌋) — slices differ by at most one granule and none is
// empty when G ≥ S. (Rounding every slice up to ⌈G/S⌉ granules instead left
// the last third of the blocks without work: at V = 128256 fp32, 41 of 125.)
LINALIGN_HD Span slice_span(int64_t n, int64_t slices, int64_t s, int64_t granule) {
  const int64_t g = ceil_div(n, granule);
  int64_t gb, ge;  // the slice's first and end granule
  if ((s + 1) * g <= int64_t(0xffffffffu)) {
    // 32-bit division when it is exact (every real vocabulary): a 64-bit
    // one is a ~70-instruction subroutine on a GPU
    gb = int64_t(uint32_t(s * g) / uint32_t(slices));
    ge = int64_t(uint32_t((s + 1) * g) / uint32_t(slices));
  } else {
    gb = s * g / slices;
    ge = (s + 1) * g / slices;
  }
  return Span{min64(n, gb * granule), min64(n, ge * granule)};
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

// The two rows of a pair (base z, principle y) are read at the same element
// positions. The split follows the base row's address; the principle row is
// vector-loaded too when it has the same misalignment modulo the vector size
// (`y_vector`), otherwise it is read element by element at those positions
// (e.g. a [2B, V] paired tensor with odd V: row 2r and row 2r+1 differ).
struct PairSplit {
  VectorSplit split;
  bool y_vector;
};

LINALIGN_HD PairSplit vector_split_pair(uint64_t z_address, uint64_t y_address, int64_t n,
                                        int64_t width, int64_t elem_bytes) {
  PairSplit p;
  // Width 1 (scalar loads) walks every element as a one-element vector.
  p.split = width == 1 ? VectorSplit{0, n, 0} : vector_split(z_address, n, width, elem_bytes);
  const uint64_t vbytes = uint64_t(width * elem_bytes);
  p.y_vector = p.split.vectors > 0 && y_address % uint64_t(elem_bytes) == 0 &&
               y_address % vbytes == z_address % vbytes;
  return p;
}

// The scalar elements of a split: the head, then the tail; s in [0, head + tail).
LINALIGN_HD int64_t split_scalars(const VectorSplit& v) {
  return v.head + v.tail;
}
LINALIGN_HD int64_t scalar_element(const VectorSplit& v, int64_t n, int64_t s) {
  return s < v.head ? s : n - v.tail + (s - v.head);
}
// First element of body vector j (the vector covers [first, first + width)).
LINALIGN_HD int64_t vector_element(const VectorSplit& v, int64_t j, int64_t width) {
  return v.head + j * width;
}

// Block-strided walk of a span of body vectors (a block's vocabulary slice):
// thread t of `threads` takes vectors span.begin + t + m·threads, m = 0, 1, ...
// (consecutive threads read consecutive vectors: coalesced), grouped into
// chunks of `per_chunk` consecutive m held in registers at once.
// walk_chunks: the number of chunks of thread t (0 when it has no vector).
LINALIGN_HD int64_t walk_chunks(Span span, int64_t threads, int64_t t, int64_t per_chunk) {
  const int64_t nv = span.end - span.begin;
  if (t >= nv) return 0;
  return ceil_div(ceil_div(nv - t, threads), per_chunk);
}
// Vector u of chunk c of thread t, or −1 when that slot is past the span.
LINALIGN_HD int64_t walk_vector(Span span, int64_t threads, int64_t t, int64_t per_chunk, int64_t c,
                                int64_t u) {
  const int64_t j = span.begin + t + (c * per_chunk + u) * threads;
  return j < span.end ? j : -1;
}

}  // namespace math
}  // namespace linalign
