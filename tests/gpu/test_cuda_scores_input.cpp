// Bad score input on the CUDA backend, where score targets and sequence offsets
// are device-resident and the host cannot check them without a synchronisation
// (SPEC §7), against the CPU backend, which checks them at call level (SPEC §5);
// docs/SEMANTICS.md 6, 7 and 14:
//   * a target outside [0, V) and not ignore_index flags its row
//     kRowBadParameter (diagnostics floats NaN, support still reported), its
//     scores are NaN and so is the sum of every sequence containing it; every
//     other row and sequence is bit-for-bit what the same CUDA call gives on the
//     corrected input (rows never interact), and agrees with the CPU backend on
//     that corrected input within SPEC §6;
//   * decreasing or out-of-range offsets give a NaN sum for the sequences they
//     bound, never an out-of-bounds read; every other sequence is bit-for-bit the
//     sum of the same rows;
//   * the CPU backend, given the same bad arrays in host memory, returns
//     kInvalidArgument naming `targets` / `seq_offsets` and writes nothing.
// The CPU and CUDA backends split a row differently (docs/SEMANTICS.md 15), so
// their results are compared within SPEC §6, not bit for bit. Every test skips
// when no CUDA device is present; built against the SIMT emulator
// (test_cuda_scores_input_emulated) the kernels run on the CPU.

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "gpu_test_util.hpp"
#include "linalign/linalign.hpp"
#include "linalign/math/dtype.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;
using linalign_gpu_test::DeviceArray;
using linalign_gpu_test::put;
using linalign_gpu_test::sz;

constexpr float kSentinel = 12345.f;  // what an output holds before a call

std::unique_ptr<Context> make(Backend b) {
  return linalign_gpu_test::make_context(b, 2);
}

// B row pairs of V logits as raw bytes of dtype t: base 3·N(0,1), principle
// base + N(0,1); every third row masks a few tokens to −inf in one context.
struct Inputs {
  DType dtype = DType::kF32;
  int64_t rows = 0, vocab = 0;
  std::vector<unsigned char> z, y;
  LogitsView view(const void* zp, const void* yp) const {
    return LogitsView::strided(dtype, rows, vocab, zp, yp);
  }
};

Inputs make_inputs(DType t, int64_t B, int64_t V, uint32_t seed) {
  Inputs in;
  in.dtype = t;
  in.rows = B;
  in.vocab = V;
  const int64_t eb = t == DType::kF32 ? 4 : 2;
  in.z.assign(sz(B * V * eb), 0);
  in.y = in.z;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 3.f), small(0.f, 1.f);
  for (int64_t r = 0; r < B; ++r) {
    for (int64_t i = 0; i < V; ++i) {
      float z = nd(rng), y = z + small(rng);
      if (r % 3 == 2 && i % 17 == 5) z = -kInfF;
      if (r % 3 == 2 && i % 17 == 11) y = -kInfF;
      put(in.z, t, r * V + i, z);
      put(in.y, t, r * V + i, y);
    }
  }
  return in;
}

// Everything one score() call returns.
struct ScoreResult {
  Status status = Status::kInternal;
  std::string error;
  std::vector<float> aligned, base, principle;              // [B]
  std::vector<float> seq_aligned, seq_base, seq_principle;  // [S]
  std::vector<RowDiagnostics> diag;                         // [B]
};

RowDiagnostics sentinel_diagnostics() {
  RowDiagnostics d;
  d.eta = d.mu = d.sigma = d.kl_base = d.kl_principle = d.entropy = kSentinel;
  d.support = -12345;
  d.status = 0xdeadbeefu;
  return d;
}

// score() on the CUDA backend with every array (logits, targets, offsets,
// outputs) in device memory; the outputs start as kSentinel.
ScoreResult gpu_score(Context& ctx, const Inputs& in, const Params& p,
                      const std::vector<int32_t>& targets, const std::vector<int64_t>& offsets) {
  const int64_t B = in.rows, S = int64_t(offsets.size()) - 1;
  const DeviceArray<unsigned char> dz(in.z), dy(in.y);
  const DeviceArray<int32_t> dt(targets);
  const DeviceArray<int64_t> doff(offsets);
  const std::vector<float> rows(sz(B), kSentinel), seqs(sz(S), kSentinel);
  const DeviceArray<float> a(rows), b(rows), c(rows), sa(seqs), sb(seqs), sc(seqs);
  const DeviceArray<RowDiagnostics> d(std::vector<RowDiagnostics>(sz(B), sentinel_diagnostics()));
  ScoreOutputs o;
  o.aligned = a.get();
  o.base = b.get();
  o.principle = c.get();
  o.seq_offsets = doff.get();
  o.num_sequences = S;
  o.seq_aligned = sa.get();
  o.seq_base = sb.get();
  o.seq_principle = sc.get();
  ScoreResult r;
  r.status = ctx.score(in.view(dz.get(), dy.get()), p, dt.get(), o, d.get());
  r.error = ctx.last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  r.aligned = a.download();
  r.base = b.download();
  r.principle = c.download();
  r.seq_aligned = sa.download();
  r.seq_base = sb.download();
  r.seq_principle = sc.download();
  r.diag = d.download();
  return r;
}

