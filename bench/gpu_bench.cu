// GPU benchmark: linalign's CUDA backend, through the public API only, on
// B × V ∈ {1, 8, 64, 256} × {32000, 128256, 151936, 262144}, fp32 and bf16
// inputs, fixed rule (ratio 2, η = 3), tilt update, T = 1.
//
// Rows per shape, in this order (peers first, so the linalign rows of the
// same shape can report their speed-up and their fraction of the copy):
//   copy_d2d               cudaMemcpyAsync moving as many bytes as align must
//   align_unfused          the eager-PyTorch-style kernel sequence (unfused_cuda.cuh)
//   align_linalign         Context::align, diagnostics on
//   align_exactkl_linalign Context::align with the exact_kl rule (ε 0.1, η_max 8):
//                          the KL passes of the η solve, then the second sweep
//                          (fp32 only, to keep the device check short)
//   sample_topp_linalign   Context::sample, top_p 0.8 on πᵖ, seeded Gumbel-max,
//                          token log-prob
//   sample_topp_t05_linalign the same at T = 0.5: a peaked, LM-like nucleus (the
//                          inputs' logits doubled), whose few candidates the
//                          first select pass decides and draws from; the rows
//                          above have ≈ 14 % of V as candidates and at V ≥
//                          128256 go over the 16384 a row keeps (whole-row passes)
//   sample_greedy_linalign Context::sample, greedy, token log-prob
//   score_linalign         Context::score, ℓ*_t ℓ_t ℓᵖ_t, one ignored row,
//                          per-sequence sums over ragged sequences
// and for B = 1 one decode step (align + top-p sample, pre-sized workspace):
//   step_graph             the step captured once into a CUDA graph, graph launches
//   step_stream            the same two calls launched directly
//   step_sample_graph      the top-p sample call alone (an engine's per-token
//                          call) in a CUDA graph
//
// Method (STYLE.md "Benchmarks"):
//   * Bytes that must move: align reads both inputs once and writes ℓ* once
//     (2·B·V·sizeof(in) + 4·B·V); sample and score read both inputs once
//     (2·B·V·sizeof(in)); the unfused peer is charged the same bytes as align.
//   * Every call reads inputs that are not in L2: each shape's inputs are
//     replicated into `sets` copies covering ≥ 2× the device's L2
//     (cudaDevAttrL2CacheSize) and consecutive calls walk through them.
//   * Timing with CUDA events and UseManualTime. One iteration is a batch of
//     K back-to-back calls (K chosen in setup so a batch lasts ≥ ~200 µs,
//     which hides the event overhead); the reported Time is per batch,
//     the counters are per call.
//   * Counters: us_call (median per call), us_mean, GBps (bytes / us_call),
//     copy_frac (of the peak copy bandwidth measured at start, 1 GiB copies),
//     copy_same_frac (of a copy moving the same byte count, measured in the
//     same run), speedup (unfused time / linalign time, align row), and
//     chk_* cross-checks computed once per shape outside the timed loop.
//   * Allocation happens once in main (the arena, workspace sized for every
//     shape, temporaries); nothing is allocated in setup or in timed loops.
//
// Without a CUDA device (or with a library built without CUDA) the program
// prints one line and exits 0. LINALIGN_BENCH_MIN_TIME (seconds) overrides
// the minimum time per row, independently of the Google Benchmark version's
// --benchmark_min_time syntax.
#include <benchmark/benchmark.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "linalign/linalign.hpp"
#include "unfused_cuda.cuh"

namespace {

using linalign::Context;
using linalign::DType;
using linalign::LogitsView;
using linalign::Op;
using linalign::Params;
using linalign::RowDiagnostics;
using linalign::ScoreOutputs;
using linalign::Status;

constexpr int64_t kBatches[] = {1, 8, 64, 256};
constexpr int64_t kVocabs[] = {32000, 128256, 151936, 262144};
constexpr DType kDTypes[] = {DType::kF32, DType::kBF16};

constexpr float kTemperature = 1.0f;
constexpr float kRatio = 2.0f;  // fixed rule: η = 1 + ratio = 3
constexpr float kTopP = 0.8f;
constexpr uint64_t kSeed = 1234;
constexpr uint64_t kDataSeed = 20240611;

constexpr double kTargetBatchUs = 200.0;  // a timed batch lasts at least this long
constexpr int kMaxCallsPerBatch = 256;
constexpr size_t kMaxSamples = 1 << 16;             // per-batch samples kept for the median
constexpr size_t kAlignment = 256;                  // of every carved buffer
constexpr size_t kPeakCopyBytes = size_t{1} << 30;  // one copy of the peak measurement

const char* DTypeName(DType t) {
  return t == DType::kF32 ? "fp32" : "bf16";
}
size_t DTypeBytes(DType t) {
  return t == DType::kF32 ? 4 : 2;
}
size_t AlignUp(size_t n) {
  return (n + kAlignment - 1) / kAlignment * kAlignment;
}

// ------------------------------------------------------------ device code ---

// splitmix64: a stateless hash, so any element's value depends only on its index.
__device__ __forceinline__ uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// Standard normal from 64 random bits (Box–Muller, both uniforms in (0, 1)).
__device__ __forceinline__ float Normal(uint64_t bits) {
  const float u1 = (float(uint32_t(bits)) + 0.5f) * 2.3283064e-10f;
  const float u2 = (float(uint32_t(bits >> 32)) + 0.5f) * 2.3283064e-10f;
  return sqrtf(-2.f * logf(u1)) * cospif(2.f * u2);
}
__device__ __forceinline__ void Store(float* p, float v) {
  *p = v;
}
__device__ __forceinline__ void Store(__nv_bfloat16* p, float v) {
  *p = __float2bfloat16_rn(v);
}

// Logits of `sets` copies of a [rows, vocab] batch: z ~ 3·N(0,1) and
// y = z + N(0,1) (a principle correlated with the base, as in cpu_bench).
// Copy s starts at element s*set_stride of z and of y. Every copy holds
// different values (the index includes the copy), never zeros.
template <class T>
__global__ void FillLogitsKernel(T* z, T* y, int64_t per_set, int64_t sets, int64_t set_stride,
                                 uint64_t seed) {
  const int64_t n = per_set * sets;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t s = i / per_set, e = i - s * per_set;
    const float zv = 3.f * Normal(Mix(seed ^ (2 * uint64_t(i))));
    const float yv = zv + Normal(Mix(seed ^ (2 * uint64_t(i) + 1)));
    Store(z + s * set_stride + e, zv);
    Store(y + s * set_stride + e, yv);
  }
}

