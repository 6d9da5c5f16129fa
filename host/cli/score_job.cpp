// linalign score-job: a resumable offline scoring job (linalign/scoring_job.hpp)
// over a manifest of .npy shards, through the host API's batcher.
//
// Manifest: one shard per line, "BASE.npy PRINCIPLE.npy TARGETS.npy
// [OFFSETS.npy]" (paths relative to the manifest's folder; blank lines and
// lines starting with # are skipped). A shard holds base and principle
// logits [N, V], targets [N] (int32, or int64 that fits), and optionally
// offsets [S+1] (non-decreasing, from 0 to N) splitting its rows into S
// sequences; without offsets the shard is one sequence. Sequences are
// numbered across shards in manifest order.
//
// The job's fingerprint is the manifest's bytes and every parameter flag:
// a checkpoint of another manifest or other parameters is refused.
#include "cli/score_job.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <linalign/batcher.hpp>
#include <linalign/scoring_job.hpp>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cli/npy.hpp"
#include "cli/options.hpp"

namespace linalign_cli {
namespace {

using linalign::Status;

struct Shard {
  std::string base, principle, targets, offsets;  // paths
  std::vector<int32_t> target_values;
  std::vector<int64_t> bounds;  // sequence boundaries: {0, ..., rows}
  int64_t rows() const { return bounds.back(); }
  uint64_t sequences() const { return bounds.size() - 1; }
};

std::vector<int64_t> read_ints(const std::string& path, const std::string& what) {
  npy::Array a = read_input(path, what);
  if (a.dtype() != npy::DType::kI32 && a.dtype() != npy::DType::kI64)
    throw UsageError(what + " " + path + ": dtype '" + npy::descr(a.dtype()) +
                     "' is not supported; expected int32 '<i4' or int64 '<i8'");
  if (a.rank() != 1) throw UsageError(what + " " + path + ": wrong rank (expected 1-D)");
  std::vector<int64_t> v(size_t(a.size()));
  for (int64_t i = 0; i < a.size(); ++i)
    v[size_t(i)] = a.dtype() == npy::DType::kI64 ? a.as<int64_t>()[i] : a.as<int32_t>()[i];
  return v;
}

// The manifest's shards, their targets and sequence bounds read up front (the
// logits are read one shard at a time).
std::vector<Shard> read_manifest(const std::string& path, std::string* bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw UsageError("--manifest " + path + ": cannot read");
  std::stringstream ss;
  ss << f.rdbuf();
  *bytes = ss.str();
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  auto resolve = [&](const std::string& p) { return p.empty() || p[0] == '/' ? p : dir + p; };
  std::vector<Shard> shards;
  std::istringstream lines(*bytes);
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.empty() || w[0][0] == '#') continue;
    const std::string where = "--manifest " + path + " line " + std::to_string(number);
    if (w.size() < 3 || w.size() > 4)
      throw UsageError(where + ": expected BASE.npy PRINCIPLE.npy TARGETS.npy [OFFSETS.npy]");
    Shard s{
        resolve(w[0]), resolve(w[1]), resolve(w[2]), w.size() == 4 ? resolve(w[3]) : "", {}, {}};
    for (int64_t t : read_ints(s.targets, where + ": targets")) {
      if (t < std::numeric_limits<int32_t>::min() || t > std::numeric_limits<int32_t>::max())
        throw UsageError(where + ": target " + std::to_string(t) + " does not fit int32");
      s.target_values.push_back(int32_t(t));
    }
    const int64_t n = int64_t(s.target_values.size());
    s.bounds =
        s.offsets.empty() ? std::vector<int64_t>{0, n} : read_ints(s.offsets, where + ": offsets");
    bool ok = s.bounds.size() >= 2 && s.bounds.front() == 0 && s.bounds.back() == n;
    for (size_t i = 1; ok && i < s.bounds.size(); ++i) ok = s.bounds[i - 1] <= s.bounds[i];
    if (!ok)
      throw UsageError(where + ": offsets must be non-decreasing from 0 to the " +
                       std::to_string(n) + " rows of the targets");
    shards.push_back(std::move(s));
  }
  if (shards.empty()) throw UsageError("--manifest " + path + ": no shard");
  return shards;
}

class ManifestSource final : public linalign::ScoreSource {
 public:
  ManifestSource(std::vector<Shard> shards, bool bf16, Staging& mem)
      : shards_(std::move(shards)), bf16_(bf16), mem_(mem) {}
  ~ManifestSource() override { release(); }

  Status next(std::vector<linalign::ScoreSequence>* chunk, std::string* error) override {
    release();
    if (at_ == shards_.size()) return Status::kSuccess;
    const Shard& s = shards_[at_++];
    try {
      load(s, chunk);
    } catch (const std::exception& e) {
      *error = e.what();
      usage_error_ = true;
      return Status::kInvalidArgument;
    }
    return Status::kSuccess;
  }
  uint64_t skip(uint64_t n) override {
    uint64_t skipped = 0;
    while (at_ < shards_.size() && skipped + shards_[at_].sequences() <= n)
      skipped += shards_[at_++].sequences();
    return skipped;
  }
  int64_t total_rows() const override {
    int64_t n = 0;
    for (size_t i = at_; i < shards_.size(); ++i) n += shards_[i].rows();
    return n;
  }
  // Whether the last error was the input's (exit 1) rather than the library's.
  bool usage_error() const { return usage_error_; }

