// run_score_job (include/linalign/scoring_job.hpp), in phases:
//   1. resume: read the checkpoint (if any), refuse another fingerprint,
//      truncate the output to the checkpointed length (or start it with its
//      header), and drop the checkpointed sequences from the source;
//   2. per chunk of the source: one request per sequence, its rows submitted
//      as score steps, the answers awaited in order, one line per sequence;
//   3. every checkpoint_every sequences and at the end: the output flushed and
//      fsync'd, then the checkpoint replaced atomically.
// The output only ever grows by whole lines that the checkpoint then covers,
// and a resumed run truncates what it does not cover: a kill at any moment
// loses at most the lines after the last checkpoint, which are recomputed
// identically (the scores do not depend on the batch: batcher.hpp).
#include "linalign/scoring_job.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <future>
#include <string>
#include <vector>

namespace linalign {

uint64_t ScoreSource::skip(uint64_t) {
  return 0;
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kCheckpointMagic = "linalign-score-job 1";
constexpr const char* kHeader =
    "# sequence\trows\tscored\tscore\tscore_base\tscore_principle\tstatus\n";

struct Checkpoint {
  uint64_t sequences = 0;
  uint64_t output_bytes = 0;
  std::string fingerprint;
};

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Reads the checkpoint; false (no error) when there is none.
Status read_checkpoint(const std::string& path, Checkpoint* c, bool* found, std::string* error) {
  *found = false;
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) {
    if (errno == ENOENT) return Status::kSuccess;
    *error = errno_text("score job: cannot read the checkpoint", path);
    return Status::kInternal;
  }
  char magic[64] = {0}, fp[4096] = {0};
  unsigned long long seq = 0, bytes = 0;
  const bool ok = std::fgets(magic, sizeof magic, f) != nullptr &&
                  std::string(magic) == std::string(kCheckpointMagic) + "\n" &&
                  std::fscanf(f, "sequences %llu\noutput_bytes %llu\n", &seq, &bytes) == 2 &&
                  std::fgets(fp, sizeof fp, f) != nullptr;
  std::fclose(f);
  std::string line = fp;
  if (!ok || line.compare(0, 12, "fingerprint ") != 0 || line.back() != '\n') {
    *error = "score job: " + path + " is not a score job checkpoint (remove it to start over)";
    return Status::kInvalidArgument;
  }
  c->sequences = seq;
  c->output_bytes = bytes;
  c->fingerprint = line.substr(12, line.size() - 13);
  *found = true;
  return Status::kSuccess;
}

bool fsync_path_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Replaces the checkpoint atomically: a temporary file, fsync, rename, and
// the directory fsync'd.
Status write_checkpoint(const std::string& path, const Checkpoint& c, std::string* error) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    *error = errno_text("score job: cannot write the checkpoint", tmp);
    return Status::kInternal;
  }
  const int n =
      std::fprintf(f, "%s\nsequences %" PRIu64 "\noutput_bytes %" PRIu64 "\nfingerprint %s\n",
                   kCheckpointMagic, c.sequences, c.output_bytes, c.fingerprint.c_str());
  bool ok = n > 0 && std::fflush(f) == 0 && ::fsync(fileno(f)) == 0;
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0 || !fsync_path_dir(path)) {
    *error = errno_text("score job: cannot write the checkpoint", path);
    return Status::kInternal;
  }
  return Status::kSuccess;
}

