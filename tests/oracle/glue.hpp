// Glue between the float64 oracle (oracle.hpp, which knows nothing of
// linalign) and the public API, shared by the oracle comparison tests: enum
// mapping, the LogitsView of an oracle Batch, a CPU context, diagnostics.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "linalign/linalign.hpp"
#include "oracle/oracle.hpp"

namespace oracle_glue {

namespace la = linalign;
using oracle::Batch;
using oracle::DType;
using oracle::Layout;
using oracle::Rule;
using oracle::Update;

// Fill value for outputs that must not be written.
constexpr float kSentinel = 12345.0f;

inline la::DType to_la(DType t) {
  return t == DType::kF32    ? la::DType::kF32
         : t == DType::kBF16 ? la::DType::kBF16
                             : la::DType::kF16;
}
la::StepRule to_la(Rule r) {
  return r == Rule::kFixed         ? la::StepRule::kFixed
         : r == Rule::kTrustRegion ? la::StepRule::kTrustRegion
                                   : la::StepRule::kExactKl;
}
la::UpdateForm to_la(Update u) {
  return u == Update::kTilt ? la::UpdateForm::kTilt : la::UpdateForm::kLinear;
}

inline la::NucleusSource to_la(oracle::Source s) {
  return s == oracle::Source::kPrinciple ? la::NucleusSource::kPrinciple
                                         : la::NucleusSource::kAligned;
}

inline la::LogitsView view_of(const Batch& b) {
  switch (b.layout) {
    case Layout::kStrided:
      return la::LogitsView::strided(to_la(b.dtype), b.rows, b.V, b.base.data(), b.principle.data(),
                                     b.base_stride, b.principle_stride);
    case Layout::kPointers:
      return la::LogitsView::pointers(to_la(b.dtype), b.rows, b.V, b.base_ptrs.data(),
                                      b.principle_ptrs.data());
    case Layout::kPaired:
      break;
  }
  return la::LogitsView::pairs(to_la(b.dtype), b.rows, b.V, b.paired.data(), b.paired_rows,
                               b.pair_index.data(), b.paired_stride);
}

inline std::unique_ptr<la::Context> cpu_context() {
  la::ContextOptions o;
  o.backend = la::Backend::kCpu;
  o.num_threads = 2;
  std::unique_ptr<la::Context> ctx;
  std::string err;
  const la::Status s = la::Context::create(o, &ctx, &err);
  EXPECT_EQ(s, la::Status::kSuccess) << err;
  return ctx;
}

inline oracle::Diag diag_of(const la::RowDiagnostics& d) {
  return {d.eta, d.mu, d.sigma, d.kl_base, d.kl_principle, d.entropy, d.support, d.status};
}

inline la::RowDiagnostics sentinel_diag() {
  la::RowDiagnostics d;
  d.eta = d.mu = d.sigma = d.kl_base = d.kl_principle = d.entropy = kSentinel;
  d.support = -7;
  d.status = 0xdeadu;
  return d;
}

}  // namespace oracle_glue
