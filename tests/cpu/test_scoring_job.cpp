// Offline scoring jobs (include/linalign/scoring_job.hpp) on the CPU backend:
// each output line equals the sums of the direct Context::score calls of the
// sequence's rows (float64, in row order); a job stopped after any chunk —
// with lines past its checkpoint, or a torn last line — resumes to an output
// byte-identical to an uninterrupted run's; a checkpoint of another job is
// refused; progress is reported. The kill -9 test of the same machinery is
// tests/score_job_test.sh (the CLI's score-job).
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "batcher_test_util.hpp"
#include "linalign/scoring_job.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;
using linalign::JobOptions;
using linalign::JobProgress;
using linalign::JobReport;
using linalign::ScoreSequence;

constexpr int64_t kV = 97;

// Sequences of 1..9 rows of random logits; chunks of `per_chunk` sequences;
// optionally fails after `fail_after` chunks (an interrupted run).
class MemorySource : public linalign::ScoreSource {
 public:
  MemorySource(int sequences, size_t per_chunk, uint32_t seed) : per_chunk_(per_chunk) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd(0.f, 2.f);
    for (int s = 0; s < sequences; ++s) {
      const int64_t rows = 1 + int64_t(g() % 9);
      Seq q;
      q.z.resize(size_t(rows * kV));
      q.y.resize(size_t(rows * kV));
      for (size_t i = 0; i < q.z.size(); ++i) {
        q.z[i] = nd(g);
        q.y[i] = q.z[i] + nd(g);
      }
      for (int64_t r = 0; r < rows; ++r) q.t.push_back(g() % 5 == 0 ? -100 : int32_t(g() % kV));
      seqs_.push_back(std::move(q));
    }
  }
  Status next(std::vector<ScoreSequence>* chunk, std::string* error) override {
    ++calls_;
    if (fail_after_ >= 0 && chunks_ == fail_after_) {
      *error = "source: interrupted";
      return Status::kInternal;
    }
    ++chunks_;
    for (size_t i = 0; i < per_chunk_ && at_ < seqs_.size(); ++i, ++at_) {
      const Seq& q = seqs_[at_];
      chunk->push_back(
          ScoreSequence{DType::kF32, kV, int64_t(q.t.size()), q.z.data(), q.y.data(), q.t.data()});
    }
    return Status::kSuccess;
  }
  uint64_t skip(uint64_t n) override {
    if (!can_skip_) return 0;
    at_ = size_t(std::min<uint64_t>(n, seqs_.size()));
    return at_;
  }
  int64_t total_rows() const override {
    int64_t n = 0;
    for (const Seq& q : seqs_) n += int64_t(q.t.size());
    return n;
  }

  struct Seq {
    std::vector<float> z, y;
    std::vector<int32_t> t;
  };
  std::vector<Seq> seqs_;
  size_t per_chunk_, at_ = 0;
  int fail_after_ = -1, chunks_ = 0, calls_ = 0;
  bool can_skip_ = false;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "linalign_job_" + name + "_" +
         std::to_string(::testing::UnitTest::GetInstance()->random_seed());
}

void remove_job(const std::string& out) {
  std::remove(out.c_str());
  std::remove((out + ".ckpt").c_str());
}

Params job_params() {
  Params p;
  p.ratio = 1.5f;
  p.temperature = 0.9f;
  return p;
}

// The expected output, from direct calls.
std::string expected_output(const MemorySource& src) {
  auto ctx = linalign_test::make_context(1);
  std::string out = "# sequence\trows\tscored\tscore\tscore_base\tscore_principle\tstatus\n";
  const Params p = job_params();
  for (size_t s = 0; s < src.seqs_.size(); ++s) {
    const auto& q = src.seqs_[s];
    double a = 0, b = 0, c = 0;
    int64_t scored = 0;
    uint32_t status = 0;
    for (size_t r = 0; r < q.t.size(); ++r) {
      float x = 0, y = 0, z = 0;
      ScoreOutputs so;
      so.aligned = &x;
      so.base = &y;
      so.principle = &z;
      RowDiagnostics d;
      EXPECT_EQ(ctx->score(LogitsView::strided(DType::kF32, 1, kV, q.z.data() + r * kV,
                                               q.y.data() + r * kV),
                           p, &q.t[r], so, &d),
                Status::kSuccess);
      a += x;
      b += y;
      c += z;
      scored += q.t[r] != p.ignore_index;
      status |= d.status;
    }
    char line[256];
    std::snprintf(line, sizeof line, "%zu\t%zu\t%" PRId64 "\t%.9g\t%.9g\t%.9g\t%u\n", s, q.t.size(),
                  scored, a, b, c, status);
    out += line;
  }
  return out;
}

JobOptions options(const std::string& out, uint64_t every) {
  JobOptions o;
  o.params = job_params();
  o.output_path = out;
  o.fingerprint = "memory source, ratio 1.5, T 0.9";
  o.checkpoint_every = every;
  return o;
}