// The same call on the CPU backend, every array in host memory.
ScoreResult cpu_score(Context& ctx, const Inputs& in, const Params& p,
                      const std::vector<int32_t>& targets, const std::vector<int64_t>& offsets) {
  const int64_t B = in.rows, S = int64_t(offsets.size()) - 1;
  ScoreResult r;
  r.aligned.assign(sz(B), kSentinel);
  r.base = r.principle = r.aligned;
  r.seq_aligned.assign(sz(S), kSentinel);
  r.seq_base = r.seq_principle = r.seq_aligned;
  r.diag.assign(sz(B), sentinel_diagnostics());
  ScoreOutputs o;
  o.aligned = r.aligned.data();
  o.base = r.base.data();
  o.principle = r.principle.data();
  o.seq_offsets = offsets.data();
  o.num_sequences = S;
  o.seq_aligned = r.seq_aligned.data();
  o.seq_base = r.seq_base.data();
  o.seq_principle = r.seq_principle.data();
  r.status = ctx.score(in.view(in.z.data(), in.y.data()), p, targets.data(), o, r.diag.data());
  r.error = ctx.last_error();
  return r;
}

// ------------------------------------------------------------- comparing ---

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}
bool same_bits(const RowDiagnostics& a, const RowDiagnostics& b) {
  return same_bits(a.eta, b.eta) && same_bits(a.mu, b.mu) && same_bits(a.sigma, b.sigma) &&
         same_bits(a.kl_base, b.kl_base) && same_bits(a.kl_principle, b.kl_principle) &&
         same_bits(a.entropy, b.entropy) && a.support == b.support && a.status == b.status;
}

// SPEC §6, twice (each backend is within it of float64): 2·1e-4·max(1, |η|)
// absolute, scaled with the magnitude past 20; −inf / NaN exactly.
bool within_spec(float g, float c, float eta, int64_t terms = 1) {
  if (std::isnan(g) || std::isnan(c)) return std::isnan(g) && std::isnan(c);
  if (std::isinf(g) || std::isinf(c)) return g == c;
  const float tol = 2e-4f * std::max(1.f, std::fabs(eta)) * float(std::max<int64_t>(1, terms));
  return std::fabs(g - c) <= tol * std::max(1.f, std::fabs(c) / 20.f);
}

bool all_nan(const ScoreResult& r, int64_t q) {
  return std::isnan(r.seq_aligned[sz(q)]) && std::isnan(r.seq_base[sz(q)]) &&
         std::isnan(r.seq_principle[sz(q)]);
}

// Row r of `got` is bit-for-bit row r of `want` (scores and diagnostics).
void expect_row_identical(const ScoreResult& got, const ScoreResult& want, int64_t r,
                          const std::string& what) {
  const size_t i = sz(r);
  EXPECT_TRUE(same_bits(got.aligned[i], want.aligned[i]) && same_bits(got.base[i], want.base[i]) &&
              same_bits(got.principle[i], want.principle[i]))
      << what << " row " << r << ": scores " << got.aligned[i] << " " << got.base[i] << " "
      << got.principle[i] << " vs " << want.aligned[i] << " " << want.base[i] << " "
      << want.principle[i];
  EXPECT_TRUE(same_bits(got.diag[i], want.diag[i]))
      << what << " row " << r << ": diagnostics differ (status " << got.diag[i].status << " vs "
      << want.diag[i].status << ", eta " << got.diag[i].eta << " vs " << want.diag[i].eta << ")";
}

void expect_seq_identical(const ScoreResult& got, int64_t q, const ScoreResult& want, int64_t qw,
                          const std::string& what) {
  EXPECT_TRUE(same_bits(got.seq_aligned[sz(q)], want.seq_aligned[sz(qw)]) &&
              same_bits(got.seq_base[sz(q)], want.seq_base[sz(qw)]) &&
              same_bits(got.seq_principle[sz(q)], want.seq_principle[sz(qw)]))
      << what << " sequence " << q << ": " << got.seq_aligned[sz(q)] << " vs "
      << want.seq_aligned[sz(qw)];
}

