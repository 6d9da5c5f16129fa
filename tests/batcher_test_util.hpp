// What the batcher tests share (tests/cpu/test_batcher.cpp on the CPU
// backend, tests/gpu/test_cuda_batcher.cpp on CUDA): the requests'
// parameters, a batcher and a request that fail the test when refused, the
// bit-for-bit comparison of an answer with the direct call's, the threaded
// rounds, and the concurrent submit / cancel / deadline / shutdown stress.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "linalign/batcher.hpp"
#include "test_context.hpp"

namespace linalign_test {

// The parameters of request i: a spread of per-row values and rules.
inline linalign::Params request_params(int i) {
  linalign::Params p;
  p.temperature = 0.7f + 0.1f * float(i % 5);
  p.ratio = 0.5f + 0.25f * float(i % 7);
  p.epsilon = 0.05f + 0.05f * float(i % 3);
  p.top_p = i % 4 == 0 ? 1.0f : 0.6f + 0.1f * float(i % 4);
  p.top_k = i % 6 == 0 ? 0 : 5 + i % 11;
  p.min_p = i % 5 == 0 ? 0.05f : 0.0f;
  p.seed = 1000003ull * uint64_t(i) + 17;
  p.offset = uint64_t(i % 3) * 100;
  // two batch keys
  p.rule = i % 9 == 0 ? linalign::StepRule::kTrustRegion : linalign::StepRule::kFixed;
  return p;
}

inline bool same_bits(const void* a, const void* b, size_t n) {
  return std::memcmp(a, b, n) == 0;
}

// Compares a batcher answer with the direct call, bit for bit.
inline void expect_same(const linalign::StepResult& got, const linalign::StepResult& want,
                        linalign::StepKind kind, const std::string& where) {
  ASSERT_EQ(got.status, linalign::Status::kSuccess) << where << ": " << got.message;
  EXPECT_EQ(got.offset, want.offset) << where;
  EXPECT_TRUE(same_bits(&got.diagnostics, &want.diagnostics, sizeof want.diagnostics)) << where;
  if (kind == linalign::StepKind::kSample) {
    EXPECT_EQ(got.token, want.token) << where;
    EXPECT_TRUE(same_bits(&got.logprob, &want.logprob, 4)) << where;
  } else if (kind == linalign::StepKind::kScore) {
    EXPECT_TRUE(same_bits(&got.logprob, &want.logprob, 4)) << where;
    EXPECT_TRUE(same_bits(&got.score_base, &want.score_base, 4)) << where;
    EXPECT_TRUE(same_bits(&got.score_principle, &want.score_principle, 4)) << where;
  }
}

inline std::unique_ptr<linalign::Batcher> make_batcher(linalign::Context& ctx,
                                                       linalign::BatcherOptions o = {}) {
  std::unique_ptr<linalign::Batcher> b;
  std::string err;
  EXPECT_EQ(linalign::Batcher::create(ctx, o, &b, &err), linalign::Status::kSuccess) << err;
  return b;
}

inline linalign::RequestId open_request(linalign::Batcher& b, const linalign::Params& p) {
  linalign::RequestId id = 0;
  std::string err;
  EXPECT_EQ(b.open(p, &id, &err), linalign::Status::kSuccess) << err;
  return id;
}

// One step of the threaded rounds below: what was asked, what came back,
// and the align step's output row (a host vector or a device array).
template <class OutT>
struct RoundStep {
  int request = 0, row = 0;
  linalign::StepKind kind = linalign::StepKind::kSample;
  int32_t target = 0;
  linalign::StepResult r;
  OutT out;
};

// `threads` threads, each opening `requests` requests (request_params(100·t +
// q)) and running `rounds` rounds: one step per request — plan(t, q, k, &step)
// fills its row, kind, target and output buffer, rows(step) gives its rows,
// out_ptr(step) its align destination — all submitted, then all awaited.
// Returns every step, each thread's in order.
template <class OutT, class PlanT, class RowsT, class OutPtrT>
std::vector<RoundStep<OutT>> run_rounds(linalign::Batcher& b, int threads, int requests, int rounds,
                                        PlanT plan, RowsT rows, OutPtrT out_ptr) {
  std::vector<std::vector<RoundStep<OutT>>> done(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<linalign::RequestId> ids;
      for (int q = 0; q < requests; ++q)
        ids.push_back(open_request(b, request_params(t * 100 + q)));
      for (int k = 0; k < rounds; ++k) {
        std::vector<linalign::Submission> subs(static_cast<size_t>(requests));
        std::vector<RoundStep<OutT>> d(static_cast<size_t>(requests));
        for (int q = 0; q < requests; ++q) {
          d[q].request = t * 100 + q;
          plan(t, q, k, &d[q]);
          const linalign::StepRows rs = rows(d[q]);
          linalign::Step s = d[q].kind == linalign::StepKind::kSample
                                 ? linalign::Step::sample(ids[q], rs)
                             : d[q].kind == linalign::StepKind::kAlign
                                 ? linalign::Step::align(ids[q], rs, out_ptr(d[q]))
                                 : linalign::Step::score(ids[q], rs, d[q].target);
          std::string err;
          ASSERT_EQ(b.submit(std::move(s), &subs[q], &err), linalign::Status::kSuccess) << err;
        }
        for (int q = 0; q < requests; ++q) {
          d[q].r = subs[q].result.get();
          done[size_t(t)].push_back(std::move(d[q]));
        }
      }
      for (linalign::RequestId id : ids) EXPECT_EQ(b.close(id), linalign::Status::kSuccess);
    });
  }
  for (auto& th : pool) th.join();
  std::vector<RoundStep<OutT>> all;
  for (auto& v : done)
    for (auto& x : v) all.push_back(std::move(x));
  return all;
}

