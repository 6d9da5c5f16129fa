// The host API's cost (include/linalign/batcher.hpp) on the CPU backend:
// batcher throughput against direct calls, and the latency it adds to one
// step at light load.
//
// Rows, in this order (the direct row runs first so its time is known when
// the batcher rows compute their ratio):
//   direct/B/V                Context::sample on a [B, V] fp32 batch (strided),
//                             top-p 0.8 seeded, pre-sized workspace.
//   batcher/B/V/submitters:S  S threads, B/S open requests each, in a closed
//                             loop: each submits one step per request, waits
//                             for the answers, repeats (20 rounds per
//                             iteration). max_rows = B, so a round is one batch
//                             when every request has submitted.
//   latency/V                 one request alone, one step at a time: submit →
//                             answer, with max_wait_us = 200.
// Counters: rows_per_s; `vs_direct` = batcher rows/s ÷ direct rows/s (the
// target is ≥ 0.95); for latency, `latency_us` (mean), `bound_us` =
// max_wait_us + a direct one-row call, and `within` = 1 when latency_us ≤
// bound_us. Wall-clock time (UseRealTime): the batcher's threads do the work.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "linalign/batcher.hpp"
#include "linalign/linalign.hpp"
#include "random_logits.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using linalign::Batcher;
using linalign::BatcherOptions;
using linalign::Context;
using linalign::DType;
using linalign::LogitsView;
using linalign::Params;
using linalign::RequestId;
using linalign::Status;
using linalign::Step;
using linalign::StepResult;
using linalign::StepRows;
using linalign::Submission;

constexpr int64_t kMaxWaitUs = 200;
constexpr int kRounds = 20;

const linalign_bench::Logits& inputs(int64_t B, int64_t V) {
  return linalign_bench::random_logits(B, V, 20261201);
}
StepRows row(const linalign_bench::Logits& in, int64_t r) {
  return StepRows{DType::kF32, in.V, in.z_row(r), in.y_row(r)};
}

void die(const char* what, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", what, why.c_str());
  std::abort();
}

Context& context() {
  static std::unique_ptr<Context> ctx;
  if (!ctx) {
    linalign::ContextOptions o;
    o.backend = linalign::Backend::kCpu;
    std::string err;
    if (Context::create(o, &ctx, &err) != Status::kSuccess) die("Context::create", err);
  }
  return *ctx;
}

Params params(uint64_t seed) {
  Params p;
  p.top_p = 0.8f;
  p.seed = seed;
  return p;
}

std::map<std::pair<int64_t, int64_t>, double>& direct_seconds_per_row() {
  static std::map<std::pair<int64_t, int64_t>, double> m;
  return m;
}

void BM_Direct(benchmark::State& st) {
  const int64_t B = st.range(0), V = st.range(1);
  const linalign_bench::Logits& in = inputs(B, V);
  Context& ctx = context();
  const LogitsView v = LogitsView::strided(DType::kF32, B, V, in.z.data(), in.y.data());
  const Params p = params(7);
  std::vector<char> ws(ctx.workspace_size(linalign::Op::kSample, v, p));
  std::vector<int32_t> tok(static_cast<size_t>(B));
  std::vector<float> lp(static_cast<size_t>(B));
  const auto t0 = Clock::now();
  for (auto _ : st) {
    const Status s = ctx.sample(v, p, tok.data(), lp.data(), nullptr, ws.data(), ws.size());
    if (s != Status::kSuccess) die("sample", ctx.last_error());
    benchmark::DoNotOptimize(tok.data());
  }
  direct_seconds_per_row()[{B, V}] = std::chrono::duration<double>(Clock::now() - t0).count() /
                                     (double(B) * double(st.iterations()));
  st.counters["rows_per_s"] =
      benchmark::Counter(double(B) * double(st.iterations()), benchmark::Counter::kIsRate);
}

