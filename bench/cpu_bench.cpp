// CPU benchmark: linalign's fused CPU backend against the unfused peer
// (unfused_cpu.hpp, the eager-PyTorch pass structure), B × V ∈ {1, 8, 64} ×
// {32000, 128256}, fp32 inputs, fixed rule (ratio 2, η = 3), tilt update,
// T = 1, fixed-seed inputs.
//
// Rows per shape, in this order (the peer runs first so its time is known
// when the linalign row of the same shape computes its speed-up):
//   copy             z + y → out with the peer's threads     bytes = 12·B·V
//   align_unfused    the peer: ℓ*, μ, σ                     bytes = 12·B·V
//   align_linalign   Context::align, diagnostics on          bytes = 12·B·V
//   align_exactkl_linalign  the same, exact_kl (ε = 0.1)     bytes = 12·B·V
//   sample_unfused   the peer: align + sort-based top-p + multinomial
//   sample_linalign  Context::sample, top_p 0.8 (nucleus of πᵖ), seeded
//   score_linalign   Context::score, ℓ*_t ℓ_t ℓᵖ_t + per-sequence sums
// Bytes processed are the bytes that must move: both inputs read once
// (2·B·V·4) plus, for align, ℓ* written once (B·V·4). `GBps` is that figure
// per second of wall time. `speedup` is (peer time per call) / (linalign time
// per call) for the same shape and threads; score is compared with the
// unfused align (an unfused score is the unfused align plus a gather).
// `copy_frac` is (copy time per call) / (the row's time per call): the
// fraction of the memory floor the row reaches (issue 20's target: ≥ 0.5
// for align and score).
// Every linalign call gets a pre-sized workspace (Context::workspace_size):
// nothing is allocated in the timed loop. Threads: hardware concurrency,
// plus a 1-thread variant for B = 1.
//
// Before timing, each shape checks the peer against linalign (max |Δℓ*|
// where ℓ* ≥ −20, and μ, σ) and fails the row if they disagree.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "linalign/linalign.hpp"
#include "random_logits.hpp"
#include "unfused_cpu.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using linalign::Context;
using linalign::LogitsView;
using linalign::Op;
using linalign::Params;
using linalign::RowDiagnostics;
using linalign::Status;

constexpr float kTemperature = 1.0f;
constexpr float kRatio = 2.0f;
constexpr float kTopP = 0.8f;
constexpr uint64_t kSeed = 20240611;

using Inputs = linalign_bench::Logits;
const Inputs& inputs(int64_t B, int64_t V) {
  return linalign_bench::random_logits(B, V, kSeed);
}

Context& context(int threads) {
  static std::map<int, std::unique_ptr<Context>> cache;
  auto& slot = cache[threads];
  if (!slot) {
    linalign::ContextOptions o;
    o.backend = linalign::Backend::kCpu;
    o.num_threads = threads;
    std::string err;
    if (Context::create(o, &slot, &err) != Status::kSuccess) {
      std::fprintf(stderr, "Context::create: %s\n", err.c_str());
      std::abort();
    }
  }
  return *slot;
}

Params params() {
  Params p;
  p.temperature = kTemperature;
  p.ratio = kRatio;  // fixed rule, tilt update: the defaults
  p.top_p = kTopP;
  p.seed = uint64_t{1234};
  return p;
}

// Seconds per call of the peer, per (operation, B, V, threads): written by
// the peer rows, read by the linalign rows for the speed-up.
using Key = std::tuple<std::string, int64_t, int64_t, int>;
std::map<Key, double>& peer_seconds() {
  static std::map<Key, double> m;
  return m;
}

struct Shape {
  int64_t B, V;
  int threads;
};
Shape shape(const benchmark::State& st) {
  return Shape{st.range(0), st.range(1), int(st.range(2))};
}

void set_counters(benchmark::State& st, double bytes_per_call, double seconds_per_call,
                  const char* peer_op, const Shape& s) {
  st.SetBytesProcessed(int64_t(bytes_per_call) * int64_t(st.iterations()));
  st.counters["GBps"] = benchmark::Counter(bytes_per_call * 1e-9 * double(st.iterations()),
                                           benchmark::Counter::kIsRate);
  // Fraction of a copy of align's bytes (the copy row of this shape, timed
  // in the same run): 1 = at the memory floor.
  auto copy = peer_seconds().find(Key{"copy", s.B, s.V, s.threads});
  if (copy != peer_seconds().end() && seconds_per_call > 0)
    st.counters["copy_frac"] = copy->second / seconds_per_call;
  if (peer_op != nullptr) {
    auto it = peer_seconds().find(Key{peer_op, s.B, s.V, s.threads});
    if (it != peer_seconds().end() && seconds_per_call > 0)
      st.counters["speedup"] = it->second / seconds_per_call;
  }
}

