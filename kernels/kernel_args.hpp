// The arguments every kernel of one call receives (by value), and the
// launcher interface between the CUDA backend (cuda_backend.cu) and the
// per-dtype translation units (linalign_{f32,bf16,f16}.cu). Plain C++ apart
// from cudaStream_t / cudaError_t.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernel_config.hpp"
#include "linalign/linalign.hpp"
#include "linalign/math/dtype.hpp"
#include "linalign/math/layout.hpp"
#include "linalign/math/nucleus.hpp"
#include "linalign/math/radix_select.hpp"
#include "linalign/math/row_stats.hpp"
#include "linalign/math/update.hpp"

namespace linalign {
namespace kernels {

// A vocabulary slice's sampling arg-maxes: over the masked candidates and
// over all candidates (the fallback when the linear update clipped every
// kept token).
struct ArgMaxPair {
  math::ArgMax masked;
  math::ArgMax all;
};
static_assert(sizeof(ArgMaxPair) == 2 * sizeof(math::ArgMax), "the workspace layout's size");

// One row's scores (the per-sequence sums add these up).
struct ScoreTriple {
  float aligned, base, principle;
};

enum SourceLayout : int32_t {  // math::Layout's values
  kStrided = int32_t(math::Layout::kStrided),
  kPointers = int32_t(math::Layout::kPointers),
  kPaired = int32_t(math::Layout::kPaired)
};

// Where the rows live (LogitsView with resolved strides; device pointers).
struct Source {
  int32_t layout;
  int64_t vocab;
  const void* base;
  const void* principle;
  int64_t base_stride;
  int64_t principle_stride;
  const void* const* base_ptrs;
  const void* const* principle_ptrs;
  const void* paired;
  const int64_t* pair_index;
  int64_t paired_rows;
  int64_t paired_stride;
};

// A validated call (the host's Call) marshalled for the kernels, by value:
// where the rows are, the per-row parameters, the outputs and the call's
// workspace records.
struct Args {
  Source src;
  int64_t rows;    // B
  int64_t slices;  // vocabulary slices per row (LaunchPolicy::vocab_slices)
  int32_t op;      // Op
  int32_t rule;    // math::Rule
  int32_t update;  // math::Update
  int32_t from_principle;
  int32_t min_keep;
  int32_t ignore_index;
  bool greedy;
  bool tilt_in_first;   // fixed + tilt: tilted moments merged in the first sweep
  bool masks_possible;  // sample: some row may need mask thresholds
  bool per_row_seed;    // seed array: Philox sub-stream 0 for every row
  // per-row parameters, as the caller gave them (device arrays or one value)
  PerRow<float> temperature, ratio, epsilon, eta_max, top_p, min_p;
  PerRow<int32_t> top_k;
  PerRow<uint64_t> seed, offset;
  // outputs (device memory; optional ones may be null)
  float* out;          // ℓ* as fp32, or null when out_bf16 is set
  uint16_t* out_bf16;  // ℓ* as bf16 bits (round to nearest even), or null
  int64_t out_stride;
  int32_t* tokens;
  float* token_logprob;
  RowDiagnostics* diagnostics;
  const int32_t* targets;
  float* score_aligned;
  float* score_base;
  float* score_principle;
  const int64_t* seq_offsets;
  int64_t num_sequences;
  float* seq_aligned;
  float* seq_base;
  float* seq_principle;
  // vocabulary-parallel (SPEC §7; ShardStats is the image of a RowStats)
  math::RowStats* shard_out;       // shard_stats: [B]
  const math::RowStats* shard_in;  // align_shard: [num_shards × B], shard-major
  int64_t num_shards;
  // workspace (laid out by the host: cuda_layout in host/launch_policy.hpp)
  math::RowStats* stats;
  math::TiltSweep* tilt_partials;     // second sweep, tilt update
  math::LinearSums* linear_partials;  // second sweep, linear update (same memory)
  math::RowPlan* plans;
  SolveRow* solve;  // exact_kl: [B] solver state between the KL passes
  RowMask* masks;
  math::SelectRow* select;      // sample with masks: [B] selection state + histograms
  int32_t select_passes;        // passes launched (the host's select_passes)
  math::Candidate* candidates;  // sample with masks: [B × candidate_capacity] first-pass gathers
  int64_t candidate_capacity;
  ArgMaxPair* argmax;  // sample: [B × slices] per-slice arg-maxes
  // Row counters, one per 128-byte line (counter_index, kernel_config.hpp):
  uint32_t* stats_done;     // StatsKernel blocks of the row done (the last one plans it)
  uint32_t* sample_done;    // sample: blocks of the row done (the last one picks the token)
  ScoreTriple* row_scores;  // [B] (score: ℓ*_t, ℓ_t, ℓᵖ_t; 0 for ignored rows)
  void* seq_temp;           // CUB's temporary storage for the per-sequence sums
  size_t seq_temp_bytes;
};

// What the host's launch policy chose for one call beyond Args (the kernels'
// fixed shape is kernel_config.hpp's): rows per L2-resident group of the
// multi-kernel path, and the fused kernels' persistent grid (0: not fused).
struct LaunchShape {
  int64_t rows_per_group;
  int64_t fused_grid;
};

// Outcome of enqueueing a call's kernels: the first launch error and which
// kernel it came from.
struct LaunchResult {
  cudaError_t error;
  const char* kernel;
};

// Enqueues every kernel of one validated call on `stream`. Allocates nothing,
// synchronises nothing. Instantiated once per element type in its own
// translation unit.
template <class E>
LaunchResult launch_call(const Args& args, const LaunchShape& shape, cudaStream_t stream);

extern template LaunchResult launch_call<float>(const Args&, const LaunchShape&, cudaStream_t);
extern template LaunchResult launch_call<math::Bf16Bits>(const Args&, const LaunchShape&,
                                                         cudaStream_t);
extern template LaunchResult launch_call<math::Fp16Bits>(const Args&, const LaunchShape&,
                                                         cudaStream_t);

// Blocks of each fused kernel instance for E one multiprocessor of the
// current device holds at once (the host's DeviceFacts::fused).
template <class E>
cudaError_t fused_occupancy(FusedOccupancy* out);
extern template cudaError_t fused_occupancy<float>(FusedOccupancy*);
extern template cudaError_t fused_occupancy<math::Bf16Bits>(FusedOccupancy*);
extern template cudaError_t fused_occupancy<math::Fp16Bits>(FusedOccupancy*);

}  // namespace kernels
}  // namespace linalign
