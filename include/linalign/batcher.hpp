// linalign host API: decoding requests and dynamic batching.
//
// The kernel-level calls of linalign.hpp (Context::align / sample / score)
// are stateless and take a whole batch; an engine that owns its batching calls
// them directly. A Batcher is for callers that do not: many threads, each
// driving its own decoding requests, submit one step at a time; the batcher
// collects the steps into batches (one Context call with per-row parameter
// arrays each) and answers every step with a future or a callback.
//
//   auto ctx = ...;                                  // linalign::Context::create
//   std::unique_ptr<linalign::Batcher> b;
//   linalign::Batcher::create(*ctx, {}, &b);         // BatcherOptions defaults
//   linalign::Params p;                              // scalars: the request's parameters
//   p.top_p = 0.9f;  p.seed = 1234;
//   linalign::RequestId req;
//   b->open(p, &req);
//   for (;;) {                                       // one decoding step
//     linalign::Step s = linalign::Step::sample(req, {dtype, V, z_row, y_row});
//     linalign::Submission sub;
//     if (b->submit(std::move(s), &sub) != linalign::Status::kSuccess) break;  // refused
//     linalign::StepResult r = sub.result.get();     // token, logprob, diagnostics
//     ...
//   }
//   b->close(req);
//
// Guarantees (docs/SEMANTICS.md "Requests and batching"):
//   * A request's sampled tokens do not depend on the batch: every row of a
//     batch brings its own seed (SPEC §4: sub-stream 0) and its own offset,
//     the request's step counter, which the batcher assigns (the request's
//     first offset, params.offset, then +1 per accepted sample step). A step's
//     result is bit-identical to a direct one-row Context call with the same
//     rows, the request's parameters and that offset.
//   * A step with a bad argument is refused by submit() with the status and
//     message the direct call would give (SPEC §5), before it is queued; it
//     never reaches a batch and never fails its neighbours.
//   * Every accepted step is answered exactly once: computed (kSuccess; row
//     errors show in its diagnostics, as in a direct call), kCancelled,
//     kDeadlineExceeded, or kShutdown.
//   * The logit rows (and an align step's output row) are the caller's memory,
//     read (written) by the batch: they must stay valid until the step is
//     answered. The batcher copies nothing but the pointers.
//
// Threads: every member function may be called from any thread, concurrently.
// Callbacks run on the batcher's dispatch thread: keep them short, and do not
// call submit() with SubmitMode::kBlock from one (it could wait on itself).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>

#include "linalign/linalign.hpp"

namespace linalign {

// A decoding request: 0 is never a valid id.
using RequestId = uint64_t;

// What the batcher does when its queue is full.
enum class SubmitMode : int32_t {
  kBlock = 0,    // wait until there is room (or shutdown)
  kTry = 1,      // return kQueueFull at once
  kTimeout = 2,  // wait up to BatcherOptions::submit_timeout, then kQueueFull
};

enum class ShutdownMode : int32_t {
  kDrain = 0,  // run every pending step, then stop
  kFail = 1,   // answer every pending step kShutdown (a batch already running completes)
};

struct BatcherOptions {
  int32_t max_rows = 64;          // rows per batch (one Context call), ≥ 1
  int64_t max_wait_us = 200;      // how long the first step of a batch waits for company, ≥ 0
  int64_t queue_capacity = 4096;  // accepted steps not yet in a batch, ≥ 1
  std::chrono::microseconds submit_timeout{1000};  // SubmitMode::kTimeout
  // Batches in flight at once, in [1, 64]: on CUDA, one stream (with its own
  // pinned staging, device buffers and workspace) each, so a batch's copies
  // and kernels overlap the next one's; the CPU backend runs one at a time.
  int32_t streams = 2;
};

// The two logit rows of one step — host memory for the CPU backend; device,
// managed or mapped pinned memory for CUDA (checked at submission) — base z
// and principle y, `vocab` elements of `dtype` each. A row of a shared
// [2B, V] buffer is just its two row pointers.
struct StepRows {
  DType dtype = DType::kF32;
  int64_t vocab = 0;
  const void* base = nullptr;
  const void* principle = nullptr;
};

enum class StepKind : int32_t { kSample = 0, kAlign = 1, kScore = 2 };

struct StepResult;

// One step of one request. Build it with the named constructors.
struct Step {
  RequestId request = 0;
  StepKind kind = StepKind::kSample;
  StepRows rows;
  float* aligned = nullptr;  // kAlign: ℓ* of the row, `vocab` floats (memory as for the rows)
  int32_t target = 0;        // kScore: the target token (or params.ignore_index)
  // The step fails with kDeadlineExceeded if it has not started by then.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // Optional: called once with the result (on the dispatch thread) instead of
  // the Submission's future being set. Must not throw.
  std::function<void(const StepResult&)> callback;