// Cross-check of two ℓ* arrays: over the elements where ref ≥ −20, the max
// |a − ref| (as float bits into max_bits, an atomicMax on non-negative
// floats) and the number of elements where that difference is not finite.
__global__ void CompareKernel(const float* a, const float* ref, int64_t n, unsigned* max_bits,
                              unsigned* bad) {
  float m = 0.f;
  unsigned b = 0;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{gridDim.x} * blockDim.x) {
    if (ref[i] >= -20.f) {
      const float d = fabsf(a[i] - ref[i]);
      if (d <= 3.0e38f)
        m = fmaxf(m, d);
      else
        ++b;  // NaN or inf where the reference is an ordinary log-prob
    }
  }
  atomicMax(max_bits, __float_as_uint(m));
  if (b) atomicAdd(bad, b);
}

// Per-row argmax of ℓ* (ties to the lower index), one block per row.
__global__ void ArgmaxKernel(const float* x, int64_t vocab, int32_t* out) {
  __shared__ float best_v[32];
  __shared__ int64_t best_i[32];
  const float* xr = x + int64_t{blockIdx.x} * vocab;
  float v = -INFINITY;
  int64_t idx = vocab;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x)
    if (xr[i] > v) v = xr[i], idx = i;  // strictly greater: the first of equals stays
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, idx, o);
    if (ov > v || (ov == v && oi < idx)) v = ov, idx = oi;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) best_v[warp] = v, best_i[warp] = idx;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x + 31) / 32; ++w)
      if (best_v[w] > v || (best_v[w] == v && best_i[w] < idx)) v = best_v[w], idx = best_i[w];
    out[blockIdx.x] = idx < vocab ? int32_t(idx) : -1;
  }
}

// out[r] = x[r*vocab + targets[r]] (0 where the target is out of range).
__global__ void GatherKernel(const float* x, int64_t vocab, const int32_t* targets, int64_t rows,
                             float* out) {
  const int64_t r = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (r < rows) {
    const int32_t t = targets[r];
    out[r] = (t >= 0 && t < vocab) ? x[r * vocab + t] : 0.f;
  }
}

// ------------------------------------------------------------- host state ---

