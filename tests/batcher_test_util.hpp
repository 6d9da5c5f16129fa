// What the batcher tests share (tests/cpu/test_batcher.cpp on the CPU
// backend, tests/gpu/test_cuda_batcher.cpp on CUDA): the requests'
// parameters, a batcher and a request that fail the test when refused, and
// the bit-for-bit comparison of an answer with the direct call's.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

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

}  // namespace linalign_test
