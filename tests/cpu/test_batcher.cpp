// The host API's requests and dynamic batching (include/linalign/batcher.hpp)
// on the CPU backend: every step's result is bit-identical to the direct
// one-row Context call with the request's parameters and the Philox offset
// the batcher assigned (SPEC §4: per-row seeds, sub-stream 0), whatever batch
// it ran in; bad steps are refused at submission with the direct call's
// status and message (SPEC §5); every accepted step is answered exactly once
// (completed + cancelled + deadline + failed = submitted), under a stress of
// concurrent submit / cancel / deadline / shutdown. The stress size is
// LINALIGN_STRESS_STEPS (default 20000; CI's ThreadSanitizer run: 100000).
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "batcher_test_util.hpp"
#include "linalign/batcher.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;
using linalign::Batcher;
using linalign::BatcherOptions;
using linalign::BatcherStats;
using linalign::RequestId;
using linalign::ShutdownMode;
using linalign::Step;
using linalign::StepKind;
using linalign::StepResult;
using linalign::StepRows;
using linalign::Submission;
using linalign::SubmitMode;
using Clock = std::chrono::steady_clock;
using linalign_test::expect_same;
using linalign_test::make_batcher;
using linalign_test::open_request;
using linalign_test::request_params;
using linalign_test::same_bits;

// A pool of random logit row pairs (fp32, vocab V), shared read-only.
struct RowPool {
  int64_t V;
  std::vector<std::vector<float>> z, y;
  RowPool(int64_t vocab, int n, uint32_t seed) : V(vocab), z(n), y(n) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(0.f, 2.f);
    for (int i = 0; i < n; ++i) {
      z[i].resize(size_t(V));
      y[i].resize(size_t(V));
      for (int64_t k = 0; k < V; ++k) {
        z[i][k] = nd(g);
        y[i][k] = z[i][k] + 0.5f * nd(g);
      }
    }
  }
  StepRows rows(int i) const { return StepRows{DType::kF32, V, z[i].data(), y[i].data()}; }
};

// The direct one-row call the batcher's answer must equal bit for bit.
StepResult direct(Context& ctx, StepKind kind, const StepRows& rows, Params p, uint64_t offset,
                  int32_t target, std::vector<float>* aligned) {
  p.offset = offset;
  const LogitsView v = LogitsView::strided(rows.dtype, 1, rows.vocab, rows.base, rows.principle);
  StepResult r;
  Status s = Status::kSuccess;
  switch (kind) {
    case StepKind::kSample:
      s = ctx.sample(v, p, &r.token, &r.logprob, &r.diagnostics);
      break;
    case StepKind::kAlign:
      aligned->assign(size_t(rows.vocab), 0.f);
      s = ctx.align(v, p, aligned->data(), 0, &r.diagnostics);
      break;
    case StepKind::kScore: {
      ScoreOutputs so;
      so.aligned = &r.logprob;
      so.base = &r.score_base;
      so.principle = &r.score_principle;
      s = ctx.score(v, p, &target, so, &r.diagnostics);
      break;
    }
  }
  EXPECT_EQ(s, Status::kSuccess) << ctx.last_error();
  r.offset = offset;
  return r;
}

// ------------------------------------------------------------------ tests ---

// Many threads, many requests, three kinds of step: every answer equals the
// direct call, and steps did share batches.
TEST(Batcher, StepsMatchDirectCallsInAnyBatch) {
  auto ctx = linalign_test::make_context(2);
  auto ref = linalign_test::make_context(1);
  const RowPool pool(1000, 32, 7);
  BatcherOptions o;
  o.max_rows = 16;
  o.max_wait_us = 2000;
  auto b = make_batcher(*ctx, o);
  constexpr int kThreads = 4, kRequests = 8, kSteps = 6;
  using Done = linalign_test::RoundStep<std::vector<float>>;
  const std::vector<Done> done = linalign_test::run_rounds<std::vector<float>>(
      *b, kThreads, kRequests, kSteps,
      [](int t, int q, int k, Done* d) {
        d->row = (t * 7 + q * 3 + k) % 32;
        d->kind = StepKind((q + k) % 3);
        d->target = (q * 37 + k) % 1000;
        d->out.assign(1000, 0.f);
      },
      [&](const Done& d) { return pool.rows(d.row); }, [](Done& d) { return d.out.data(); });
  b->shutdown();
  const BatcherStats st = b->stats();
  EXPECT_EQ(st.submitted, uint64_t(kThreads * kRequests * kSteps));
  EXPECT_EQ(st.completed, st.submitted);
  EXPECT_LT(st.batches, st.submitted);  // steps shared calls
  // One slot on the CPU backend: a batch starts after the previous one is done.
  std::map<uint64_t, StepResult> by_batch;
  for (const Done& d : done) by_batch[d.r.batch] = d.r;
  EXPECT_EQ(by_batch.size(), st.batches);
  for (auto it = by_batch.begin(); std::next(it) != by_batch.end(); ++it) {
    const StepResult& a = it->second;
    const StepResult& c = std::next(it)->second;
    EXPECT_EQ(a.slot, 0);
    EXPECT_GE(a.batch_rows, 1);
    EXPECT_LE(a.batch_started, a.batch_finished);
    if (c.batch == a.batch + 1) {
      EXPECT_GE(c.batch_started, a.batch_finished);
    }
  }
  linalign_test::expect_rounds_match(
      done,
      [&](const Done& d, uint64_t offset, std::vector<float>* aligned) {
        return direct(*ref, d.kind, pool.rows(d.row), request_params(d.request), offset, d.target,
                      aligned);
      },
      [](const Done& d) { return d.out; });
}

