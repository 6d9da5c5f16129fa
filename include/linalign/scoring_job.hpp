// linalign host API: resumable offline scoring jobs.
//
// A job scores many sequences — each a run of rows (base logits z, principle
// logits y, a target token) — whose logits a caller-supplied ScoreSource
// hands over in chunks. Every row goes through a Batcher as a score step; the
// job sums each sequence's ℓ*_t, ℓ_t and ℓᵖ_t (targets equal to
// params.ignore_index are left out, as in Context::score), writes one line per
// sequence to the output file, in source order, and keeps a checkpoint:
//
//   output   a text file, one header line, then per sequence
//            "<index>\t<rows>\t<scored>\t<score>\t<score_base>\t<score_principle>\t<status>"
//            (index: the sequence's place in the source; sums as %.9g of
//            the float64 sums in row order; status: the OR of the rows'
//            status flags, 0 when every row was valid).
//   checkpoint  "<output>.ckpt" unless named: the number of sequences whose
//            lines are in the output and the output's length then, written
//            atomically (temporary file, fsync, rename) after the output is
//            fsync'd.
//
// A job killed at any moment (kill -9 included) and run again with the same
// source, parameters and paths resumes: it truncates the output to the
// checkpointed length, skips the checkpointed sequences in the source, and
// finishes with an output byte-identical to an uninterrupted run's, no
// sequence scored twice. A checkpoint written for other parameters or
// another source (JobOptions::fingerprint) is refused, not resumed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "linalign/batcher.hpp"
#include "linalign/linalign.hpp"

namespace linalign {

// One sequence's rows: [rows, vocab] base and principle logits (contiguous,
// in the memory the Batcher's backend reads), targets[rows] (host memory).
struct ScoreSequence {
  DType dtype = DType::kF32;
  int64_t vocab = 0;
  int64_t rows = 0;
  const void* base = nullptr;
  const void* principle = nullptr;
  const int32_t* targets = nullptr;
};

class ScoreSource {
 public:
  virtual ~ScoreSource() = default;
  // The next sequences, in order, into *chunk (empty at the end). Their
  // memory stays valid until the next call of next() or skip().
  virtual Status next(std::vector<ScoreSequence>* chunk, std::string* error) = 0;
  // On resume, before the first next(): skips up to `sequences` sequences
  // cheaply (without reading their logits) and returns how many; the job
  // drops the rest from what next() returns. The default skips none.
  virtual uint64_t skip(uint64_t sequences);
  // Rows in the whole source, for the progress ETA; -1 when unknown.
  virtual int64_t total_rows() const { return -1; }
};

struct JobProgress {
  uint64_t sequences_done = 0;  // lines in the output (this run and before)
  int64_t rows_done = 0;        // rows scored by this run
  int64_t total_rows = -1;      // from ScoreSource::total_rows (rows of this run's part)
  double rows_per_s = 0;        // this run's
  double eta_s = -1;            // -1 when unknown
  bool finished = false;        // the last report
};

struct JobOptions {
  Params params;                // scalars, as for Batcher::open
  std::string output_path;      // required
  std::string checkpoint_path;  // "" = output_path + ".ckpt"
  // Names the job's source and parameters; a checkpoint with another one is
  // refused (kInvalidArgument) instead of resumed.
  std::string fingerprint;
  uint64_t checkpoint_every = 256;  // sequences between checkpoints (≥ 1)
  // Called from the job's thread at most every progress_interval_s, and
  // once at the end (finished = true).
  std::function<void(const JobProgress&)> progress;
  double progress_interval_s = 0.5;
};

struct JobReport {
  uint64_t sequences = 0;     // lines in the output at the end
  uint64_t resumed_from = 0;  // sequences the checkpoint already held
  int64_t rows = 0;           // rows scored by this run
  double seconds = 0;
};

// Runs the job to the end of the source. The batcher must outlive the call
// and may serve other requests meanwhile. Errors: kInvalidArgument (bad
// options, a fingerprint mismatch, a sequence the batcher refuses — the
// message names its index), the source's status, kInternal for an output or
// checkpoint that cannot be written (the message names the file and errno).
// On any error the checkpoint still describes a consistent prefix.
Status run_score_job(Batcher& batcher, ScoreSource& source, const JobOptions& options,
                     JobReport* report = nullptr, std::string* error = nullptr);

}  // namespace linalign
