// libFuzzer target: the batcher's C API (linalign.h, the host API) driven by
// bytes from two threads at once.
//
// The input picks the batcher's options, then each byte group is one action
// of thread (group index) % 2: open a request (parameters sometimes out of
// range), submit a step to one of the thread's requests or a bogus one (any
// kind, dtype, V, deadline, submit mode, callback or wait), cancel one of
// its tickets, wait for one, close a request, or shut the batcher down
// (drain or fail). Properties, on every input:
//   * every accepted step is answered exactly once: a callback runs once, a
//     wait returns its answer once (a second wait is INVALID_ARGUMENT);
//   * an answer's status is one the step could get: CANCELLED only if
//     linalign_cancel said 1 (and then always), DEADLINE_EXCEEDED only with
//     a deadline, SHUTDOWN only after a shutdown; a computed sample step has
//     a token in [0, V) and a finite log-prob (its rows are finite);
//   * the statistics add up: submitted = completed + cancelled +
//     deadline_exceeded + failed + pending, pending = 0 after shutdown,
//     submitted and refused equal what the threads saw;
//   * no crash, no race the sanitizers see, and no leak at exit
//     (LeakSanitizer, after linalign_batcher_destroy).
#include <atomic>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_handle.hpp"
#include "fuzz_input.hpp"
#include "linalign/linalign.h"