 private:
  void load(const Shard& s, std::vector<linalign::ScoreSequence>* chunk) {
    base_ = read_input(s.base, "--manifest: " + s.base);
    principle_ = read_input(s.principle, "--manifest: " + s.principle);
    const linalign::DType t = logits_dtype(base_, bf16_, s.base);
    if (base_.rank() != 2 || principle_.shape() != base_.shape() ||
        principle_.dtype() != base_.dtype() || base_.shape()[0] != s.rows())
      throw UsageError("--manifest: " + s.base + " and " + s.principle + " must be [" +
                       std::to_string(s.rows()) + ", V] logits of one dtype (" + s.targets +
                       " has " + std::to_string(s.rows()) + " targets)");
    const int64_t V = base_.shape()[1];
    const size_t row_bytes = size_t(V) * (t == linalign::DType::kF32 ? 4 : 2);
    const char* zb = static_cast<const char*>(up(base_.data(), base_.nbytes()));
    const char* yb = static_cast<const char*>(up(principle_.data(), principle_.nbytes()));
    for (size_t q = 0; q + 1 < s.bounds.size(); ++q) {
      const int64_t r0 = s.bounds[q];
      chunk->push_back(
          linalign::ScoreSequence{t, V, s.bounds[q + 1] - r0, zb + size_t(r0) * row_bytes,
                                  yb + size_t(r0) * row_bytes, s.target_values.data() + r0});
    }
  }
  const void* up(const void* p, size_t bytes) {
    const void* d = mem_.upload(p, bytes);
    uploads_.push_back(d);
    return d;
  }
  void release() {
    for (const void* p : uploads_) mem_.release(p);
    uploads_.clear();
  }

  std::vector<Shard> shards_;
  bool bf16_;
  Staging& mem_;
  size_t at_ = 0;
  npy::Array base_, principle_;
  std::vector<const void*> uploads_;
  bool usage_error_ = false;
};

// FNV-1a of the manifest's bytes, and the parameters in words.
std::string fingerprint(const std::string& manifest, const linalign::Params& p, bool bf16) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : manifest) h = (h ^ c) * 1099511628211ull;
  return fmt::format(
      "manifest {:016x} T={} rule={} ratio={} epsilon={} eta_max={} update={} ignore_index={} "
      "bf16={}",
      h, p.temperature.value, int(p.rule), p.ratio.value, p.epsilon.value, p.eta_max.value,
      int(p.update), p.ignore_index, bf16 ? 1 : 0);
}

}  // namespace

int run_score_job_command(const Args& a) {
  const std::string manifest_path = a.required("manifest");
  const std::string out = a.required("out");
  const bool bf16 = a.has("bf16");
  const linalign::Params p = make_params(a);
  std::string manifest;
  std::vector<Shard> shards = read_manifest(manifest_path, &manifest);
  linalign::BatcherOptions bo;
  bo.max_rows = int32_t(a.i64("max-rows", 64, 1, 1 << 20));
  bo.max_wait_us = a.i64("max-wait-us", 200, 0, int64_t(1) << 40);
  linalign::JobOptions jo;
  jo.params = p;
  jo.output_path = out;
  jo.checkpoint_path = a.str("checkpoint", "");
  jo.checkpoint_every = uint64_t(a.i64("checkpoint-every", 256, 1, int64_t(1) << 40));
  jo.fingerprint = fingerprint(manifest, p, bf16);
  // total_rows is known once the job has skipped the checkpointed part: the
  // line starts with the first report.
  std::unique_ptr<Progress> line;
  jo.progress = [&line](const linalign::JobProgress& jp) {
    if (!line) line = std::make_unique<Progress>("score-job", "rows", jp.total_rows);
    const std::string extra = fmt::format("{} sequences", jp.sequences_done);
    if (jp.finished) {
      line->finish(jp.rows_done, extra);
    } else {
      line->update(jp.rows_done, extra);
    }
  };

  Engine e = make_engine(a);
  std::unique_ptr<linalign::Batcher> batcher;
  std::string err;
  Status s = linalign::Batcher::create(*e.ctx, bo, &batcher, &err);
  if (s != Status::kSuccess)
    throw LibraryError(std::string(linalign::status_string(s)) + ": " + err);
  ManifestSource source(std::move(shards), bf16, *e.mem);
  linalign::JobReport report;
  s = linalign::run_score_job(*batcher, source, jo, &report, &err);
  if (s != Status::kSuccess) {
    if (source.usage_error()) throw UsageError(err);
    throw LibraryError(std::string(linalign::status_string(s)) + ": " + err);
  }
  if (line && line->shown())
    fmt::print(stderr,
               "score-job: {} sequences in {} ({} resumed from the checkpoint), {} rows "
               "scored in {:.2f} s\n",
               report.sequences, out, report.resumed_from, report.rows, report.seconds);
  return 0;
}

}  // namespace linalign_cli
