// The C API of the host API (linalign.h, "The host API"): every entry point
// validates its arguments (NULL pointers, struct_size, enum values, tickets)
// with a message naming the argument in the thread's linalign_last_error(NULL);
// results equal the C++ batcher's (and hence the direct call's); callbacks
// and linalign_wait both deliver each answer once.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "linalign/batcher.hpp"
#include "linalign/linalign.h"
#include "linalign/linalign.hpp"

namespace {

std::string last() {
  return linalign_last_error(nullptr);
}

struct Rows {
  int64_t V = 300;
  std::vector<float> z, y;
  Rows() : z(size_t(V)), y(size_t(V)) {
    std::mt19937 g(3);
    std::normal_distribution<float> nd(0.f, 2.f);
    for (int64_t i = 0; i < V; ++i) {
      z[size_t(i)] = nd(g);
      y[size_t(i)] = z[size_t(i)] + nd(g);
    }
  }
  linalign_step_t step(linalign_request_t req, int32_t kind) const {
    linalign_step_t s = LINALIGN_STEP_INIT;
    s.request = req;
    s.kind = kind;
    s.vocab = V;
    s.base = z.data();
    s.principle = y.data();
    return s;
  }
};

class CApiBatcher : public ::testing::Test {
 protected:
  void SetUp() override {
    linalign_config_t c = LINALIGN_CONFIG_INIT;
    c.num_threads = 1;
    ASSERT_EQ(linalign_create(&c, &handle), LINALIGN_SUCCESS) << last();
    linalign_batcher_options_t o = LINALIGN_BATCHER_OPTIONS_INIT;
    o.max_wait_us = 100;
    ASSERT_EQ(linalign_batcher_create(handle, &o, &batcher), LINALIGN_SUCCESS) << last();
  }
  void TearDown() override {
    linalign_batcher_destroy(batcher);
    linalign_destroy(handle);
  }
  linalign_handle_t handle = nullptr;
  linalign_batcher_t batcher = nullptr;
  Rows rows;
};

TEST_F(CApiBatcher, SampleEqualsTheDirectCall) {
  linalign_params_t p = LINALIGN_PARAMS_INIT;
  p.top_p = 0.8f;
  p.seed = 77;
  p.offset = 5;
  linalign_request_t req = 0;
  ASSERT_EQ(linalign_request_open(batcher, &p, &req), LINALIGN_SUCCESS) << last();
  EXPECT_NE(req, 0u);
  for (int k = 0; k < 3; ++k) {
    const linalign_step_t s = rows.step(req, LINALIGN_STEP_SAMPLE);
    uint64_t ticket = 0;
    ASSERT_EQ(linalign_submit(batcher, &s, LINALIGN_SUBMIT_BLOCK, &ticket), LINALIGN_SUCCESS)
        << last();
    linalign_step_result_t r = LINALIGN_STEP_RESULT_INIT;
    ASSERT_EQ(linalign_wait(batcher, ticket, &r), LINALIGN_SUCCESS) << last();
    EXPECT_EQ(r.status, LINALIGN_SUCCESS);
    EXPECT_EQ(r.ticket, ticket);
    EXPECT_EQ(r.offset, 5u + uint64_t(k));
    // The direct C call at that offset.
    linalign_logits_t v = LINALIGN_LOGITS_INIT;
    v.rows = 1;
    v.vocab = rows.V;
    v.base = rows.z.data();
    v.principle = rows.y.data();
    linalign_params_t q = p;
    q.offset = r.offset;
    int32_t token = -2;
    float lp = 0.f;
    linalign_row_diagnostics_t d;
    ASSERT_EQ(linalign_sample(handle, &v, &q, &token, &lp, &d, nullptr, 0, nullptr),
              LINALIGN_SUCCESS);
    EXPECT_EQ(r.token, token);
    EXPECT_EQ(std::memcmp(&r.logprob, &lp, 4), 0);
    EXPECT_EQ(std::memcmp(&r.diagnostics, &d, sizeof d), 0);
    // Collected once.
    EXPECT_EQ(linalign_wait(batcher, ticket, &r), LINALIGN_INVALID_ARGUMENT);
    EXPECT_NE(last().find("ticket"), std::string::npos) << last();
  }
  EXPECT_EQ(linalign_request_close(batcher, req), LINALIGN_SUCCESS);
  EXPECT_EQ(linalign_request_close(batcher, req), LINALIGN_INVALID_ARGUMENT);
}

TEST_F(CApiBatcher, CallbacksAlignAndScore) {
  linalign_request_t req = 0;
  ASSERT_EQ(linalign_request_open(batcher, nullptr, &req), LINALIGN_SUCCESS) << last();
  struct Seen {
    std::atomic<int> calls{0};
    linalign_step_result_t r;
  } seen;
  auto cb = [](const linalign_step_result_t* r, void* user) {
    auto* s = static_cast<Seen*>(user);
    s->r = *r;
    s->calls.fetch_add(1);
  };
  linalign_step_t s = rows.step(req, LINALIGN_STEP_SCORE);
  s.target = 7;
  s.callback = cb;
  s.user_data = &seen;
  uint64_t ticket = 0;
  ASSERT_EQ(linalign_submit(batcher, &s, LINALIGN_SUBMIT_BLOCK, &ticket), LINALIGN_SUCCESS);
  linalign_step_result_t r = LINALIGN_STEP_RESULT_INIT;
  EXPECT_EQ(linalign_wait(batcher, ticket, &r), LINALIGN_INVALID_ARGUMENT);  // a callback step
  std::vector<float> out(size_t(rows.V), 0.f);
  linalign_step_t a = rows.step(req, LINALIGN_STEP_ALIGN);
  a.aligned = out.data();
  uint64_t t2 = 0;
  ASSERT_EQ(linalign_submit(batcher, &a, LINALIGN_SUBMIT_BLOCK, &t2), LINALIGN_SUCCESS);
  ASSERT_EQ(linalign_wait(batcher, t2, &r), LINALIGN_SUCCESS);
  EXPECT_EQ(r.status, LINALIGN_SUCCESS);
  ASSERT_EQ(linalign_batcher_shutdown(batcher, LINALIGN_SHUTDOWN_DRAIN), LINALIGN_SUCCESS);
  EXPECT_EQ(seen.calls.load(), 1);
  EXPECT_EQ(seen.r.status, LINALIGN_SUCCESS);
  EXPECT_EQ(seen.r.ticket, ticket);
  // ℓ*[7] of the align step is the score of target 7.
  EXPECT_EQ(std::memcmp(&seen.r.logprob, &out[7], 4), 0);
  linalign_batcher_stats_t st;
  st.struct_size = sizeof st;
  ASSERT_EQ(linalign_batcher_get_stats(batcher, &st), LINALIGN_SUCCESS);
  EXPECT_EQ(st.submitted, 2u);
  EXPECT_EQ(st.completed, 2u);
  EXPECT_EQ(st.pending, 0u);
  uint64_t t3 = 0;
  EXPECT_EQ(linalign_submit(batcher, &a, LINALIGN_SUBMIT_BLOCK, &t3), LINALIGN_SHUTDOWN);
}

// Every entry point refuses bad arguments, naming them.
TEST_F(CApiBatcher, ArgumentValidation) {
  struct Case {
    const char* what;
    linalign_status_t got, want;
    const char* names;
  };
  linalign_request_t req = 0;
  ASSERT_EQ(linalign_request_open(batcher, nullptr, &req), LINALIGN_SUCCESS);
  const linalign_step_t good = rows.step(req, LINALIGN_STEP_SAMPLE);
  uint64_t ticket = 0;
  linalign_batcher_t nb = nullptr;
  linalign_batcher_options_t bad_opt = LINALIGN_BATCHER_OPTIONS_INIT;
  bad_opt.max_rows = 0;
  linalign_batcher_options_t small_opt = LINALIGN_BATCHER_OPTIONS_INIT;
  small_opt.struct_size = 8;
  linalign_params_t bad_p = LINALIGN_PARAMS_INIT;
  bad_p.top_p = 2.f;
  const float per_row[1] = {1.f};
  linalign_params_t arr_p = LINALIGN_PARAMS_INIT;
  arr_p.temperature_per_row = per_row;
  linalign_step_t bad_kind = good;
  bad_kind.kind = 9;
  linalign_step_t bad_size = good;
  bad_size.struct_size = 4;
  linalign_step_t null_row = good;
  null_row.principle = nullptr;
  linalign_step_t no_out = rows.step(req, LINALIGN_STEP_ALIGN);
  linalign_step_t bad_target = rows.step(req, LINALIGN_STEP_SCORE);
  bad_target.target = int32_t(rows.V);
  linalign_step_t unknown = good;
  unknown.request = 424242;
  linalign_step_t reserved = good;
  reserved.reserved = 1;
  linalign_step_result_t r = LINALIGN_STEP_RESULT_INIT;
  linalign_step_result_t r_small = LINALIGN_STEP_RESULT_INIT;
  r_small.struct_size = 3;
  linalign_batcher_stats_t st;
  st.struct_size = 0;
  linalign_request_t out_req;

  std::vector<Case> cases;
  auto add = [&](const char* what, linalign_status_t got, linalign_status_t want,
                 const char* names) {
    cases.push_back(Case{what, got, want, names});
  };
  auto msg = [&] { return last(); };
  std::vector<std::string> messages;
  auto run = [&](const char* what, linalign_status_t got, linalign_status_t want,
                 const char* names) {
    add(what, got, want, names);
    messages.push_back(msg());
  };
  run("create: NULL handle", linalign_batcher_create(nullptr, nullptr, &nb),
      LINALIGN_INVALID_ARGUMENT, "handle");
  run("create: NULL out", linalign_batcher_create(handle, nullptr, nullptr),
      LINALIGN_INVALID_ARGUMENT, "out");
  run("create: max_rows 0", linalign_batcher_create(handle, &bad_opt, &nb),
      LINALIGN_INVALID_ARGUMENT, "max_rows");
  run("create: struct_size", linalign_batcher_create(handle, &small_opt, &nb),
      LINALIGN_INVALID_ARGUMENT, "options.struct_size");
  run("open: NULL batcher", linalign_request_open(nullptr, nullptr, &out_req),
      LINALIGN_INVALID_ARGUMENT, "batcher");
  run("open: NULL out", linalign_request_open(batcher, nullptr, nullptr), LINALIGN_INVALID_ARGUMENT,
      "out");
  run("open: top_p", linalign_request_open(batcher, &bad_p, &out_req), LINALIGN_INVALID_ARGUMENT,
      "top_p");
  run("open: per-row", linalign_request_open(batcher, &arr_p, &out_req), LINALIGN_INVALID_ARGUMENT,
      "temperature");
  run("close: unknown", linalign_request_close(batcher, 99999), LINALIGN_INVALID_ARGUMENT,
      "request 99999");
  run("submit: NULL step", linalign_submit(batcher, nullptr, 0, &ticket), LINALIGN_INVALID_ARGUMENT,
      "step");
  run("submit: NULL ticket", linalign_submit(batcher, &good, 0, nullptr), LINALIGN_INVALID_ARGUMENT,
      "ticket");
  run("submit: mode", linalign_submit(batcher, &good, 7, &ticket), LINALIGN_INVALID_ARGUMENT,
      "mode");
  run("submit: kind", linalign_submit(batcher, &bad_kind, 0, &ticket), LINALIGN_INVALID_ARGUMENT,
      "step.kind");
  run("submit: struct_size", linalign_submit(batcher, &bad_size, 0, &ticket),
      LINALIGN_INVALID_ARGUMENT, "step.struct_size");
  run("submit: reserved", linalign_submit(batcher, &reserved, 0, &ticket),
      LINALIGN_INVALID_ARGUMENT, "step.reserved");
  run("submit: null row", linalign_submit(batcher, &null_row, 0, &ticket),
      LINALIGN_INVALID_ARGUMENT, "principle");
  run("submit: no align out", linalign_submit(batcher, &no_out, 0, &ticket),
      LINALIGN_INVALID_ARGUMENT, "out");
  run("submit: target", linalign_submit(batcher, &bad_target, 0, &ticket),
      LINALIGN_INVALID_ARGUMENT, "targets");
  run("submit: unknown request", linalign_submit(batcher, &unknown, 0, &ticket),
      LINALIGN_INVALID_ARGUMENT, "request 424242");
  run("wait: NULL result", linalign_wait(batcher, 1, nullptr), LINALIGN_INVALID_ARGUMENT, "result");
  run("wait: struct_size", linalign_wait(batcher, 1, &r_small), LINALIGN_INVALID_ARGUMENT,
      "result.struct_size");
  run("wait: unknown ticket", linalign_wait(batcher, 123456, &r), LINALIGN_INVALID_ARGUMENT,
      "ticket 123456");
  run("shutdown: mode", linalign_batcher_shutdown(batcher, 5), LINALIGN_INVALID_ARGUMENT, "mode");
  run("stats: NULL", linalign_batcher_get_stats(batcher, nullptr), LINALIGN_INVALID_ARGUMENT,
      "stats");
  run("stats: struct_size", linalign_batcher_get_stats(batcher, &st), LINALIGN_INVALID_ARGUMENT,
      "stats.struct_size");
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(cases[i].got, cases[i].want) << cases[i].what << ": " << messages[i];
    EXPECT_NE(messages[i].find(cases[i].names), std::string::npos)
        << cases[i].what << ": '" << messages[i] << "' does not name " << cases[i].names;
  }
  EXPECT_EQ(nb, nullptr);
  EXPECT_EQ(linalign_cancel(nullptr, 1), 0);
  EXPECT_EQ(linalign_cancel(batcher, 777777), 0);
  linalign_batcher_destroy(nullptr);  // a no-op
  // A good step still goes through after all that.
  ASSERT_EQ(linalign_submit(batcher, &good, LINALIGN_SUBMIT_BLOCK, &ticket), LINALIGN_SUCCESS)
      << last();
  ASSERT_EQ(linalign_wait(batcher, ticket, &r), LINALIGN_SUCCESS);
  EXPECT_EQ(r.status, LINALIGN_SUCCESS);
  EXPECT_EQ(last(), "");
}