  static Step sample(RequestId r, const StepRows& rows) { return make(r, StepKind::kSample, rows); }
  static Step align(RequestId r, const StepRows& rows, float* out) {
    Step s = make(r, StepKind::kAlign, rows);
    s.aligned = out;
    return s;
  }
  static Step score(RequestId r, const StepRows& rows, int32_t target) {
    Step s = make(r, StepKind::kScore, rows);
    s.target = target;
    return s;
  }

 private:
  static Step make(RequestId r, StepKind k, const StepRows& rows) {
    Step s;
    s.request = r;
    s.kind = k;
    s.rows = rows;
    return s;
  }
};

struct StepResult {
  Status status = Status::kSuccess;  // kSuccess, kCancelled, kDeadlineExceeded, kShutdown, or
                                     // the batch call's status (kInternal: please report)
  std::string message;               // why, when status is not kSuccess
  uint64_t ticket = 0;               // the submission this answers
  uint64_t offset = 0;               // the Philox offset the step used (sample steps)
  int32_t token = -1;                // kSample: the token (−1 for an invalid row)
  float logprob = 0.f;               // kSample: ℓ*_token; kScore: ℓ*_target
  float score_base = 0.f;            // kScore: log π(target)
  float score_principle = 0.f;       // kScore: log πᵖ(target)
  RowDiagnostics diagnostics{};      // η, μ, σ, KL, H, support, row status
  // The batch the step ran in (computed steps): its number (1, 2, ... in
  // start order), its rows, the slot (CUDA: stream) it ran on, when it was
  // started (its copies and kernels enqueued) and when its outputs were back.
  // Consecutive batches overlap when one starts before the previous finishes.
  uint64_t batch = 0;
  int32_t batch_rows = 0;
  int32_t slot = 0;
  std::chrono::steady_clock::time_point batch_started{}, batch_finished{};
};

// What submit() gives back for an accepted step.
struct Submission {
  uint64_t ticket = 0;             // for cancel()
  std::future<StepResult> result;  // valid unless the step has a callback
};

// Counters since creation. submitted = completed + cancelled + deadline +
// failed + pending, at any moment (refused submissions are not submitted).
struct BatcherStats {
  uint64_t submitted = 0, completed = 0, cancelled = 0, deadline_exceeded = 0, failed = 0;
  uint64_t pending = 0;  // accepted, not yet answered
  uint64_t refused = 0;  // submit() returned an error
  uint64_t batches = 0, batched_rows = 0;
};

class Batcher {
 public:
  // A batcher over `ctx`'s backend, which must outlive it. It runs its
  // batches from its own threads with its own workspaces (and, on CUDA, its
  // own streams, pinned staging and device buffers); do not call ctx from
  // other threads meanwhile. kInvalidArgument for bad options; kCudaError if
  // the streams cannot be created.
  static Status create(Context& ctx, const BatcherOptions& options, std::unique_ptr<Batcher>* out,
                       std::string* error = nullptr);
  ~Batcher();  // shutdown(kDrain)
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Opens a request with `params`: scalars only (every PerRow::values null);
  // params.offset is its first step's Philox offset. The parameters are
  // checked as a call would check them: kInvalidArgument naming the bad one.
  Status open(const Params& params, RequestId* out, std::string* error = nullptr);
  // No more steps for `id`; its pending steps still run. kInvalidArgument for
  // an unknown or closed id.
  Status close(RequestId id, std::string* error = nullptr);

  // Queues one step. kSuccess: *out holds the ticket (and the future, unless
  // the step has a callback). Otherwise nothing is queued and nothing will be
  // answered: kInvalidArgument / kNotSupported as the direct call would
  // return them (an unknown or closed request too), kQueueFull (kTry, or
  // kTimeout after the wait), kShutdown.
  Status submit(Step step, Submission* out, std::string* error = nullptr,
                SubmitMode mode = SubmitMode::kBlock);

  // Cancels a step not yet in a running batch: it is answered kCancelled
  // (now, on this thread) and true is returned; false when it has already
  // started or been answered.
  bool cancel(uint64_t ticket);

  // Stops accepting steps (submit returns kShutdown) and drains or fails the
  // pending ones; returns when every accepted step has been answered and the
  // dispatch thread has stopped. Idempotent.
  void shutdown(ShutdownMode mode = ShutdownMode::kDrain);

  BatcherStats stats() const;

  struct Impl;

 private:
  explicit Batcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace linalign