#define BENCH_CUDA_OR(expr, on_error)                                            \
  do {                                                                           \
    const cudaError_t e_ = (expr);                                               \
    if (e_ != cudaSuccess) {                                                     \
      const std::string m_ = std::string(#expr) + ": " + cudaGetErrorString(e_); \
      on_error;                                                                  \
    }                                                                            \
  } while (0)

// Everything allocated once in main and shared by all rows.
struct Gpu {
  int device = 0;
  cudaDeviceProp prop{};
  int sm_count = 0;
  size_t l2_bytes = 0;
  cudaStream_t stream = nullptr;
  cudaEvent_t ev0 = nullptr, ev1 = nullptr;
  std::unique_ptr<Context> ctx;

  char* arena = nullptr;  // inputs (all rotated copies) and outputs of the current shape
  size_t arena_bytes = 0;
  void* workspace = nullptr;  // sized for every shape and op (queried in main)
  size_t workspace_bytes = 0;
  linalign_bench::UnfusedTemps temps;  // unfused peer temporaries (max B·V floats each)
  float* check = nullptr;              // a second ℓ* for cross-checks (max B·V floats)

  // Small per-row buffers, sized for the largest B.
  RowDiagnostics* diag = nullptr;
  int32_t* tokens = nullptr;
  int32_t* ref_tokens = nullptr;
  float* token_logprob = nullptr;
  int32_t* targets = nullptr;
  float* score[3] = {nullptr, nullptr, nullptr};  // ℓ*_t, ℓ_t, ℓᵖ_t
  float* gathered[3] = {nullptr, nullptr, nullptr};
  int64_t* seq_offsets = nullptr;
  float* seq_score[3] = {nullptr, nullptr, nullptr};
  unsigned* counters = nullptr;  // [0] max-diff bits, [1] bad count

  double peak_copy_gbps = 0;
  std::map<size_t, double> copy_gbps;  // same-byte-count copy bandwidth, by bytes moved
  std::tuple<int, int64_t, int64_t> filled{-1, 0, 0};  // shape whose logits the arena holds
  std::map<std::tuple<int, int64_t, int64_t>, double> unfused_us;  // for the speed-up
  std::map<std::string, std::map<std::string, double>> checks;     // chk_* by row name
  std::map<std::tuple<int, int64_t, bool>, std::vector<cudaGraphExec_t>> graphs;  // step rows
};
Gpu* g = nullptr;

// Where the buffers of one shape live in the arena: `sets` rotated copies of
// z, y and the fp32 output, each copy starting on a 256-byte boundary.
struct Layout {
  DType dtype = DType::kF32;
  int64_t rows = 0, vocab = 0;
  size_t in_bytes = 0, out_bytes = 0;  // one copy of one input / of ℓ*
  size_t in_stride = 0, out_stride = 0;
  int64_t sets = 0;
  size_t total = 0;

  Layout(DType t, int64_t b, int64_t v, size_t l2) : dtype(t), rows(b), vocab(v) {
    in_bytes = size_t(b * v) * DTypeBytes(t);
    out_bytes = size_t(b * v) * 4;
    in_stride = AlignUp(in_bytes);
    out_stride = AlignUp(out_bytes);
    // The inputs alone (what every op reads) cover at least twice the L2.
    const size_t pair = 2 * in_bytes;
    sets = std::max<int64_t>(2, int64_t((2 * l2 + pair - 1) / pair));
    total = size_t(sets) * (2 * in_stride + out_stride);
  }
  char* z(int64_t s) const { return g->arena + size_t(s) * in_stride; }
  char* y(int64_t s) const { return g->arena + size_t(sets + s) * in_stride; }
  float* out(int64_t s) const {
    return reinterpret_cast<float*>(g->arena + size_t(2 * sets) * in_stride +
                                    size_t(s) * out_stride);
  }
  LogitsView view(int64_t s) const { return LogitsView::strided(dtype, rows, vocab, z(s), y(s)); }
  double align_bytes() const { return double(2 * in_bytes + out_bytes); }
  double read_bytes() const { return double(2 * in_bytes); }
};

Params BaseParams() {
  Params p;
  p.temperature = kTemperature;
  p.rule = linalign::StepRule::kFixed;
  p.ratio = kRatio;
  p.update = linalign::UpdateForm::kTilt;
  return p;
}
Params TopPParams() {
  Params p = BaseParams();
  p.top_p = kTopP;
  p.nucleus_source = linalign::NucleusSource::kPrinciple;
  p.seed = kSeed;
  return p;
}
Params ExactKlParams() {
  Params p = BaseParams();
  p.rule = linalign::StepRule::kExactKl;
  p.epsilon = 0.1f;
  p.eta_max = 8.f;
  return p;
}
Params PeakedTopPParams() {
  Params p = TopPParams();
  p.temperature = 0.5f;
  return p;
}
Params GreedyParams() {
  Params p = BaseParams();
  p.greedy = true;
  return p;
}

// Writes the logits of a shape into the arena unless it already holds them.
bool Fill(const Layout& L, std::string* err) {
  const auto key = std::make_tuple(int(L.dtype), L.rows, L.vocab);
  if (g->filled == key) return true;
  const int64_t per_set = L.rows * L.vocab;
  const int64_t stride = int64_t(L.in_stride / DTypeBytes(L.dtype));
  const unsigned grid = unsigned(g->sm_count) * 8;
  const uint64_t seed = kDataSeed ^ (uint64_t(L.rows) << 40) ^ uint64_t(L.vocab);
  if (L.dtype == DType::kF32)
    FillLogitsKernel<<<grid, 256, 0, g->stream>>>(reinterpret_cast<float*>(L.z(0)),
                                                  reinterpret_cast<float*>(L.y(0)), per_set, L.sets,
                                                  stride, seed);
  else
    FillLogitsKernel<<<grid, 256, 0, g->stream>>>(reinterpret_cast<__nv_bfloat16*>(L.z(0)),
                                                  reinterpret_cast<__nv_bfloat16*>(L.y(0)), per_set,
                                                  L.sets, stride, seed);
  BENCH_CUDA_OR(cudaPeekAtLastError(), *err = m_; return false);
  BENCH_CUDA_OR(cudaStreamSynchronize(g->stream), *err = m_; return false);
  g->filled = key;
  return true;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// Event time of `calls` calls of `launch(set, call_index)` starting at call
// index `first`, in milliseconds; negative on error (message in *err).
template <class LaunchT>
double TimeCalls(LaunchT& launch, int64_t sets, int64_t first, int calls, std::string* err) {
  BENCH_CUDA_OR(cudaEventRecord(g->ev0, g->stream), *err = m_; return -1);
  for (int k = 0; k < calls; ++k)
    if (!launch((first + k) % sets, first + k, err)) return -1;
  BENCH_CUDA_OR(cudaEventRecord(g->ev1, g->stream), *err = m_; return -1);
  BENCH_CUDA_OR(cudaEventSynchronize(g->ev1), *err = m_; return -1);
  float ms = 0;
  BENCH_CUDA_OR(cudaEventElapsedTime(&ms, g->ev0, g->ev1), *err = m_; return -1);
  return double(ms);
}

// Calls per timed batch so that a batch lasts about kTargetBatchUs.
template <class LaunchT>
int CallsPerBatch(LaunchT& launch, int64_t sets, std::string* err) {
  for (int i = 0; i < 3; ++i)  // warm-up: module load, first-use setup
    if (TimeCalls(launch, sets, i, 1, err) < 0) return -1;
  const double ms = TimeCalls(launch, sets, 3, 8, err);
  if (ms < 0) return -1;
  const double us = std::max(ms * 1e3 / 8, 0.5);
  return int(std::min<double>(kMaxCallsPerBatch, std::max(1.0, std::ceil(kTargetBatchUs / us))));
}

// Median per-call µs of `batches` batches (used outside Google Benchmark).
template <class LaunchT>
double MedianCallUs(LaunchT& launch, int64_t sets, int batches, std::string* err) {
  const int k = CallsPerBatch(launch, sets, err);
  if (k < 0) return -1;
  std::vector<double> us;
  for (int b = 0; b < batches; ++b) {
    const double ms = TimeCalls(launch, sets, int64_t(b) * k, k, err);
    if (ms < 0) return -1;
    us.push_back(ms * 1e3 / k);
  }
  return Median(us);
}

// Copies of `bytes_moved / 2` bytes (read + write = bytes_moved), rotated
// through the arena. Overwrites the arena: the logits must be refilled after.
struct CopyLaunch {
  size_t n = 0;  // bytes per copy
  int64_t slots = 1;
  explicit CopyLaunch(size_t bytes_moved) : n(AlignUp(std::max<size_t>(bytes_moved / 2, 256))) {
    slots = std::max<int64_t>(1, int64_t(g->arena_bytes / 2 / n));
  }
  bool operator()(int64_t s, int64_t, std::string* err) {
    char* src = g->arena + size_t(s) * n;
    char* dst = g->arena + g->arena_bytes / 2 + size_t(s) * n;
    BENCH_CUDA_OR(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, g->stream), *err = m_;
                  return false);
    return true;
  }
};

// Bandwidth (GB/s, read + write) of a device-to-device copy moving
// `bytes_moved` bytes, measured once per byte count.
double SameCopyGBps(size_t bytes_moved, std::string* err) {
  auto it = g->copy_gbps.find(bytes_moved);
  if (it != g->copy_gbps.end()) return it->second;
  CopyLaunch copy(bytes_moved);
  g->filled = {-1, 0, 0};
  const double us = MedianCallUs(copy, copy.slots, 15, err);
  if (us <= 0) return -1;
  const double gbps = 2.0 * double(copy.n) / (us * 1e3);
  g->copy_gbps[bytes_moved] = gbps;
  return gbps;
}

// The timed loop shared by every row: batches of K calls between two events.
template <class LaunchT>
void TimedLoop(benchmark::State& state, LaunchT& launch, int64_t sets, double bytes,
               double same_copy_gbps, const std::string& label, double* us_call_out = nullptr) {
  std::string err;
  const int k = CallsPerBatch(launch, sets, &err);
  if (k < 0) {
    state.SkipWithError(err.c_str());
    return;
  }
  std::vector<double> samples;
  samples.reserve(kMaxSamples);
  int64_t call = 0;
  double total_ms = 0;
  bool failed = false;
  for (auto _ : state) {
    const double ms = TimeCalls(launch, sets, call, k, &err);
    if (ms < 0) {
      state.SkipWithError(err.c_str());
      failed = true;
      break;
    }
    call += k;
    total_ms += ms;
    state.SetIterationTime(ms * 1e-3);
    if (samples.size() < kMaxSamples) samples.push_back(ms * 1e3 / k);
  }
  if (failed || samples.empty()) return;
  const double us = Median(samples);
  const double gbps = bytes / (us * 1e3);
  state.counters["us_call"] = us;
  state.counters["us_mean"] = total_ms * 1e3 / double(call);
  state.counters["GBps"] = gbps;
  state.counters["copy_frac"] = gbps / g->peak_copy_gbps;
  if (same_copy_gbps > 0) state.counters["copy_same_frac"] = gbps / same_copy_gbps;
  state.counters["calls_per_iter"] = k;
  state.counters["sets"] = double(sets);
  state.SetLabel(label + " K=" + std::to_string(k));
  if (us_call_out) *us_call_out = us;
}

std::string ShapeLabel(const Layout& L) {
  return std::string(DTypeName(L.dtype)) + " B=" + std::to_string(L.rows) +
         " V=" + std::to_string(L.vocab) + " sets=" + std::to_string(L.sets);
}

void ApplyChecks(benchmark::State& state, const std::string& name) {
  for (const auto& kv : g->checks[name]) state.counters[kv.first] = kv.second;
}

// Max |a − ref| over ref ≥ −20 and the count of non-finite differences.
bool CompareOnDevice(const float* a, const float* ref, int64_t n, double* max_diff, double* bad,
                     std::string* err) {
  BENCH_CUDA_OR(cudaMemsetAsync(g->counters, 0, 2 * sizeof(unsigned), g->stream), *err = m_;
                return false);
  CompareKernel<<<unsigned(g->sm_count) * 4, 256, 0, g->stream>>>(a, ref, n, g->counters,
                                                                  g->counters + 1);
  BENCH_CUDA_OR(cudaPeekAtLastError(), *err = m_; return false);
  unsigned h[2] = {0, 0};
  BENCH_CUDA_OR(cudaMemcpyAsync(h, g->counters, sizeof h, cudaMemcpyDeviceToHost, g->stream),
                *err = m_;
                return false);
  BENCH_CUDA_OR(cudaStreamSynchronize(g->stream), *err = m_; return false);
  float m;
  static_assert(sizeof m == sizeof h[0], "float bits");
  std::memcpy(&m, &h[0], sizeof m);
  *max_diff = m;
  *bad = h[1];
  return true;
}

template <class T>
std::vector<T> ToHost(const T* p, int64_t n, std::string* err) {
  std::vector<T> h(size_t(std::max<int64_t>(n, 0)));
  if (n > 0) {
    BENCH_CUDA_OR(
        cudaMemcpyAsync(h.data(), p, sizeof(T) * size_t(n), cudaMemcpyDeviceToHost, g->stream),
        *err = m_;
        return {});
    BENCH_CUDA_OR(cudaStreamSynchronize(g->stream), *err = m_; return {});
  }
  return h;
}

cudaError_t LaunchUnfused(const Layout& L, int64_t s, float* out) {
  if (L.dtype == DType::kF32)
    return linalign_bench::LaunchUnfusedAlign(
        reinterpret_cast<const float*>(L.z(s)), reinterpret_cast<const float*>(L.y(s)), out, L.rows,
        L.vocab, kTemperature, kRatio, g->temps, g->sm_count, g->stream);
  return linalign_bench::LaunchUnfusedAlign(reinterpret_cast<const __nv_bfloat16*>(L.z(s)),
                                            reinterpret_cast<const __nv_bfloat16*>(L.y(s)), out,
                                            L.rows, L.vocab, kTemperature, kRatio, g->temps,
                                            g->sm_count, g->stream);
}

Status Align(const Layout& L, int64_t s) {
  return g->ctx->align(L.view(s), BaseParams(), L.out(s), 0, g->diag, g->workspace,
                       g->workspace_bytes, g->stream);
}

// Once per shape: linalign's ℓ*, μ, σ against the unfused peer, and row status.
void CheckAlign(const std::string& name, const Layout& L) {
  if (g->checks.count(name)) return;
  auto& c = g->checks[name];
  std::string err;
  c["chk_failed"] = 1;
  if (Align(L, 0) != Status::kSuccess) return;
  if (LaunchUnfused(L, 0, g->check) != cudaSuccess) return;
  double max_diff = 0, bad = 0;
  if (!CompareOnDevice(L.out(0), g->check, L.rows * L.vocab, &max_diff, &bad, &err)) return;
  const auto diag = ToHost(g->diag, L.rows, &err);
  const auto mu = ToHost(g->temps.mu, L.rows, &err);
  const auto var = ToHost(g->temps.var, L.rows, &err);
  if (diag.size() != size_t(L.rows) || mu.size() != size_t(L.rows) || var.size() != size_t(L.rows))
    return;
  double bad_rows = 0, mu_diff = 0, sigma_diff = 0;
  for (int64_t r = 0; r < L.rows; ++r) {
    const RowDiagnostics& d = diag[size_t(r)];
    if (d.status != 0 || d.support != L.vocab) bad_rows += 1;
    mu_diff = std::max(mu_diff, double(std::fabs(d.mu - mu[size_t(r)])));
    sigma_diff = std::max(sigma_diff, double(std::fabs(d.sigma - std::sqrt(var[size_t(r)]))));
  }
  c["chk_failed"] = 0;
  c["chk_maxdiff_unfused"] = max_diff;
  c["chk_nonfinite"] = bad;
  c["chk_bad_rows"] = bad_rows;
  c["chk_mu_diff"] = mu_diff;
  c["chk_sigma_diff"] = sigma_diff;
}

// Once per shape: tokens in range and finite token log-probs; for greedy,
// the token equals the argmax of align()'s ℓ* (no mask: top_p = 1).
void CheckSample(const std::string& name, const Layout& L, const Params& p) {
  if (g->checks.count(name)) return;
  auto& c = g->checks[name];
  std::string err;
  c["chk_failed"] = 1;
  if (g->ctx->sample(L.view(0), p, g->tokens, g->token_logprob, nullptr, g->workspace,
                     g->workspace_bytes, g->stream) != Status::kSuccess)
    return;
  const auto tok = ToHost(g->tokens, L.rows, &err);
  const auto lp = ToHost(g->token_logprob, L.rows, &err);
  if (tok.size() != size_t(L.rows) || lp.size() != size_t(L.rows)) return;
  double bad_tokens = 0, bad_logprob = 0, mismatch = 0;
  for (int64_t r = 0; r < L.rows; ++r) {
    if (tok[size_t(r)] < 0 || tok[size_t(r)] >= L.vocab) bad_tokens += 1;
    if (!(lp[size_t(r)] <= 0.f) || !std::isfinite(lp[size_t(r)])) bad_logprob += 1;
  }
  if (p.greedy) {
    if (Align(L, 0) != Status::kSuccess) return;
    ArgmaxKernel<<<unsigned(L.rows), 1024, 0, g->stream>>>(L.out(0), L.vocab, g->ref_tokens);
    if (cudaPeekAtLastError() != cudaSuccess) return;
    const auto ref = ToHost(g->ref_tokens, L.rows, &err);
    if (ref.size() != size_t(L.rows)) return;
    for (int64_t r = 0; r < L.rows; ++r) mismatch += tok[size_t(r)] != ref[size_t(r)];
    c["chk_greedy_mismatch"] = mismatch;
  }
  c["chk_failed"] = 0;
  c["chk_bad_tokens"] = bad_tokens;
  c["chk_bad_logprob"] = bad_logprob;
}

// Ragged sequences over B rows (lengths 1, 2, 3, ...), as in cpu_bench.
std::vector<int64_t> SeqOffsets(int64_t rows) {
  std::vector<int64_t> o{0};
  for (int64_t r = 1; r < rows; r += int64_t(o.size()) + 1) o.push_back(r);
  o.push_back(rows);
  return o;
}

ScoreOutputs MakeScoreOutputs(int64_t rows) {
  ScoreOutputs o;
  o.aligned = g->score[0];
  o.base = g->score[1];
  o.principle = g->score[2];
  o.seq_offsets = g->seq_offsets;
  o.num_sequences = int64_t(SeqOffsets(rows).size()) - 1;
  o.seq_aligned = g->seq_score[0];
  o.seq_base = g->seq_score[1];
  o.seq_principle = g->seq_score[2];
  return o;
}

// Uploads targets (one ignored row when B > 1) and the sequence offsets.
bool UploadTargets(const Layout& L, std::vector<int32_t>* host, std::string* err) {
  host->resize(size_t(L.rows));
  uint64_t x = 7;
  for (auto& t : *host) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t = int32_t((x >> 33) % uint64_t(L.vocab));
  }
  if (L.rows > 1) (*host)[1] = BaseParams().ignore_index;
  const auto offsets = SeqOffsets(L.rows);
  BENCH_CUDA_OR(cudaMemcpyAsync(g->targets, host->data(), sizeof(int32_t) * host->size(),
                                cudaMemcpyHostToDevice, g->stream),
                *err = m_;
                return false);
  BENCH_CUDA_OR(cudaMemcpyAsync(g->seq_offsets, offsets.data(), sizeof(int64_t) * offsets.size(),
                                cudaMemcpyHostToDevice, g->stream),
                *err = m_;
                return false);
  BENCH_CUDA_OR(cudaStreamSynchronize(g->stream), *err = m_; return false);
  return true;
}