// Times the loop with a steady clock as well, for the per-call seconds the
// speed-up needs (Google Benchmark does not expose the elapsed time).
template <class F>
double timed_loop(benchmark::State& st, const F& call) {
  const auto t0 = Clock::now();
  for (auto _ : st) {
    call();
    benchmark::ClobberMemory();
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return st.iterations() > 0 ? secs / double(st.iterations()) : 0.0;
}

// Peer vs linalign on this shape (once per shape and thread count).
bool cross_check(const Shape& s, std::string* why) {
  static std::map<std::pair<int64_t, int64_t>, bool> done;
  auto key = std::make_pair(s.B, s.V);
  if (done.count(key)) return done[key];
  const Inputs& in = inputs(s.B, s.V);
  const size_t n = size_t(s.B * s.V);
  std::vector<float> a(n), b(n), mu(size_t(s.B)), sigma(size_t(s.B));
  std::vector<RowDiagnostics> diag(size_t(s.B));
  linalign_bench::UnfusedCpu peer(s.B, s.V, s.threads);
  peer.align(in.z.data(), in.y.data(), kTemperature, kRatio, b.data(), mu.data(), sigma.data());
  const Params p = params();
  Context& ctx = context(s.threads);
  const LogitsView v =
      LogitsView::strided(linalign::DType::kF32, s.B, s.V, in.z.data(), in.y.data());
  if (ctx.align(v, p, a.data(), 0, diag.data()) != Status::kSuccess) {
    *why = ctx.last_error();
    return done[key] = false;
  }
  double err = 0, err_mu = 0, err_sigma = 0;
  for (size_t i = 0; i < n; ++i)
    if (a[i] >= -20.f) err = std::max(err, double(std::fabs(a[i] - b[i])));
  for (int64_t r = 0; r < s.B; ++r) {
    err_mu = std::max(err_mu, double(std::fabs(diag[size_t(r)].mu - mu[size_t(r)])));
    err_sigma = std::max(err_sigma, double(std::fabs(diag[size_t(r)].sigma - sigma[size_t(r)])));
  }
  const bool ok = err < 1e-3 && err_mu < 1e-3 && err_sigma < 1e-3;
  if (!ok) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "peer disagrees: max|dl*| %.3g, |dmu| %.3g, |dsigma| %.3g", err,
                  err_mu, err_sigma);
    *why = buf;
  }
  return done[key] = ok;
}

// ---------------------------------------------------------------- rows ---

// z + y → out over B·V with the peer's threads: the must-move bytes of
// align (read 2·B·V, write B·V floats), the floor every row is compared with.
void BM_Copy(benchmark::State& st) {
  const Shape s = shape(st);
  const Inputs& in = inputs(s.B, s.V);
  const linalign_bench::UnfusedCpu peer(s.B, s.V, s.threads);
  std::vector<float> out(size_t(s.B * s.V));
  auto call = [&] { peer.copy(in.z.data(), in.y.data(), out.data()); };
  call();  // first touch
  const double sec = timed_loop(st, call);
  peer_seconds()[Key{"copy", s.B, s.V, s.threads}] = sec;
  set_counters(st, 12.0 * double(s.B * s.V), sec, nullptr, s);
}

void BM_AlignUnfused(benchmark::State& st) {
  const Shape s = shape(st);
  const Inputs& in = inputs(s.B, s.V);
  std::string why;
  if (!cross_check(s, &why)) {
    st.SkipWithError(why.c_str());
    return;
  }
  linalign_bench::UnfusedCpu peer(s.B, s.V, s.threads);
  std::vector<float> out(size_t(s.B * s.V)), mu(size_t(s.B)), sigma(size_t(s.B));
  auto call = [&] {
    peer.align(in.z.data(), in.y.data(), kTemperature, kRatio, out.data(), mu.data(), sigma.data());
  };
  call();  // first touch of the temporaries outside the timed loop
  const double sec = timed_loop(st, call);
  peer_seconds()[Key{"align", s.B, s.V, s.threads}] = sec;
  set_counters(st, 12.0 * double(s.B * s.V), sec, nullptr, s);
}

void align_linalign(benchmark::State& st, const Params& p) {
  const Shape s = shape(st);
  const Inputs& in = inputs(s.B, s.V);
  Context& ctx = context(s.threads);
  const LogitsView v =
      LogitsView::strided(linalign::DType::kF32, s.B, s.V, in.z.data(), in.y.data());
  std::vector<unsigned char> ws(ctx.workspace_size(Op::kAlign, v, p));
  std::vector<float> out(size_t(s.B * s.V));
  std::vector<RowDiagnostics> diag(size_t(s.B));
  Status status = Status::kSuccess;
  auto call = [&] { status = ctx.align(v, p, out.data(), 0, diag.data(), ws.data(), ws.size()); };
  call();
  if (status != Status::kSuccess) {
    st.SkipWithError(ctx.last_error());
    return;
  }
  const double sec = timed_loop(st, call);
  set_counters(st, 12.0 * double(s.B * s.V), sec, "align", s);
}

void BM_AlignLinalign(benchmark::State& st) {
  align_linalign(st, params());
}

// exact_kl (ε = 0.1, tilt): the second sweep's KL evaluations, each a pass
// over the row (its cost against the fixed rule: issue 19's ≤ 1.5× target is
// the GPU's; this row watches the CPU's second-sweep loop).
void BM_AlignExactKlLinalign(benchmark::State& st) {
  Params p = params();
  p.rule = linalign::StepRule::kExactKl;
  p.epsilon = 0.1f;
  align_linalign(st, p);
}

