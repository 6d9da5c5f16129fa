// What the tool's commands share (host/cli/main.cpp: align, sample, score,
// gen, info, demo; host/cli/score_job.cpp: score-job): the library errors
// (exit 2), reading an input .npy, the logits' dtype, the parameters from the
// flags, and the engine (a Context and where its arrays live).
#pragma once

#include <linalign/linalign.hpp>
#include <memory>
#include <stdexcept>
#include <string>

#include "cli/npy.hpp"
#include "cli/options.hpp"
#include "cli/staging.hpp"

namespace linalign_cli {

// An error reported by the library: exit code 2.
class LibraryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws LibraryError with the status and ctx.last_error() unless s is success.
void check(linalign::Status s, const linalign::Context& ctx, const char* op);

// Reads a .npy file; a UsageError naming `flag` when it cannot.
npy::Array read_input(const std::string& path, const std::string& flag);

// The library dtype of logits read from a file (bf16: '<u2' holds bfloat16 bits).
linalign::DType logits_dtype(const npy::Array& a, bool bf16, const std::string& flag);

// Every parameter flag of the alignment and token selection groups.
linalign::Params make_params(const Args& a);

const char* backend_name(linalign::Backend b);

// A context for --backend/--threads/--device and the staging of its arrays
// (host memory, or device memory for CUDA); --backend auto falls back to the
// CPU backend when the device memory cannot be used.
struct Engine {
  std::unique_ptr<linalign::Context> ctx;
  std::unique_ptr<Staging> mem;
};
Engine make_engine(const Args& a);

// A progress line for the tool's long jobs (score-job, story, gen): "what:
// done/total unit (pct), rate unit/s, ETA h:mm:ss", rewritten in place on
// stderr at most every 0.2 s once the job has run 0.5 s, and only when stderr
// is a terminal (quiet when piped or redirected, and for short jobs). finish()
// ends a shown line. `extra` is appended (e.g. sequences done).
class Progress {
 public:
  Progress(std::string what, std::string unit, int64_t total);
  bool shown() const { return printed_; }
  void update(int64_t done, const std::string& extra = "");
  void finish(int64_t done, const std::string& extra = "");  // the last line, then a newline

 private:
  void print(int64_t done, const std::string& extra, bool last);
  std::string what_, unit_;
  int64_t total_;
  bool on_;
  bool printed_ = false;
  double start_s_, last_s_ = -1;
};

}  // namespace linalign_cli