// Once per shape: ℓ*_t against align()'s ℓ*, ℓ_t and ℓᵖ_t against the
// unfused peer's log_softmax temporaries (not ignored rows only).
void CheckScore(const std::string& name, const Layout& L, const std::vector<int32_t>& targets) {
  if (g->checks.count(name)) return;
  auto& c = g->checks[name];
  std::string err;
  c["chk_failed"] = 1;
  if (g->ctx->score(L.view(0), BaseParams(), g->targets, MakeScoreOutputs(L.rows), nullptr,
                    g->workspace, g->workspace_bytes, g->stream) != Status::kSuccess)
    return;
  if (Align(L, 0) != Status::kSuccess) return;
  if (LaunchUnfused(L, 0, g->check) != cudaSuccess) return;
  const float* sources[3] = {L.out(0), g->temps.lz, g->temps.ly};
  const unsigned blocks = unsigned((L.rows + 255) / 256);
  double diff = 0;
  for (int k = 0; k < 3; ++k) {
    GatherKernel<<<blocks, 256, 0, g->stream>>>(sources[k], L.vocab, g->targets, L.rows,
                                                g->gathered[k]);
    if (cudaPeekAtLastError() != cudaSuccess) return;
    const auto got = ToHost(g->score[k], L.rows, &err);
    const auto want = ToHost(g->gathered[k], L.rows, &err);
    if (got.size() != size_t(L.rows) || want.size() != size_t(L.rows)) return;
    for (int64_t r = 0; r < L.rows; ++r) {
      const bool ignored = targets[size_t(r)] == BaseParams().ignore_index;
      const double d = ignored ? std::fabs(got[size_t(r)])  // ignored rows score 0
                               : std::fabs(got[size_t(r)] - want[size_t(r)]);
      diff = std::isfinite(d) ? std::max(diff, d) : INFINITY;
    }
  }
  c["chk_failed"] = 0;
  c["chk_score_diff"] = diff;
}

