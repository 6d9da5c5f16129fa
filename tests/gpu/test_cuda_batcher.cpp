// The host API's batcher on the CUDA backend (natively in the device check,
// and on the SIMT emulator in CI): every step's answer is bit-identical to
// the direct one-row CUDA call with the request's parameters at the offset
// the batcher assigned, whatever batch and stream it ran in; a step whose
// rows are pageable host memory is refused at submission with the direct
// call's message and fails no neighbour; under concurrent submit / cancel /
// deadline / request churn / shutdown every accepted step is answered exactly
// once (LINALIGN_CUDA_STRESS_STEPS steps, default 600). Device rows and align
// outputs are cudaMalloc'd; skips without a device.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "batcher_test_util.hpp"
#include "gpu_test_util.hpp"
#include "linalign/batcher.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;
using linalign::BatcherOptions;
using linalign::BatcherStats;
using linalign::RequestId;
using linalign::Step;
using linalign::StepKind;
using linalign::StepResult;
using linalign::StepRows;
using linalign::Submission;
using linalign_gpu_test::DeviceArray;
using linalign_test::expect_same;
using linalign_test::make_batcher;
using linalign_test::open_request;
using linalign_test::request_params;
using linalign_test::same_bits;

#if defined(LINALIGN_SIMT_EMULATED)
constexpr int64_t kVocab = 700;
#else
constexpr int64_t kVocab = 32000;
#endif

// N random row pairs in one device buffer each for base and principle.
struct DevicePool {
  int64_t V, n;
  std::vector<float> hz, hy;
  DeviceArray<float> z, y;
  DevicePool(int64_t vocab, int64_t rows, uint32_t seed) : V(vocab), n(rows) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(0.f, 2.f);
    hz.resize(size_t(V * n));
    hy.resize(size_t(V * n));
    for (size_t i = 0; i < hz.size(); ++i) {
      hz[i] = nd(g);
      hy[i] = hz[i] + 0.5f * nd(g);
    }
    z = DeviceArray<float>(hz);
    y = DeviceArray<float>(hy);
  }
  StepRows rows(int64_t r) const {
    return StepRows{DType::kF32, V, z.get() + r * V, y.get() + r * V};
  }
};

// The direct one-row CUDA call, its outputs downloaded.
StepResult direct(Context& ctx, StepKind kind, const StepRows& rows, Params p, uint64_t offset,
                  int32_t target, std::vector<float>* aligned) {
  p.offset = offset;
  const LogitsView v = LogitsView::strided(rows.dtype, 1, rows.vocab, rows.base, rows.principle);
  DeviceArray<int32_t> tok(1), tgt(std::vector<int32_t>{target});
  DeviceArray<float> a(1), b(1), c(1), out(size_t(rows.vocab));
  DeviceArray<RowDiagnostics> d(1);
  Status s = Status::kSuccess;
  switch (kind) {
    case StepKind::kSample:
      s = ctx.sample(v, p, tok.get(), a.get(), d.get());
      break;
    case StepKind::kAlign:
      s = ctx.align(v, p, out.get(), 0, d.get());
      break;
    case StepKind::kScore: {
      ScoreOutputs so;
      so.aligned = a.get();
      so.base = b.get();
      so.principle = c.get();
      s = ctx.score(v, p, tgt.get(), so, d.get());
      break;
    }
  }
  EXPECT_EQ(s, Status::kSuccess) << ctx.last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  StepResult r;
  r.offset = offset;
  r.token = tok.download()[0];
  r.logprob = a.download()[0];
  r.score_base = b.download()[0];
  r.score_principle = c.download()[0];
  r.diagnostics = d.download()[0];
  if (aligned != nullptr) *aligned = out.download();
  return r;
}

TEST(CudaBatcher, StepsMatchDirectCallsInAnyBatch) {
  SKIP_WITHOUT_DEVICE();
  auto ctx = linalign_test::make_context(Backend::kCuda, 0);
  auto ref = linalign_test::make_context(Backend::kCuda, 0);
  const DevicePool pool(kVocab, 8, 21);
  BatcherOptions o;
  o.max_rows = 8;
  o.max_wait_us = 2000;
  o.streams = 2;
  auto b = make_batcher(*ctx, o);
  constexpr int kThreads = 3, kRequests = 4, kSteps = 3;
  using Out = std::shared_ptr<DeviceArray<float>>;
  using Done = linalign_test::RoundStep<Out>;
  const std::vector<Done> done = linalign_test::run_rounds<Out>(
      *b, kThreads, kRequests, kSteps,
      [](int t, int q, int k, Done* d) {
        d->row = (t * 3 + q + k) % 8;
        d->kind = StepKind((q + k + t) % 3);
        d->target = int32_t((q * 37 + k) % kVocab);
        d->out = std::make_shared<DeviceArray<float>>(size_t(kVocab));
      },
      [&](const Done& d) { return pool.rows(d.row); }, [](Done& d) { return d.out->get(); });
  b->shutdown();
  const BatcherStats st = b->stats();
  EXPECT_EQ(st.completed, uint64_t(kThreads * kRequests * kSteps));
  EXPECT_LT(st.batches, st.completed);
  linalign_test::expect_rounds_match(
      done,
      [&](const Done& d, uint64_t offset, std::vector<float>* aligned) {
        return direct(*ref, d.kind, pool.rows(d.row), request_params(d.request), offset, d.target,
                      aligned);
      },
      [](const Done& d) { return d.out->download(); });
}