std::unique_ptr<Batcher> make_batcher(int64_t max_rows) {
  BatcherOptions o;
  o.max_rows = int32_t(max_rows);
  o.max_wait_us = kMaxWaitUs;
  std::unique_ptr<Batcher> b;
  std::string err;
  if (Batcher::create(context(), o, &b, &err) != Status::kSuccess) die("Batcher::create", err);
  return b;
}

void BM_Batcher(benchmark::State& st) {
  const int64_t B = st.range(0), V = st.range(1), S = st.range(2);
  const linalign_bench::Logits& in = inputs(B, V);
  auto b = make_batcher(B);
  std::vector<RequestId> ids(static_cast<size_t>(B));
  for (int64_t r = 0; r < B; ++r)
    if (b->open(params(1000 + uint64_t(r)), &ids[size_t(r)]) != Status::kSuccess)
      die("open", "refused");
  const auto t0 = Clock::now();
  for (auto _ : st) {
    std::vector<std::thread> threads;
    for (int64_t t = 0; t < S; ++t) {
      threads.emplace_back([&, t] {
        const int64_t per = B / S;
        std::vector<Submission> subs(static_cast<size_t>(per));
        for (int round = 0; round < kRounds; ++round) {
          for (int64_t k = 0; k < per; ++k) {
            const int64_t r = t * per + k;
            std::string err;
            if (b->submit(Step::sample(ids[size_t(r)], row(in, r)), &subs[size_t(k)], &err) !=
                Status::kSuccess)
              die("submit", err);
          }
          for (auto& s : subs) {
            const StepResult res = s.result.get();
            if (res.status != Status::kSuccess) die("step", res.message);
          }
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const double rows = double(B) * kRounds * double(st.iterations());
  const double spr = std::chrono::duration<double>(Clock::now() - t0).count() / rows;
  st.counters["rows_per_s"] = benchmark::Counter(rows, benchmark::Counter::kIsRate);
  const auto direct = direct_seconds_per_row().find({B, V});
  if (direct != direct_seconds_per_row().end()) st.counters["vs_direct"] = direct->second / spr;
  const auto stats = b->stats();
  st.counters["rows_per_batch"] = double(stats.batched_rows) / double(stats.batches);
}

void BM_Latency(benchmark::State& st) {
  const int64_t V = st.range(0);
  const linalign_bench::Logits& in = inputs(1, V);
  auto b = make_batcher(64);
  RequestId id;
  if (b->open(params(5), &id) != Status::kSuccess) die("open", "refused");
  // A direct one-row call's time: "one batch" at light load.
  Context& ctx = context();
  const LogitsView v = LogitsView::strided(DType::kF32, 1, V, in.z.data(), in.y.data());
  int32_t tok;
  float lp;
  const auto d0 = Clock::now();
  constexpr int kDirect = 50;
  for (int i = 0; i < kDirect; ++i) ctx.sample(v, params(5), &tok, &lp, nullptr);
  const double direct_us =
      std::chrono::duration<double, std::micro>(Clock::now() - d0).count() / kDirect;
  double total_us = 0;
  for (auto _ : st) {
    Submission s;
    const auto t0 = Clock::now();
    if (b->submit(Step::sample(id, row(in, 0)), &s) != Status::kSuccess) die("submit", "");
    const StepResult r = s.result.get();
    total_us += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (r.status != Status::kSuccess) die("step", r.message);
  }
  const double latency = total_us / double(st.iterations());
  st.counters["latency_us"] = latency;
  st.counters["bound_us"] = double(kMaxWaitUs) + direct_us;
  st.counters["within"] = latency <= double(kMaxWaitUs) + direct_us ? 1 : 0;
}

}  // namespace

BENCHMARK(BM_Direct)->Name("direct")->ArgNames({"B", "V"})->Args({64, 32000})->UseRealTime();
BENCHMARK(BM_Batcher)
    ->Name("batcher")
    ->ArgNames({"B", "V", "submitters"})
    ->Args({64, 32000, 1})
    ->Args({64, 32000, 4})
    ->Args({64, 32000, 64})
    ->UseRealTime();
BENCHMARK(BM_Latency)->Name("latency")->ArgNames({"V"})->Arg(32000)->UseRealTime();

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