void BM_SampleUnfused(benchmark::State& st) {
  const Shape s = shape(st);
  const Inputs& in = inputs(s.B, s.V);
  linalign_bench::UnfusedCpu peer(s.B, s.V, s.threads);
  std::vector<int32_t> tokens(size_t(s.B));
  auto call = [&] {
    peer.sample(in.z.data(), in.y.data(), kTemperature, kRatio, kTopP, 1234, tokens.data());
  };
  call();
  const double sec = timed_loop(st, call);
  peer_seconds()[Key{"sample", s.B, s.V, s.threads}] = sec;
  set_counters(st, 8.0 * double(s.B * s.V), sec, nullptr, s);
}

void BM_SampleLinalign(benchmark::State& st) {
  const Shape s = shape(st);
  const Inputs& in = inputs(s.B, s.V);
  Context& ctx = context(s.threads);
  const Params p = params();
  const LogitsView v =
      LogitsView::strided(linalign::DType::kF32, s.B, s.V, in.z.data(), in.y.data());
  std::vector<unsigned char> ws(ctx.workspace_size(Op::kSample, v, p));
  std::vector<int32_t> tokens(size_t(s.B));
  std::vector<RowDiagnostics> diag(size_t(s.B));
  Status status = Status::kSuccess;
  auto call = [&] {
    status = ctx.sample(v, p, tokens.data(), nullptr, diag.data(), ws.data(), ws.size());
  };
  call();
  if (status != Status::kSuccess) {
    st.SkipWithError(ctx.last_error());
    return;
  }
  const double sec = timed_loop(st, call);
  set_counters(st, 8.0 * double(s.B * s.V), sec, "sample", s);
}

void BM_ScoreLinalign(benchmark::State& st) {
  const Shape s = shape(st);
  const Inputs& in = inputs(s.B, s.V);
  Context& ctx = context(s.threads);
  const Params p = params();
  const LogitsView v =
      LogitsView::strided(linalign::DType::kF32, s.B, s.V, in.z.data(), in.y.data());
  std::vector<unsigned char> ws(ctx.workspace_size(Op::kScore, v, p));
  // Targets: fixed-seed tokens, one ignored row when B > 1; ragged sequences.
  std::mt19937 rng(7);
  std::vector<int32_t> targets(size_t(s.B));
  for (auto& t : targets) t = int32_t(rng() % uint32_t(s.V));
  if (s.B > 1) targets[1] = p.ignore_index;
  std::vector<int64_t> offsets{0};
  for (int64_t r = 1; r < s.B; r += int64_t(offsets.size()) + 1)
    offsets.push_back(r);  // ragged lengths
  offsets.push_back(s.B);
  const int64_t nseq = int64_t(offsets.size()) - 1;
  std::vector<float> a(size_t(s.B)), b(size_t(s.B)), c(size_t(s.B));
  const size_t ns = size_t(nseq);
  std::vector<float> sa(ns), sb(ns), sc(ns);
  linalign::ScoreOutputs o;
  o.aligned = a.data();
  o.base = b.data();
  o.principle = c.data();
  o.seq_offsets = offsets.data();
  o.num_sequences = nseq;
  o.seq_aligned = sa.data();
  o.seq_base = sb.data();
  o.seq_principle = sc.data();
  std::vector<RowDiagnostics> diag(size_t(s.B));
  Status status = Status::kSuccess;
  auto call = [&] {
    status = ctx.score(v, p, targets.data(), o, diag.data(), ws.data(), ws.size());
  };
  call();
  if (status != Status::kSuccess) {
    st.SkipWithError(ctx.last_error());
    return;
  }
  const double sec = timed_loop(st, call);
  set_counters(st, 8.0 * double(s.B * s.V), sec, "align", s);
}

}  // namespace

int main(int argc, char** argv) {
  const int hw = int(std::max(1u, std::thread::hardware_concurrency()));
  struct Row {
    const char* name;
    void (*fn)(benchmark::State&);
  };
  const Row rows[] = {{"copy", BM_Copy},
                      {"align_unfused", BM_AlignUnfused},
                      {"align_linalign", BM_AlignLinalign},
                      {"align_exactkl_linalign", BM_AlignExactKlLinalign},
                      {"sample_unfused", BM_SampleUnfused},
                      {"sample_linalign", BM_SampleLinalign},
                      {"score_linalign", BM_ScoreLinalign}};
  for (int64_t V : {int64_t{32000}, int64_t{128256}}) {
    for (int64_t B : {int64_t{1}, int64_t{8}, int64_t{64}}) {
      std::vector<int> thread_counts{hw};
      if (B == 1 && hw > 1) thread_counts.push_back(1);
      for (int t : thread_counts) {
        for (const Row& r : rows) {
          benchmark::RegisterBenchmark(r.name, r.fn)
              ->Args({B, V, t})
              ->ArgNames({"B", "V", "threads"})
              ->UseRealTime()
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
