// The C API of the host API (include/linalign/linalign.h, "The host API")
// over linalign::Batcher. As in c_api.cpp: every entry point is noexcept,
// checks only what is C-specific (NULL pointers, struct_size, enum values,
// tickets) and forwards; every other error and result is the C++ API's.
// Errors go to the calling thread's message (linalign_last_error(NULL)):
// many threads share one batcher.
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "c_api_support.hpp"
#include "linalign/batcher.hpp"
#include "linalign/linalign.h"

// A Batcher plus the futures of the steps submitted without a callback,
// until linalign_wait collects them.
struct linalign_batcher_s {
  std::unique_ptr<linalign::Batcher> batcher;
  std::mutex mu;
  std::unordered_map<uint64_t, std::future<linalign::StepResult>> futures;
  // Submissions this layer refused before the C++ batcher saw them (a bad
  // mode, step struct or ticket pointer): counted into stats.refused.
  std::atomic<uint64_t> refused_here{0};
};

namespace {

using namespace linalign::c_api;  // NOLINT: the entry points' shared vocabulary

static_assert(static_cast<int>(linalign::StepKind::kSample) == LINALIGN_STEP_SAMPLE, "kind");
static_assert(static_cast<int>(linalign::StepKind::kAlign) == LINALIGN_STEP_ALIGN, "kind");
static_assert(static_cast<int>(linalign::StepKind::kScore) == LINALIGN_STEP_SCORE, "kind");
static_assert(static_cast<int>(linalign::SubmitMode::kBlock) == LINALIGN_SUBMIT_BLOCK, "mode");
static_assert(static_cast<int>(linalign::SubmitMode::kTry) == LINALIGN_SUBMIT_TRY, "mode");
static_assert(static_cast<int>(linalign::SubmitMode::kTimeout) == LINALIGN_SUBMIT_TIMEOUT, "mode");
static_assert(static_cast<int>(linalign::ShutdownMode::kDrain) == LINALIGN_SHUTDOWN_DRAIN, "mode");
static_assert(static_cast<int>(linalign::ShutdownMode::kFail) == LINALIGN_SHUTDOWN_FAIL, "mode");
static_assert(offsetof(linalign_batcher_options_t, struct_size) == 0, "struct_size first");
static_assert(offsetof(linalign_step_t, struct_size) == 0, "struct_size first");
static_assert(offsetof(linalign_step_result_t, struct_size) == 0, "struct_size first");
static_assert(offsetof(linalign_batcher_stats_t, struct_size) == 0, "struct_size first");

// Runs `body` with the thread's message cleared; a NULL batcher is
// INVALID_ARGUMENT, an exception INTERNAL. `body` takes the EntryPoint.
template <class BodyT>
linalign_status_t guarded_batcher(linalign_batcher_t b, const char* name, BodyT&& body) noexcept {
  const EntryPoint call{nullptr, name};
  try {
    clear(nullptr);
    if (b == nullptr)
      return fail(call, LINALIGN_INVALID_ARGUMENT,
                  "batcher is NULL (create one with linalign_batcher_create)");
    return body(call);
  } catch (const std::bad_alloc&) {
    record(nullptr, "linalign: out of host memory");
  } catch (...) {
    record(nullptr, "linalign internal error: an exception escaped the host API (please report)");
  }
  return LINALIGN_INTERNAL;
}

// The C++ API's status and message as the C call's.
linalign_status_t forward_error(const EntryPoint& call, Status s, const std::string& message) {
  if (s == Status::kSuccess) return LINALIGN_SUCCESS;
  return fail(call, to_c(s), message.empty() ? linalign::status_string(s) : message);
}

void to_c_result(const linalign::StepResult& r, linalign_step_result_t* out) {
  const linalign_step_result_t defaults = LINALIGN_STEP_RESULT_INIT;
  *out = defaults;
  out->status = to_c(r.status);
  out->token = r.token;
  out->ticket = r.ticket;
  out->offset = r.offset;
  out->logprob = r.logprob;
  out->score_base = r.score_base;
  out->score_principle = r.score_principle;
  std::memcpy(&out->diagnostics, &r.diagnostics, sizeof out->diagnostics);
}

linalign_status_t to_step(const EntryPoint& call, const linalign_step_t* s, linalign::Step* out) {
  const linalign_status_t st = check_struct(call, s, "step", "LINALIGN_STEP_INIT");
  if (st != LINALIGN_SUCCESS) return st;
  if (s->kind < LINALIGN_STEP_SAMPLE || s->kind > LINALIGN_STEP_SCORE)
    return fail(call, LINALIGN_INVALID_ARGUMENT,
                "step.kind " + std::to_string(s->kind) + " is not a linalign_step_kind_t");
  if (s->reserved != 0) return fail(call, LINALIGN_INVALID_ARGUMENT, "step.reserved must be 0");
  linalign::Step x;
  x.request = s->request;
  x.kind = static_cast<linalign::StepKind>(s->kind);
  x.rows = linalign::StepRows{static_cast<DType>(s->dtype), s->vocab, s->base, s->principle};
  x.aligned = s->aligned;
  x.target = s->target;
  if (s->timeout_us >= 0)
    x.deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(s->timeout_us);
  if (s->callback != nullptr) {
    const linalign_step_callback_t cb = s->callback;
    void* const user = s->user_data;
    x.callback = [cb, user](const linalign::StepResult& r) {
      linalign_step_result_t c;
      to_c_result(r, &c);
      cb(&c, user);
    };
  }
  *out = std::move(x);
  return LINALIGN_SUCCESS;
}

}  // namespace