// Fuzzing regression (tests/fuzz/fuzz_batcher): a submission the C layer
// refuses before the batcher sees it (bad mode, bad step struct, NULL
// ticket) is a refused submission too: stats.refused counts every
// linalign_submit that returned an error.
TEST_F(CApiBatcher, EveryRefusalIsCounted) {
  linalign_request_t req = 0;
  ASSERT_EQ(linalign_request_open(batcher, nullptr, &req), LINALIGN_SUCCESS);
  const linalign_step_t good = rows.step(req, LINALIGN_STEP_SAMPLE);
  linalign_step_t bad_kind = good;
  bad_kind.kind = 9;
  linalign_step_t unknown = good;
  unknown.request = 424242;
  uint64_t ticket = 0;
  EXPECT_EQ(linalign_submit(batcher, &good, 7, &ticket), LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(linalign_submit(batcher, &bad_kind, LINALIGN_SUBMIT_BLOCK, &ticket),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(linalign_submit(batcher, &good, LINALIGN_SUBMIT_BLOCK, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(linalign_submit(batcher, nullptr, LINALIGN_SUBMIT_BLOCK, &ticket),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(linalign_submit(batcher, &unknown, LINALIGN_SUBMIT_BLOCK, &ticket),
            LINALIGN_INVALID_ARGUMENT);
  linalign_batcher_stats_t st;
  st.struct_size = sizeof st;
  ASSERT_EQ(linalign_batcher_get_stats(batcher, &st), LINALIGN_SUCCESS);
  EXPECT_EQ(st.refused, 5u);
  EXPECT_EQ(st.submitted, 0u);
}

TEST(CApiBatcherInit, InitFunctionsMatchTheMacros) {
  linalign_batcher_options_t a = LINALIGN_BATCHER_OPTIONS_INIT, b;
  std::memset(&b, 0xab, sizeof b);
  linalign_batcher_options_init(&b);
  EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0);
  linalign_step_t s = LINALIGN_STEP_INIT, t;
  std::memset(&t, 0xab, sizeof t);
  linalign_step_init(&t);
  EXPECT_EQ(s.struct_size, t.struct_size);
  EXPECT_EQ(s.timeout_us, t.timeout_us);
  EXPECT_EQ(t.callback, nullptr);
  EXPECT_EQ(t.base, nullptr);
  linalign_batcher_options_init(nullptr);
  linalign_step_init(nullptr);
  // The C++ defaults and the C ones agree.
  const linalign::BatcherOptions cxx;
  EXPECT_EQ(a.max_rows, cxx.max_rows);
  EXPECT_EQ(a.streams, cxx.streams);
  EXPECT_EQ(a.max_wait_us, cxx.max_wait_us);
  EXPECT_EQ(a.queue_capacity, cxx.queue_capacity);
  EXPECT_EQ(a.submit_timeout_us, cxx.submit_timeout.count());
}

}  // namespace