namespace {

using linalign_fuzz::FuzzInput;

// Answers that came by callback: ticket → how many times, and the result.
struct Answers {
  std::mutex mu;
  std::map<uint64_t, int> count;
  std::map<uint64_t, linalign_step_result_t> result;
};

void on_answer(const linalign_step_result_t* r, void* user) {
  auto* a = static_cast<Answers*>(user);
  std::lock_guard<std::mutex> lock(a->mu);
  ++a->count[r->ticket];
  a->result[r->ticket] = *r;
}

struct Accepted {
  uint64_t ticket;
  int32_t kind;
  int64_t vocab;
  bool callback, deadline;
  bool cancelled = false, waited = false;
};

struct Shared {
  linalign_batcher_t b = nullptr;
  std::atomic<bool> shut{false};
  std::atomic<uint64_t> accepted{0}, refused{0};
  Answers answers;
};

// Rows of a step: finite normal-ish values, alive until the end of the input.
struct Rows {
  std::vector<float> z, y, out;
};

void check_answer(const Accepted& s, const linalign_step_result_t& r, bool shut_seen) {
  const std::string ctx = "ticket " + std::to_string(s.ticket) + " status " +
                          std::to_string(int(r.status)) + " kind " + std::to_string(s.kind);
  LINALIGN_FUZZ_CHECK(r.ticket == s.ticket, "answered with another ticket: " + ctx);
  switch (r.status) {
    case LINALIGN_SUCCESS:
      LINALIGN_FUZZ_CHECK(!s.cancelled, "a cancelled step was computed: " + ctx);
      // The rows are finite, so the only flag a row can earn is OVERFLOW, from
      // a request's extreme temperature (1e-38, 1e-45: z/T leaves fp32).
      LINALIGN_FUZZ_CHECK(
          r.diagnostics.status == 0 || r.diagnostics.status == LINALIGN_ROW_OVERFLOW,
          "a finite row was flagged " + std::to_string(r.diagnostics.status) + ": " + ctx);
      if (s.kind == LINALIGN_STEP_SAMPLE && r.diagnostics.status == 0)
        LINALIGN_FUZZ_CHECK(r.token >= 0 && r.token < s.vocab && std::isfinite(r.logprob),
                            "a computed sample step without a token: " + ctx);
      if (s.kind == LINALIGN_STEP_SAMPLE && r.diagnostics.status != 0)
        LINALIGN_FUZZ_CHECK(r.token == -1 && std::isnan(r.logprob),
                            "a flagged sample step with a token: " + ctx);
      if (s.kind == LINALIGN_STEP_SCORE && r.diagnostics.status == 0)
        LINALIGN_FUZZ_CHECK(!std::isnan(r.logprob),
                            "a computed score step without a score: " + ctx);
      break;
    case LINALIGN_CANCELLED:
      LINALIGN_FUZZ_CHECK(s.cancelled, "answered CANCELLED without a cancel: " + ctx);
      break;
    case LINALIGN_DEADLINE_EXCEEDED:
      LINALIGN_FUZZ_CHECK(s.deadline && !s.cancelled, "a deadline it did not have: " + ctx);
      break;
    case LINALIGN_SHUTDOWN:
      LINALIGN_FUZZ_CHECK(shut_seen && !s.cancelled,
                          "answered SHUTDOWN without a shutdown: " + ctx);
      break;
    default:
      linalign_fuzz::fail("an unexpected status", ctx);
  }
  if (s.cancelled) LINALIGN_FUZZ_CHECK(r.status == LINALIGN_CANCELLED, "cancel said 1 but: " + ctx);
}

// One thread's actions: its bytes are every other group of the input.
void drive(Shared& sh, const std::vector<uint8_t>& bytes, std::vector<Accepted>* mine,
           std::deque<Rows>* rows) {
  FuzzInput in(bytes.data(), bytes.size());
  std::vector<linalign_request_t> requests;
  while (in.left() > 0) {
    const uint8_t action = in.byte() % 16;
    if (action < 2) {  // open
      linalign_params_t p = LINALIGN_PARAMS_INIT;
      p.temperature = in.param(0.1f, 2.f);
      p.top_p = in.flag() ? 1.f : in.param(0.05f, 1.f);
      p.top_k = in.flag() ? 0 : in.param_i32(0, 8);
      p.seed = in.u32();
      p.offset = in.byte();
      p.greedy = in.flag();
      linalign_request_t req = 0;
      if (linalign_request_open(sh.b, &p, &req) == LINALIGN_SUCCESS) {
        LINALIGN_FUZZ_CHECK(req != 0, "request 0 opened");
        requests.push_back(req);
      }
    } else if (action < 10) {  // submit
      linalign_step_t s = LINALIGN_STEP_INIT;
      const uint8_t k = in.byte();
      s.request = requests.empty() || k == 255 ? linalign_request_t(in.u16()) + 1000000
                                               : requests[k % requests.size()];
      const uint8_t kind = in.byte();
      s.kind = kind < 250 ? int32_t(kind % 3) : int32_t(kind) - 240;
      s.dtype = LINALIGN_DTYPE_F32;
      const uint8_t v = in.byte();
      s.vocab = v == 255 ? 0 : 1 + int64_t(v % 48);
      rows->emplace_back();
      Rows& r = rows->back();
      const size_t n = size_t(s.vocab > 0 ? s.vocab : 1);
      r.z.resize(n);
      r.y.resize(n);
      r.out.resize(n);
      for (size_t i = 0; i < n; ++i) {
        r.z[i] = float(int(in.byte()) - 128) / 16.f;
        r.y[i] = float(int(in.byte()) - 128) / 16.f;
      }
      s.base = in.byte() == 255 ? nullptr : r.z.data();
      s.principle = r.y.data();
      s.aligned = s.kind == LINALIGN_STEP_ALIGN && in.byte() != 255 ? r.out.data() : nullptr;
      const uint8_t t = in.byte();
      s.target = t < 240 ? int32_t(t % n) : t == 240 ? -100 : int32_t(n) + t % 3;
      const uint8_t d = in.byte();
      s.timeout_us = d < 200 ? -1 : int64_t(d - 200) * 20;
      const bool callback = in.flag();
      if (callback) {
        s.callback = on_answer;
        s.user_data = &sh.answers;
      }
      const uint8_t m = in.byte();
      const int32_t mode = m < 252 ? int32_t(m % 3) : 7;
      uint64_t ticket = 0;
      const linalign_status_t st = linalign_submit(sh.b, &s, mode, &ticket);
      if (st == LINALIGN_SUCCESS) {
        ++sh.accepted;
        mine->push_back({ticket, s.kind, s.vocab, callback, s.timeout_us >= 0});
      } else {
        ++sh.refused;
        LINALIGN_FUZZ_CHECK(st != LINALIGN_SHUTDOWN || sh.shut.load(),
                            "refused SHUTDOWN before any shutdown");
        LINALIGN_FUZZ_CHECK(*linalign_last_error(nullptr) != '\0' || st == LINALIGN_QUEUE_FULL ||
                                st == LINALIGN_SHUTDOWN,
                            "a refusal without a message, status " + std::to_string(int(st)));
      }
    } else if (action < 12) {  // cancel
      if (!mine->empty()) {
        Accepted& a = (*mine)[in.byte() % mine->size()];
        if (linalign_cancel(sh.b, a.ticket) == 1) {
          LINALIGN_FUZZ_CHECK(!a.cancelled, "a step cancelled twice");
          a.cancelled = true;
        }
      }
    } else if (action < 14) {  // wait
      if (!mine->empty()) {
        Accepted& a = (*mine)[in.byte() % mine->size()];
        if (!a.callback) {
          linalign_step_result_t r = LINALIGN_STEP_RESULT_INIT;
          const linalign_status_t st = linalign_wait(sh.b, a.ticket, &r);
          if (a.waited) {
            LINALIGN_FUZZ_CHECK(st == LINALIGN_INVALID_ARGUMENT, "a ticket waited for twice");
          } else {
            LINALIGN_FUZZ_CHECK(st == LINALIGN_SUCCESS, "wait failed on an accepted ticket");
            a.waited = true;
            check_answer(a, r, sh.shut.load());
          }
        }
      }
    } else if (action == 14) {  // close
      if (!requests.empty()) linalign_request_close(sh.b, requests[in.byte() % requests.size()]);
    } else if (in.byte() % 8 == 0) {  // shutdown, now and then
      sh.shut = true;
      linalign_batcher_shutdown(sh.b, in.flag() ? LINALIGN_SHUTDOWN_FAIL : LINALIGN_SHUTDOWN_DRAIN);
    }
  }
}

linalign_handle_t handle() {
  static linalign_handle_t h = linalign_fuzz::make_handle(LINALIGN_BACKEND_CPU, 1);
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzInput in(data, size);
  linalign_batcher_options_t o = LINALIGN_BATCHER_OPTIONS_INIT;
  o.max_rows = 1 + int32_t(in.byte() % 8);
  o.streams = 1 + int32_t(in.byte() % 3);
  o.max_wait_us = int64_t(in.byte()) * 4;
  o.queue_capacity = 1 + int64_t(in.byte() % 16);
  o.submit_timeout_us = int64_t(in.byte()) * 8;
  Shared sh;
  if (linalign_batcher_create(handle(), &o, &sh.b) != LINALIGN_SUCCESS)
    linalign_fuzz::fail("batcher_create refused valid options", linalign_last_error(nullptr));
  // Groups of 24 bytes, alternately to each thread.
  std::vector<uint8_t> part[2];
  for (size_t g = 0; in.left() > 0; ++g)
    for (int k = 0; k < 24 && in.left() > 0; ++k) part[g % 2].push_back(in.byte());
  std::vector<Accepted> mine[2];
  std::deque<Rows> rows[2];
  std::thread other(drive, std::ref(sh), std::cref(part[1]), &mine[1], &rows[1]);
  drive(sh, part[0], &mine[0], &rows[0]);
  other.join();

  // Every accepted step answered once: drain, then collect the waits.
  linalign_batcher_shutdown(sh.b, LINALIGN_SHUTDOWN_DRAIN);
  const bool shut_seen = sh.shut.load();
  for (auto& list : mine)
    for (Accepted& a : list) {
      if (a.callback) {
        std::lock_guard<std::mutex> lock(sh.answers.mu);
        LINALIGN_FUZZ_CHECK(sh.answers.count[a.ticket] == 1,
                            "a callback ran " + std::to_string(sh.answers.count[a.ticket]) +
                                " times for ticket " + std::to_string(a.ticket));
        check_answer(a, sh.answers.result[a.ticket], shut_seen);
      } else if (!a.waited) {
        linalign_step_result_t r = LINALIGN_STEP_RESULT_INIT;
        LINALIGN_FUZZ_CHECK(linalign_wait(sh.b, a.ticket, &r) == LINALIGN_SUCCESS,
                            "wait failed after shutdown");
        check_answer(a, r, shut_seen);
      }
    }
  linalign_batcher_stats_t st;
  st.struct_size = sizeof st;
  LINALIGN_FUZZ_CHECK(linalign_batcher_get_stats(sh.b, &st) == LINALIGN_SUCCESS,
                      "get_stats failed");
  const std::string counts =
      "submitted " + std::to_string(st.submitted) + " completed " + std::to_string(st.completed) +
      " cancelled " + std::to_string(st.cancelled) + " deadline " +
      std::to_string(st.deadline_exceeded) + " failed " + std::to_string(st.failed) + " pending " +
      std::to_string(st.pending) + " refused " + std::to_string(st.refused) + "; accepted " +
      std::to_string(sh.accepted.load()) + " refused " + std::to_string(sh.refused.load());
  LINALIGN_FUZZ_CHECK(
      st.submitted == st.completed + st.cancelled + st.deadline_exceeded + st.failed + st.pending,
      "the counts do not add up: " + counts);
  LINALIGN_FUZZ_CHECK(st.pending == 0, "steps pending after shutdown: " + counts);
  LINALIGN_FUZZ_CHECK(st.submitted == sh.accepted.load() && st.refused == sh.refused.load(),
                      "the counts differ from the threads': " + counts);
  linalign_batcher_destroy(sh.b);
  return 0;
}