// The CUDA result on valid input against the CPU backend's on the same input.
void expect_matches_cpu(const ScoreResult& g, const ScoreResult& c,
                        const std::vector<int64_t>& offsets, const std::string& what) {
  ASSERT_EQ(c.status, Status::kSuccess) << what << ": " << c.error;
  for (size_t r = 0; r < c.aligned.size(); ++r) {
    const float eta = std::isnan(c.diag[r].eta) ? 1.f : c.diag[r].eta;
    EXPECT_EQ(g.diag[r].status, c.diag[r].status) << what << " row " << r;
    EXPECT_EQ(g.diag[r].support, c.diag[r].support) << what << " row " << r;
    EXPECT_TRUE(within_spec(g.diag[r].eta, c.diag[r].eta, 1.f)) << what << " row " << r;
    EXPECT_TRUE(within_spec(g.aligned[r], c.aligned[r], eta) &&
                within_spec(g.base[r], c.base[r], eta) &&
                within_spec(g.principle[r], c.principle[r], eta))
        << what << " row " << r << ": gpu " << g.aligned[r] << " cpu " << c.aligned[r];
  }
  for (size_t q = 0; q + 1 < offsets.size(); ++q) {
    const int64_t n = offsets[q + 1] - offsets[q];
    float eta = 1.f;
    for (int64_t r = offsets[q]; r < offsets[q + 1]; ++r)
      if (!std::isnan(c.diag[sz(r)].eta)) eta = std::max(eta, std::fabs(c.diag[sz(r)].eta));
    EXPECT_TRUE(within_spec(g.seq_aligned[q], c.seq_aligned[q], eta, n) &&
                within_spec(g.seq_base[q], c.seq_base[q], eta, n) &&
                within_spec(g.seq_principle[q], c.seq_principle[q], eta, n))
        << what << " sequence " << q << ": gpu " << g.seq_aligned[q] << " cpu " << c.seq_aligned[q];
  }
}

// A call-level error writes nothing (SPEC §5): every output still holds the sentinel.
void expect_untouched(const ScoreResult& r, const std::string& what) {
  auto check = [&](const std::vector<float>& v, const char* name) {
    for (size_t i = 0; i < v.size(); ++i)
      EXPECT_EQ(v[i], kSentinel) << what << ": " << name << "[" << i << "] was written";
  };
  check(r.aligned, "aligned");
  check(r.base, "base");
  check(r.principle, "principle");
  check(r.seq_aligned, "seq_aligned");
  check(r.seq_base, "seq_base");
  check(r.seq_principle, "seq_principle");
  for (size_t i = 0; i < r.diag.size(); ++i)
    EXPECT_TRUE(same_bits(r.diag[i], sentinel_diagnostics()))
        << what << ": diagnostics[" << i << "] was written";
}

// ----------------------------------------------------------------- set-up ---

// 12 rows in 4 sequences of 3; vocabularies of one and of two CUDA blocks.
constexpr int64_t kRows = 12;
const std::vector<int64_t> kOffsets = {0, 3, 6, 9, 12};
const std::vector<int64_t> kVocab = {1000, 1537};
const std::vector<DType> kDtypes = {DType::kF32, DType::kBF16};

std::vector<int32_t> valid_targets(int64_t B, int64_t V, int32_t ignore_index, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(sz(B));
  for (auto& x : t) x = int32_t(rng() % uint32_t(V));
  t[7] = ignore_index;  // an ignored row in sequence 2
  return t;
}

class CudaScoresInput : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_DEVICE();
    cpu_ = make(Backend::kCpu);
    gpu_ = make(Backend::kCuda);
    ASSERT_TRUE(cpu_ && gpu_);
  }
  std::unique_ptr<Context> cpu_, gpu_;
};

// ------------------------------------------------------------------ tests ---

