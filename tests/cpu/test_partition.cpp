// The index decomposition of the CUDA kernels (include/linalign/math/partition.hpp),
// walked exhaustively on the CPU exactly as the kernels walk a row: slices of
// body vectors per block, block-strided register chunks per thread, scalar
// head/tail elements on slice 0. For many vocabulary sizes, element sizes,
// vector widths, address misalignments, slice and thread counts: every
// element is touched exactly once, never out of bounds, and every vector
// load is aligned. Also the launch policy's regimes at their thresholds and
// the CUDA workspace layout (host/launch_policy.hpp).

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "launch_policy.hpp"
#include "linalign/math/partition.hpp"
#include "linalign/math/radix_select.hpp"
#include "linalign/math/row_stats.hpp"
#include "linalign/math/update.hpp"

namespace {

using linalign::math::PairSplit;
using linalign::math::Span;
using linalign::math::VectorSplit;

struct WalkConfig {
  int64_t n;           // V
  int64_t elem_bytes;  // 2 or 4
  int64_t width;       // elements per vector
  uint64_t z_address;
  uint64_t y_address;
  int64_t slices;
  int64_t threads;
  int64_t per_chunk;  // vectors per register chunk
};

std::string describe(const WalkConfig& c) {
  return "n=" + std::to_string(c.n) + " eb=" + std::to_string(c.elem_bytes) +
         " width=" + std::to_string(c.width) + " z@" + std::to_string(c.z_address) + " y@" +
         std::to_string(c.y_address) + " slices=" + std::to_string(c.slices) +
         " threads=" + std::to_string(c.threads) + " per_chunk=" + std::to_string(c.per_chunk);
}

// Walks one row like walk_row() in kernels/device.cuh and checks coverage.
// Returns false (with a gtest failure) at the first violation.
bool walk_once(const WalkConfig& c, std::vector<int>& hits) {
  namespace m = linalign::math;
  hits.assign(size_t(c.n), 0);
  const PairSplit ps = m::vector_split_pair(c.z_address, c.y_address, c.n, c.width, c.elem_bytes);
  const VectorSplit& v = ps.split;
  // the split itself
  if (v.head < 0 || v.vectors < 0 || v.tail < 0 || v.head + v.vectors * c.width + v.tail != c.n) {
    ADD_FAILURE() << "bad split " << describe(c);
    return false;
  }
  // the scalar part fits one element per thread of slice 0
  if (m::split_scalars(v) > 2 * (c.width - 1) || m::split_scalars(v) > c.threads) {
    ADD_FAILURE() << "too many scalar elements (" << m::split_scalars(v) << ") " << describe(c);
    return false;
  }
  const uint64_t vbytes = uint64_t(c.width * c.elem_bytes);
  int64_t next_begin = 0;
  for (int64_t s = 0; s < c.slices; ++s) {
    const Span span = m::slice_span(v.vectors, c.slices, s, linalign::host::kSliceGranuleVectors);
    if (span.begin != next_begin || span.end < span.begin || span.end > v.vectors) {
      ADD_FAILURE() << "slice " << s << " [" << span.begin << ", " << span.end << ") "
                    << describe(c);
      return false;
    }
    next_begin = span.end;
    for (int64_t t = 0; t < c.threads; ++t) {
      if (s == 0 && t < m::split_scalars(v)) {
        const int64_t i = m::scalar_element(v, c.n, t);
        if (i < 0 || i >= c.n) {
          ADD_FAILURE() << "scalar element " << i << " out of bounds " << describe(c);
          return false;
        }
        ++hits[size_t(i)];
      }
      const int64_t chunks = m::walk_chunks(span, c.threads, t, c.per_chunk);
      for (int64_t ch = 0; ch < chunks; ++ch) {
        // a chunk the walk enters always has its first slot
        if (m::walk_vector(span, c.threads, t, c.per_chunk, ch, 0) < 0) {
          ADD_FAILURE() << "empty chunk " << ch << " of thread " << t << " " << describe(c);
          return false;
        }
        for (int64_t u = 0; u < c.per_chunk; ++u) {
          const int64_t j = m::walk_vector(span, c.threads, t, c.per_chunk, ch, u);
          if (j < 0) continue;
          if (j < span.begin || j >= span.end) {
            ADD_FAILURE() << "vector " << j << " outside its slice " << describe(c);
            return false;
          }
          const int64_t first = m::vector_element(v, j, c.width);
          if (first < 0 || first + c.width > c.n) {
            ADD_FAILURE() << "vector at " << first << " out of bounds " << describe(c);
            return false;
          }
          if (c.width > 1 && (c.z_address + uint64_t(first * c.elem_bytes)) % vbytes != 0) {
            ADD_FAILURE() << "misaligned z vector at " << first << " " << describe(c);
            return false;
          }
          if (ps.y_vector && (c.y_address + uint64_t(first * c.elem_bytes)) % vbytes != 0) {
            ADD_FAILURE() << "misaligned y vector at " << first << " " << describe(c);
            return false;
          }
          for (int64_t w = 0; w < c.width; ++w) ++hits[size_t(first + w)];
        }
      }
    }
  }
  if (next_begin != v.vectors) {
    ADD_FAILURE() << "slices end at " << next_begin << " of " << v.vectors << " " << describe(c);
    return false;
  }
  for (int64_t i = 0; i < c.n; ++i) {
    if (hits[size_t(i)] != 1) {
      ADD_FAILURE() << "element " << i << " touched " << hits[size_t(i)] << " times "
                    << describe(c);
      return false;
    }
  }
  return true;
}

// Small and regime-boundary vocabularies: every combination.
TEST(Partition, EveryElementExactlyOnceSmallVocab) {
  const int64_t vocabs[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 37, 63, 64, 65, 111, 257};
  std::vector<int> hits;
  int64_t configs = 0;
  for (int64_t n : vocabs)
    for (int64_t eb : {2, 4})
      for (int64_t width : {1, 4, 8})
        for (uint64_t zo = 0; zo < 16; zo += uint64_t(eb))
          for (uint64_t yo = 0; yo < 16; yo += uint64_t(eb))
            for (int64_t slices : {1, 2, 3, 7})
              for (int64_t threads : {16, 32, 48})
                for (int64_t per_chunk : {1, 2, 4}) {
                  const WalkConfig c{n,         eb,     width,   4096 + zo,
                                     8192 + yo, slices, threads, per_chunk};
                  ASSERT_TRUE(walk_once(c, hits));
                  ++configs;
                }
  EXPECT_GT(configs, 100000);
}

// Real vocabularies (odd 50257 and 32001 leave head and tail on most
// alignments), the kernels' block sizes and the policy's slice counts.
TEST(Partition, EveryElementExactlyOnceLargeVocab) {
  const int64_t vocabs[] = {4097, 32000, 32001, 50257, 128256, 151936};
  std::vector<int> hits;
  for (int64_t n : vocabs)
    for (int64_t eb : {2, 4})
      for (uint64_t zo : {0, 2, 4, 6, 8, 12, 14}) {
        if (zo % uint64_t(eb) != 0) continue;
        for (uint64_t yo : {uint64_t(0), zo, uint64_t(4)}) {
          if (yo % uint64_t(eb) != 0) continue;
          const int64_t width = 16 / eb;  // the kernels' 16-byte vectors
          for (int64_t slices : {1, 2, 31, 64})
            for (int64_t threads : {256, 512})
              for (int64_t per_chunk : {16 / width, int64_t(1)}) {
                const WalkConfig c{n,      eb,      width,    (1u << 20) + zo, (1u << 22) + yo,
                                   slices, threads, per_chunk};
                ASSERT_TRUE(walk_once(c, hits));
              }
        }
      }
}

// The slices the policy picks for real vocabularies (slice_span spread in
// warp granules): no block of a row without work, and the busiest slice at
// most one granule above the mean (issue 9: rounding each slice up to whole
// blocks' worth left 41 of 125 blocks empty at V = 128256 fp32).
TEST(Partition, SlicesAreEvenAndNoneEmpty) {
  namespace m = linalign::math;
  const int64_t g = linalign::host::kSliceGranuleVectors;
  for (int64_t V : {1537, 32000, 32001, 50257, 128256, 151936, 262144})
    for (int64_t eb : {2, 4}) {
      const auto p = linalign::host::choose_launch_policy(linalign::Op::kAlign, 1, V, eb,
                                                          linalign::host::DeviceFacts{132, 0});
      const int64_t vectors = V / p.vector_width;
      int64_t lo = vectors, hi = 0, next = 0;
      for (int64_t s = 0; s < p.vocab_slices; ++s) {
        const Span sp = m::slice_span(vectors, p.vocab_slices, s, g);
        ASSERT_EQ(sp.begin, next) << "V=" << V << " s=" << s;
        next = sp.end;
        lo = std::min(lo, sp.end - sp.begin);
        hi = std::max(hi, sp.end - sp.begin);
      }
      EXPECT_EQ(next, vectors) << "V=" << V;
      EXPECT_GT(lo, 0) << "an empty slice at V=" << V << " eb=" << eb;
      EXPECT_LE(hi - lo, g) << "V=" << V << " eb=" << eb;
      EXPECT_LE(hi * p.vocab_slices, vectors + g * p.vocab_slices) << "V=" << V;
    }
  // V = 128256 fp32: 32064 vectors over 125 slices, 256 or 288 each
  EXPECT_EQ(m::slice_span(32064, 125, 0, g).end, 256);
  EXPECT_EQ(m::slice_span(32064, 125, 124, g).end, 32064);
}

// The statistics sweep holds a thread's whole share of its slice in
// registers (kHeldChunks chunks, plan_kernels.cuh): the policy's slices
// never give a thread more, for any V and element size.
TEST(Partition, SlicesFitTheHeldChunks) {
  namespace m = linalign::math;
  namespace h = linalign::host;
  for (int64_t eb : {2, 4})
    for (int64_t V = 1; V <= 400000; V += (V < 5000 ? 1 : 97)) {
      const auto p =
          h::choose_launch_policy(linalign::Op::kAlign, 1, V, eb, h::DeviceFacts{132, 0});
      const int64_t vectors = V / p.vector_width;  // at most: an aligned row
      for (int64_t s = 0; s < p.vocab_slices; ++s) {
        const Span sp = m::slice_span(vectors, p.vocab_slices, s, h::kSliceGranuleVectors);
        const int64_t chunks = m::walk_chunks(sp, p.threads, 0, p.vectors_per_chunk);
        ASSERT_LE(chunks, h::kHeldChunks)
            << "V=" << V << " eb=" << eb << " slice " << s << " of " << p.vocab_slices;
        // the launch's guard bounds every slice
        ASSERT_LE(chunks, h::held_chunks(p, V)) << "V=" << V << " eb=" << eb;
      }
      ASSERT_LE(h::held_chunks(p, V), h::kHeldChunks) << "V=" << V << " eb=" << eb;
    }
}

// A strided [B, stride] tensor: every row's own misalignment, as the kernels
// see it for row r at base + r·stride·eb.
TEST(Partition, StridedRowsOfOddStride) {
  std::vector<int> hits;
  for (int64_t eb : {2, 4})
    for (int64_t stride : {37, 50257, 50264})
      for (int64_t r = 0; r < 9; ++r) {
        const uint64_t z = uint64_t(r * stride * eb);
        const uint64_t y = uint64_t((2 * r + 1) * stride * eb);  // a paired [2B, V] layout
        const WalkConfig c{
            std::min<int64_t>(stride, 50257), eb, 16 / eb, z, y, 3, 256, 16 / (16 / eb)};
        ASSERT_TRUE(walk_once(c, hits));
      }
}

TEST(Partition, RowsNotElementAlignedAreScalar) {
  // The kernels never read such rows (flagged kRowBadParameter), but the
  // split must still be a partition of the row.
  const VectorSplit v = linalign::math::vector_split(4097, 100, 4, 4);
  EXPECT_EQ(v.head, 100);
  EXPECT_EQ(v.vectors, 0);
  EXPECT_EQ(v.tail, 0);
  const PairSplit p = linalign::math::vector_split_pair(4096, 4098, 100, 4, 4);
  EXPECT_FALSE(p.y_vector);
  EXPECT_GT(p.split.vectors, 0);
}

TEST(Partition, PairSplitVectorisesTheSecondRowOnlyWhenItsMisalignmentMatches) {
  EXPECT_TRUE(linalign::math::vector_split_pair(4096 + 4, 8192 + 4, 1000, 4, 4).y_vector);
  EXPECT_FALSE(linalign::math::vector_split_pair(4096 + 4, 8192 + 8, 1000, 4, 4).y_vector);
  EXPECT_FALSE(linalign::math::vector_split_pair(4096, 8192, 3, 4, 4).y_vector);  // no body
}

// ------------------------------------------------------------ launch policy ---

using linalign::Op;
using linalign::host::choose_launch_policy;
using linalign::host::DeviceFacts;
using linalign::host::LaunchPolicy;

const DeviceFacts kH200{132, 60 * 1024 * 1024};

TEST(LaunchPolicy, VectorWidthAndChunkFollowTheElementSize) {
  const LaunchPolicy f32 = choose_launch_policy(Op::kAlign, 4, 32000, 4, kH200);
  EXPECT_EQ(f32.vector_width, 4);
  EXPECT_EQ(f32.vector_width * f32.vectors_per_chunk, linalign::host::kChunkItems);
  const LaunchPolicy b16 = choose_launch_policy(Op::kAlign, 4, 32000, 2, kH200);
  EXPECT_EQ(b16.vector_width, 8);
  EXPECT_EQ(b16.vector_width * b16.vectors_per_chunk, linalign::host::kChunkItems);
  EXPECT_EQ(f32.threads, linalign::host::kSweepThreads);
  EXPECT_EQ(f32.row_threads, linalign::host::kRowThreads);
}

TEST(LaunchPolicy, BatchOneSplitsTheVocabulary) {
  const LaunchPolicy p = choose_launch_policy(Op::kAlign, 1, 128256, 4, kH200);
  EXPECT_STREQ(p.regime, "split-vocab") << p.str();
  // slices of one register chunk per thread: 128 threads x 8 tokens
  EXPECT_EQ(p.vocab_slices, 125) << p.str();  // 128256 / 1024 = 125.3
  // from V ≈ 135000 on, at least one block per SM of an H200 (132)
  EXPECT_GE(choose_launch_policy(Op::kAlign, 1, 151936, 2, kH200).vocab_slices, kH200.sm_count);
  EXPECT_GE(choose_launch_policy(Op::kAlign, 1, 262144, 4, kH200).vocab_slices, kH200.sm_count);
  EXPECT_EQ(p.rows_per_group, 1);
  EXPECT_EQ(p.groups, 1);
}

// The split depends on V alone (batch invariance: a row's bits never depend
// on the batch it is in), the same for every dtype and device.
TEST(LaunchPolicy, SlicesDependOnTheVocabularyOnly) {
  for (int64_t V :
       {1, 37, 1535, 1536, 2047, 2048, 6143, 6144, 32000, 50257, 128256, 151936, 262144}) {
    const int64_t want = std::max<int64_t>(1, (V + 512) / 1024);
    for (int64_t eb : {2, 4})
      for (int64_t B : {1, 3, 64, 256, 5000})
        for (Op op : {Op::kAlign, Op::kSample, Op::kScore})
          for (const DeviceFacts& d : {kH200, DeviceFacts{108, 40 << 20}, DeviceFacts{1, 0}}) {
            const LaunchPolicy p = choose_launch_policy(op, B, V, eb, d);
            ASSERT_EQ(p.vocab_slices, want) << "V=" << V << " " << p.str();
            ASSERT_STREQ(p.regime, want > 1 ? "split-vocab" : "row-per-block");
          }
  }
  // regime boundary: 1.5 slices of 1024 tokens round up
  EXPECT_EQ(choose_launch_policy(Op::kAlign, 1, 1535, 4, kH200).vocab_slices, 1);
  EXPECT_EQ(choose_launch_policy(Op::kAlign, 1, 1536, 4, kH200).vocab_slices, 2);
}

TEST(LaunchPolicy, RowGroupsFitHalfTheL2) {
  // 128256 fp32 tokens: a row pair is 1026048 bytes; half of 60 MiB holds 30.
  const LaunchPolicy p = choose_launch_policy(Op::kAlign, 256, 128256, 4, kH200);
  EXPECT_EQ(p.rows_per_group, (60 * 1024 * 1024 / 2) / (2 * 128256 * 4)) << p.str();
  EXPECT_EQ(p.groups, (256 + p.rows_per_group - 1) / p.rows_per_group);
  EXPECT_LE(p.rows_per_group * 2 * 128256 * 4, kH200.l2_bytes / 2);
  // groups are small, so each is split to fill the GPU
  EXPECT_GT(p.vocab_slices, 1) << p.str();
  // a row pair larger than the L2 share: one row per group
  const LaunchPolicy huge = choose_launch_policy(Op::kAlign, 8, 16 << 20, 4, kH200);
  EXPECT_EQ(huge.rows_per_group, 1);
  EXPECT_EQ(huge.groups, 8);
  // scoring does not re-read rows: one group
  const LaunchPolicy score = choose_launch_policy(Op::kScore, 256, 128256, 4, kH200);
  EXPECT_EQ(score.groups, 1);
  // unknown L2: one group
  const LaunchPolicy no_l2 = choose_launch_policy(Op::kAlign, 256, 128256, 4, DeviceFacts{132, 0});
  EXPECT_EQ(no_l2.groups, 1);
}

TEST(LaunchPolicy, GroupsNeverExceedTheGridLimit) {
  const LaunchPolicy p = choose_launch_policy(Op::kAlign, 1000000, 1, 4, kH200);
  EXPECT_EQ(p.rows_per_group, linalign::host::kMaxRowsPerGroup);
  EXPECT_EQ(p.groups, (1000000 + p.rows_per_group - 1) / p.rows_per_group);
  const LaunchPolicy empty = choose_launch_policy(Op::kAlign, 0, 32000, 4, kH200);
  EXPECT_EQ(empty.groups, 0);
}

// The fused path (FusedAlignKernel, FusedSampleKernel): align and sample when
// a row's slices can all be resident; its persistent grid is whole rows' worth
// of slices, at most the call's items, never fewer blocks than a row has
// slices (the deadlock-freedom condition of plan_kernels.cuh).
TEST(LaunchPolicy, FusedAlignWhenARowIsResident) {
  DeviceFacts h200 = kH200;
  h200.fused.align = 3;  // 154 registers × 128 threads (ptxas, sm_90a)
  const LaunchPolicy p = choose_launch_policy(Op::kAlign, 64, 128256, 4, h200);
  EXPECT_STREQ(p.regime, "fused") << p.str();
  EXPECT_EQ(p.fused_grid, 3 * 125) << p.str();  // 396 resident: 3 rows of 125 slices per wave
  EXPECT_NE(p.str().find("fused_grid=375"), std::string::npos) << p.str();
  // B = 1: one row's slices
  EXPECT_EQ(choose_launch_policy(Op::kAlign, 1, 128256, 4, h200).fused_grid, 125);
  for (int64_t V : {1, 37, 32000, 50257, 128256, 151936, 262144, 400000})
    for (int64_t B : {1, 2, 7, 64, 1000})
      for (int per_sm : {0, 1, 2, 4})
        for (int64_t eb : {2, 4}) {
          DeviceFacts d = kH200;
          d.fused.align = per_sm;
          const LaunchPolicy q = choose_launch_policy(Op::kAlign, B, V, eb, d);
          const int64_t resident = int64_t(d.sm_count) * per_sm;
          if (resident < q.vocab_slices) {
            ASSERT_EQ(q.fused_grid, 0) << q.str();
            continue;
          }
          ASSERT_GE(q.fused_grid, q.vocab_slices) << q.str();
          ASSERT_LE(q.fused_grid, std::min(resident, B * q.vocab_slices)) << q.str();
          ASSERT_TRUE(q.fused_grid == B * q.vocab_slices || q.fused_grid % q.vocab_slices == 0)
              << q.str();
          // the slices, and so every bit of the result, are the unfused path's
          DeviceFacts none = d;
          none.fused.align = 0;
          ASSERT_EQ(q.vocab_slices, choose_launch_policy(Op::kAlign, B, V, eb, none).vocab_slices);
        }
  // sample, and exact_kl, by their own kernels' occupancy
  h200.fused.sample = 2;
  EXPECT_EQ(choose_launch_policy(Op::kSample, 64, 128256, 4, h200).fused_grid, 2 * 125);
  EXPECT_EQ(choose_launch_policy(Op::kAlign, 64, 128256, 4, h200, linalign::StepRule::kExactKl)
                .fused_grid,
            0);  // (no exact_kl instance resident in these facts)
  h200.fused.align_exact_kl = 1;
  h200.fused.sample_exact_kl = 1;
  EXPECT_EQ(choose_launch_policy(Op::kAlign, 64, 128256, 4, h200, linalign::StepRule::kExactKl)
                .fused_grid,
            125);
  EXPECT_EQ(choose_launch_policy(Op::kSample, 64, 128256, 4, h200, linalign::StepRule::kExactKl)
                .fused_grid,
            125);
  // not fused: score (one read already), the shard calls, unknown occupancy
  for (Op op : {Op::kScore, Op::kAlignShard, Op::kShardStats})
    EXPECT_EQ(choose_launch_policy(op, 4, 32000, 4, h200).fused_grid, 0);
  EXPECT_EQ(choose_launch_policy(Op::kAlign, 4, 32000, 4, kH200).fused_grid, 0);
  EXPECT_EQ(choose_launch_policy(Op::kAlign, 0, 32000, 4, h200).fused_grid, 0);
}

TEST(LaunchPolicy, Printable) {
  const std::string s = choose_launch_policy(Op::kAlign, 1, 50257, 2, kH200).str();
  EXPECT_NE(s.find("split-vocab"), std::string::npos) << s;
  EXPECT_NE(s.find("vocab_slices="), std::string::npos) << s;
  EXPECT_NE(s.find("rows_per_group="), std::string::npos) << s;
}

TEST(CudaLayout, RegionsAreAlignedAndDisjoint) {
  using linalign::host::Call;
  using linalign::host::cuda_layout;
  using linalign::host::kWorkspaceAlignment;
  linalign::Params params;
  params.top_p = 0.9f;
  for (Op op : {Op::kAlign, Op::kSample, Op::kScore}) {
    for (int64_t rows : {0, 1, 3, 99}) {
      Call call;
      call.op = op;
      call.params = &params;
      call.logits.rows = rows;
      call.logits.vocab = 50257;
      const LaunchPolicy pol = choose_launch_policy(op, rows, 50257, 4, kH200);
      const auto L = cuda_layout(call, pol);
      const size_t offs[] = {L.stats_off, L.sweep_off,    L.plan_off,   L.solve_off,
                             L.mask_off,  L.select_off,   L.argmax_off, L.sample_done_off,
                             L.score_off, L.seq_temp_off, L.used};
      for (size_t k = 0; k < sizeof(offs) / sizeof(offs[0]); ++k) {
        EXPECT_EQ(offs[k] % kWorkspaceAlignment, 0u);
        if (k > 0) {
          EXPECT_LE(offs[k - 1], offs[k]);
        }
      }
      EXPECT_EQ(L.total, L.used + kWorkspaceAlignment);
      const size_t B = size_t(rows), S = size_t(pol.vocab_slices);
      EXPECT_GE(L.sweep_off - L.stats_off, B * S * sizeof(linalign::math::RowStats));
      EXPECT_GE(L.mask_off - L.plan_off, B * sizeof(linalign::math::RowPlan));
      if (op == Op::kSample) {  // top_p 0.9: masks on
        EXPECT_GE(L.select_off - L.mask_off, B * sizeof(linalign::host::RowMask));
        EXPECT_GE(L.argmax_off - L.select_off, B * sizeof(linalign::math::SelectRow));
        EXPECT_GE(L.sample_done_off - L.argmax_off, B * S * 2 * sizeof(linalign::math::ArgMax));
        EXPECT_GE(L.score_off - L.sample_done_off, B * 128);
      }
      // Each row's counter on a 128-byte line of its own (issue 19).
      EXPECT_EQ(linalign::kernels::counter_index(1) * int64_t(sizeof(uint32_t)), 128);
      EXPECT_GE(L.sample_done_off - L.stats_done_off, B * 128);
      if (op == Op::kScore) {
        EXPECT_GE(L.seq_temp_off - L.score_off, 3 * B * sizeof(float));
        EXPECT_GE(L.used - L.seq_temp_off, linalign::host::kSeqTempBytes);
      }
    }
  }
}

}  // namespace
