// The GPU design's memory and launch budgets, checked on machines without a
// GPU (issue 9: "the regression guard between device runs"). The SIMT
// emulator counts what every kernel of a call asks of global memory
// (simt::traffic(): grids, memsets, bytes loaded, stored and atomically
// updated); each case runs one call of the CUDA backend through the public
// API and checks, against the bytes of the call's own inputs and outputs:
//   * loads / input bytes — how many times each logit is read,
//   * stores / output bytes — nothing written twice,
//   * kernels per call.
// The budgets are the design's as it stands (bench/NOTES.md, "Budgets"):
// a change that reads the rows one more time, or adds a kernel, fails here.
// The targets the H200 run set: each logit read once for align, at most
// twice for a top-p sample, B = 1 in at most two kernels — met by the fused
// kernels (one kernel, one read, for align and sample, whenever a row's
// slices fit the resident blocks), and by score (two kernels, one read).

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gpu/gpu_test_util.hpp"
#include "launch_policy.hpp"
#include "linalign/linalign.hpp"
#include "linalign/math/dtype.hpp"
#include "linalign/math/radix_select.hpp"
#include "simt.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;
using linalign_gpu_test::DeviceArray;
using linalign_gpu_test::put;
using linalign_gpu_test::sz;

enum class Call { kAlign, kSample, kScore };

struct Budget {
  const char* name;
  Call call;
  DType dtype;
  int64_t rows, vocab;
  StepRule rule;
  float top_p;       // sample: top-p (< 1: the radix-select passes)
  double max_reads;  // loads of the logits ≤ max_reads × their bytes
  int max_kernels;   // grids per call
};

// Bytes a call may store per row beyond its outputs: the workspace records
// (partial statistics per slice, plans, masks, histograms, arg-max partials).
constexpr double kRecordBytesPerRow = 32.0 * 1024;

struct Measured {
  simt::Traffic t;
  double input_bytes;
  double output_bytes;
};

simt::Traffic operator-(const simt::Traffic& a, const simt::Traffic& b) {
  simt::Traffic d;
  d.kernels = a.kernels - b.kernels;
  d.memsets = a.memsets - b.memsets;
  d.load_bytes = a.load_bytes - b.load_bytes;
  d.store_bytes = a.store_bytes - b.store_bytes;
  d.atomic_bytes = a.atomic_bytes - b.atomic_bytes;
  d.watched_load_bytes = a.watched_load_bytes - b.watched_load_bytes;
  d.watched_store_bytes = a.watched_store_bytes - b.watched_store_bytes;
  return d;
}

Measured run(const Budget& b) {
  const int64_t B = b.rows, V = b.vocab;
  const size_t eb = b.dtype == DType::kF32 ? 4 : 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> n01(0.f, 1.f);
  std::vector<unsigned char> hz(sz(B * V) * eb), hy(hz.size());
  for (int64_t i = 0; i < B * V; ++i) {
    const float z = 3.f * n01(rng), y = z + n01(rng);
    put(hz, b.dtype, i, z);
    put(hy, b.dtype, i, y);
  }
  const DeviceArray<unsigned char> dz(hz), dy(hy);
  const LogitsView v = LogitsView::strided(b.dtype, B, V, dz.get(), dy.get());
  Params p;
  p.rule = b.rule;
  p.top_p = b.top_p;
  auto ctx = linalign_gpu_test::make_context(Backend::kCuda, 1);
  const linalign::Op op = b.call == Call::kAlign    ? linalign::Op::kAlign
                          : b.call == Call::kSample ? linalign::Op::kSample
                                                    : linalign::Op::kScore;
  DeviceArray<unsigned char> ws(ctx->workspace_size(op, v, p));
  DeviceArray<RowDiagnostics> diag(sz(B));
  Measured m{};
  m.input_bytes = double(2 * sz(B * V) * eb);
  m.output_bytes = double(sz(B) * sizeof(RowDiagnostics));
  simt::unwatch_all();
  simt::watch(dz.get(), hz.size());
  simt::watch(dy.get(), hy.size());
  const simt::Traffic before = simt::traffic();
  Status s = Status::kSuccess;
  if (b.call == Call::kAlign) {
    DeviceArray<float> out(sz(B * V));
    s = ctx->align(v, p, out.get(), V, diag.get(), ws.get(), ws.size());
    m.output_bytes += double(sz(B * V) * sizeof(float));
  } else if (b.call == Call::kSample) {
    DeviceArray<int32_t> tokens(sz(B));
    s = ctx->sample(v, p, tokens.get(), nullptr, diag.get(), ws.get(), ws.size());
    m.output_bytes += double(sz(B) * sizeof(int32_t));
  } else {
    std::vector<int32_t> ht(sz(B));
    for (int64_t r = 0; r < B; ++r) ht[sz(r)] = int32_t((r * 7919) % V);
    const DeviceArray<int32_t> targets(ht);
    DeviceArray<float> scores(sz(B));
    ScoreOutputs o;
    o.aligned = scores.get();
    s = ctx->score(v, p, targets.get(), o, diag.get(), ws.get(), ws.size());
    m.output_bytes += double(sz(B) * sizeof(float));
  }
  EXPECT_EQ(s, Status::kSuccess) << ctx->last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  m.t = simt::traffic() - before;
  simt::unwatch_all();
  return m;
}