// ------------------------------------------------------------------ rows ---

enum class Row {
  kCopy,
  kAlignUnfused,
  kAlign,
  kAlignExactKl,
  kSampleTopP,
  kSampleTopPPeaked,
  kSampleGreedy,
  kScore
};

void RunRow(benchmark::State& state, Row row, DType dtype, const std::string& name) {
  const int64_t B = state.range(0), V = state.range(1);
  const Layout L(dtype, B, V, g->l2_bytes);
  std::string err;
  const double bytes = (row == Row::kCopy || row == Row::kAlign || row == Row::kAlignExactKl ||
                        row == Row::kAlignUnfused)
                           ? L.align_bytes()
                           : L.read_bytes();
  // Measured before the fill: the copy overwrites the arena.
  const double same_copy = SameCopyGBps(size_t(bytes), &err);
  if (same_copy < 0) {
    state.SkipWithError(err.c_str());
    return;
  }
  if (row == Row::kCopy) {
    CopyLaunch copy{static_cast<size_t>(bytes)};
    g->filled = {-1, 0, 0};
    TimedLoop(state, copy, copy.slots, 2.0 * double(copy.n), same_copy,
              ShapeLabel(L) + " copy_slots=" + std::to_string(copy.slots));
    return;
  }
  if (!Fill(L, &err)) {
    state.SkipWithError(err.c_str());
    return;
  }
  const auto shape_key = std::make_tuple(int(dtype), B, V);
  switch (row) {
    case Row::kAlignUnfused: {
      auto launch = [&](int64_t s, int64_t, std::string* e) {
        const cudaError_t c = LaunchUnfused(L, s, L.out(s));
        if (c != cudaSuccess) *e = std::string("unfused: ") + cudaGetErrorString(c);
        return c == cudaSuccess;
      };
      double us = 0;
      TimedLoop(state, launch, L.sets, bytes, same_copy, ShapeLabel(L), &us);
      if (us > 0) g->unfused_us[shape_key] = us;
      return;
    }
    case Row::kAlign: {
      CheckAlign(name, L);
      auto launch = [&](int64_t s, int64_t, std::string* e) {
        const Status st = Align(L, s);
        if (st != Status::kSuccess) *e = std::string("align: ") + g->ctx->last_error();
        return st == Status::kSuccess;
      };
      double us = 0;
      TimedLoop(state, launch, L.sets, bytes, same_copy, ShapeLabel(L), &us);
      ApplyChecks(state, name);
      auto it = g->unfused_us.find(shape_key);
      if (us > 0 && it != g->unfused_us.end()) state.counters["speedup"] = it->second / us;
      return;
    }
    case Row::kAlignExactKl: {
      const Params p = ExactKlParams();
      auto launch = [&](int64_t s, int64_t, std::string* e) {
        const Status st = g->ctx->align(L.view(s), p, L.out(s), 0, g->diag, g->workspace,
                                        g->workspace_bytes, g->stream);
        if (st != Status::kSuccess) *e = std::string("align exact_kl: ") + g->ctx->last_error();
        return st == Status::kSuccess;
      };
      TimedLoop(state, launch, L.sets, bytes, same_copy, ShapeLabel(L));
      return;
    }
    case Row::kSampleTopP:
    case Row::kSampleTopPPeaked:
    case Row::kSampleGreedy: {
      Params p = row == Row::kSampleTopP         ? TopPParams()
                 : row == Row::kSampleTopPPeaked ? PeakedTopPParams()
                                                 : GreedyParams();
      CheckSample(name, L, p);
      auto launch = [&](int64_t s, int64_t call, std::string* e) {
        p.offset = uint64_t(call);  // the step counter: a fresh draw every call
        const Status st = g->ctx->sample(L.view(s), p, g->tokens, g->token_logprob, nullptr,
                                         g->workspace, g->workspace_bytes, g->stream);
        if (st != Status::kSuccess) *e = std::string("sample: ") + g->ctx->last_error();
        return st == Status::kSuccess;
      };
      TimedLoop(state, launch, L.sets, bytes, same_copy, ShapeLabel(L));
      ApplyChecks(state, name);
      return;
    }
    case Row::kScore: {
      std::vector<int32_t> targets;
      if (!UploadTargets(L, &targets, &err)) {
        state.SkipWithError(err.c_str());
        return;
      }
      CheckScore(name, L, targets);
      const ScoreOutputs out = MakeScoreOutputs(B);
      auto launch = [&](int64_t s, int64_t, std::string* e) {
        const Status st = g->ctx->score(L.view(s), BaseParams(), g->targets, out, nullptr,
                                        g->workspace, g->workspace_bytes, g->stream);
        if (st != Status::kSuccess) *e = std::string("score: ") + g->ctx->last_error();
        return st == Status::kSuccess;
      };
      TimedLoop(state, launch, L.sets, bytes, same_copy, ShapeLabel(L));
      ApplyChecks(state, name);
      return;
    }
    case Row::kCopy:
      return;
  }
}

