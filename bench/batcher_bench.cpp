// The host API's cost (include/linalign/batcher.hpp) on the CPU backend:
// batcher throughput against direct calls, and the latency it adds to one
// step at light load.
//
// Rows, in this order (the direct row runs first so its time is known when
// the batcher rows compute their ratio):
//   direct/B/V                Context::sample on a [B, V] fp32 batch (strided),
//                             top-p 0.8 seeded, pre-sized workspace.
//   batcher/B/V/submitters:S/max_wait_us:W
//                             S threads, B/S open requests each, in a closed
//                             loop: each submits one step per request, waits
//                             for the answers, repeats (20 rounds per
//                             iteration). max_rows = B, so a round is one batch
//                             when every request has submitted within W µs. Each iteration
//                             also times 20 direct B-row calls first: vs_direct
//                             compares the two under the same machine state.
//   latency/V                 one request alone, one step at a time: submit →
//                             answer, with max_wait_us = 200; "one batch" is
//                             a direct one-row call after a 200 µs idle gap,
//                             timed in the same iterations.
// Counters: rows_per_s (direct_rows_per_s beside it); `vs_direct` = batcher
// rows/s ÷ direct rows/s in the same iterations (the target is ≥ 0.95); for
// latency, `latency_us` (mean), `bound_us` = max_wait_us + a direct one-row
// call, `added_us` = latency_us − the direct call, and `within` = 1 when
// latency_us ≤ bound_us. Wall-clock time (UseRealTime): the batcher's threads do the work.
//
// LINALIGN_BENCH_BACKEND=cuda (a CUDA build; bench/device_check.sh) runs the
// same rows on the CUDA backend with the logits in device memory, and adds
// V = 128256; the direct calls are then timed to their completion.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(LINALIGN_BENCH_CUDA)
#include <cuda_runtime.h>
#endif

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

void die(const char* what, const std::string& why) {
  std::fprintf(stderr, "%s: %s\n", what, why.c_str());
  std::abort();
}

// ---- where the arrays live: host memory, or device memory for CUDA
bool on_cuda() {
  const char* e = std::getenv("LINALIGN_BENCH_BACKEND");
  return e != nullptr && std::string(e) == "cuda";
}
// `bytes` of memory the backend reads and writes, a copy of `init` when given.
// Never freed (the process's life).
void* buffer(size_t bytes, const void* init = nullptr) {
#if defined(LINALIGN_BENCH_CUDA)
  if (on_cuda()) {
    void* p = nullptr;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) die("cudaMalloc", "failed");
    if (init != nullptr && cudaMemcpy(p, init, bytes, cudaMemcpyHostToDevice) != cudaSuccess)
      die("cudaMemcpy", "failed");
    return p;
  }
#endif
  char* p = new char[bytes ? bytes : 1]();
  if (init != nullptr) std::memcpy(p, init, bytes);
  return p;
}
// Waits for the backend's work (CUDA: the device).
void sync() {
#if defined(LINALIGN_BENCH_CUDA)
  if (on_cuda() && cudaDeviceSynchronize() != cudaSuccess) die("cudaDeviceSynchronize", "failed");
#endif
}

// The fixed-seed logits [B, V] where the backend reads them.
struct Inputs {
  int64_t B, V;
  const float *z, *y;
};
const Inputs& inputs(int64_t B, int64_t V) {
  static std::map<std::pair<int64_t, int64_t>, Inputs> cache;
  auto it = cache.find({B, V});
  if (it == cache.end()) {
    const linalign_bench::Logits& h = linalign_bench::random_logits(B, V, 20261201);
    const size_t bytes = h.z.size() * sizeof(float);
    it = cache
             .emplace(std::make_pair(B, V),
                      Inputs{B, V, static_cast<const float*>(buffer(bytes, h.z.data())),
                             static_cast<const float*>(buffer(bytes, h.y.data()))})
             .first;
  }
  return it->second;
}
StepRows row(const Inputs& in, int64_t r) {
  return StepRows{DType::kF32, in.V, in.z + r * in.V, in.y + r * in.V};
}