class Budgets : public ::testing::TestWithParam<Budget> {
 protected:
  // An H200's L2 (60 MiB), so the calls here run as one row group, as they
  // would there (the emulator's default is 1 MiB); set before the first
  // context caches the device's facts.
  static void SetUpTestSuite() { setenv("LINALIGN_EMU_L2_BYTES", "62914560", 1); }
};

TEST_P(Budgets, Hold) {
  const Budget& b = GetParam();
  const Measured m = run(b);
  const double reads = double(m.t.watched_load_bytes) / m.input_bytes;
  const double other_loads = double(m.t.load_bytes - m.t.watched_load_bytes);
  std::printf(
      "%-22s kernels %2llu  logits read %.3f times  other loads %.0f B  stores %.0f B (outputs "
      "%.0f B)  atomics %llu B\n",
      b.name, static_cast<unsigned long long>(m.t.kernels), reads, other_loads,
      double(m.t.store_bytes), m.output_bytes, static_cast<unsigned long long>(m.t.atomic_bytes));
  RecordProperty("kernels", std::to_string(m.t.kernels));
  RecordProperty("logit_reads", std::to_string(reads));
  // Every logit is read at least once, at most the budget's times.
  EXPECT_GE(reads, 1.0) << b.name;
  EXPECT_LE(reads, b.max_reads) << b.name << ": the logits are read " << reads << " times";
  // The inputs are never written; every output is, and nothing else but
  // the workspace records.
  EXPECT_EQ(m.t.watched_store_bytes, 0u) << b.name;
  EXPECT_GE(double(m.t.store_bytes), m.output_bytes) << b.name;
  // (a sample call with top-p also stores its gathered candidates: at most
  // candidate_capacity(V) of 8 bytes per row)
  const double candidates = b.call == Call::kSample && b.top_p < 1.f
                                ? double(sizeof(linalign::math::Candidate)) *
                                      double(linalign::host::candidate_capacity(b.vocab))
                                : 0.0;
  EXPECT_LE(double(m.t.store_bytes),
            m.output_bytes + (kRecordBytesPerRow + candidates) * double(b.rows))
      << b.name;
  EXPECT_LE(m.t.kernels, uint64_t(b.max_kernels)) << b.name;
  EXPECT_LE(m.t.memsets, 1u) << b.name;
}