// One decode step at B = 1: align (ℓ*, diagnostics) then top-p sampling.
// One B = 1 decode step: the top-p sample call (what an engine runs per
// token), preceded by align when `with_align` (an engine that also wants ℓ*).
bool Step(const Layout& L, int64_t s, bool with_align, std::string* err) {
  Status st = with_align ? Align(L, s) : Status::kSuccess;
  if (st == Status::kSuccess)
    st = g->ctx->sample(L.view(s), TopPParams(), g->tokens, g->token_logprob, nullptr, g->workspace,
                        g->workspace_bytes, g->stream);
  if (st != Status::kSuccess) *err = std::string("step: ") + g->ctx->last_error();
  return st == Status::kSuccess;
}

// One graph per rotated copy of the inputs (a graph's pointers are fixed).
bool BuildGraphs(const Layout& L, bool with_align, std::vector<cudaGraphExec_t>* execs,
                 std::string* err) {
  if (!Step(L, 0, with_align, err)) return false;  // first-use setup outside capture, as engines do
  BENCH_CUDA_OR(cudaStreamSynchronize(g->stream), *err = m_; return false);
  for (int64_t s = 0; s < L.sets; ++s) {
    BENCH_CUDA_OR(cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeGlobal), *err = m_;
                  return false);
    std::string step_err;
    const bool ok = Step(L, s, with_align, &step_err);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(g->stream, &graph);
    if (!ok || end != cudaSuccess) {
      (void)cudaGetLastError();  // clear the capture error
      if (graph) (void)cudaGraphDestroy(graph);
      *err = "not graph-capturable: " +
             (ok ? std::string("cudaStreamEndCapture: ") + cudaGetErrorString(end) : step_err);
      return false;
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    (void)cudaGraphDestroy(graph);
    BENCH_CUDA_OR(inst, *err = "cudaGraphInstantiate: " + m_; return false);
    execs->push_back(exec);
  }
  return true;
}