TEST(Batcher, OffsetIsTheRequestsStepCounter) {
  auto ctx = linalign_test::make_context(1);
  const RowPool pool(300, 2, 3);
  auto b = make_batcher(*ctx);
  Params p;
  p.seed = 99;
  p.offset = 7;
  const RequestId id = open_request(*b, p);
  std::vector<uint64_t> offsets;
  std::vector<float> out(300);
  for (int k = 0; k < 6; ++k) {
    Submission s;
    Step step =
        k % 3 == 2 ? Step::align(id, pool.rows(0), out.data()) : Step::sample(id, pool.rows(k % 2));
    ASSERT_EQ(b->submit(std::move(step), &s), Status::kSuccess);
    const StepResult r = s.result.get();
    ASSERT_EQ(r.status, Status::kSuccess) << r.message;
    EXPECT_EQ(r.ticket, s.ticket);
    offsets.push_back(r.offset);
  }
  // sample, sample, align (does not advance), sample, sample, align
  EXPECT_EQ(offsets, (std::vector<uint64_t>{7, 8, 9, 9, 10, 11}));
}

// A bad step is refused with the direct call's status and message; the
// steps around it are answered as usual.
TEST(Batcher, BadStepsAreRefusedWithTheDirectCallsMessage) {
  auto ctx = linalign_test::make_context(1);
  auto ref = linalign_test::make_context(1);
  const RowPool pool(50, 2, 5);
  BatcherOptions o;
  o.max_wait_us = 20000;
  auto b = make_batcher(*ctx, o);
  const Params p;
  const RequestId id = open_request(*b, p);
  Submission before, after, refused;
  ASSERT_EQ(b->submit(Step::sample(id, pool.rows(0)), &before), Status::kSuccess);

  struct Case {
    const char* what;
    Step step;
    Status direct_status;
    std::string direct_message;
  };
  std::vector<Case> cases;
  {  // a target outside [0, V)
    Case c{"target", Step::score(id, pool.rows(1), 50), Status::kSuccess, ""};
    const int32_t t = 50;
    float a, bb, pp;
    ScoreOutputs so;
    so.aligned = &a;
    so.base = &bb;
    so.principle = &pp;
    c.direct_status =
        ref->score(LogitsView::strided(DType::kF32, 1, 50, pool.z[1].data(), pool.y[1].data()), p,
                   &t, so, nullptr);
    c.direct_message = ref->last_error();
    cases.push_back(std::move(c));
  }
  {  // a null principle row
    Case c{"null row", Step::sample(id, StepRows{DType::kF32, 50, pool.z[0].data(), nullptr}),
           Status::kSuccess, ""};
    int32_t tok;
    float lp;
    c.direct_status = ref->sample(
        LogitsView::strided(DType::kF32, 1, 50, pool.z[0].data(), nullptr), p, &tok, &lp, nullptr);
    c.direct_message = ref->last_error();
    cases.push_back(std::move(c));
  }
  {  // align without an output row
    Case c{"null out", Step::align(id, pool.rows(0), nullptr), Status::kSuccess, ""};
    c.direct_status =
        ref->align(LogitsView::strided(DType::kF32, 1, 50, pool.z[0].data(), pool.y[0].data()), p,
                   static_cast<float*>(nullptr), 0, nullptr);
    c.direct_message = ref->last_error();
    cases.push_back(std::move(c));
  }
  for (Case& c : cases) {
    ASSERT_NE(c.direct_status, Status::kSuccess) << c.what;
    std::string err;
    EXPECT_EQ(b->submit(std::move(c.step), &refused, &err), c.direct_status) << c.what;
    EXPECT_EQ(err, c.direct_message) << c.what;
    EXPECT_FALSE(refused.result.valid()) << c.what;
  }
  std::string err;
  EXPECT_EQ(b->submit(Step::sample(id + 1000, pool.rows(0)), &refused, &err),
            Status::kInvalidArgument);
  EXPECT_NE(err.find("not open"), std::string::npos) << err;

  ASSERT_EQ(b->submit(Step::sample(id, pool.rows(1)), &after), Status::kSuccess);
  const StepResult r0 = before.result.get(), r1 = after.result.get();
  EXPECT_EQ(r0.status, Status::kSuccess);
  EXPECT_EQ(r1.status, Status::kSuccess);
  EXPECT_EQ(r1.offset, r0.offset + 1);  // refused steps take no offset
  const BatcherStats st = b->stats();
  EXPECT_EQ(st.refused, cases.size() + 1);
  EXPECT_EQ(st.submitted, 2u);
}