// The output file, appended to by whole lines.
class Output {
 public:
  ~Output() {
    if (f_ != nullptr) std::fclose(f_);
  }
  // Phase 1: continue after `bytes` (resume) or start with the header.
  Status open(const std::string& path, bool resume, uint64_t bytes, std::string* error) {
    path_ = path;
    if (resume) {
      struct stat st;
      if (::stat(path.c_str(), &st) != 0 || uint64_t(st.st_size) < bytes) {
        *error = "score job: the checkpoint covers " + std::to_string(bytes) + " bytes of " + path +
                 " but the file is shorter or missing (remove the checkpoint to start over)";
        return Status::kInvalidArgument;
      }
      if (::truncate(path.c_str(), off_t(bytes)) != 0) return fail("truncate", error);
      f_ = std::fopen(path.c_str(), "a");
      if (f_ == nullptr) return fail("open", error);
      bytes_ = bytes;
      return Status::kSuccess;
    }
    f_ = std::fopen(path.c_str(), "w");
    if (f_ == nullptr) return fail("create", error);
    return append(kHeader, error);
  }
  Status append(const std::string& text, std::string* error) {
    if (std::fwrite(text.data(), 1, text.size(), f_) != text.size()) return fail("write", error);
    bytes_ += text.size();
    return Status::kSuccess;
  }
  // Everything appended is on disk.
  Status sync(std::string* error) {
    if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0) return fail("fsync", error);
    return Status::kSuccess;
  }
  uint64_t bytes() const { return bytes_; }

 private:
  Status fail(const char* what, std::string* error) {
    *error = errno_text(std::string("score job: cannot ") + what, path_);
    return Status::kInternal;
  }
  std::string path_;
  std::FILE* f_ = nullptr;
  uint64_t bytes_ = 0;
};

size_t dtype_bytes(DType t) {
  return t == DType::kF32 ? 4 : 2;
}

// Phase 2 for one chunk: every row of every sequence submitted, then the
// answers in order, one line per sequence into *lines.
Status score_chunk(Batcher& b, const Params& params, const std::vector<ScoreSequence>& chunk,
                   uint64_t first_index, std::string* lines, int64_t* rows_done,
                   std::string* error) {
  std::vector<std::vector<Submission>> subs(chunk.size());
  Status failed = Status::kSuccess;
  for (size_t s = 0; s < chunk.size() && failed == Status::kSuccess; ++s) {
    const ScoreSequence& q = chunk[s];
    const std::string where = "score job: sequence " + std::to_string(first_index + s);
    RequestId req = 0;
    std::string message;
    failed = b.open(params, &req, &message);
    if (failed != Status::kSuccess) {
      *error = where + ": " + message;
      break;
    }
    const size_t row_bytes = size_t(q.vocab) * dtype_bytes(q.dtype);
    subs[s].resize(size_t(std::max<int64_t>(q.rows, 0)));
    for (int64_t r = 0; r < q.rows; ++r) {
      const StepRows rows{q.dtype, q.vocab,
                          static_cast<const char*>(q.base) + size_t(r) * row_bytes,
                          static_cast<const char*>(q.principle) + size_t(r) * row_bytes};
      failed = b.submit(Step::score(req, rows, q.targets[r]), &subs[s][size_t(r)], &message);
      if (failed != Status::kSuccess) {
        subs[s].resize(size_t(r));
        *error = where + " row " + std::to_string(r) + ": " + message;
        break;
      }
    }
    (void)b.close(req);
  }
  // Every accepted step is awaited, even after a failure (no answer is left
  // pending on memory the source is about to reuse).
  for (size_t s = 0; s < chunk.size(); ++s) {
    double a = 0, zb = 0, yp = 0;
    int64_t scored = 0;
    uint32_t status = 0;
    for (size_t r = 0; r < subs[s].size(); ++r) {
      const StepResult res = subs[s][r].result.get();
      if (res.status != Status::kSuccess && failed == Status::kSuccess) {
        failed = res.status;
        *error = "score job: sequence " + std::to_string(first_index + s) + " row " +
                 std::to_string(r) + ": " + res.message;
      }
      a += res.logprob;
      zb += res.score_base;
      yp += res.score_principle;
      scored += chunk[s].targets[r] != params.ignore_index ? 1 : 0;
      status |= res.diagnostics.status;
    }
    if (failed != Status::kSuccess) continue;
    char line[256];
    std::snprintf(line, sizeof line,
                  "%" PRIu64 "\t%" PRId64 "\t%" PRId64 "\t%.9g\t%.9g\t%.9g\t%u\n", first_index + s,
                  chunk[s].rows, scored, a, zb, yp, status);
    *lines += line;
    *rows_done += chunk[s].rows;
  }
  return failed;
}

}  // namespace