void RunStep(benchmark::State& state, DType dtype, bool graph, bool with_align) {
  const int64_t V = state.range(1);
  const Layout L(dtype, 1, V, g->l2_bytes);
  std::string err;
  // align reads and writes, then sample reads again
  const double bytes = with_align ? L.align_bytes() + L.read_bytes() : L.read_bytes();
  const double same_copy = SameCopyGBps(size_t(bytes), &err);
  if (same_copy < 0 || !Fill(L, &err)) {
    state.SkipWithError(err.c_str());
    return;
  }
  if (!graph) {
    auto launch = [&](int64_t s, int64_t, std::string* e) { return Step(L, s, with_align, e); };
    TimedLoop(state, launch, L.sets, bytes, same_copy, ShapeLabel(L));
    return;
  }
  auto& execs = g->graphs[std::make_tuple(int(dtype), V, with_align)];
  if (execs.empty() && !BuildGraphs(L, with_align, &execs, &err)) {
    for (cudaGraphExec_t e : execs) (void)cudaGraphExecDestroy(e);
    execs.clear();
    state.SkipWithError(err.c_str());
    return;
  }
  auto launch = [&](int64_t s, int64_t, std::string* e) {
    BENCH_CUDA_OR(cudaGraphLaunch(execs[size_t(s)], g->stream), *e = m_; return false);
    return true;
  };
  TimedLoop(state, launch, L.sets, bytes, same_copy, ShapeLabel(L) + " graphs");
}

// --------------------------------------------------------------- setup ---

// Returns 0 when ready, 1 to skip cleanly (no device), 2 on a real failure.
int SetUp(std::string* why) {
  if (!linalign::cuda_compiled()) {
    *why = "this linalign build has no CUDA backend";
    return 1;
  }
  int count = 0;
  const cudaError_t ce = cudaGetDeviceCount(&count);
  if (ce != cudaSuccess || count == 0 || linalign::cuda_device_count() == 0) {
    *why = std::string("no CUDA device (") +
           (ce != cudaSuccess ? cudaGetErrorString(ce) : "device count 0") + ")";
    (void)cudaGetLastError();
    return 1;
  }
  g = new Gpu;
  BENCH_CUDA_OR(cudaGetDevice(&g->device), *why = m_; return 2);
  BENCH_CUDA_OR(cudaGetDeviceProperties(&g->prop, g->device), *why = m_; return 2);
  int l2 = 0;
  BENCH_CUDA_OR(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, g->device), *why = m_;
                return 2);
  BENCH_CUDA_OR(cudaDeviceGetAttribute(&g->sm_count, cudaDevAttrMultiProcessorCount, g->device),
                *why = m_;
                return 2);
  g->l2_bytes = size_t(std::max(l2, 1 << 20));

  linalign::ContextOptions opt;
  opt.backend = linalign::Backend::kCuda;
  opt.device = g->device;
  std::string cerr;
  const Status cs = Context::create(opt, &g->ctx, &cerr);
  if (cs != Status::kSuccess) {
    *why = std::string("Context::create(kCuda): ") + linalign::status_string(cs) + ": " + cerr;
    return cs == Status::kNoDevice ? 1 : 2;
  }
  BENCH_CUDA_OR(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking), *why = m_; return 2);
  BENCH_CUDA_OR(cudaEventCreate(&g->ev0), *why = m_; return 2);
  BENCH_CUDA_OR(cudaEventCreate(&g->ev1), *why = m_; return 2);

  // Sizes over every shape: arena, temporaries; the workspace below.
  size_t arena = 2 * kPeakCopyBytes + (size_t{64} << 20);
  size_t max_elems = 0;
  int64_t max_rows = 0;
  for (DType t : kDTypes)
    for (int64_t B : kBatches)
      for (int64_t V : kVocabs) {
        const Layout L(t, B, V, g->l2_bytes);
        arena = std::max(arena, L.total);
        max_elems = std::max(max_elems, size_t(B * V));
        max_rows = std::max(max_rows, B);
      }
  g->arena_bytes = AlignUp(arena);
  BENCH_CUDA_OR(cudaMalloc(&g->arena, g->arena_bytes), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->temps.lz, max_elems * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->temps.ly, max_elems * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->temps.d, max_elems * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->check, max_elems * 4), *why = m_; return 2);
  const size_t rb = size_t(max_rows);
  BENCH_CUDA_OR(cudaMalloc(&g->temps.mu, rb * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->temps.var, rb * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->diag, rb * sizeof(RowDiagnostics)), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->tokens, rb * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->ref_tokens, rb * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->token_logprob, rb * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->targets, rb * 4), *why = m_; return 2);
  BENCH_CUDA_OR(cudaMalloc(&g->seq_offsets, (rb + 1) * 8), *why = m_; return 2);
  for (int k = 0; k < 3; ++k) {
    BENCH_CUDA_OR(cudaMalloc(&g->score[k], rb * 4), *why = m_; return 2);
    BENCH_CUDA_OR(cudaMalloc(&g->gathered[k], rb * 4), *why = m_; return 2);
    BENCH_CUDA_OR(cudaMalloc(&g->seq_score[k], rb * 4), *why = m_; return 2);
  }
  BENCH_CUDA_OR(cudaMalloc(&g->counters, 2 * sizeof(unsigned)), *why = m_; return 2);
  // Workspace for every shape and op, queried with real device pointers (the
  // size does not depend on them, but a backend may validate them).
  size_t ws = 0;
  for (DType t : kDTypes)
    for (int64_t B : kBatches)
      for (int64_t V : kVocabs) {
        const LogitsView v = Layout(t, B, V, g->l2_bytes).view(0);
        for (const Params& p : {BaseParams(), ExactKlParams(), TopPParams(), GreedyParams()})
          for (Op op : {Op::kAlign, Op::kSample, Op::kScore})
            ws = std::max(ws, g->ctx->workspace_size(op, v, p));
      }
  g->workspace_bytes = std::max<size_t>(ws, 256);
  BENCH_CUDA_OR(cudaMalloc(&g->workspace, g->workspace_bytes), *why = m_; return 2);
  // Touch the arena once (never time first-touch page mapping).
  BENCH_CUDA_OR(cudaMemsetAsync(g->arena, 0x3c, g->arena_bytes, g->stream), *why = m_; return 2);

  // Peak copy bandwidth: 1 GiB copies, far beyond L2.
  CopyLaunch peak(2 * kPeakCopyBytes);
  std::string err;
  const double us = MedianCallUs(peak, peak.slots, 10, &err);
  if (us <= 0) {
    *why = "peak copy: " + err;
    return 2;
  }
  g->peak_copy_gbps = 2.0 * double(peak.n) / (us * 1e3);

  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s, %d SMs, L2 %.1f MiB, %.1f GiB; peak copy %.0f GB/s (read+write, 1 GiB "
                "copies); arena %.2f GiB; workspace %.1f KiB",
                g->prop.name, g->sm_count, double(g->l2_bytes) / (1 << 20),
                double(g->prop.totalGlobalMem) / (1 << 30), g->peak_copy_gbps,
                double(g->arena_bytes) / (1 << 30), double(g->workspace_bytes) / 1024);
  std::printf("linalign_bench_gpu: %s\n", buf);
  std::fflush(stdout);
  benchmark::AddCustomContext("gpu", g->prop.name);
  benchmark::AddCustomContext("gpu_sm_count", std::to_string(g->sm_count));
  benchmark::AddCustomContext("gpu_l2_bytes", std::to_string(g->l2_bytes));
  benchmark::AddCustomContext("peak_copy_GBps", std::to_string(g->peak_copy_gbps));
  return 0;
}

