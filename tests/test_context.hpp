// What every test file shares: the public API's usual names
// (`using namespace linalign_test::api;`), the float specials, and the one
// way to make a context for a test: the CPU backend with `threads` workers
// unless another backend is asked for; a failure to create it fails the
// test with the library's message.
#pragma once

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <string>

#include "linalign/linalign.hpp"

namespace linalign_test {

namespace api {
using linalign::Backend;
using linalign::Context;
using linalign::ContextOptions;
using linalign::DType;
using linalign::LogitsView;
using linalign::NucleusSource;
using linalign::Op;
using linalign::Params;
using linalign::PerRow;
using linalign::RowDiagnostics;
using linalign::ScoreOutputs;
using linalign::ShardStats;
using linalign::Status;
using linalign::StepRule;
using linalign::UpdateForm;

constexpr float kInfF = std::numeric_limits<float>::infinity();
constexpr float kNanF = std::numeric_limits<float>::quiet_NaN();
}  // namespace api

inline std::unique_ptr<linalign::Context> make_context(linalign::Backend backend, int threads) {
  linalign::ContextOptions o;
  o.backend = backend;
  o.num_threads = threads;
  std::unique_ptr<linalign::Context> ctx;
  std::string err;
  const linalign::Status s = linalign::Context::create(o, &ctx, &err);
  EXPECT_EQ(s, linalign::Status::kSuccess) << err;
  return ctx;
}
inline std::unique_ptr<linalign::Context> make_context(int threads = 2) {
  return make_context(linalign::Backend::kCpu, threads);
}

}  // namespace linalign_test