// Every step of run_rounds against the direct call: direct(step, offset,
// &aligned) runs the one-row call at the request's step counter (sample steps
// advance it from params.offset; the others do not), aligned_of(step) reads
// back an align step's output row.
template <class OutT, class DirectT, class AlignedOfT>
void expect_rounds_match(const std::vector<RoundStep<OutT>>& steps, DirectT direct,
                         AlignedOfT aligned_of) {
  std::map<int, uint64_t> next;
  for (const RoundStep<OutT>& d : steps) {
    auto it = next.emplace(d.request, request_params(d.request).offset.value).first;
    std::vector<float> want_aligned;
    const linalign::StepResult want = direct(d, it->second, &want_aligned);
    const std::string where = "request " + std::to_string(d.request);
    expect_same(d.r, want, d.kind, where);
    if (d.kind == linalign::StepKind::kAlign) {
      const std::vector<float> got = aligned_of(d);
      EXPECT_EQ(got.size(), want_aligned.size()) << where;
      EXPECT_TRUE(same_bits(got.data(), want_aligned.data(), got.size() * 4)) << where;
    }
    if (d.kind == linalign::StepKind::kSample) ++it->second;
  }
}

// The shape of run_stress below.
struct StressConfig {
  const char* label = "stress";  // the summary line's prefix
  long steps = 20000;            // steps tried, all threads together
  int threads = 8;
  int requests_per_thread = 16;  // each thread's open requests
  int rows = 64;                 // steps run on rows(0 .. rows - 1)
  int32_t targets = 64;          // score targets 0 .. targets - 1
  int score_one_in = 4;          // 1 step in score_one_in scores, the others sample
  uint32_t deadline_us = 200;    // 1 step in 16 is due in 0 .. deadline_us - 1 µs
  bool churn = false;            // 1 step in 8 first closes its request and opens a new one
  bool expect_cancels = false;   // at least one step must end cancelled
  uint32_t seed = 1;             // thread t draws from mt19937(seed + t)
};

// The environment variable `name` as a step count, `fallback` when unset.
inline long env_steps(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atol(v) : fallback;
}