Context& context() {
  static std::unique_ptr<Context> ctx;
  if (!ctx) {
    linalign::ContextOptions o;
    o.backend = on_cuda() ? linalign::Backend::kCuda : linalign::Backend::kCpu;
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

// The direct call both rows time: Context::sample on the [B, V] batch, top-p
// 0.8 seeded, with a pre-sized workspace (no allocation in the loop).
struct DirectSample {
  Context& ctx = context();
  LogitsView v;
  Params p = params(7);
  size_t ws_bytes;
  void *ws, *tok, *lp;
  explicit DirectSample(const Inputs& in)
      : v(LogitsView::strided(DType::kF32, in.B, in.V, in.z, in.y)),
        ws_bytes(ctx.workspace_size(linalign::Op::kSample, v, p)),
        ws(buffer(ws_bytes)),
        tok(buffer(size_t(in.B) * 4)),
        lp(buffer(size_t(in.B) * 4)) {}
  void operator()() {
    if (ctx.sample(v, p, static_cast<int32_t*>(tok), static_cast<float*>(lp), nullptr, ws,
                   ws_bytes) != Status::kSuccess)
      die("sample", ctx.last_error());
  }
};

void BM_Direct(benchmark::State& st) {
  const int64_t B = st.range(0), V = st.range(1);
  DirectSample direct(inputs(B, V));
  for (auto _ : st) direct();
  sync();
  st.counters["rows_per_s"] =
      benchmark::Counter(double(B) * double(st.iterations()), benchmark::Counter::kIsRate);
}

std::unique_ptr<Batcher> make_batcher(int64_t max_rows, int64_t max_wait_us = kMaxWaitUs) {
  BatcherOptions o;
  o.max_rows = int32_t(max_rows);
  o.max_wait_us = max_wait_us;
  std::unique_ptr<Batcher> b;
  std::string err;
  if (Batcher::create(context(), o, &b, &err) != Status::kSuccess) die("Batcher::create", err);
  return b;
}

void BM_Batcher(benchmark::State& st) {
  const int64_t B = st.range(0), V = st.range(1), S = st.range(2), wait_us = st.range(3);
  const Inputs& in = inputs(B, V);
  auto b = make_batcher(B, wait_us);
  std::vector<RequestId> ids(static_cast<size_t>(B));
  for (int64_t r = 0; r < B; ++r)
    if (b->open(params(1000 + uint64_t(r)), &ids[size_t(r)]) != Status::kSuccess)
      die("open", "refused");
  // Each iteration times kRounds direct B-row calls, then kRounds batcher
  // rounds, so vs_direct compares the two under the same machine state (a
  // shared VM's speed drifts by tens of percent over a run).
  DirectSample direct(in);
  double direct_s = 0, batcher_s = 0;
  for (auto _ : st) {
    const auto d0 = Clock::now();
    for (int round = 0; round < kRounds; ++round) direct();
    sync();
    const auto b0 = Clock::now();
    direct_s += std::chrono::duration<double>(b0 - d0).count();
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
    batcher_s += std::chrono::duration<double>(Clock::now() - b0).count();
  }
  const double rows = double(B) * kRounds * double(st.iterations());
  st.counters["rows_per_s"] = rows / batcher_s;
  st.counters["direct_rows_per_s"] = rows / direct_s;
  st.counters["vs_direct"] = direct_s / batcher_s;
  const auto stats = b->stats();
  st.counters["rows_per_batch"] = double(stats.batched_rows) / double(stats.batches);
}

void BM_Latency(benchmark::State& st) {
  const int64_t V = st.range(0);
  const Inputs& in = inputs(1, V);
  auto b = make_batcher(64);
  RequestId id;
  if (b->open(params(5), &id) != Status::kSuccess) die("open", "refused");
  Context& ctx = context();
  const LogitsView v = LogitsView::strided(DType::kF32, 1, V, in.z, in.y);
  auto* tok = static_cast<int32_t*>(buffer(4));
  auto* lp = static_cast<float*>(buffer(4));
  // Each iteration: "one batch" at light load — a direct one-row call after
  // an idle gap as long as max_wait (the backend's threads asleep, as when a
  // lone step arrives) — then the lone step through the batcher, after the
  // same gap; both in the same machine state.
  double direct_us = 0, step_us = 0;
  for (auto _ : st) {
    std::this_thread::sleep_for(std::chrono::microseconds(kMaxWaitUs));
    const auto d0 = Clock::now();
    ctx.sample(v, params(5), tok, lp, nullptr);
    sync();
    direct_us += std::chrono::duration<double, std::micro>(Clock::now() - d0).count();
    std::this_thread::sleep_for(std::chrono::microseconds(kMaxWaitUs));
    Submission s;
    const auto t0 = Clock::now();
    if (b->submit(Step::sample(id, row(in, 0)), &s) != Status::kSuccess) die("submit", "");
    const StepResult r = s.result.get();
    step_us += std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
    if (r.status != Status::kSuccess) die("step", r.message);
  }
  const double n = double(st.iterations());
  const double latency = step_us / n, bound = double(kMaxWaitUs) + direct_us / n;
  st.counters["latency_us"] = latency;
  st.counters["bound_us"] = bound;
  st.counters["added_us"] = latency - direct_us / n;  // what the batcher adds to one call
  st.counters["within"] = latency <= bound ? 1 : 0;
}

}  // namespace

// The rows: V = 32000, and on CUDA also 128256.
void register_rows() {
  std::vector<int64_t> vocab = {32000};
  if (on_cuda()) vocab.push_back(128256);
  for (int64_t V : vocab) {
    benchmark::RegisterBenchmark("direct", BM_Direct)
        ->ArgNames({"B", "V"})
        ->Args({64, V})
        ->UseRealTime();
    for (int64_t S : {1, 4, 64})
      benchmark::RegisterBenchmark("batcher", BM_Batcher)
          ->ArgNames({"B", "V", "submitters", "max_wait_us"})
          ->Args({64, V, S, kMaxWaitUs})
          ->UseRealTime();
    // 64 threads must all wake and resubmit within max_wait for a round to
    // be one batch; on few cores that takes longer than 200 µs (bench/NOTES.md).
    benchmark::RegisterBenchmark("batcher", BM_Batcher)
        ->ArgNames({"B", "V", "submitters", "max_wait_us"})
        ->Args({64, V, 64, 10 * kMaxWaitUs})
        ->UseRealTime();
    benchmark::RegisterBenchmark("latency", BM_Latency)->ArgNames({"V"})->Arg(V)->UseRealTime();
  }
}

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  register_rows();
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