TEST(ScoringJob, OutputEqualsDirectCallsAndReportsProgress) {
  auto ctx = linalign_test::make_context(2);
  auto b = linalign_test::make_batcher(*ctx);
  MemorySource src(40, 6, 1);
  const std::string out = temp_path("plain");
  remove_job(out);
  JobOptions o = options(out, 5);
  std::vector<JobProgress> reports;
  o.progress = [&](const JobProgress& p) { reports.push_back(p); };
  o.progress_interval_s = 0;
  JobReport rep;
  std::string err;
  ASSERT_EQ(linalign::run_score_job(*b, src, o, &rep, &err), Status::kSuccess) << err;
  EXPECT_EQ(read_file(out), expected_output(src));
  EXPECT_EQ(rep.sequences, 40u);
  EXPECT_EQ(rep.resumed_from, 0u);
  EXPECT_EQ(rep.rows, src.total_rows());
  ASSERT_FALSE(reports.empty());
  EXPECT_TRUE(reports.back().finished);
  EXPECT_EQ(reports.back().rows_done, src.total_rows());
  EXPECT_EQ(reports.back().sequences_done, 40u);
  EXPECT_GT(reports.back().rows_per_s, 0);
  // Run again: the checkpoint says everything is done; nothing changes.
  MemorySource again(40, 6, 1);
  ASSERT_EQ(linalign::run_score_job(*b, again, o, &rep, &err), Status::kSuccess) << err;
  EXPECT_EQ(rep.resumed_from, 40u);
  EXPECT_EQ(rep.rows, 0);
  EXPECT_EQ(read_file(out), expected_output(src));
  remove_job(out);
}

// Stopped after every possible chunk, with or without a torn line appended
// after the stop, then resumed (skipping in the source or dropping what it
// reads): always the uninterrupted output, no sequence twice.
TEST(ScoringJob, ResumesToAByteIdenticalOutput) {
  auto ctx = linalign_test::make_context(2);
  auto b = linalign_test::make_batcher(*ctx);
  const std::string want = expected_output(MemorySource(23, 4, 2));
  const std::string out = temp_path("resume");
  for (int stop = 0; stop <= 6; ++stop) {
    for (int torn = 0; torn < 2; ++torn) {
      remove_job(out);
      MemorySource first(23, 4, 2);
      first.fail_after_ = stop;
      std::string err;
      EXPECT_EQ(linalign::run_score_job(*b, first, options(out, 3), nullptr, &err),
                Status::kInternal);
      EXPECT_NE(err.find("interrupted"), std::string::npos) << err;
      if (torn) {
        std::FILE* f = std::fopen(out.c_str(), "a");
        std::fputs("17\t3\t2\t-4.5", f);  // a line cut short by the kill
        std::fclose(f);
      }
      MemorySource second(23, 4, 2);
      second.can_skip_ = stop % 2 == 1;
      JobReport rep;
      ASSERT_EQ(linalign::run_score_job(*b, second, options(out, 3), &rep, &err), Status::kSuccess)
          << err;
      EXPECT_EQ(read_file(out), want) << "stopped after chunk " << stop << " torn " << torn;
      EXPECT_EQ(rep.resumed_from + (rep.sequences - rep.resumed_from), 23u);
      EXPECT_LE(rep.resumed_from, uint64_t(stop) * 4);
    }
  }
  remove_job(out);
}

TEST(ScoringJob, RefusesAnotherJobsCheckpointAndBadOptions) {
  auto ctx = linalign_test::make_context(1);
  auto b = linalign_test::make_batcher(*ctx);
  const std::string out = temp_path("fp");
  remove_job(out);
  MemorySource src(5, 2, 3);
  std::string err;
  ASSERT_EQ(linalign::run_score_job(*b, src, options(out, 2), nullptr, &err), Status::kSuccess);
  JobOptions other = options(out, 2);
  other.fingerprint = "another job";
  MemorySource src2(5, 2, 3);
  EXPECT_EQ(linalign::run_score_job(*b, src2, other, nullptr, &err), Status::kInvalidArgument);
  EXPECT_NE(err.find("another job"), std::string::npos) << err;
  JobOptions none = options("", 2);
  EXPECT_EQ(linalign::run_score_job(*b, src2, none, nullptr, &err), Status::kInvalidArgument);
  EXPECT_NE(err.find("output_path"), std::string::npos) << err;
  // A bad target stops the job naming the sequence and row; the checkpoint
  // keeps the prefix.
  remove_job(out);
  MemorySource bad(6, 2, 4);
  bad.seqs_[3].t[0] = int32_t(kV) + 5;
  EXPECT_EQ(linalign::run_score_job(*b, bad, options(out, 1), nullptr, &err),
            Status::kInvalidArgument);
  EXPECT_NE(err.find("sequence 3 row 0"), std::string::npos) << err;
  const std::string ckpt = read_file(out + ".ckpt");
  EXPECT_NE(ckpt.find("sequences 2\n"), std::string::npos) << ckpt;
  remove_job(out);
}

}  // namespace