// Targets outside [0, V) in device memory: V itself (row 4, sequence 1), −7
// (row 10, sequence 3) and, with ignore_index −1, the default's −100 (row 0,
// sequence 0, in the second variant). Those rows are kRowBadParameter with NaN
// scores and their sequences sum to NaN; the other rows and sequences are the
// bits of the same call on the corrected targets.
TEST_F(CudaScoresInput, OutOfRangeTargetFlagsOnlyItsRowAndSequence) {
  for (const DType t : kDtypes) {
    for (const int64_t V : kVocab) {
      for (const int32_t ignore : {-100, -1}) {
        const std::string what = std::string(t == DType::kF32 ? "f32" : "bf16") +
                                 " V=" + std::to_string(V) +
                                 " ignore_index=" + std::to_string(ignore);
        const Inputs in = make_inputs(t, kRows, V, uint32_t(V) + 7u);
        Params p;
        p.ignore_index = ignore;
        const std::vector<int32_t> good = valid_targets(kRows, V, ignore, 5u);
        std::vector<int32_t> bad = good;
        std::vector<int64_t> bad_rows = {4, 10};
        bad[4] = int32_t(V);
        bad[10] = -7;
        if (ignore != -100) {
          bad[0] = -100;  // the default ignore_index is an ordinary bad target here
          bad_rows.push_back(0);
        }
        auto is_bad_row = [&](int64_t r) {
          return std::find(bad_rows.begin(), bad_rows.end(), r) != bad_rows.end();
        };

        const ScoreResult want = gpu_score(*gpu_, in, p, good, kOffsets);
        ASSERT_EQ(want.status, Status::kSuccess) << what << ": " << want.error;
        const ScoreResult cpu_want = cpu_score(*cpu_, in, p, good, kOffsets);
        expect_matches_cpu(want, cpu_want, kOffsets, what + " (valid targets)");

        const ScoreResult got = gpu_score(*gpu_, in, p, bad, kOffsets);
        ASSERT_EQ(got.status, Status::kSuccess) << what << ": " << got.error;
        for (int64_t r = 0; r < kRows; ++r) {
          if (!is_bad_row(r)) {
            expect_row_identical(got, want, r, what);
            continue;
          }
          const RowDiagnostics& d = got.diag[sz(r)];
          EXPECT_NE(d.status & linalign::kRowBadParameter, 0u) << what << " row " << r;
          EXPECT_TRUE(std::isnan(d.eta) && std::isnan(d.mu) && std::isnan(d.sigma) &&
                      std::isnan(d.kl_base) && std::isnan(d.kl_principle) && std::isnan(d.entropy))
              << what << " row " << r << ": diagnostics of a flagged row are NaN";
          EXPECT_EQ(d.support, want.diag[sz(r)].support) << what << " row " << r;
          EXPECT_TRUE(std::isnan(got.aligned[sz(r)]) && std::isnan(got.base[sz(r)]) &&
                      std::isnan(got.principle[sz(r)]))
              << what << " row " << r << ": scores " << got.aligned[sz(r)];
        }
        for (int64_t q = 0; q + 1 < int64_t(kOffsets.size()); ++q) {
          bool has_bad = false;
          for (int64_t r = kOffsets[sz(q)]; r < kOffsets[sz(q) + 1]; ++r)
            has_bad = has_bad || is_bad_row(r);
          if (has_bad) {
            EXPECT_TRUE(all_nan(got, q)) << what << " sequence " << q << " holds a bad row";
          } else {
            expect_seq_identical(got, q, want, q, what);
          }
        }

        // The CPU backend checks the host array at call level and writes nothing.
        const ScoreResult cpu = cpu_score(*cpu_, in, p, bad, kOffsets);
        EXPECT_EQ(cpu.status, Status::kInvalidArgument) << what;
        const int64_t first_bad = *std::min_element(bad_rows.begin(), bad_rows.end());
        const std::string first = "targets[" + std::to_string(first_bad) + "]";
        EXPECT_NE(cpu.error.find(first), std::string::npos) << what << ": " << cpu.error;
        EXPECT_NE(cpu.error.find("is outside [0, vocab = " + std::to_string(V) + ")"),
                  std::string::npos)
            << what << ": " << cpu.error;
        expect_untouched(cpu, what + " (CPU, bad targets)");
      }
    }
  }
}