TEST(CudaBatcher, HostRowsAreRefusedAtSubmission) {
  SKIP_WITHOUT_DEVICE();
  auto ctx = linalign_test::make_context(Backend::kCuda, 0);
  auto ref = linalign_test::make_context(Backend::kCuda, 0);
  const DevicePool pool(kVocab, 1, 5);
  BatcherOptions o;
  o.max_wait_us = 20000;
  auto b = make_batcher(*ctx, o);
  const Params p;
  const RequestId id = open_request(*b, p);
  Submission good, refused;
  ASSERT_EQ(b->submit(Step::sample(id, pool.rows(0)), &good), Status::kSuccess);
  // Pageable host rows: the direct call refuses them naming logits.base.
  const std::vector<float> hz(size_t(kVocab), 0.f), hy(size_t(kVocab), 0.f);
  DeviceArray<int32_t> tok(1);
  const Status want = ref->sample(LogitsView::strided(DType::kF32, 1, kVocab, hz.data(), hy.data()),
                                  p, tok.get(), nullptr, nullptr);
  ASSERT_EQ(want, Status::kInvalidArgument);
  const std::string want_message = ref->last_error();
  std::string err;
  EXPECT_EQ(b->submit(Step::sample(id, StepRows{DType::kF32, kVocab, hz.data(), hy.data()}),
                      &refused, &err),
            Status::kInvalidArgument);
  EXPECT_EQ(err, want_message);
  // An align step into a pageable host row.
  std::vector<float> host_out(static_cast<size_t>(kVocab));
  EXPECT_EQ(b->submit(Step::align(id, pool.rows(0), host_out.data()), &refused, &err),
            Status::kInvalidArgument);
  EXPECT_NE(err.find("out"), std::string::npos) << err;
  const StepResult r = good.result.get();
  EXPECT_EQ(r.status, Status::kSuccess) << r.message;
  EXPECT_EQ(b->stats().refused, 2u);
}

// The CPU test's stress (linalign_test::run_stress), smaller (the emulator
// runs the kernels): every step answered once, the counts add up, computed
// answers equal direct calls, each request's sample offsets consecutive.
TEST(CudaBatcher, StressEveryStepAnsweredOnceAndExactly) {
  SKIP_WITHOUT_DEVICE();
  linalign_test::StressConfig c;
  c.label = "cuda stress";
  c.steps = linalign_test::env_steps("LINALIGN_CUDA_STRESS_STEPS", 600);
  c.threads = 4;
  c.requests_per_thread = 4;
  c.rows = 16;
  c.targets = int32_t(kVocab);
  c.score_one_in = 3;
  c.deadline_us = 500;
  c.churn = true;
  c.seed = 7;
  auto ctx = linalign_test::make_context(Backend::kCuda, 0);
  auto ref = linalign_test::make_context(Backend::kCuda, 0);
  const DevicePool pool(kVocab, c.rows, 17);
  BatcherOptions o;
  o.max_rows = 16;
  o.max_wait_us = 300;
  o.queue_capacity = 64;
  o.streams = 3;
  auto b = make_batcher(*ctx, o);
  linalign_test::run_stress(
      *b, c, [&](int row) { return pool.rows(row); },
      [&](StepKind kind, const StepRows& rows, const Params& p, uint64_t offset, int32_t target) {
        return direct(*ref, kind, rows, p, offset, target, nullptr);
      });
}

// Consecutive batches overlap on two streams: batch n+1 is started (its
// copies and kernels enqueued) before batch n's outputs are back. Needs a
// device: the emulator runs a slot's work when it is enqueued.
TEST(CudaBatcher, ConsecutiveBatchesOverlap) {
  SKIP_WITHOUT_DEVICE();
#if defined(LINALIGN_SIMT_EMULATED)
  GTEST_SKIP() << "the emulator runs a stream's work at enqueue: no overlap to see";
#endif
  auto ctx = linalign_test::make_context(Backend::kCuda, 0);
  constexpr int64_t kRows = 64, kV = 128256;
  const DevicePool pool(kV, kRows, 9);
  BatcherOptions o;
  o.max_rows = 32;
  o.max_wait_us = 50;
  o.streams = 2;
  auto b = make_batcher(*ctx, o);
  std::vector<RequestId> ids;
  for (int64_t r = 0; r < kRows; ++r) ids.push_back(open_request(*b, request_params(int(r))));
  std::vector<StepResult> results;
  for (int round = 0; round < 8; ++round) {
    std::vector<Submission> subs(static_cast<size_t>(kRows));
    for (int64_t r = 0; r < kRows; ++r)
      ASSERT_EQ(b->submit(Step::sample(ids[size_t(r)], pool.rows(r)), &subs[size_t(r)]),
                Status::kSuccess);
    for (auto& s : subs) results.push_back(s.result.get());
  }
  std::map<uint64_t, StepResult> by_batch;
  for (const StepResult& r : results) {
    ASSERT_EQ(r.status, Status::kSuccess) << r.message;
    by_batch[r.batch] = r;
  }
  int overlaps = 0, pairs = 0;
  for (auto it = by_batch.begin(); std::next(it) != by_batch.end(); ++it) {
    const StepResult& a = it->second;
    const StepResult& c = std::next(it)->second;
    if (c.batch != a.batch + 1) continue;
    ++pairs;
    if (c.batch_started < a.batch_finished && c.slot != a.slot) ++overlaps;
  }
  std::printf("overlap: %d of %d consecutive batch pairs started before the previous finished\n",
              overlaps, pairs);
  EXPECT_GT(overlaps, 0);
}

}  // namespace