// V = 32000 (31 slices of a row), 4 rows, every dtype where the path depends
// on it; B = 1 for the decode step.
// (name, call, dtype, B, V, rule, top_p, logit reads, kernels): today's
// design. align: one persistent cooperative kernel (FusedAlignKernel) that
// holds each slice in registers from its only read through the statistics,
// the plan (and trust_region's moments at η) to ℓ* — the emulator's 132 SMs ×
// 1 resident block hold a row's 31 slices; at V = 151936 (148 slices) they
// do not, and align falls back to a statistics sweep whose last block per
// row plans the row, then the output sweep (2 reads); sample: the same
// fused kernel (FusedSampleKernel) holds the slice through the plan, the
// select passes (candidates first: a row whose candidates decide its masks
// draws its token from them after one pass) and the draw; unfused:
// statistics, 4 radix-select passes for top-p, then the draw (2 reads when
// the candidates suffice); score: one sweep (and the target's element),
// then the scores.
// Every call but align_shard / shard_stats also zeroes its row counters
// (one memset).
const Budget kBudgets[] = {
    {"align_fixed_f32_B4", Call::kAlign, DType::kF32, 4, 32000, StepRule::kFixed, 1.f, 1.0, 1},
    {"align_fixed_bf16_B4", Call::kAlign, DType::kBF16, 4, 32000, StepRule::kFixed, 1.f, 1.0, 1},
    {"align_trust_f32_B4", Call::kAlign, DType::kF32, 4, 32000, StepRule::kTrustRegion, 1.f, 1.0,
     1},
    {"align_exactkl_f32_B4", Call::kAlign, DType::kF32, 4, 32000, StepRule::kExactKl, 1.f, 1.0, 1},
    {"align_fixed_bf16_B1", Call::kAlign, DType::kBF16, 1, 32000, StepRule::kFixed, 1.f, 1.0, 1},
    // more rows than one wave of resident blocks (4 × 31 slices > 132): the
    // persistent blocks take a second row each
    {"align_trust_f32_B9", Call::kAlign, DType::kF32, 9, 32000, StepRule::kTrustRegion, 1.f, 1.0,
     1},
    {"align_fixed_f32_B1_unfused", Call::kAlign, DType::kF32, 1, 151936, StepRule::kFixed, 1.f, 2.0,
     2},
    {"sample_greedy_f32_B4", Call::kSample, DType::kF32, 4, 32000, StepRule::kFixed, 1.f, 1.0, 1},
    {"sample_topp_f32_B4", Call::kSample, DType::kF32, 4, 32000, StepRule::kFixed, 0.9f, 1.0, 1},
    {"sample_topp_bf16_B1", Call::kSample, DType::kBF16, 1, 32000, StepRule::kFixed, 0.9f, 1.0, 1},
    {"sample_topp_trust_bf16_B1", Call::kSample, DType::kBF16, 1, 32000, StepRule::kTrustRegion,
     0.9f, 1.0, 1},
    // the unfused path (148 slices > 132 resident): statistics, the draw
    {"sample_greedy_f32_B1_unfused", Call::kSample, DType::kF32, 1, 151936, StepRule::kFixed, 1.f,
     2.0, 2},
    // p so close to 1 that no candidate is gathered: the whole-row passes,
    // over the held slice
    {"sample_topp9995_f32_B4", Call::kSample, DType::kF32, 4, 32000, StepRule::kFixed, 0.9995f, 1.0,
     1},
    {"score_fixed_f32_B4", Call::kScore, DType::kF32, 4, 32000, StepRule::kFixed, 1.f, 1.001, 2},
};

INSTANTIATE_TEST_SUITE_P(Design, Budgets, ::testing::ValuesIn(kBudgets),
                         [](const ::testing::TestParamInfo<Budget>& i) {
                           return std::string(i.param.name);
                         });

}  // namespace

namespace {

// A cooperative launch the device refuses (fewer blocks resident than when
// the context measured it: another process's work, MPS): the call runs the
// multi-kernel path instead of failing.
TEST(BudgetsFallback, RefusedCooperativeLaunchRunsTheMultiKernelPath) {
  setenv("LINALIGN_EMU_L2_BYTES", "62914560", 1);  // (as the Budgets suite)
  const Budget b{"align_fixed_f32_B4", Call::kAlign, DType::kF32, 4, 32000,
                 StepRule::kFixed,     1.f,          1.0,         1};
  const Measured fused = run(b);  // the device's facts are cached now
  EXPECT_EQ(fused.t.kernels, 1u);
  setenv("LINALIGN_EMU_BLOCKS_PER_SM", "0", 1);  // nothing resident any more
  const Measured fallback = run(b);
  unsetenv("LINALIGN_EMU_BLOCKS_PER_SM");
  EXPECT_EQ(fallback.t.kernels, 2u);  // StatsKernel, AlignKernel
  EXPECT_DOUBLE_EQ(double(fallback.t.watched_load_bytes) / fallback.input_bytes, 2.0);
}

}  // namespace