void TearDown() {
  if (!g) return;
  for (auto& kv : g->graphs)
    for (cudaGraphExec_t e : kv.second) (void)cudaGraphExecDestroy(e);
  g->ctx.reset();
  void* bufs[] = {g->arena,        g->workspace,    g->temps.lz,     g->temps.ly,
                  g->temps.d,      g->check,        g->temps.mu,     g->temps.var,
                  g->diag,         g->tokens,       g->ref_tokens,   g->token_logprob,
                  g->targets,      g->seq_offsets,  g->score[0],     g->score[1],
                  g->score[2],     g->gathered[0],  g->gathered[1],  g->gathered[2],
                  g->seq_score[0], g->seq_score[1], g->seq_score[2], g->counters};
  for (void* p : bufs)
    if (p) (void)cudaFree(p);
  if (g->ev0) (void)cudaEventDestroy(g->ev0);
  if (g->ev1) (void)cudaEventDestroy(g->ev1);
  if (g->stream) (void)cudaStreamDestroy(g->stream);
  delete g;
  g = nullptr;
}

void Register() {
  double min_time = 0;
  if (const char* s = std::getenv("LINALIGN_BENCH_MIN_TIME")) min_time = std::atof(s);
  auto add = [&](const std::string& name, auto fn, int64_t B, int64_t V) {
    auto* b = benchmark::RegisterBenchmark(name.c_str(), fn)
                  ->Args({B, V})
                  ->ArgNames({"B", "V"})
                  ->UseManualTime()
                  ->Unit(benchmark::kMicrosecond);
    if (min_time > 0) b->MinTime(min_time);
  };
  struct RowName {
    Row row;
    const char* name;
  };
  const RowName rows[] = {{Row::kCopy, "copy_d2d"},
                          {Row::kAlignUnfused, "align_unfused"},
                          {Row::kAlign, "align_linalign"},
                          {Row::kAlignExactKl, "align_exactkl_linalign"},
                          {Row::kSampleTopP, "sample_topp_linalign"},
                          {Row::kSampleTopPPeaked, "sample_topp_t05_linalign"},
                          {Row::kSampleGreedy, "sample_greedy_linalign"},
                          {Row::kScore, "score_linalign"}};
  for (DType t : kDTypes)
    for (int64_t V : kVocabs)
      for (int64_t B : kBatches)
        for (const RowName& r : rows) {
          if (r.row == Row::kAlignExactKl && t != DType::kF32) continue;
          const std::string name = std::string(r.name) + "/" + DTypeName(t);
          const std::string full = name + "/B:" + std::to_string(B) + "/V:" + std::to_string(V);
          const Row row = r.row;
          add(
              name, [row, t, full](benchmark::State& st) { RunRow(st, row, t, full); }, B, V);
        }
  // The device check's first step (bench/device_check.sh, "decide"): align
  // fp32 at V = 128256 over a finer sweep of B — these with kBatches' 1, 8,
  // 64 — against the copy of the same bytes, so the per-row time can be
  // fitted (bench/decide_summary.py) and the fused path compared with the
  // multi-kernel one (a second run with LINALIGN_CUDA_FUSED=0).
  constexpr int64_t kSweepBatches[] = {2, 3, 4, 16, 32, 128};
  constexpr int64_t kSweepVocab = 128256;
  for (int64_t B : kSweepBatches)
    for (const RowName& r : rows) {
      if (r.row != Row::kCopy && r.row != Row::kAlign) continue;
      const std::string name = std::string(r.name) + "/" + DTypeName(DType::kF32);
      const std::string full =
          name + "/B:" + std::to_string(B) + "/V:" + std::to_string(kSweepVocab);
      const Row row = r.row;
      add(
          name, [row, full](benchmark::State& st) { RunRow(st, row, DType::kF32, full); }, B,
          kSweepVocab);
    }
  for (DType t : kDTypes)
    for (int64_t V : kVocabs) {
      add(
          std::string("step_graph/") + DTypeName(t),
          [t](benchmark::State& st) { RunStep(st, t, true, true); }, 1, V);
      add(
          std::string("step_stream/") + DTypeName(t),
          [t](benchmark::State& st) { RunStep(st, t, false, true); }, 1, V);
      add(
          std::string("step_sample_graph/") + DTypeName(t),
          [t](benchmark::State& st) { RunStep(st, t, true, false); }, 1, V);
    }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string why;
  const int rc = SetUp(&why);
  if (rc != 0) {
    std::printf("linalign_bench_gpu: %s: %s\n", rc == 1 ? "skipped" : "FAILED", why.c_str());
    TearDown();
    return rc == 1 ? 0 : 1;
  }
  Register();
  benchmark::RunSpecifiedBenchmarks();
  TearDown();
  benchmark::Shutdown();
  return 0;
}
