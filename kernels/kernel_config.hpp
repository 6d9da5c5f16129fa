// The kernels' compile-time configuration and workspace records, in plain
// C++ (no CUDA header), so the host's launch policy (host/launch_policy.hpp),
// the CPU tests and the benchmarks name the same constants the kernels are
// compiled with. The kernels' fixed shape lives here: the threads of each
// kind of kernel, the vector and chunk widths (Tile<E> in device.cuh derives
// from them), the slice sizes; the host chooses only what varies per call
// (slices from V, row groups, the fused grid) and passes it in Args /
// LaunchShape. Every tuning constant is named and justified here.
#pragma once

#include <cstdint>

#include "linalign/math/nucleus.hpp"
#include "linalign/math/partition.hpp"
#include "linalign/math/step_rule.hpp"

namespace linalign {
namespace kernels {

// Threads of the (slice, row) sweep kernels: stats, moments, align, sample.
constexpr int kSweepThreads = 128;
// A row's block counter (the last-block tickets and the fused kernels'
// rounds) has a 128-byte line to itself: 32 counters to a line made every
// row's arrivals and polls one line's traffic (issue 19), and a poll of one
// row contend with the atomics of 31 others.
constexpr int kCounterWords = 32;
// Row r's counter in a [rows × kCounterWords] array of uint32.
constexpr int64_t counter_index(int64_t r) {
  return r * kCounterWords;
}
// Threads of the per-row kernels: plan (the exact_kl solver sweeps the row
// with the whole block).
constexpr int kRowThreads = 512;
// Threads of the small per-row finishing kernels.
constexpr int kFinishThreads = 128;
// exact_kl: grid-wide sweeps launched for the η solve (one KL evaluation
// each; the first is at η_max, the rest Newton steps). Rows still unsolved
// after them — rare: typical rows need 4–6 — finish in one block per row.
constexpr int kExactKlPasses = 8;
// Bytes of one vector load (LDG.128).
constexpr int kVectorBytes = 16;
// Elements each thread holds in registers per step of a sweep (a "chunk"):
// 2 float4 loads per row for fp32, 1 uint4 load for bf16/fp16.
constexpr int kChunkItems = 8;
// Register chunks per thread in one vocabulary slice: a slice is
// kSweepThreads x kChunkItems x kSliceChunks = 1024 tokens, whatever the
// dtype. The split depends on V alone — never on the batch size or the
// device — so the merge order, and every bit of a row's result, is the same
// whether the row is computed alone or in any batch (SPEC §5), as on the CPU
// backend. Small slices are what lets B = 1 use the whole GPU: 31 blocks at
// V = 32000 (the whole 256 KB pair is one memory latency away from any of
// them), 125 at V = 128256, 148 at 151936 and 256 at 262144 — at least one
// per SM of an H100/H200 (132) from V ≈ 135000 on. At large B the cost is one
// 64-byte partial RowStats per 8 KB (fp32) of input and a 512-thread merge of
// ≤ 256 partials per row by the row's last statistics block (plan_row).
constexpr int64_t kSliceChunks = 1;
// Slices are spread evenly over the row in granules of one warp's vectors
// (math::slice_span): at V = 128256 fp32 every one of the 125 blocks of a
// row gets 256 or 288 vectors (rounding each slice up to whole blocks' worth
// left 41 of them empty and the busiest with 384).
constexpr int64_t kSliceGranuleVectors = 32;
// Register chunks a thread of the statistics sweep holds at once (the whole
// slice on chip for the three-pass slice statistics, math/slice_stats.hpp):
// with slices of ≈ kSliceChunks chunks per thread, rounded to the nearest
// count and spread in warp granules, no thread gets more than 2 (checked
// for every V by tests/cpu/test_partition.cpp, and per call by the launch,
// which refuses a call that breaks it: held_chunks below).
constexpr int kHeldChunks = 2;
// Elements of one vector load for an element of `elem_bytes` bytes, and the
// vectors a thread holds per chunk (device.cuh's Tile<E> is these).
constexpr int vector_width(int64_t elem_bytes) {
  return int(kVectorBytes / (elem_bytes > 0 ? elem_bytes : 1));
}
constexpr int vectors_per_chunk(int64_t elem_bytes) {
  return kChunkItems / vector_width(elem_bytes) > 0 ? kChunkItems / vector_width(elem_bytes) : 1;
}

// Register chunks the busiest thread of the largest of `slices` vocabulary
// slices holds for a row of `vocab` tokens of `elem_bytes` bytes (any row
// alignment: a row never has more than vocab / vector_width body vectors).
// Must be ≤ kHeldChunks (tests/cpu/test_partition.cpp checks every V; the
// launch refuses a call that breaks it).
inline int64_t held_chunks(int64_t vocab, int64_t elem_bytes, int64_t slices) {
  const int64_t vectors = (vocab > 0 ? vocab : 0) / vector_width(elem_bytes);
  const int64_t granules = math::ceil_div(vectors, kSliceGranuleVectors);
  const int64_t largest = math::ceil_div(granules, slices > 0 ? slices : 1) * kSliceGranuleVectors;
  return math::walk_chunks(math::Span{0, largest}, kSweepThreads, 0, vectors_per_chunk(elem_bytes));
}

// Blocks per SM of FusedAlignKernel / FusedSampleKernel, for the rules
// without and with exact_kl's solve (fused_kernels.cuh; the host queries
// them per device and dtype into its DeviceFacts).
struct FusedOccupancy {
  int align = 0, align_exact_kl = 0;
  int sample = 0, sample_exact_kl = 0;
};

// Candidates the first select pass gathers per row (math/radix_select.hpp,
// "selection from candidates"): min(V, 16384) × 12 bytes (192 KiB) per row
// of a sample call's workspace when masks are possible. LM rows at top-p
// 0.9 have hundreds to a few thousand; a row of more (a flat distribution,
// p near 1) runs the later passes over the whole row instead.
constexpr int64_t kMaxCandidates = 16384;
inline int64_t candidate_capacity(int64_t vocab) {
  return vocab < kMaxCandidates ? (vocab > 0 ? vocab : 1) : kMaxCandidates;
}

// ---- workspace records (the host lays them out: cuda_layout)
// A per-row mask record in the workspace (select → sample kernels).
struct RowMask {
  math::MaskThresholds th;
  int32_t masked;  // 0: the row keeps every candidate (masks off or min_keep ≥ |q|)
  int32_t drawn;   // 1: the first select pass drew the token from its candidates
};

// A row's exact_kl solve in the workspace (plan_row → KL passes).
struct SolveRow {
  math::ExactKlSolve solve;
  uint32_t done;  // blocks of the row done with the current pass
};

}  // namespace kernels
}  // namespace linalign