extern "C" {

void linalign_batcher_options_init(linalign_batcher_options_t* options) noexcept {
  if (options == nullptr) return;
  const linalign_batcher_options_t defaults = LINALIGN_BATCHER_OPTIONS_INIT;
  *options = defaults;
}

void linalign_step_init(linalign_step_t* step) noexcept {
  if (step == nullptr) return;
  const linalign_step_t defaults = LINALIGN_STEP_INIT;
  *step = defaults;
}

linalign_status_t linalign_batcher_create(linalign_handle_t handle,
                                          const linalign_batcher_options_t* options,
                                          linalign_batcher_t* out) noexcept {
  const EntryPoint call{nullptr, "linalign_batcher_create"};
  try {
    clear(nullptr);
    if (out == nullptr) return fail(call, LINALIGN_INVALID_ARGUMENT, "out is NULL");
    *out = nullptr;
    if (handle == nullptr)
      return fail(call, LINALIGN_INVALID_ARGUMENT,
                  "handle is NULL (create one with linalign_create)");
    linalign_batcher_options_t o = LINALIGN_BATCHER_OPTIONS_INIT;
    if (options != nullptr) {
      const linalign_status_t s =
          check_struct(call, options, "options", "LINALIGN_BATCHER_OPTIONS_INIT");
      if (s != LINALIGN_SUCCESS) return s;
      o = *options;
    }
    linalign::BatcherOptions x;
    x.max_rows = o.max_rows;
    x.streams = o.streams;
    x.max_wait_us = o.max_wait_us;
    x.queue_capacity = o.queue_capacity;
    x.submit_timeout = std::chrono::microseconds(o.submit_timeout_us);
    std::unique_ptr<linalign_batcher_s> b(new linalign_batcher_s);
    std::string message;
    const Status s = linalign::Batcher::create(*handle->context, x, &b->batcher, &message);
    if (s != Status::kSuccess) return forward_error(call, s, message);
    *out = b.release();
    return LINALIGN_SUCCESS;
  } catch (const std::bad_alloc&) {
    record(nullptr, "linalign_batcher_create: out of host memory");
  } catch (...) {
    record(nullptr, "linalign internal error in linalign_batcher_create (please report)");
  }
  return LINALIGN_INTERNAL;
}

void linalign_batcher_destroy(linalign_batcher_t batcher) noexcept {
  if (batcher == nullptr) return;
  try {
    batcher->batcher->shutdown(linalign::ShutdownMode::kDrain);
  } catch (...) {
    // shutdown does not throw; nothing to report to a void function
  }
  delete batcher;
}

linalign_status_t linalign_batcher_shutdown(linalign_batcher_t batcher, int32_t mode) noexcept {
  return guarded_batcher(
      batcher, "linalign_batcher_shutdown", [&](const EntryPoint& call) -> linalign_status_t {
        if (mode != LINALIGN_SHUTDOWN_DRAIN && mode != LINALIGN_SHUTDOWN_FAIL)
          return fail(call, LINALIGN_INVALID_ARGUMENT,
                      "mode " + std::to_string(mode) + " is not a linalign_shutdown_mode_t");
        batcher->batcher->shutdown(static_cast<linalign::ShutdownMode>(mode));
        return LINALIGN_SUCCESS;
      });
}

linalign_status_t linalign_batcher_get_stats(linalign_batcher_t batcher,
                                             linalign_batcher_stats_t* stats) noexcept {
  return guarded_batcher(
      batcher, "linalign_batcher_get_stats", [&](const EntryPoint& call) -> linalign_status_t {
        const linalign_status_t s =
            check_struct(call, stats, "stats", "struct_size = sizeof(linalign_batcher_stats_t)");
        if (s != LINALIGN_SUCCESS) return s;
        const linalign::BatcherStats x = batcher->batcher->stats();
        stats->submitted = x.submitted;
        stats->completed = x.completed;
        stats->cancelled = x.cancelled;
        stats->deadline_exceeded = x.deadline_exceeded;
        stats->failed = x.failed;
        stats->pending = x.pending;
        stats->refused = x.refused + batcher->refused_here.load();
        stats->batches = x.batches;
        stats->batched_rows = x.batched_rows;
        return LINALIGN_SUCCESS;
      });
}

linalign_status_t linalign_request_open(linalign_batcher_t batcher, const linalign_params_t* params,
                                        linalign_request_t* out) noexcept {
  return guarded_batcher(
      batcher, "linalign_request_open", [&](const EntryPoint& call) -> linalign_status_t {
        if (out == nullptr) return fail(call, LINALIGN_INVALID_ARGUMENT, "out is NULL");
        *out = 0;
        linalign::Params p;
        const linalign_status_t s = to_params(call, params, &p);
        if (s != LINALIGN_SUCCESS) return s;
        std::string message;
        return forward_error(call, batcher->batcher->open(p, out, &message), message);
      });
}

linalign_status_t linalign_request_close(linalign_batcher_t batcher,
                                         linalign_request_t request) noexcept {
  return guarded_batcher(
      batcher, "linalign_request_close", [&](const EntryPoint& call) -> linalign_status_t {
        std::string message;
        return forward_error(call, batcher->batcher->close(request, &message), message);
      });
}

linalign_status_t linalign_submit(linalign_batcher_t batcher, const linalign_step_t* step,
                                  int32_t mode, uint64_t* ticket) noexcept {
  return guarded_batcher(
      batcher, "linalign_submit", [&](const EntryPoint& call) -> linalign_status_t {
        auto refuse = [&](linalign_status_t st) {
          ++batcher->refused_here;
          return st;
        };
        if (ticket == nullptr)
          return refuse(fail(call, LINALIGN_INVALID_ARGUMENT, "ticket is NULL"));
        *ticket = 0;
        if (mode < LINALIGN_SUBMIT_BLOCK || mode > LINALIGN_SUBMIT_TIMEOUT)
          return refuse(fail(call, LINALIGN_INVALID_ARGUMENT,
                             "mode " + std::to_string(mode) + " is not a linalign_submit_mode_t"));
        linalign::Step x;
        const linalign_status_t s = to_step(call, step, &x);
        if (s != LINALIGN_SUCCESS) return refuse(s);
        const bool has_callback = static_cast<bool>(x.callback);
        linalign::Submission sub;
        std::string message;
        const Status st = batcher->batcher->submit(std::move(x), &sub, &message,
                                                   static_cast<linalign::SubmitMode>(mode));
        if (st != Status::kSuccess) return forward_error(call, st, message);
        // Registered before this call returns the ticket: no other thread
        // can ask for it earlier.
        if (!has_callback) {
          std::lock_guard<std::mutex> lk(batcher->mu);
          batcher->futures.emplace(sub.ticket, std::move(sub.result));
        }
        *ticket = sub.ticket;
        return LINALIGN_SUCCESS;
      });
}

linalign_status_t linalign_wait(linalign_batcher_t batcher, uint64_t ticket,
                                linalign_step_result_t* result) noexcept {
  return guarded_batcher(
      batcher, "linalign_wait", [&](const EntryPoint& call) -> linalign_status_t {
        const linalign_status_t s =
            check_struct(call, result, "result", "LINALIGN_STEP_RESULT_INIT");
        if (s != LINALIGN_SUCCESS) return s;
        std::future<linalign::StepResult> f;
        {
          std::lock_guard<std::mutex> lk(batcher->mu);
          auto it = batcher->futures.find(ticket);
          if (it == batcher->futures.end())
            return fail(call, LINALIGN_INVALID_ARGUMENT,
                        "ticket " + std::to_string(ticket) +
                            " is not a step waiting to be collected (unknown, submitted with a "
                            "callback, or already collected)");
          f = std::move(it->second);
          batcher->futures.erase(it);
        }
        const size_t size = result->struct_size;
        to_c_result(f.get(), result);
        result->struct_size = size;
        return LINALIGN_SUCCESS;
      });
}

int linalign_cancel(linalign_batcher_t batcher, uint64_t ticket) noexcept {
  if (batcher == nullptr) return 0;
  try {
    return batcher->batcher->cancel(ticket) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

}  // extern "C"