Status run_score_job(Batcher& b, ScoreSource& source, const JobOptions& o, JobReport* report,
                     std::string* error) {
  std::string scratch;
  std::string& err = error != nullptr ? *error : scratch;
  err.clear();
  JobReport rep;
  const auto t0 = Clock::now();
  if (o.output_path.empty()) {
    err = "score job: options.output_path is empty";
    return Status::kInvalidArgument;
  }
  if (o.checkpoint_every < 1 || o.fingerprint.find('\n') != std::string::npos) {
    err = "score job: options.checkpoint_every must be >= 1 and options.fingerprint one line";
    return Status::kInvalidArgument;
  }
  const std::string ckpt_path =
      o.checkpoint_path.empty() ? o.output_path + ".ckpt" : o.checkpoint_path;

  // Phase 1.
  Checkpoint ck;
  bool resume = false;
  Status s = read_checkpoint(ckpt_path, &ck, &resume, &err);
  if (s != Status::kSuccess) return s;
  if (resume && ck.fingerprint != o.fingerprint) {
    err = "score job: " + ckpt_path + " was written for another job (fingerprint '" +
          ck.fingerprint + "', this job's '" + o.fingerprint + "'); remove it to start over";
    return Status::kInvalidArgument;
  }
  Output out;
  s = out.open(o.output_path, resume, ck.output_bytes, &err);
  if (s != Status::kSuccess) return s;
  if (!resume) {
    ck = Checkpoint{0, out.bytes(), o.fingerprint};
    if ((s = out.sync(&err)) != Status::kSuccess) return s;
    if ((s = write_checkpoint(ckpt_path, ck, &err)) != Status::kSuccess) return s;
  }
  rep.resumed_from = ck.sequences;
  uint64_t to_drop = ck.sequences - std::min(ck.sequences, source.skip(ck.sequences));

  // Phases 2 and 3.
  const int64_t total = source.total_rows();
  uint64_t since_checkpoint = 0;
  auto last_report = Clock::now();
  uint64_t index = ck.sequences;  // the next sequence's place in the source
  auto report_progress = [&](bool finished) {
    if (!o.progress) return;
    JobProgress p;
    p.sequences_done = index;
    p.rows_done = rep.rows;
    p.total_rows = total;
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    p.rows_per_s = secs > 0 ? double(rep.rows) / secs : 0;
    if (total >= 0 && p.rows_per_s > 0) p.eta_s = double(total - rep.rows) / p.rows_per_s;
    p.finished = finished;
    o.progress(p);
  };
  std::vector<ScoreSequence> chunk;
  for (;;) {
    chunk.clear();
    if ((s = source.next(&chunk, &err)) != Status::kSuccess) return s;
    if (chunk.empty()) break;
    size_t first = 0;
    while (first < chunk.size() && to_drop > 0) {
      ++first;
      --to_drop;
    }
    if (first == chunk.size()) continue;
    const std::vector<ScoreSequence> part(chunk.begin() + long(first), chunk.end());
    std::string lines;
    s = score_chunk(b, o.params, part, index, &lines, &rep.rows, &err);
    if (s != Status::kSuccess) return s;
    if ((s = out.append(lines, &err)) != Status::kSuccess) return s;
    index += part.size();
    since_checkpoint += part.size();
    if (since_checkpoint >= o.checkpoint_every) {
      if ((s = out.sync(&err)) != Status::kSuccess) return s;
      ck.sequences = index;
      ck.output_bytes = out.bytes();
      if ((s = write_checkpoint(ckpt_path, ck, &err)) != Status::kSuccess) return s;
      since_checkpoint = 0;
    }
    if (std::chrono::duration<double>(Clock::now() - last_report).count() >=
        o.progress_interval_s) {
      report_progress(false);
      last_report = Clock::now();
    }
  }
  if ((s = out.sync(&err)) != Status::kSuccess) return s;
  ck.sequences = index;
  ck.output_bytes = out.bytes();
  if ((s = write_checkpoint(ckpt_path, ck, &err)) != Status::kSuccess) return s;
  report_progress(true);
  rep.sequences = index;
  rep.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (report != nullptr) *report = rep;
  return Status::kSuccess;
}

}  // namespace linalign