// Concurrent submit / cancel / deadline / shutdown, and request churn when
// c.churn (a closed request's pending steps still run; the new one has new
// parameters): c.threads threads share c.steps random sample and score steps
// on rows(row index), each answered through its callback; 1 in 8 is a try
// submit, 1 in 10 cancels one of the thread's tickets, and thread 0 shuts `b`
// down (kFail or kDrain) at 90 % of the steps. Then every accepted step was
// answered exactly once, the counts add up, every computed answer is the
// direct call's bit for bit — direct(kind, rows, params, offset, target) at
// the offset it reports — and per request the sample steps took the offsets
// params.offset, +1, +2, ... with no gap and no repeat. Prints a summary line
// starting with c.label.
template <class RowsT, class DirectT>
void run_stress(linalign::Batcher& b, const StressConfig& c, RowsT rows, DirectT direct) {
  using linalign::Status;
  using linalign::StepKind;
  using linalign::StepResult;
  struct Record {
    int request = 0, row = 0;
    StepKind kind = StepKind::kSample;
    int32_t target = 0;
    std::atomic<int> answers{0};
    StepResult r;
  };
  std::vector<std::unique_ptr<Record>> records(static_cast<size_t>(c.steps));
  std::atomic<long> next{0}, refused{0};
  std::atomic<bool> stopped{false};
  std::vector<std::thread> pool;
  for (int t = 0; t < c.threads; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937 g(c.seed + uint32_t(t));
      const uint32_t per_thread = uint32_t(c.requests_per_thread);
      // index[q]: the request_params index of ids[q]; the first requests are
      // 0 .. threads * requests_per_thread - 1, the churn's t' * 10^6 + n.
      std::vector<linalign::RequestId> ids;
      std::vector<int> index;
      for (int q = 0; q < c.requests_per_thread; ++q) {
        index.push_back(t * c.requests_per_thread + q);
        ids.push_back(open_request(b, request_params(index.back())));
      }
      int reopened = 0;
      std::vector<uint64_t> tickets;
      for (;;) {
        const long n = next.fetch_add(1);
        if (n >= c.steps) break;
        const int q = int(g() % per_thread);
        if (c.churn && g() % 8 == 0) {
          EXPECT_EQ(b.close(ids[q]), Status::kSuccess);
          index[q] = (t + 1) * 1000000 + reopened++;
          const Status opened = b.open(request_params(index[q]), &ids[q]);
          if (opened != Status::kSuccess) {  // shut down
            EXPECT_EQ(opened, Status::kShutdown);
            break;
          }
        }
        auto rec = std::make_unique<Record>();
        rec->request = index[q];
        rec->row = int(g() % uint32_t(c.rows));
        rec->kind = g() % uint32_t(c.score_one_in) == 0 ? StepKind::kScore : StepKind::kSample;
        rec->target = int32_t(g() % uint32_t(c.targets));
        Record* raw = rec.get();
        records[size_t(n)] = std::move(rec);
        linalign::Step s = raw->kind == StepKind::kSample
                               ? linalign::Step::sample(ids[q], rows(raw->row))
                               : linalign::Step::score(ids[q], rows(raw->row), raw->target);
        if (g() % 16 == 0)
          s.deadline =
              std::chrono::steady_clock::now() + std::chrono::microseconds(g() % c.deadline_us);
        s.callback = [raw](const StepResult& r) {
          raw->r = r;
          raw->answers.fetch_add(1);
        };
        linalign::Submission sub;
        const linalign::SubmitMode mode =
            g() % 8 == 0 ? linalign::SubmitMode::kTry : linalign::SubmitMode::kBlock;
        const Status submitted = b.submit(std::move(s), &sub, nullptr, mode);
        if (submitted != Status::kSuccess) {
          EXPECT_TRUE(submitted == Status::kShutdown || submitted == Status::kQueueFull)
              << int(submitted);
          records[size_t(n)].reset();
          ++refused;
          continue;
        }
        tickets.push_back(sub.ticket);
        if (g() % 10 == 0) b.cancel(tickets[g() % tickets.size()]);
        if (t == 0 && n >= c.steps * 9 / 10 && !stopped.exchange(true))
          b.shutdown(g() % 2 ? linalign::ShutdownMode::kFail : linalign::ShutdownMode::kDrain);
      }
    });
  }
  for (auto& th : pool) th.join();
  b.shutdown();
  const linalign::BatcherStats st = b.stats();
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.completed + st.cancelled + st.deadline_exceeded + st.failed, st.submitted);
  uint64_t answered = 0, computed = 0;
  std::map<int, std::vector<const Record*>> by_request;
  for (const auto& rec : records) {
    if (!rec) continue;
    ASSERT_EQ(rec->answers.load(), 1) << "a step answered " << rec->answers.load() << " times";
    ++answered;
    if (rec->r.status == Status::kSuccess) ++computed;
    by_request[rec->request].push_back(rec.get());
  }
  EXPECT_EQ(answered, st.submitted);
  EXPECT_EQ(computed, st.completed);
  EXPECT_GT(st.completed, uint64_t(c.steps) / 2);
  if (c.expect_cancels) {
    EXPECT_GT(st.cancelled, 0u);
  }
  // Each computed answer against the direct call at the offset it reports
  // (offsets are assigned at acceptance; cancelled steps keep theirs).
  uint64_t checked = 0;
  for (const auto& [request, recs] : by_request) {
    const linalign::Params p = request_params(request);
    for (const Record* rec : recs) {
      if (rec->r.status != Status::kSuccess) continue;
      const StepResult want = direct(rec->kind, rows(rec->row), p, rec->r.offset, rec->target);
      expect_same(rec->r, want, rec->kind, "request " + std::to_string(request));
      if (::testing::Test::HasFailure()) return;
      ++checked;
    }
  }
  EXPECT_EQ(checked, st.completed);
  // Every accepted sample step took its own offset: per request, they are
  // params.offset, +1, +2, ... with no gap and no repeat.
  for (const auto& [request, recs] : by_request) {
    std::vector<uint64_t> offsets;
    for (const Record* rec : recs)
      if (rec->kind == StepKind::kSample) offsets.push_back(rec->r.offset);
    std::sort(offsets.begin(), offsets.end());
    for (size_t i = 0; i < offsets.size(); ++i)
      ASSERT_EQ(offsets[i], request_params(request).offset.value + i) << "request " << request;
  }
  std::printf(
      "%s: %ld steps tried over %zu requests, %llu submitted = %llu completed + %llu "
      "cancelled + %llu deadline + %llu failed; %ld refused at shutdown or full; %llu batches\n",
      c.label, c.steps, by_request.size(), (unsigned long long)st.submitted,
      (unsigned long long)st.completed, (unsigned long long)st.cancelled,
      (unsigned long long)st.deadline_exceeded, (unsigned long long)st.failed, refused.load(),
      (unsigned long long)st.batches);
}

}  // namespace linalign_test