TEST(Batcher, OpenChecksTheParameters) {
  auto ctx = linalign_test::make_context(1);
  auto b = make_batcher(*ctx);
  RequestId id = 5;
  std::string err;
  Params p;
  p.top_p = 1.5f;
  EXPECT_EQ(b->open(p, &id, &err), Status::kInvalidArgument);
  EXPECT_EQ(id, 0u);
  EXPECT_NE(err.find("top_p"), std::string::npos) << err;
  const float t[1] = {1.f};
  Params q;
  q.temperature = PerRow<float>::array(t);
  EXPECT_EQ(b->open(q, &id, &err), Status::kInvalidArgument);
  EXPECT_NE(err.find("params.temperature"), std::string::npos) << err;
  EXPECT_EQ(b->close(12345, &err), Status::kInvalidArgument);
  BatcherOptions bad;
  bad.max_rows = 0;
  std::unique_ptr<Batcher> nb;
  EXPECT_EQ(Batcher::create(*ctx, bad, &nb, &err), Status::kInvalidArgument);
  EXPECT_EQ(nb, nullptr);
}

TEST(Batcher, CancelDeadlineAndCallbacks) {
  auto ctx = linalign_test::make_context(1);
  const RowPool pool(64, 1, 9);
  BatcherOptions o;
  o.max_wait_us = 200000;  // the first step waits long for company
  auto b = make_batcher(*ctx, o);
  const RequestId id = open_request(*b, Params{});
  const RequestId idle = open_request(*b, Params{});  // company may still come
  Submission s1, s2, s3;
  ASSERT_EQ(b->submit(Step::sample(id, pool.rows(0)), &s1), Status::kSuccess);
  EXPECT_TRUE(b->cancel(s1.ticket));
  EXPECT_FALSE(b->cancel(s1.ticket));  // answered already
  const StepResult c = s1.result.get();
  EXPECT_EQ(c.status, Status::kCancelled);
  EXPECT_EQ(c.ticket, s1.ticket);

  Step late = Step::sample(id, pool.rows(0));
  late.deadline = Clock::now();
  ASSERT_EQ(b->submit(std::move(late), &s2), Status::kSuccess);
  std::atomic<int> calls{0};
  StepResult via_callback;
  Step cb = Step::sample(id, pool.rows(0));
  cb.callback = [&](const StepResult& r) {
    via_callback = r;
    calls.fetch_add(1);
  };
  ASSERT_EQ(b->submit(std::move(cb), &s3), Status::kSuccess);
  EXPECT_FALSE(s3.result.valid());              // a callback instead of the future
  EXPECT_EQ(b->close(idle), Status::kSuccess);  // no company can come now: the batch goes
  b->shutdown(ShutdownMode::kDrain);
  EXPECT_EQ(s2.result.get().status, Status::kDeadlineExceeded);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(via_callback.status, Status::kSuccess);
  EXPECT_EQ(via_callback.ticket, s3.ticket);
  const BatcherStats st = b->stats();
  EXPECT_EQ(st.submitted, 3u);
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(st.deadline_exceeded, 1u);
  EXPECT_EQ(st.completed, 1u);
  EXPECT_EQ(st.pending, 0u);
}

