// launch_call<E>: the kernel sequence of one call (see host/launch_policy.hpp).
// Included by exactly one translation unit per element type.
#pragma once

#include <algorithm>
#include <utility>

#include "fused_kernels.cuh"
#include "kernel_args.hpp"

// (After the kernels: with the SIMT emulator, cuda_runtime.h defines
// LINALIGN_SIMT_LAUNCH.)
#if !defined(LINALIGN_SIMT_LAUNCH)
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/tabulate_output_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include <cub/device/device_segmented_reduce.cuh>
#endif

namespace linalign {
namespace kernels {

// kernel<<<grid, block, 0, stream>>>, or the SIMT emulator's launch when
// the kernels are built for it (tests/emu: CI runs them on the CPU).
#if defined(LINALIGN_SIMT_LAUNCH)
#define LINALIGN_LAUNCH(kernel, grid, block, stream) \
  LINALIGN_SIMT_LAUNCH(kernel, grid, block, stream)
#else
#define LINALIGN_LAUNCH(kernel, grid, block, stream) kernel<<<grid, block, 0, stream>>>
#endif

// Blocks of the grid-stride per-row / per-sequence kernels.
constexpr int kPerRowThreads = 128;
constexpr int64_t kMaxGridX = int64_t(1) << 20;

// A launch with every block of the grid resident at once (the fused
// kernel's rendezvous need it): cudaLaunchKernelEx with the cooperative
// attribute — a graph kernel node attribute too, so the call stays
// capturable — or the emulator's cooperative launch. Returns the launch's
// error (cudaErrorCooperativeLaunchTooLarge when the grid cannot be resident).
template <class... P, class... A>
cudaError_t launch_cooperative(void (*kernel)(P...), const char* name, unsigned grid, int threads,
                               cudaStream_t stream, A&&... args) {
#if defined(LINALIGN_SIMT_LAUNCH)
  ::simt::make_launcher(kernel, name, dim3(grid), dim3(unsigned(threads)), stream,
                        true)(std::forward<A>(args)...);
  return cudaPeekAtLastError();
#else
  (void)name;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeCooperative;
  attr[0].val.cooperative = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(grid);
  config.blockDim = dim3(unsigned(threads));
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  config.attrs = attr;
  config.numAttrs = 1;
  const cudaError_t e = cudaLaunchKernelEx(&config, kernel, std::forward<A>(args)...);
  return e != cudaSuccess ? e : cudaPeekAtLastError();
#endif
}

template <class E>
cudaError_t fused_occupancy(FusedOccupancy* out) {
  const auto per_sm = [](int* n, auto kernel) {
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(n, kernel, kSweepThreads, 0);
  };
  cudaError_t e = per_sm(&out->align, FusedAlignKernel<E, false>);
  if (e == cudaSuccess) e = per_sm(&out->align_exact_kl, FusedAlignKernel<E, true>);
  if (e == cudaSuccess) e = per_sm(&out->sample, FusedSampleKernel<E, false>);
  if (e == cudaSuccess) e = per_sm(&out->sample_exact_kl, FusedSampleKernel<E, true>);
  return e;
}

inline unsigned grid_for(int64_t items, int threads) {
  return unsigned(std::max<int64_t>(1, std::min(kMaxGridX, (items + threads - 1) / threads)));
}

#if !defined(LINALIGN_SIMT_LAUNCH)
// Per-sequence sums of the row scores: CUB's DeviceSegmentedReduce with the
// checked bounds as begin/end iterators and SeqWrite as the output (one
// block per sequence, run-to-run deterministic; its temporary storage — one
// byte — is in the workspace, so the call stays graph-safe).
inline LaunchResult launch_sequence_sums(const Args& a, cudaStream_t stream) {
  const auto index = thrust::make_counting_iterator<int64_t>(0);
  const auto begin = thrust::make_transform_iterator(index, seq_bound(a, false));
  const auto end = thrust::make_transform_iterator(index, seq_bound(a, true));
  const auto out = thrust::make_tabulate_output_iterator(seq_write(a));
  const ScoreTriple zero{0.f, 0.f, 0.f};
  size_t need = 0;
  cudaError_t e = cub::DeviceSegmentedReduce::Reduce(
      nullptr, need, a.row_scores, out, a.num_sequences, begin, end, AddScores{}, zero, stream);
  if (e == cudaSuccess && need > a.seq_temp_bytes) e = cudaErrorInvalidValue;
  if (e != cudaSuccess) return LaunchResult{e, "DeviceSegmentedReduce (temporary storage)"};
  size_t have = a.seq_temp_bytes;
  e = cub::DeviceSegmentedReduce::Reduce(a.seq_temp, have, a.row_scores, out, a.num_sequences,
                                         begin, end, AddScores{}, zero, stream);
  if (e == cudaSuccess) e = cudaPeekAtLastError();
  return LaunchResult{e, e == cudaSuccess ? "" : "DeviceSegmentedReduce"};
}
#endif

// A failed launch returns its error and the kernel's name from the
// function that launched it.
#define LINALIGN_LAUNCHED(name)                           \
  do {                                                    \
    const cudaError_t e_ = cudaPeekAtLastError();         \
    if (e_ != cudaSuccess) return LaunchResult{e_, name}; \
  } while (0)

// The whole call in one cooperative kernel (fused_kernels.cuh). Returns
// cudaErrorCooperativeLaunchTooLarge, with the error cleared, when the
// device holds fewer blocks now than when the context measured it (another
// process's work, MPS): the caller then runs the multi-kernel path, as for a
// row too wide to fuse.
template <class E>
LaunchResult launch_fused(const Args& a, const LaunchShape& shape, cudaStream_t stream) {
  const Op op = Op(a.op);
  if ((op != Op::kAlign && op != Op::kSample) || shape.fused_grid < a.slices ||
      shape.fused_grid > kMaxGridX)
    return LaunchResult{cudaErrorInvalidConfiguration, "launch policy / fused kernel mismatch"};
  const bool align = op == Op::kAlign;
  const bool kl = a.rule == int32_t(math::Rule::kExactKl);
  const char* name = align ? "FusedAlignKernel" : "FusedSampleKernel";
  const unsigned grid = unsigned(shape.fused_grid);
  const int T = kSweepThreads;
  const cudaError_t e =
      align ? (kl ? launch_cooperative(FusedAlignKernel<E, true>, name, grid, T, stream, a)
                  : launch_cooperative(FusedAlignKernel<E, false>, name, grid, T, stream, a))
            : (kl ? launch_cooperative(FusedSampleKernel<E, true>, name, grid, T, stream, a)
                  : launch_cooperative(FusedSampleKernel<E, false>, name, grid, T, stream, a));
  if (e == cudaErrorCooperativeLaunchTooLarge) (void)cudaGetLastError();
  return LaunchResult{e, e == cudaSuccess ? "" : name};
}

// The multi-kernel path for rows [row0, row0 + n) (one L2-resident group):
// statistics (or align_shard's plan), exact_kl's passes, the second sweep,
// then the operation's kernels.
template <class E>
LaunchResult launch_group(const Args& a, int64_t row0, int64_t n, cudaStream_t stream) {
  const Op op = Op(a.op);
  const dim3 sweep_grid(unsigned(a.slices), unsigned(n));
  const dim3 row_grid{unsigned(n), 1u, 1u};
  if (op == Op::kAlignShard) {  // the merged statistics come with the call
    LINALIGN_LAUNCH(PlanKernel<E>, row_grid, kRowThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("PlanKernel");
  } else {  // the statistics; the last block of each row plans it
    LINALIGN_LAUNCH(StatsKernel<E>, sweep_grid, kSweepThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("StatsKernel");
  }
  if (op == Op::kShardStats) {
    LINALIGN_LAUNCH(ShardStatsKernel<E>, row_grid, kRowThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("ShardStatsKernel");
    return LaunchResult{cudaSuccess, ""};
  }
  if (a.rule == int32_t(math::Rule::kExactKl)) {
    for (int pass = 0; pass < kExactKlPasses; ++pass) {
      LINALIGN_LAUNCH(KlPassKernel<E>, sweep_grid, kSweepThreads, stream)(a, row0);
      LINALIGN_LAUNCHED("KlPassKernel");
    }
    LINALIGN_LAUNCH(KlSolveKernel<E>, row_grid, kRowThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("KlSolveKernel");
  }
  if (!a.tilt_in_first) {
    LINALIGN_LAUNCH(MomentsKernel<E>, sweep_grid, kSweepThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("MomentsKernel");
    LINALIGN_LAUNCH(FinishKernel<E>, row_grid, kFinishThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("FinishKernel");
  }
  if (op == Op::kAlign || op == Op::kAlignShard) {
    LINALIGN_LAUNCH(AlignKernel<E>, sweep_grid, kSweepThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("AlignKernel");
  } else if (op == Op::kSample) {
    if (a.masks_possible) {
      for (int pass = 0; pass < a.select_passes; ++pass) {
        LINALIGN_LAUNCH(SelectPassKernel<E>, sweep_grid, kSweepThreads, stream)(a, row0, pass);
        LINALIGN_LAUNCHED("SelectPassKernel");
      }
    }
    LINALIGN_LAUNCH(SampleKernel<E>, sweep_grid, kSweepThreads, stream)(a, row0);
    LINALIGN_LAUNCHED("SampleKernel");
  }
  return LaunchResult{cudaSuccess, ""};
}

// score, once every row is planned: the targets' scores, then the
// per-sequence sums.
template <class E>
LaunchResult launch_scores(const Args& a, cudaStream_t stream) {
  if (a.rows > 0) {
    LINALIGN_LAUNCH(ScoreKernel<E>, grid_for(a.rows, kPerRowThreads), kPerRowThreads, stream)(a);
    LINALIGN_LAUNCHED("ScoreKernel");
  }
  if (a.num_sequences > 0) {
#if defined(LINALIGN_SIMT_LAUNCH)
    const unsigned grid = unsigned(std::min(kMaxGridX, a.num_sequences));
    LINALIGN_LAUNCH(SeqSumKernel<E>, grid, kFinishThreads, stream)(a);
    LINALIGN_LAUNCHED("SeqSumKernel");
#else
    return launch_sequence_sums(a, stream);
#endif
  }
  return LaunchResult{cudaSuccess, ""};
}
#undef LINALIGN_LAUNCHED

template <class E>
LaunchResult launch_call(const Args& a, const LaunchShape& shape, cudaStream_t stream) {
  static_assert(Tile<E>::kVectors > 0, "16-byte vectors of whole elements");
  // The slices the host chose must fit the held registers (kernel_config.hpp).
  if (held_chunks(a.src.vocab, int64_t(sizeof(E)), a.slices) > kHeldChunks)
    return LaunchResult{cudaErrorInvalidConfiguration, "vocabulary slices / held chunks mismatch"};

  const int64_t B = a.rows;
  const Op op = Op(a.op);
  // The StatsKernel blocks (and the fused kernels' rounds) count themselves
  // per row: the counters start at zero.
  if (op != Op::kAlignShard && op != Op::kShardStats && B > 0) {
    const cudaError_t e =
        cudaMemsetAsync(a.stats_done, 0, size_t(counter_index(B)) * sizeof(uint32_t), stream);
    if (e != cudaSuccess) return LaunchResult{e, "cudaMemsetAsync (row counters)"};
  }
  if (shape.fused_grid > 0) {
    const LaunchResult fused = launch_fused<E>(a, shape, stream);
    if (fused.error != cudaErrorCooperativeLaunchTooLarge) return fused;
  }
  for (int64_t row0 = 0; row0 < B; row0 += shape.rows_per_group) {
    const LaunchResult group =
        launch_group<E>(a, row0, std::min(shape.rows_per_group, B - row0), stream);
    if (group.error != cudaSuccess) return group;
  }
  if (op == Op::kScore) return launch_scores<E>(a, stream);
  return LaunchResult{cudaSuccess, ""};
}

}  // namespace kernels
}  // namespace linalign
