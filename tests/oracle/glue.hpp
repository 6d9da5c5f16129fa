// Glue between the float64 oracle (oracle.hpp, which knows nothing of
// linalign) and the public API, shared by the oracle comparison tests: enum
// mapping, the LogitsView of an oracle Batch, a CPU context, diagnostics.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

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

// The same per-row arrays of temperature, ratio, epsilon and eta_max, handed
// to the library (as PerRow arrays) and to the oracle (row by row).
struct RowArrays {
  const std::vector<float>& temperature;
  const std::vector<float>& ratio;
  const std::vector<float>& epsilon;
  const std::vector<float>& eta_max;
  void apply(la::Params* p) const {
    p->temperature = la::PerRow<float>::array(temperature.data());
    p->ratio = la::PerRow<float>::array(ratio.data());
    p->epsilon = la::PerRow<float>::array(epsilon.data());
    p->eta_max = la::PerRow<float>::array(eta_max.data());
  }
  oracle::RowParams row(int64_t r, Rule rule, Update up) const {
    oracle::RowParams o;
    o.T = temperature[size_t(r)];
    o.rule = rule;
    o.ratio = ratio[size_t(r)];
    o.eps = epsilon[size_t(r)];
    o.eta_max = eta_max[size_t(r)];
    o.update = up;
    return o;
  }
};

}  // namespace oracle_glue