// A lone request does not wait max_wait for company that cannot come: every
// open request has its step queued.
TEST(Batcher, NoWaitWhenEveryOpenRequestIsQueued) {
  auto ctx = linalign_test::make_context(1);
  const RowPool pool(64, 1, 4);
  BatcherOptions o;
  o.max_wait_us = 2000000;  // 2 s
  auto b = make_batcher(*ctx, o);
  const RequestId id = open_request(*b, Params{});
  for (int k = 0; k < 3; ++k) {
    Submission s;
    const auto t0 = Clock::now();
    ASSERT_EQ(b->submit(Step::sample(id, pool.rows(0)), &s), Status::kSuccess);
    const StepResult r = s.result.get();
    ASSERT_EQ(r.status, Status::kSuccess);
    EXPECT_LT(r.batch_started - t0, std::chrono::milliseconds(1000)) << "waited for max_wait";
  }
  // With a second, idle request open, the step waits (company may come)...
  const RequestId idle = open_request(*b, Params{});
  Submission s;
  const auto t0 = Clock::now();
  ASSERT_EQ(b->submit(Step::sample(id, pool.rows(0)), &s), Status::kSuccess);
  ASSERT_EQ(s.result.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  // ... until that request closes.
  EXPECT_EQ(b->close(idle), Status::kSuccess);
  const StepResult r = s.result.get();
  EXPECT_EQ(r.status, Status::kSuccess);
  EXPECT_LT(r.batch_started - t0, std::chrono::milliseconds(1900));
}

TEST(Batcher, BoundedQueueBackPressureAndShutdown) {
  auto ctx = linalign_test::make_context(1);
  const RowPool pool(64, 1, 11);
  BatcherOptions o;
  o.queue_capacity = 2;
  o.max_rows = 64;
  o.max_wait_us = 5000000;  // the dispatcher waits for company: the queue stays full
  o.submit_timeout = std::chrono::microseconds(2000);
  auto b = make_batcher(*ctx, o);
  const RequestId id = open_request(*b, Params{});
  open_request(*b, Params{});  // an idle request: company may still come
  Submission a, c, refused;
  ASSERT_EQ(b->submit(Step::sample(id, pool.rows(0)), &a), Status::kSuccess);
  ASSERT_EQ(b->submit(Step::sample(id, pool.rows(0)), &c), Status::kSuccess);
  std::string err;
  EXPECT_EQ(b->submit(Step::sample(id, pool.rows(0)), &refused, &err, SubmitMode::kTry),
            Status::kQueueFull);
  const auto t0 = Clock::now();
  EXPECT_EQ(b->submit(Step::sample(id, pool.rows(0)), &refused, &err, SubmitMode::kTimeout),
            Status::kQueueFull);
  EXPECT_GE(Clock::now() - t0, std::chrono::microseconds(2000));
  // A blocked submitter is released by the shutdown, refused with kShutdown.
  std::atomic<int> blocked_status{-1};
  std::thread blocked([&] {
    Submission s;
    blocked_status = int(b->submit(Step::sample(id, pool.rows(0)), &s));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  b->shutdown(ShutdownMode::kFail);
  blocked.join();
  EXPECT_EQ(blocked_status.load(), int(Status::kShutdown));
  EXPECT_EQ(a.result.get().status, Status::kShutdown);
  EXPECT_EQ(c.result.get().status, Status::kShutdown);
  EXPECT_EQ(b->submit(Step::sample(id, pool.rows(0)), &refused), Status::kShutdown);
  RequestId more;
  EXPECT_EQ(b->open(Params{}, &more), Status::kShutdown);
  const BatcherStats st = b->stats();
  EXPECT_EQ(st.submitted, 2u);
  EXPECT_EQ(st.failed, 2u);
  EXPECT_EQ(st.refused, 4u);
}

// Concurrent submit / cancel / deadline / request churn / shutdown: every
// accepted step is answered exactly once, the counts add up, every computed
// answer is the direct call's, bit for bit, and each request's sample steps
// took consecutive offsets (linalign_test::run_stress).
TEST(Batcher, StressEveryStepAnsweredOnceAndExactly) {
  linalign_test::StressConfig c;
  c.label = "stress";
  c.steps = linalign_test::env_steps("LINALIGN_STRESS_STEPS", 20000);
  c.threads = 8;
  c.requests_per_thread = 16;
  c.rows = 64;
  c.targets = 64;
  c.score_one_in = 4;
  c.deadline_us = 200;
  c.churn = true;
  c.expect_cancels = true;
  c.seed = 1;
  auto ctx = linalign_test::make_context(2);
  auto ref = linalign_test::make_context(1);
  const RowPool pool(64, c.rows, 13);
  BatcherOptions o;
  o.max_rows = 64;
  o.max_wait_us = 100;
  o.queue_capacity = 512;
  auto b = make_batcher(*ctx, o);
  linalign_test::run_stress(
      *b, c, [&](int row) { return pool.rows(row); },
      [&](StepKind kind, const StepRows& rows, const Params& p, uint64_t offset, int32_t target) {
        return direct(*ref, kind, rows, p, offset, target, nullptr);
      });
}

}  // namespace
