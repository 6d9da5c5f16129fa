// What the batcher tests share (tests/cpu/test_batcher.cpp on the CPU
// backend, tests/gpu/test_cuda_batcher.cpp on CUDA): the requests'
// parameters, a batcher and a request that fail the test when refused, and
// the bit-for-bit comparison of an answer with the direct call's.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory>
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

}  // namespace linalign_test
