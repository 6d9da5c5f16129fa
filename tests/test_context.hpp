// A context for a test (every test file's one way to make one): the CPU
// backend with `threads` workers unless another backend is asked for; a
// failure to create it fails the test with the library's message.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "linalign/linalign.hpp"

namespace linalign_test {

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