// Decreasing and out-of-range offsets in device memory: the sequences they
// bound sum to NaN; every sequence with well-formed bounds is the bits of the
// same rows' sum in a valid call, and the row scores do not change.
TEST_F(CudaScoresInput, BadOffsetsGiveNanSumsOnly) {
  struct Case {
    std::vector<int64_t> offsets;
    std::vector<int64_t> nan_sequences;
    const char* name;
  };
  const std::vector<Case> cases = {
      {{0, 3, 6, 9, 8}, {3}, "last offset decreasing"},
      {{0, 3, 6, 2, 12}, {2}, "middle offset decreasing"},
      {{0, 3, 6, 9, 13}, {3}, "last offset past B"},
      {{0, 3, -1, 9, 12}, {1, 2}, "negative offset"},
      {{0, 5, 3, 1, 12}, {1, 2}, "two decreasing steps"},
  };
  for (const DType t : kDtypes) {
    for (const int64_t V : kVocab) {
      const std::string base_what =
          std::string(t == DType::kF32 ? "f32" : "bf16") + " V=" + std::to_string(V);
      const Inputs in = make_inputs(t, kRows, V, uint32_t(V) + 11u);
      const Params p;
      const std::vector<int32_t> targets = valid_targets(kRows, V, p.ignore_index, 9u);
      const ScoreResult want = gpu_score(*gpu_, in, p, targets, kOffsets);
      ASSERT_EQ(want.status, Status::kSuccess) << base_what << ": " << want.error;
      expect_matches_cpu(want, cpu_score(*cpu_, in, p, targets, kOffsets), kOffsets,
                         base_what + " (valid offsets)");

      for (const Case& c : cases) {
        const std::string what = base_what + " " + c.name;
        const ScoreResult got = gpu_score(*gpu_, in, p, targets, c.offsets);
        ASSERT_EQ(got.status, Status::kSuccess) << what << ": " << got.error;
        for (int64_t r = 0; r < kRows; ++r) expect_row_identical(got, want, r, what);
        for (int64_t q = 0; q + 1 < int64_t(c.offsets.size()); ++q) {
          const bool nan_expected =
              std::find(c.nan_sequences.begin(), c.nan_sequences.end(), q) != c.nan_sequences.end();
          if (nan_expected) {
            EXPECT_TRUE(all_nan(got, q)) << what << " sequence " << q;
            continue;
          }
          // A well-formed range: the same rows summed in a valid call of
          // their own, and within SPEC §6 of the CPU backend's sum of them.
          const std::vector<int64_t> one = {c.offsets[sz(q)], c.offsets[sz(q) + 1]};
          std::vector<int64_t> whole = {0, one[0], one[1], kRows};
          const ScoreResult alone = gpu_score(*gpu_, in, p, targets, whole);
          ASSERT_EQ(alone.status, Status::kSuccess) << what << ": " << alone.error;
          expect_seq_identical(got, q, alone, 1, what);
          expect_matches_cpu(alone, cpu_score(*cpu_, in, p, targets, whole), whole,
                             what + " (the rows of sequence " + std::to_string(q) + ")");
        }

        // The CPU backend rejects the host offsets at call level, naming them.
        const ScoreResult cpu = cpu_score(*cpu_, in, p, targets, c.offsets);
        EXPECT_EQ(cpu.status, Status::kInvalidArgument) << what;
        EXPECT_NE(cpu.error.find("seq_offsets"), std::string::npos) << what << ": " << cpu.error;
        expect_untouched(cpu, what + " (CPU)");
      }
    }
  }
}

// Both at once: a bad target inside a sequence with bad bounds, and one in a
// well-formed sequence; the CPU backend names the targets (checked first).
TEST_F(CudaScoresInput, BadTargetsAndBadOffsetsTogether) {
  const int64_t V = 1000;
  const Inputs in = make_inputs(DType::kF32, kRows, V, 3u);
  const Params p;
  const std::vector<int32_t> good = valid_targets(kRows, V, p.ignore_index, 4u);
  std::vector<int32_t> bad = good;
  bad[1] = int32_t(V) + 5;  // sequence 0, well-formed
  bad[8] = -3;              // sequence 2, whose bounds are bad below
  const std::vector<int64_t> offsets = {0, 3, 6, 2, 12};
  const ScoreResult want = gpu_score(*gpu_, in, p, good, kOffsets);
  const ScoreResult got = gpu_score(*gpu_, in, p, bad, offsets);
  ASSERT_EQ(got.status, Status::kSuccess) << got.error;
  for (int64_t r = 0; r < kRows; ++r) {
    if (r == 1 || r == 8) {
      EXPECT_NE(got.diag[sz(r)].status & linalign::kRowBadParameter, 0u) << "row " << r;
      EXPECT_TRUE(std::isnan(got.aligned[sz(r)])) << "row " << r;
    } else {
      expect_row_identical(got, want, r, "bad targets and offsets");
    }
  }
  EXPECT_TRUE(all_nan(got, 0));  // holds row 1
  expect_seq_identical(got, 1, want, 1, "bad targets and offsets");
  EXPECT_TRUE(all_nan(got, 2));  // decreasing bounds
  EXPECT_TRUE(all_nan(got, 3));  // rows [2, 12) hold row 8
  const ScoreResult cpu = cpu_score(*cpu_, in, p, bad, offsets);
  EXPECT_EQ(cpu.status, Status::kInvalidArgument);
  EXPECT_NE(cpu.error.find("targets[1]"), std::string::npos) << cpu.error;
  expect_untouched(cpu, "CPU, bad targets and offsets");
}

}  // namespace
