// The CUDA backend against the CPU backend (SPEC §6; docs/SEMANTICS.md), through
// the public API, on the same input bytes:
//   * aligned log-probs within the per-dtype tolerance of SPEC §6 (twice the
//     bound against float64, since each backend is within it), diagnostics
//     within 2e-4 relative + 2e-5 absolute, identical support and status;
//   * greedy tokens identical, sampled tokens identical (same Philox stream),
//     except near-ties (the CPU's top-two scores within the tie tolerance);
//   * scores and per-sequence sums; row-level errors; per-row parameters in
//     device arrays (bad values flag the row kRowBadParameter);
//   * strided (padded, misaligned), pointer-array and paired layouts;
//   * a call captured in a CUDA graph with a workspace, replayed;
//   * statuses (never a crash) for bad arguments; pageable host memory
//     refused on the host, argument by argument, with nothing written (also
//     during a capture); pinned and managed memory accepted (real CUDA).
// Every test skips when no CUDA device is present.

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "gpu_test_util.hpp"
#include "linalign/linalign.hpp"
#include "linalign/math/dtype.hpp"
#include "linalign/math/philox.hpp"
#include "test_context.hpp"

namespace {

using namespace linalign_test::api;
using linalign_gpu_test::DeviceArray;
using linalign_gpu_test::put;
using linalign_gpu_test::sz;

// Built against the SIMT emulator (tests/emu), every CUDA thread is a fiber
// on one CPU core: the core shapes keep their regime boundaries (1, 2, odd
// 37, one and many slices, 32000 vs 32001, 50257) but drop the two largest
// vocabularies and use 23 rows (every row kind, every row error) for 99.
#if defined(LINALIGN_SIMT_EMULATED)
constexpr bool kEmulated = true;
#else
constexpr bool kEmulated = false;
#endif
// LINALIGN_TEST_SCALE=small (the sanitizer build in CI) keeps, emulated,
// one vocabulary of each regime: 1, 2, odd 37, one slice (1537), many (32001).
bool small_scale() {
  const char* s = std::getenv("LINALIGN_TEST_SCALE");
  return s != nullptr && std::string(s) == "small";
}
const std::vector<int64_t> kCoreVocab =
    !kEmulated      ? std::vector<int64_t>{1, 2, 37, 32000, 32001, 50257, 128256, 151936}
    : small_scale() ? std::vector<int64_t>{1, 2, 37, 1537, 32001}
                    : std::vector<int64_t>{1, 2, 37, 1537, 32000, 32001, 50257};
const std::vector<int64_t> kCoreBatch =
    kEmulated ? std::vector<int64_t>{0, 1, 3, 23} : std::vector<int64_t>{0, 1, 3, 99};

#define CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

// ------------------------------------------------------------- helpers ---

std::unique_ptr<Context> make(Backend b) {
  return linalign_gpu_test::make_context(b, 4);
}

int64_t elem_bytes(DType t) {
  return t == DType::kF32 ? 4 : 2;
}
const char* dtype_name(DType t) {
  return t == DType::kF32 ? "f32" : t == DType::kBF16 ? "bf16" : "f16";
}

// B row pairs of V logits (row stride `stride` elements), as raw bytes.
struct Inputs {
  DType dtype = DType::kF32;
  int64_t rows = 0, vocab = 0, stride = 0;
  std::vector<unsigned char> z, y;
};

// B dense rows of V zeros of dtype t, for a test to fill (put).
Inputs zero_inputs(DType t, int64_t B, int64_t V) {
  Inputs in;
  in.dtype = t;
  in.rows = B;
  in.vocab = in.stride = V;
  in.z.assign(sz(B * V * elem_bytes(t)), 0);
  in.y = in.z;
  return in;
}

// Row kinds cycle over: correlated normal, Gumbel, −inf masks, constant base,
// one-hot rows, +50 shift, independent rows. With `row_errors`, a few rows get
// a NaN, a +inf or an empty support (SPEC §5 row-level errors).
Inputs make_inputs(DType t, int64_t B, int64_t V, int64_t stride, uint32_t seed,
                   bool row_errors = false) {
  Inputs in;
  in.dtype = t;
  in.rows = B;
  in.vocab = V;
  in.stride = stride;
  const int64_t eb = elem_bytes(t);
  in.z.assign(sz(std::max<int64_t>(1, B * stride * eb)), 0);
  in.y = in.z;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 3.f), small(0.f, 1.f);
  std::uniform_real_distribution<float> ud(1e-6f, 1.f - 1e-6f);
  for (int64_t r = 0; r < B; ++r) {
    const int kind = int(r % 7);
    for (int64_t i = 0; i < stride; ++i) {
      float z = nd(rng), y = z + small(rng);
      switch (kind) {
        case 1:
          z = -2.f * std::log(-std::log(ud(rng)));
          y = z + small(rng);
          break;
        case 2:
          if (i % 10 == 3) z = -kInfF;
          if (i % 10 == 7) y = -kInfF;
          break;
        case 3:
          z = 1.25f;
          break;
        case 4:
          z = i == V / 3 ? 10.f : -10.f;
          y = i == V / 2 ? 12.f : -8.f;
          break;
        case 5:
          z += 50.f;
          y += 50.f;
          break;
        case 6:
          y = nd(rng);
          break;
        default:
          break;
      }
      if (i >= V) z = y = 1e30f;  // padding: must never be read as data
      put(in.z, t, r * stride + i, z);
      put(in.y, t, r * stride + i, y);
    }
    if (row_errors && V > 4) {
      if (r % 11 == 5) put(in.z, t, r * stride + V / 2, kNanF);
      if (r % 11 == 7) put(in.y, t, r * stride + V - 1, kInfF);
      if (r % 11 == 9)
        for (int64_t i = 0; i < V; ++i) put(in.z, t, r * stride + i, -kInfF);
    }
  }
  return in;
}

struct DeviceInputs {
  DeviceArray<unsigned char> z, y;
  explicit DeviceInputs(const Inputs& in) : z(in.z), y(in.y) {}
  LogitsView view(const Inputs& in) const {
    return LogitsView::strided(in.dtype, in.rows, in.vocab, z.get(), y.get(), in.stride, in.stride);
  }
};
LogitsView host_view(const Inputs& in) {
  return LogitsView::strided(in.dtype, in.rows, in.vocab, in.z.data(), in.y.data(), in.stride,
                             in.stride);
}

// ----------------------------------------------------------- comparing ---

// The byte images of two arrays are equal (sentinels of any trivially
// copyable type, NaN included).
template <class T>
bool same_bytes(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

bool close(float a, float b, float rel, float abs_tol) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= abs_tol + rel * std::fabs(b);
}

// Diagnostics: 2e-4 relative + 2e-5 absolute (twice SPEC §6), support and
// status identical.
void expect_diagnostics(const std::vector<RowDiagnostics>& gpu,
                        const std::vector<RowDiagnostics>& cpu, const std::string& what) {
  ASSERT_EQ(gpu.size(), cpu.size());
  int bad = 0;
  for (size_t r = 0; r < cpu.size() && bad < 5; ++r) {
    const RowDiagnostics &g = gpu[r], &c = cpu[r];
    const float rel = 2e-4f, abs_tol = 2e-5f;
    const bool ok = g.status == c.status && g.support == c.support &&
                    close(g.eta, c.eta, rel, abs_tol) && close(g.mu, c.mu, rel, abs_tol) &&
                    close(g.sigma, c.sigma, rel, abs_tol) &&
                    close(g.kl_base, c.kl_base, rel, abs_tol) &&
                    close(g.kl_principle, c.kl_principle, rel, abs_tol) &&
                    close(g.entropy, c.entropy, rel, abs_tol);
    if (!ok) {
      ++bad;
      ADD_FAILURE() << what << " row " << r << ": gpu {eta " << g.eta << ", mu " << g.mu
                    << ", sigma " << g.sigma << ", kl " << g.kl_base << ", klp " << g.kl_principle
                    << ", H " << g.entropy << ", S " << g.support << ", status " << g.status
                    << "} cpu {eta " << c.eta << ", mu " << c.mu << ", sigma " << c.sigma << ", kl "
                    << c.kl_base << ", klp " << c.kl_principle << ", H " << c.entropy << ", S "
                    << c.support << ", status " << c.status << "}";
    }
  }
}

// ℓ*: 2·1e-4·max(1, |η|) where ℓ* ≥ −20 (scaled with |ℓ*| below); −inf and
// NaN exactly; a token the linear update clips on one side only must be
// deep in the tail (log of a factor at rounding level) on the other.
//
// The linear update's ℓ*_i carries log f_i, f_i = 1 + η(δ_i − μ): an fp32
// error e_f of f_i (a few ulps of the log-probabilities it is made of) moves
// ℓ*_i by e_f/f_i, unbounded near the clip f_i = 0, so each backend gets
// 2·e_f/f_i more, and tokens with f_i ≤ 4·e_f are not compared — the float64
// oracle's rule (tests/oracle/oracle.hpp, linear_factor_error). `lin` holds
// ℓ and ℓᵖ of every element for that estimate (f_i ≈ exp(ℓ*_i − ℓ_i)).
struct LinearConditioning {
  std::vector<float> l, lp;
};

void expect_logprobs(const std::vector<float>& gpu, const std::vector<float>& cpu, int64_t B,
                     int64_t V, int64_t stride, const std::vector<RowDiagnostics>& diag,
                     const std::string& what, const LinearConditioning* lin = nullptr) {
  int bad = 0;
  for (int64_t r = 0; r < B && bad < 5; ++r) {
    const float eta = std::isnan(diag[sz(r)].eta) ? 1.f : std::fabs(diag[sz(r)].eta);
    const float tol0 = 2e-4f * std::max(1.f, eta);
    for (int64_t i = 0; i < V && bad < 5; ++i) {
      const float g = gpu[sz(r * stride + i)], c = cpu[sz(r * stride + i)];
      float tol = tol0;
      if (lin != nullptr && std::isfinite(c) && std::isfinite(diag[sz(r)].mu)) {
        const float l = lin->l[sz(r * stride + i)], lp = lin->lp[sz(r * stride + i)];
        const double ef = 2.0 * eta * std::ldexp(1.0, -24) *
                          (std::fabs(l) + std::fabs(lp) + std::fabs(diag[sz(r)].mu) + 1.0);
        const double f = std::exp(double(c) - double(l));
        if (f <= 4.0 * ef) continue;  // ill-conditioned: may be clipped on either side
        tol += float(4.0 * ef / f);
      }
      bool ok;
      if (std::isnan(c) || std::isnan(g)) {
        ok = std::isnan(c) && std::isnan(g);
      } else if (std::isinf(c) || std::isinf(g)) {
        ok = c == g || (c == -kInfF && g < -12.f) || (g == -kInfF && c < -12.f);
      } else {
        ok = std::fabs(g - c) <= tol * std::max(1.f, std::fabs(c) / 20.f);
      }
      if (!ok) {
        ++bad;
        ADD_FAILURE() << what << " row " << r << " token " << i << ": gpu " << g << " cpu " << c
                      << " (eta " << diag[sz(r)].eta << ")";
      }
    }
  }
}

// ------------------------------------------------------------ the calls ---

struct AlignResult {
  Status status;
  std::vector<float> out;
  std::vector<RowDiagnostics> diag;
};

AlignResult cpu_align(Context& ctx, const Inputs& in, const Params& p) {
  AlignResult r;
  r.out.assign(sz(std::max<int64_t>(1, in.rows * in.stride)), -123.f);
  r.diag.resize(sz(in.rows));
  r.status = ctx.align(host_view(in), p, r.out.data(), in.stride, r.diag.data());
  EXPECT_EQ(r.status, Status::kSuccess) << ctx.last_error();
  return r;
}

AlignResult gpu_align(Context& ctx, const Inputs& in, const DeviceInputs& din, const Params& p) {
  AlignResult r;
  const size_t n = sz(std::max<int64_t>(1, in.rows * in.stride));
  DeviceArray<float> out(std::vector<float>(n, -123.f));
  DeviceArray<RowDiagnostics> diag(sz(std::max<int64_t>(1, in.rows)));
  r.status = ctx.align(din.view(in), p, out.get(), in.stride, diag.get());
  EXPECT_EQ(r.status, Status::kSuccess) << ctx.last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  r.out = out.download();
  r.diag = diag.download();
  r.diag.resize(sz(in.rows));
  return r;
}

struct SampleResult {
  Status status;
  std::vector<int32_t> tokens;
  std::vector<float> logprob;
  std::vector<RowDiagnostics> diag;
};

SampleResult cpu_sample(Context& ctx, const Inputs& in, const Params& p) {
  SampleResult r;
  r.tokens.assign(sz(in.rows), -5);
  r.logprob.assign(sz(in.rows), -123.f);
  r.diag.resize(sz(in.rows));
  r.status = ctx.sample(host_view(in), p, r.tokens.data(), r.logprob.data(), r.diag.data());
  EXPECT_EQ(r.status, Status::kSuccess) << ctx.last_error();
  return r;
}

SampleResult gpu_sample(Context& ctx, const Inputs& in, const DeviceInputs& din, const Params& p) {
  SampleResult r;
  const size_t B = sz(std::max<int64_t>(1, in.rows));
  DeviceArray<int32_t> tokens(std::vector<int32_t>(B, -5));
  DeviceArray<float> logprob(std::vector<float>(B, -123.f));
  DeviceArray<RowDiagnostics> diag(B);
  r.status = ctx.sample(din.view(in), p, tokens.get(), logprob.get(), diag.get());
  EXPECT_EQ(r.status, Status::kSuccess) << ctx.last_error();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  r.tokens = tokens.download();
  r.logprob = logprob.download();
  r.diag = diag.download();
  r.tokens.resize(sz(in.rows));
  r.logprob.resize(sz(in.rows));
  r.diag.resize(sz(in.rows));
  return r;
}

// The sampling score ℓ*_i + g_i of token i of row r, from the CPU's ℓ*.
float gumbel_score(const Params& p, int64_t r, int64_t i, float lstar, bool greedy) {
  if (greedy) return lstar;
  const uint64_t seed = p.seed.values != nullptr ? p.seed.values[r] : p.seed.value;
  const uint64_t offset = p.offset.values != nullptr ? p.offset.values[r] : p.offset.value;
  const auto rng =
      linalign::math::RowRng::make(seed, offset, p.seed.values != nullptr ? 0u : uint32_t(r));
  const linalign::math::Philox4 bits = rng.group(uint64_t(i / 4));
  return lstar + linalign::math::gumbel_from_bits(bits.v[i % 4]);
}

// Tokens identical, except near-ties: where they differ, the CPU's scores
// of the two tokens (ℓ* + Gumbel, from the CPU's own ℓ*) are within `tie`.
void expect_tokens(const SampleResult& gpu, const SampleResult& cpu, const AlignResult& cpu_l,
                   const Inputs& in, const Params& p, float tie, const std::string& what) {
  int bad = 0;
  for (int64_t r = 0; r < in.rows && bad < 5; ++r) {
    const int32_t g = gpu.tokens[sz(r)], c = cpu.tokens[sz(r)];
    if (g == c) continue;
    const bool greedy = p.greedy || p.temperature.value == 0.f;
    bool near_tie = false;
    if (g >= 0 && c >= 0 && g < in.vocab) {
      const float sg = gumbel_score(p, r, g, cpu_l.out[sz(r * in.stride + g)], greedy);
      const float sc = gumbel_score(p, r, c, cpu_l.out[sz(r * in.stride + c)], greedy);
      near_tie = std::fabs(sg - sc) <= tie * std::max(1.f, std::fabs(sc));
    }
    if (!near_tie) {
      ++bad;
      ADD_FAILURE() << what << " row " << r << ": gpu token " << g << ", cpu token " << c;
    }
  }
}

// --------------------------------------------------------------- tests ---

struct Rule {
  StepRule rule;
  UpdateForm update;
  const char* name;
};
const Rule kRules[] = {
    {StepRule::kFixed, UpdateForm::kTilt, "fixed/tilt"},
    {StepRule::kFixed, UpdateForm::kLinear, "fixed/linear"},
    {StepRule::kTrustRegion, UpdateForm::kTilt, "trust_region/tilt"},
    {StepRule::kTrustRegion, UpdateForm::kLinear, "trust_region/linear"},
    {StepRule::kExactKl, UpdateForm::kTilt, "exact_kl/tilt"},
    {StepRule::kExactKl, UpdateForm::kLinear, "exact_kl/linear"},
};

Params params_for(const Rule& rule, float ratio = 2.f) {
  Params p;
  p.rule = rule.rule;
  p.update = rule.update;
  p.ratio = ratio;
  p.epsilon = 0.1f;
  p.eta_max = 8.f;
  return p;
}

// Near-tie tolerance of sampled / greedy scores: the fixed rule gives both
// backends the same η, so only per-token rounding differs; the other rules
// compute η from reductions, which moves every score a little.
float tie_tolerance(const Params& p) {
  return p.rule == StepRule::kFixed ? 1e-5f : 2e-3f;
}

class CudaVsCpu : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_DEVICE();
    cpu_ = make(Backend::kCpu);
    gpu_ = make(Backend::kCuda);
    ASSERT_NE(cpu_, nullptr);
    ASSERT_NE(gpu_, nullptr);
    ASSERT_EQ(gpu_->backend(), Backend::kCuda);
  }

  // align + greedy + sampled (with and without masks) + score on one input set.
  void compare_all(const Inputs& in, const Params& base, const std::string& label,
                   bool with_masks = true) {
    const DeviceInputs din(in);
    const std::string what = label + " " + dtype_name(in.dtype) + " B=" + std::to_string(in.rows) +
                             " V=" + std::to_string(in.vocab);
    // align
    const AlignResult ca = cpu_align(*cpu_, in, base);
    const AlignResult ga = gpu_align(*gpu_, in, din, base);
    expect_diagnostics(ga.diag, ca.diag, what + " align");
    // exact_kl finds η to |KL − ε| ≤ 1e-4·ε (SPEC §2): the backends may stop
    // at different Newton iterates, and with the linear update ℓ* of a token
    // near the clip moves with η many times over. As the float64 oracle does,
    // compare ℓ* at the GPU's own η: the CPU's fixed rule at ratio = η − 1.
    AlignResult ref;
    if (base.rule == StepRule::kExactKl) {
      std::vector<float> ratios(sz(std::max<int64_t>(1, in.rows)), 0.f);
      for (int64_t r = 0; r < in.rows; ++r)
        if (std::isfinite(ga.diag[sz(r)].eta)) ratios[sz(r)] = ga.diag[sz(r)].eta - 1.f;
      Params f = base;
      f.rule = StepRule::kFixed;
      f.ratio = PerRow<float>::array(ratios.data());
      ref = cpu_align(*cpu_, in, f);
    }
    LinearConditioning lin;
    if (base.update == UpdateForm::kLinear) {
      Params q = base;  // the fixed rule with the tilt update: ratio −1 gives ℓ, 0 gives ℓᵖ
      q.rule = StepRule::kFixed;
      q.update = UpdateForm::kTilt;
      q.ratio = -1.f;
      lin.l = cpu_align(*cpu_, in, q).out;
      q.ratio = 0.f;
      lin.lp = cpu_align(*cpu_, in, q).out;
    }
    expect_logprobs(ga.out, base.rule == StepRule::kExactKl ? ref.out : ca.out, in.rows, in.vocab,
                    in.stride, ca.diag, what + " align",
                    base.update == UpdateForm::kLinear ? &lin : nullptr);
    for (int64_t r = 0; r < in.rows; ++r)  // padding columns untouched
      for (int64_t i = in.vocab; i < in.stride; ++i)
        ASSERT_EQ(ga.out[sz(r * in.stride + i)], -123.f) << what << " padding written";
    // greedy
    Params g = base;
    g.greedy = true;
    const SampleResult cg = cpu_sample(*cpu_, in, g);
    const SampleResult gg = gpu_sample(*gpu_, in, din, g);
    expect_tokens(gg, cg, ca, in, g, tie_tolerance(g), what + " greedy");
    expect_diagnostics(gg.diag, cg.diag, what + " greedy");
    for (int64_t r = 0; r < in.rows; ++r) {
      const int32_t tok = gg.tokens[sz(r)];
      if (tok < 0) {
        EXPECT_TRUE(std::isnan(gg.logprob[sz(r)])) << what << " row " << r;
        EXPECT_NE(ca.diag[sz(r)].status, 0u) << what << " token -1 for a valid row " << r;
        continue;
      }
      ASSERT_LT(tok, in.vocab);
      const float want = ca.out[sz(r * in.stride + tok)];
      EXPECT_TRUE(close(gg.logprob[sz(r)], want, 1e-4f,
                        2e-4f * std::max(1.f, std::fabs(ca.diag[sz(r)].eta))))
          << what << " token log-prob row " << r << ": " << gg.logprob[sz(r)] << " vs " << want;
    }
    // sampled, no masks
    Params s = base;
    s.seed = uint64_t(0x1234abcd9876ull);
    s.offset = uint64_t(7);
    const SampleResult cs = cpu_sample(*cpu_, in, s);
    const SampleResult gs = gpu_sample(*gpu_, in, din, s);
    expect_tokens(gs, cs, ca, in, s, tie_tolerance(s), what + " sampled");
    if (with_masks) {
      // sampled with every mask, on both nucleus sources
      for (NucleusSource src : {NucleusSource::kPrinciple, NucleusSource::kAligned}) {
        Params m = s;
        m.top_p = 0.8f;
        m.top_k = 40;
        m.min_p = 0.01f;
        m.min_tokens_to_keep = 2;
        m.nucleus_source = src;
        const SampleResult cm = cpu_sample(*cpu_, in, m);
        const SampleResult gm = gpu_sample(*gpu_, in, din, m);
        expect_tokens(
            gm, cm, ca, in, m, tie_tolerance(m),
            what + (src == NucleusSource::kPrinciple ? " masked(principle)" : " masked(aligned)"));
        Params mg = m;
        mg.greedy = true;
        mg.top_k = 3;
        const SampleResult cmg = cpu_sample(*cpu_, in, mg);
        const SampleResult gmg = gpu_sample(*gpu_, in, din, mg);
        expect_tokens(gmg, cmg, ca, in, mg, tie_tolerance(mg), what + " masked greedy");
      }
    }
    // score
    compare_score(in, din, base, what);
  }

  void compare_score(const Inputs& in, const DeviceInputs& din, const Params& p,
                     const std::string& what) {
    const int64_t B = in.rows;
    std::vector<int32_t> targets(sz(std::max<int64_t>(1, B)));
    std::mt19937 rng(uint32_t(B * 31 + in.vocab));
    for (int64_t r = 0; r < B; ++r)
      targets[sz(r)] = r % 5 == 4
                           ? p.ignore_index
                           : int32_t(std::uniform_int_distribution<int64_t>(0, in.vocab - 1)(rng));
    // ragged sequences: lengths 1, 2, 3, ... (the last one may be empty)
    std::vector<int64_t> offsets = {0};
    for (int64_t len = 1; offsets.back() < B; ++len)
      offsets.push_back(std::min(B, offsets.back() + len));
    offsets.push_back(B);  // an empty last sequence
    const int64_t S = int64_t(offsets.size()) - 1;

    std::vector<float> ca(sz(std::max<int64_t>(1, B))), cb = ca, cc = ca;
    std::vector<float> sa(sz(S)), sb = sa, sc = sa;
    ScoreOutputs co;
    co.aligned = ca.data();
    co.base = cb.data();
    co.principle = cc.data();
    co.seq_offsets = offsets.data();
    co.num_sequences = S;
    co.seq_aligned = sa.data();
    co.seq_base = sb.data();
    co.seq_principle = sc.data();
    std::vector<RowDiagnostics> cd(sz(std::max<int64_t>(1, B)));
    ASSERT_EQ(cpu_->score(host_view(in), p, targets.data(), co, cd.data()), Status::kSuccess)
        << cpu_->last_error();

    DeviceArray<int32_t> dt(targets);
    DeviceArray<int64_t> doff(offsets);
    DeviceArray<float> ga(ca.size()), gb(ca.size()), gc(ca.size()), gsa(sa.size()), gsb(sa.size()),
        gsc(sa.size());
    DeviceArray<RowDiagnostics> gd(cd.size());
    ScoreOutputs go;
    go.aligned = ga.get();
    go.base = gb.get();
    go.principle = gc.get();
    go.seq_offsets = doff.get();
    go.num_sequences = S;
    go.seq_aligned = gsa.get();
    go.seq_base = gsb.get();
    go.seq_principle = gsc.get();
    ASSERT_EQ(gpu_->score(din.view(in), p, dt.get(), go, gd.get()), Status::kSuccess)
        << gpu_->last_error();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<RowDiagnostics> gdh = gd.download();
    gdh.resize(sz(B));
    cd.resize(sz(B));
    expect_diagnostics(gdh, cd, what + " score");
    const std::vector<float> ha = ga.download(), hb = gb.download(), hc = gc.download();
    for (int64_t r = 0; r < B; ++r) {
      const float tol =
          2e-4f * std::max(1.f, std::isnan(cd[sz(r)].eta) ? 1.f : std::fabs(cd[sz(r)].eta));
      EXPECT_TRUE(close(ha[sz(r)], ca[sz(r)], 1e-5f, tol))
          << what << " score row " << r << ": " << ha[sz(r)] << " vs " << ca[sz(r)];
      EXPECT_TRUE(close(hb[sz(r)], cb[sz(r)], 1e-5f, 2e-4f)) << what << " base row " << r;
      EXPECT_TRUE(close(hc[sz(r)], cc[sz(r)], 1e-5f, 2e-4f)) << what << " principle row " << r;
    }
    const std::vector<float> hsa = gsa.download(), hsb = gsb.download(), hsc = gsc.download();
    for (int64_t q = 0; q < S; ++q) {
      float mag = 0.f;  // the sum's tolerance grows with its terms
      for (int64_t r = offsets[sz(q)]; r < offsets[sz(q) + 1]; ++r)
        if (std::isfinite(ca[sz(r)])) mag += std::fabs(ca[sz(r)]) + 1.f;
      EXPECT_TRUE(close(hsa[sz(q)], sa[sz(q)], 1e-4f, 2e-3f * std::max(1.f, mag)))
          << what << " seq " << q << ": " << hsa[sz(q)] << " vs " << sa[sz(q)];
      EXPECT_TRUE(close(hsb[sz(q)], sb[sz(q)], 1e-4f, 1e-3f * std::max(1.f, mag)))
          << what << " seq base " << q;
      EXPECT_TRUE(close(hsc[sz(q)], sc[sz(q)], 1e-4f, 1e-3f * std::max(1.f, mag)))
          << what << " seq principle " << q;
    }
  }

  std::unique_ptr<Context> cpu_, gpu_;
};

// The core shapes: V at regime boundaries (1, 2, odd 37, 32000 vs 32001,
// 50257, Llama-3 128256, Qwen 151936), B ∈ {0, 1, 3, 99}; every rule/update
// on fp32, the defaults and exact_kl/linear on bf16 and fp16.
TEST_F(CudaVsCpu, CoreShapesF32EveryRule) {
  for (int64_t V : kCoreVocab)
    for (int64_t B : kCoreBatch) {
      if (B > 3 && V > 50257) continue;  // CPU time
      if (kEmulated && B > 3 && V > 1537) continue;
      for (const Rule& rule : kRules) {
        const Inputs in = make_inputs(DType::kF32, B, V, V, uint32_t(V * 7 + B), true);
        compare_all(in, params_for(rule), rule.name, B <= 3 || rule.rule == StepRule::kFixed);
      }
    }
}

TEST_F(CudaVsCpu, CoreShapesHalfTypes) {
  for (DType t : {DType::kBF16, DType::kF16})
    for (int64_t V : kCoreVocab)
      for (int64_t B : kCoreBatch) {
        if (B > 3 && V > 50257) continue;
        if (kEmulated && B > 3 && V > 1537) continue;
        for (const Rule& rule : {kRules[0], kRules[5]}) {
          const Inputs in = make_inputs(t, B, V, V, uint32_t(V * 3 + B), true);
          compare_all(in, params_for(rule), rule.name);
        }
      }
}

// Temperatures of the reference code, T = 0 (greedy), ratios of the demo.
TEST_F(CudaVsCpu, TemperaturesAndRatios) {
  const Inputs in = make_inputs(DType::kF32, 5, 50257, 50257, 42);
  for (float T : {0.5f, 0.7f, 1.f, 1.5f})
    for (float ratio : {-1.f, 0.f, 2.f, 3.f}) {
      Params p = params_for(kRules[0], ratio);
      p.temperature = T;
      compare_all(in, p, "T=" + std::to_string(T) + " ratio=" + std::to_string(ratio), false);
    }
  Params p = params_for(kRules[0]);
  p.temperature = 0.f;  // sample only: greedy
  const DeviceInputs din(in);
  const SampleResult c = cpu_sample(*cpu_, in, p);
  const SampleResult g = gpu_sample(*gpu_, in, din, p);
  Params p1 = p;
  p1.temperature = 1.f;
  const AlignResult ca = cpu_align(*cpu_, in, p1);
  expect_tokens(g, c, ca, in, p, 1e-5f, "T=0");
}

// Strided rows with padding and a misaligned start (by one element), so
// head/tail and the joint vector split are exercised; the padding columns of
// the output are never written.
TEST_F(CudaVsCpu, StridedMisalignedPadded) {
  for (DType t : {DType::kF32, DType::kBF16})
    for (int64_t V : {37, 32001, 50257}) {
      const int64_t stride = V + 5;
      Inputs in = make_inputs(t, 4, V, stride, uint32_t(V));
      // shift both buffers by one element: every row starts misaligned
      const int64_t eb = elem_bytes(t);
      Inputs shifted = in;
      shifted.z.insert(shifted.z.begin(), sz(eb), 0);
      shifted.y.insert(shifted.y.begin(), sz(eb), 0);
      DeviceArray<unsigned char> dz(shifted.z), dy(shifted.y);
      const LogitsView gv =
          LogitsView::strided(t, in.rows, V, dz.get() + eb, dy.get() + eb, stride, stride);
      for (const Rule& rule : {kRules[0], kRules[4]}) {
        const Params p = params_for(rule);
        const AlignResult ca = cpu_align(*cpu_, in, p);
        DeviceArray<float> out(std::vector<float>(sz(in.rows * stride), -123.f));
        DeviceArray<RowDiagnostics> diag(sz(in.rows));
        ASSERT_EQ(gpu_->align(gv, p, out.get(), stride, diag.get()), Status::kSuccess)
            << gpu_->last_error();
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::vector<float> go = out.download();
        const std::vector<RowDiagnostics> gd = diag.download();
        expect_diagnostics(gd, ca.diag, std::string("misaligned ") + rule.name);
        expect_logprobs(go, ca.out, in.rows, V, stride, ca.diag,
                        std::string("misaligned ") + rule.name);
        for (int64_t r = 0; r < in.rows; ++r)
          for (int64_t i = V; i < stride; ++i) ASSERT_EQ(go[sz(r * stride + i)], -123.f);
      }
    }
}

// The two contexts' rows at different strides (an engine whose principle
// logits sit in a wider buffer): the same numbers as equal strides, on both
// backends — each row read from its own buffer with its own stride.
TEST_F(CudaVsCpu, BaseAndPrincipleStridesDiffer) {
  for (DType t : {DType::kF32, DType::kBF16}) {
    const int64_t V = 1537, B = 3, sy = V + 67;
    const Inputs in = make_inputs(t, B, V, V, 99u);
    const int64_t eb = elem_bytes(t);
    std::vector<unsigned char> wide(sz(B * sy * eb), 0xee);
    for (int64_t r = 0; r < B; ++r)
      std::memcpy(&wide[sz(r * sy * eb)], &in.y[sz(r * V * eb)], sz(V * eb));
    const Params p = params_for(kRules[0]);
    const AlignResult ca = cpu_align(*cpu_, in, p);  // equal strides
    const std::string what = std::string("strides differ ") + dtype_name(t);

    std::vector<float> co(sz(B * V), -123.f);
    std::vector<RowDiagnostics> cd(sz(B));
    ASSERT_EQ(cpu_->align(LogitsView::strided(t, B, V, in.z.data(), wide.data(), V, sy), p,
                          co.data(), V, cd.data()),
              Status::kSuccess)
        << cpu_->last_error();
    EXPECT_EQ(std::memcmp(co.data(), ca.out.data(), co.size() * sizeof(float)), 0) << what;

    DeviceArray<unsigned char> dz(in.z), dy(wide);
    DeviceArray<float> out(std::vector<float>(sz(B * V), -123.f));
    DeviceArray<RowDiagnostics> diag(sz(B));
    ASSERT_EQ(gpu_->align(LogitsView::strided(t, B, V, dz.get(), dy.get(), V, sy), p, out.get(), V,
                          diag.get()),
              Status::kSuccess)
        << gpu_->last_error();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_diagnostics(diag.download(), ca.diag, what);
    expect_logprobs(out.download(), ca.out, B, V, V, ca.diag, what);
  }
}

// Pointer arrays (rows in one buffer at irregular, misaligned offsets) and
// the paired [2B, V] layout with a pairing index: the same numbers as strided.
// The bf16 output of ℓ*: within one bf16 rounding step (2⁻⁸ relative) plus
// the fp32 tolerance of the CPU result; −inf / NaN where the CPU has them;
// padding untouched.
TEST_F(CudaVsCpu, AlignBf16Output) {
  const int64_t V = 50257, stride = V + 3;
  const Inputs in = make_inputs(DType::kBF16, 3, V, stride, 17u);
  const DeviceInputs din(in);
  const LogitsView gv = din.view(in);
  const Params p = params_for(kRules[0]);
  const AlignResult ca = cpu_align(*cpu_, in, p);
  DeviceArray<uint16_t> out(std::vector<uint16_t>(sz(in.rows * stride), 0xabcd));
  ASSERT_EQ(gpu_->align(gv, p, out.get(), DType::kBF16, stride, nullptr), Status::kSuccess)
      << gpu_->last_error();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<uint16_t> go = out.download();
  for (int64_t r = 0; r < in.rows; ++r) {
    for (int64_t i = 0; i < V; ++i) {
      const float want = ca.out[sz(r * stride + i)];
      const float got = linalign::math::bf16_to_float(go[sz(r * stride + i)]);
      if (std::isnan(want) || std::isinf(want)) {
        ASSERT_EQ(std::isnan(got), std::isnan(want)) << r << " " << i;
        if (std::isinf(want)) {
          ASSERT_EQ(got, want) << r << " " << i;
        }
        continue;
      }
      ASSERT_NEAR(got, want, std::fabs(want) * 0.00390625f + 1e-3f) << r << " " << i;
    }
    for (int64_t i = V; i < stride; ++i) ASSERT_EQ(go[sz(r * stride + i)], 0xabcd);
  }
}

// Vocabulary-parallel use (SPEC §7) on the device: shard_stats per shard,
// the records "all-gathered" (they already sit in one device array), then
// align_shard per shard — against the CPU backend's whole-row align.
TEST_F(CudaVsCpu, VocabularyShards) {
  for (DType t : {DType::kF32, DType::kBF16}) {
    const int64_t B = 3, V = 50257;
    const Inputs in = make_inputs(t, B, V, V, 23u);
    const DeviceInputs din(in);
    const Params p = params_for(kRules[0]);
    const AlignResult ca = cpu_align(*cpu_, in, p);
    const std::vector<int64_t> cuts = {0, 10000, 10017, 40000, V};
    const int64_t G = int64_t(cuts.size()) - 1, eb = elem_bytes(t);
    DeviceArray<linalign::ShardStats> all(sz(G * B));
    auto shard_view = [&](int64_t g) {
      return LogitsView::strided(t, B, cuts[sz(g + 1)] - cuts[sz(g)],
                                 din.z.get() + cuts[sz(g)] * eb, din.y.get() + cuts[sz(g)] * eb, V,
                                 V);
    };
    for (int64_t g = 0; g < G; ++g)
      ASSERT_EQ(gpu_->shard_stats(shard_view(g), p, all.get() + g * B), Status::kSuccess)
          << gpu_->last_error();
    DeviceArray<float> out(std::vector<float>(sz(B * V), -123.f));
    DeviceArray<RowDiagnostics> diag(sz(B));
    for (int64_t g = 0; g < G; ++g)
      ASSERT_EQ(
          gpu_->align_shard(shard_view(g), p, all.get(), G, out.get() + cuts[sz(g)], V, diag.get()),
          Status::kSuccess)
          << gpu_->last_error();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    expect_diagnostics(diag.download(), ca.diag, "shards");
    expect_logprobs(out.download(), ca.out, B, V, V, ca.diag, "shards");
  }
}

TEST_F(CudaVsCpu, PointerAndPairedLayouts) {
  for (DType t : {DType::kF32, DType::kF16}) {
    const int64_t B = 6, V = 50257, eb = elem_bytes(t);
    const Inputs in = make_inputs(t, B, V, V, 5);
    const Params p = params_for(kRules[0]);
    const AlignResult ca = cpu_align(*cpu_, in, p);
    Params ps = p;
    ps.top_p = 0.9f;
    ps.seed = uint64_t(99);
    const SampleResult cs = cpu_sample(*cpu_, in, ps);

    // pointer arrays: row r of z at element offset r*(V+5) + r%5 in one buffer
    // (and of y at r*(V+5) + (r+2)%5): irregular, misaligned, not overlapping
    const int64_t pitch = V + 5;
    std::vector<unsigned char> hz(sz((B * pitch + 8) * eb)), hy(hz.size());
    for (int64_t r = 0; r < B; ++r) {
      std::memcpy(hz.data() + (r * pitch + r % 5) * eb, in.z.data() + r * V * eb, sz(V * eb));
      std::memcpy(hy.data() + (r * pitch + (r + 2) % 5) * eb, in.y.data() + r * V * eb, sz(V * eb));
    }
    DeviceArray<unsigned char> dz(hz), dy(hy);
    std::vector<const void*> zp(sz(B)), yp(sz(B));
    for (int64_t r = 0; r < B; ++r) {
      zp[sz(r)] = dz.get() + (r * pitch + r % 5) * eb;
      yp[sz(r)] = dy.get() + (r * pitch + (r + 2) % 5) * eb;
    }
    DeviceArray<const void*> dzp(zp), dyp(yp);
    const LogitsView pv = LogitsView::pointers(t, B, V, dzp.get(), dyp.get());

    // paired: principle rows first, base rows second, in reverse order
    std::vector<unsigned char> hp(sz(2 * B * V * eb));
    std::vector<int64_t> pair(sz(2 * B));
    for (int64_t r = 0; r < B; ++r) {
      const int64_t zr = 2 * B - 1 - r, yr = r;
      std::memcpy(hp.data() + zr * V * eb, in.z.data() + r * V * eb, sz(V * eb));
      std::memcpy(hp.data() + yr * V * eb, in.y.data() + r * V * eb, sz(V * eb));
      pair[sz(2 * r)] = zr;
      pair[sz(2 * r + 1)] = yr;
    }
    DeviceArray<unsigned char> dp(hp);
    DeviceArray<int64_t> dpair(pair);
    const LogitsView qv = LogitsView::pairs(t, B, V, dp.get(), 2 * B, dpair.get());

    for (const LogitsView& v : {pv, qv}) {
      const std::string what = std::string(dtype_name(t)) + (v.paired ? " paired" : " pointers");
      DeviceArray<float> out(sz(B * V));
      DeviceArray<RowDiagnostics> diag(sz(B));
      ASSERT_EQ(gpu_->align(v, p, out.get(), V, diag.get()), Status::kSuccess)
          << gpu_->last_error();
      DeviceArray<int32_t> tok(sz(B));
      ASSERT_EQ(gpu_->sample(v, ps, tok.get(), nullptr, nullptr), Status::kSuccess)
          << gpu_->last_error();
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      expect_diagnostics(diag.download(), ca.diag, what);
      expect_logprobs(out.download(), ca.out, B, V, V, ca.diag, what);
      SampleResult gs;
      gs.tokens = tok.download();
      expect_tokens(gs, cs, ca, in, ps, 1e-5f, what + " sampled");
    }
  }
}

// Per-row parameters as device arrays; a bad value flags only its row.
TEST_F(CudaVsCpu, PerRowDeviceParameters) {
  const int64_t B = 8, V = 32001;
  const Inputs in = make_inputs(DType::kF32, B, V, V, 77);
  const DeviceInputs din(in);
  std::vector<float> temp = {1.f, 0.7f, 0.5f, 1.f, 2.f, 1.f, 0.9f, 1.f};
  std::vector<float> ratio = {2.f, 3.f, 0.f, -1.f, 1.f, 2.f, 2.5f, 2.f};
  std::vector<float> top_p = {1.f, 0.8f, 0.5f, 0.95f, 1.f, 0.7f, 0.9f, 0.99f};
  std::vector<int32_t> top_k = {0, 10, 0, 50, 1, 0, 5, 100};
  std::vector<float> min_p = {0.f, 0.f, 0.05f, 0.f, 0.f, 0.1f, 0.f, 0.01f};
  std::vector<uint64_t> seed = {1, 2, 3, 4, 5, 6, 7, 8}, offset = {0, 1, 2, 3, 4, 5, 6, 7};
  Params hp;
  hp.temperature = PerRow<float>::array(temp.data());
  hp.ratio = PerRow<float>::array(ratio.data());
  hp.top_p = PerRow<float>::array(top_p.data());
  hp.top_k = PerRow<int32_t>::array(top_k.data());
  hp.min_p = PerRow<float>::array(min_p.data());
  hp.seed = PerRow<uint64_t>::array(seed.data());
  hp.offset = PerRow<uint64_t>::array(offset.data());
  const SampleResult cs = cpu_sample(*cpu_, in, hp);
  Params ha = hp;
  const AlignResult ca = cpu_align(*cpu_, in, ha);

  auto device_params = [&](std::vector<float> t, DeviceArray<float>* dt, DeviceArray<float>* dr,
                           DeviceArray<float>* dp, DeviceArray<int32_t>* dk, DeviceArray<float>* dm,
                           DeviceArray<uint64_t>* ds, DeviceArray<uint64_t>* doff) {
    *dt = DeviceArray<float>(t);
    *dr = DeviceArray<float>(ratio);
    *dp = DeviceArray<float>(top_p);
    *dk = DeviceArray<int32_t>(top_k);
    *dm = DeviceArray<float>(min_p);
    *ds = DeviceArray<uint64_t>(seed);
    *doff = DeviceArray<uint64_t>(offset);
    Params p;
    p.temperature = PerRow<float>::array(dt->get());
    p.ratio = PerRow<float>::array(dr->get());
    p.top_p = PerRow<float>::array(dp->get());
    p.top_k = PerRow<int32_t>::array(dk->get());
    p.min_p = PerRow<float>::array(dm->get());
    p.seed = PerRow<uint64_t>::array(ds->get());
    p.offset = PerRow<uint64_t>::array(doff->get());
    return p;
  };
  DeviceArray<float> dt, dr, dp, dm;
  DeviceArray<int32_t> dk;
  DeviceArray<uint64_t> ds, doff;
  const Params gp = device_params(temp, &dt, &dr, &dp, &dk, &dm, &ds, &doff);
  const SampleResult gs = gpu_sample(*gpu_, in, din, gp);
  expect_tokens(gs, cs, ca, in, hp, 1e-5f, "per-row params");
  expect_diagnostics(gs.diag, cs.diag, "per-row params");

  // row 3 gets a negative temperature: flagged, every other row unchanged
  std::vector<float> bad = temp;
  bad[3] = -1.f;
  const Params gb = device_params(bad, &dt, &dr, &dp, &dk, &dm, &ds, &doff);
  const SampleResult gsb = gpu_sample(*gpu_, in, din, gb);
  for (int64_t r = 0; r < B; ++r) {
    if (r == 3) {
      EXPECT_EQ(gsb.tokens[3], -1);
      EXPECT_TRUE(std::isnan(gsb.logprob[3]));
      EXPECT_NE(gsb.diag[3].status & linalign::kRowBadParameter, 0u);
      EXPECT_TRUE(std::isnan(gsb.diag[3].eta));
    } else {
      EXPECT_EQ(gsb.tokens[sz(r)], gs.tokens[sz(r)]) << "row " << r;
      EXPECT_EQ(gsb.diag[sz(r)].status, 0u);
    }
  }
}

// The masks decide the draw: flat rows (so the unmasked Gumbel-max usually
// lands outside the kept set), several slices per row, per-row seeds, and
// every selection — top-p on either source, top-k with and without exact
// exact ties (the index digits and the minimum pass),
// min-p, min_tokens_to_keep over a tiny top-p. The GPU's radix-select
// passes must keep the CPU's set: the tokens agree, and the masks are shown
// to change most draws, so a wrong threshold cannot pass unseen.
TEST_F(CudaVsCpu, MasksDecideTheDraw) {
  const int64_t B = 24, V = 6001;
  for (DType t : {DType::kF32, DType::kBF16}) {
    Inputs in = zero_inputs(t, B, V);
    std::mt19937 rng(uint32_t(5 + int(t)));
    std::normal_distribution<float> nd(0.f, 0.7f), small(0.f, 0.3f);
    for (int64_t r = 0; r < B; ++r) {
      // Odd rows: every token takes one of 60 (z, y) pairs, so equal values
      // are exact ties on both backends (the same pair, the same arithmetic)
      // and different ones are far apart — no rounding-level near-ties.
      std::vector<std::pair<float, float>> pairs(60);
      for (auto& q : pairs) {
        q.first = nd(rng);
        q.second = q.first + small(rng);
      }
      for (int64_t i = 0; i < V; ++i) {
        float z = nd(rng), y = z + small(rng);
        if (r % 2 == 1) std::tie(z, y) = pairs[size_t(rng() % pairs.size())];
        put(in.z, t, r * V + i, z);
        put(in.y, t, r * V + i, y);
      }
    }
    const DeviceInputs din(in);
    std::vector<uint64_t> seeds(sz(B));
    for (int64_t r = 0; r < B; ++r) seeds[sz(r)] = uint64_t(1000 + 17 * r);
    // The same seeds twice: host memory for the CPU backend (and for
    // expect_tokens, which recomputes the Gumbel scores on the host), device
    // memory for the CUDA backend, which reads them on the device.
    const DeviceArray<uint64_t> dseeds(seeds);
    Params base = params_for(kRules[0]);
    base.seed = PerRow<uint64_t>::array(seeds.data());
    base.temperature = 1.5f;
    const AlignResult ca = cpu_align(*cpu_, in, base);
    const SampleResult free_draw = cpu_sample(*cpu_, in, base);
    struct Case {
      float top_p;
      int32_t top_k;
      float min_p;
      int32_t keep;
      NucleusSource src;
      const char* name;
    };
    const Case cases[] = {
        {0.3f, 0, 0.f, 1, NucleusSource::kPrinciple, "top-p 0.3 (principle)"},
        {0.15f, 0, 0.f, 1, NucleusSource::kAligned, "top-p 0.15 (aligned)"},
        {1.f, 300, 0.f, 1, NucleusSource::kAligned, "top-k 300"},
        {1.f, 7, 0.f, 1, NucleusSource::kPrinciple, "top-k 7"},
        {1.f, 0, 0.6f, 1, NucleusSource::kAligned, "min-p 0.6"},
        {1e-4f, 0, 0.f, 40, NucleusSource::kAligned, "min_tokens_to_keep 40"},
        {0.5f, 100, 0.2f, 3, NucleusSource::kPrinciple, "all masks"},
    };
    for (const Case& c : cases) {
      Params m = base;
      m.top_p = c.top_p;
      m.top_k = c.top_k;
      m.min_p = c.min_p;
      m.min_tokens_to_keep = c.keep;
      m.nucleus_source = c.src;
      const std::string what = std::string(dtype_name(t)) + " " + c.name;
      Params dm = m;
      dm.seed = PerRow<uint64_t>::array(dseeds.get());
      const SampleResult cm = cpu_sample(*cpu_, in, m);
      const SampleResult gm = gpu_sample(*gpu_, in, din, dm);
      expect_tokens(gm, cm, ca, in, m, tie_tolerance(m), what);
      int changed = 0;
      for (int64_t r = 0; r < B; ++r) changed += cm.tokens[sz(r)] != free_draw.tokens[sz(r)];
      EXPECT_GE(changed, B / 3) << what << ": the masks change too few draws to be tested";
    }
  }
}

// Top-p from the candidates the first select pass gathers, and the rows
// the candidates cannot decide (math/radix_select.hpp "selection from
// candidates"): peaked rows (few candidates), flat rows of V = 20011 > the
// 16384 candidates a row keeps, p so close to 1 that nothing is gathered,
// a top-k rank beyond the candidates, min_tokens_to_keep — the same tokens
// as the CPU backend's whole-row selection every time.
TEST_F(CudaVsCpu, TopPFromCandidatesAndTheWholeRow) {
  const int64_t B = 9, V = 20011;
  const DType t = DType::kF32;
  Inputs in = zero_inputs(t, B, V);
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int64_t r = 0; r < B; ++r) {
    const float spread = r % 3 == 0 ? 6.f : r % 3 == 1 ? 0.f : 1.5f;  // peaked, flat, between
    for (int64_t i = 0; i < V; ++i) {
      const float z = spread * nd(rng), y = z + 0.3f * spread * nd(rng);
      put(in.z, t, r * V + i, z);
      put(in.y, t, r * V + i, y);
    }
  }
  const DeviceInputs din(in);
  std::vector<uint64_t> seeds(sz(B));
  for (int64_t r = 0; r < B; ++r) seeds[sz(r)] = uint64_t(31 + 7 * r);
  const DeviceArray<uint64_t> dseeds(seeds);
  Params base = params_for(kRules[0]);
  base.seed = PerRow<uint64_t>::array(seeds.data());
  const AlignResult ca = cpu_align(*cpu_, in, base);
  struct Case {
    float top_p;
    int32_t top_k;
    int32_t keep;
    NucleusSource src;
    const char* name;
  };
  const Case cases[] = {
      {0.9f, 0, 1, NucleusSource::kPrinciple, "top-p 0.9 (principle)"},
      {0.9f, 0, 1, NucleusSource::kAligned, "top-p 0.9 (aligned)"},
      {0.9995f, 0, 1, NucleusSource::kAligned, "top-p 0.9995 (nothing gathered)"},
      {0.8f, 16500, 1, NucleusSource::kPrinciple, "top-p 0.8 + top-k 16500 (rank past them)"},
      {0.7f, 0, 3, NucleusSource::kAligned, "top-p 0.7 + min_tokens_to_keep 3"},
  };
  for (const Case& c : cases) {
    Params m = base;
    m.top_p = c.top_p;
    m.top_k = c.top_k;
    m.min_tokens_to_keep = c.keep;
    m.nucleus_source = c.src;
    Params dm = m;
    dm.seed = PerRow<uint64_t>::array(dseeds.get());
    const SampleResult cm = cpu_sample(*cpu_, in, m);
    const SampleResult gm = gpu_sample(*gpu_, in, din, dm);
    expect_tokens(gm, cm, ca, in, m, tie_tolerance(m), c.name);
  }
}

// Row-level errors: NaN, +inf, empty support → status, NaN, token −1.
TEST_F(CudaVsCpu, RowLevelErrors) {
  const Inputs in = make_inputs(DType::kBF16, 33, 4099, 4099, 3, true);
  compare_all(in, params_for(kRules[0]), "row errors");
  compare_all(in, params_for(kRules[4]), "row errors");
}

// Parameters in range whose scaled logits overflow fp32 once applied (issue
// 18's repro: T = 1e-38; ratio = 3e38; the linear update at T = 1e-6, ratio
// 17.2): both backends flag the same rows kRowOverflow, never a NaN row with
// status OK, and compute the others alike (compare_all: statuses, tokens −1,
// NaN scores).
TEST_F(CudaVsCpu, OverflowingParametersFlagTheSameRows) {
  const Inputs in = make_inputs(DType::kF32, 70, 13, 13, 20261207);  // 10 rows of each kind
  struct Case {
    Rule rule;
    float temperature, ratio;
  } cases[] = {{kRules[0], 1e-38f, 2.f},
               {kRules[0], 1.f, 3e38f},
               {kRules[0], 1e-30f, 1e30f},
               {kRules[1], 1e-6f, 17.2f},
               {kRules[4], 1e-38f, 2.f}};
  for (const Case& c : cases) {
    Params p = params_for(c.rule, c.ratio);
    p.temperature = c.temperature;
    const std::string what = std::string(c.rule.name) + " T=" + std::to_string(c.temperature) +
                             " ratio=" + std::to_string(c.ratio);
    const AlignResult ca = cpu_align(*cpu_, in, p);
    int flagged = 0;
    for (const RowDiagnostics& d : ca.diag) flagged += (d.status & linalign::kRowOverflow) != 0;
    EXPECT_GT(flagged, 0) << what << ": the case overflows no row";
    compare_all(in, p, what, false);
  }
}

// Scores: bad targets in device memory flag their row; bad sequence offsets
// give NaN sums, never an out-of-bounds read.
TEST_F(CudaVsCpu, ScoreBadTargetsAndOffsets) {
  const int64_t B = 5, V = 1000;
  const Inputs in = make_inputs(DType::kF32, B, V, V, 11);
  const DeviceInputs din(in);
  const Params p;
  std::vector<int32_t> targets = {3, int32_t(V), p.ignore_index, -7, 999};
  std::vector<int64_t> offsets = {0, 2, 9, 5};  // sequence 1 ends past B, sequence 2 decreases
  DeviceArray<int32_t> dt(targets);
  DeviceArray<int64_t> doff(offsets);
  DeviceArray<float> out(sz(B)), seq(3);
  DeviceArray<RowDiagnostics> diag(sz(B));
  ScoreOutputs o;
  o.aligned = out.get();
  o.seq_offsets = doff.get();
  o.num_sequences = 3;
  o.seq_aligned = seq.get();
  ASSERT_EQ(gpu_->score(din.view(in), p, dt.get(), o, diag.get()), Status::kSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<float> h = out.download(), hs = seq.download();
  const std::vector<RowDiagnostics> hd = diag.download();
  EXPECT_TRUE(std::isfinite(h[0]));
  EXPECT_TRUE(std::isnan(h[1]));
  EXPECT_NE(hd[1].status & linalign::kRowBadParameter, 0u);
  EXPECT_EQ(h[2], 0.f);
  EXPECT_TRUE(std::isnan(h[3]));
  EXPECT_NE(hd[3].status & linalign::kRowBadParameter, 0u);
  EXPECT_TRUE(std::isfinite(h[4]));
  EXPECT_TRUE(std::isnan(hs[0]));  // contains the bad row 1
  EXPECT_TRUE(std::isnan(hs[1]));  // offsets past B
  EXPECT_TRUE(std::isnan(hs[2]));  // decreasing offsets
}

// Pair indices out of range and null row pointers in device memory flag the row.
TEST_F(CudaVsCpu, BadRowSourcesFlagTheRow) {
  const int64_t B = 3, V = 100;
  const Inputs in = make_inputs(DType::kF32, B, V, V, 12);
  DeviceArray<unsigned char> dp(in.z);
  std::vector<int64_t> pair = {0, 1, 2, 7, 1, 0};  // row 1: index 7 ≥ paired_rows
  DeviceArray<int64_t> dpair(pair);
  const LogitsView v = LogitsView::pairs(DType::kF32, B, V, dp.get(), B, dpair.get());
  DeviceArray<int32_t> tok(sz(B));
  DeviceArray<RowDiagnostics> diag(sz(B));
  Params p;
  p.greedy = true;
  ASSERT_EQ(gpu_->sample(v, p, tok.get(), nullptr, diag.get()), Status::kSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<int32_t> t = tok.download();
  const std::vector<RowDiagnostics> d = diag.download();
  EXPECT_GE(t[0], 0);
  EXPECT_EQ(t[1], -1);
  EXPECT_NE(d[1].status & linalign::kRowBadParameter, 0u);
  EXPECT_GE(t[2], 0);

  std::vector<const void*> zp = {dp.get(), nullptr, dp.get() + 1};  // null; misaligned fp32
  std::vector<const void*> yp = {dp.get(), dp.get(), dp.get()};
  DeviceArray<const void*> dzp(zp), dyp(yp);
  const LogitsView pv = LogitsView::pointers(DType::kF32, B, V, dzp.get(), dyp.get());
  ASSERT_EQ(gpu_->sample(pv, p, tok.get(), nullptr, diag.get()), Status::kSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<int32_t> t2 = tok.download();
  EXPECT_GE(t2[0], 0);
  EXPECT_EQ(t2[1], -1);
  EXPECT_EQ(t2[2], -1);
}

// A call with a workspace captured in a CUDA graph and replayed gives the
// results of the direct call. Every pointer of the call (logits, per-row
// seeds, outputs, diagnostics, workspace) goes through the host-side memory
// check, which must be legal under capture (cudaPointerGetAttributes is no
// stream operation): the captured call succeeds, and calls refused for a
// host pointer in the middle of the capture return kInvalidArgument, leave
// the capture active and valid (cudaStreamEndCapture succeeds) and add no
// work to the graph (their device outputs keep their sentinels through the
// replays).
TEST_F(CudaVsCpu, GraphCapture) {
  const int64_t B = 4, V = 32001;
  const Inputs in = make_inputs(DType::kBF16, B, V, V, 21);
  const DeviceInputs din(in);
  const std::vector<uint64_t> seeds = {5, 6, 7, 8};
  const DeviceArray<uint64_t> dseeds(seeds);
  Params p = params_for(kRules[4]);
  p.top_p = 0.9f;
  p.top_k = 20;
  p.seed = PerRow<uint64_t>::array(dseeds.get());
  const LogitsView v = din.view(in);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const size_t bytes = gpu_->workspace_size(linalign::Op::kSample, v, p);
  ASSERT_GT(bytes, 0u);
  DeviceArray<unsigned char> ws(bytes);
  DeviceArray<int32_t> direct(sz(B)), graphed(std::vector<int32_t>(sz(B), -5));
  DeviceArray<float> lp_direct(sz(B)), lp_graphed(sz(B));
  DeviceArray<RowDiagnostics> diag_direct(sz(B)), diag_graphed(sz(B));
  const std::vector<float> lp_sentinel(sz(B), -123.f);
  DeviceArray<int32_t> refused_tokens_out(std::vector<int32_t>(sz(B), -5));
  DeviceArray<float> refused_lp_out(lp_sentinel);
  ASSERT_EQ(
      gpu_->sample(v, p, direct.get(), lp_direct.get(), diag_direct.get(), ws.get(), bytes, stream),
      Status::kSuccess)
      << gpu_->last_error();
  CUDA_OK(cudaStreamSynchronize(stream));

  cudaGraph_t graph;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  // refused while capturing: host tokens, then a host seed array
  std::vector<int32_t> host_tokens(sz(B), -5);
  const Status refused_tokens = gpu_->sample(v, p, host_tokens.data(), refused_lp_out.get(),
                                             nullptr, ws.get(), bytes, stream);
  const std::string refused_tokens_error = gpu_->last_error();
  Params host_seed = p;
  host_seed.seed = PerRow<uint64_t>::array(seeds.data());
  const Status refused_seed = gpu_->sample(v, host_seed, refused_tokens_out.get(),
                                           refused_lp_out.get(), nullptr, ws.get(), bytes, stream);
  const std::string refused_seed_error = gpu_->last_error();
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  const cudaError_t is_capturing = cudaStreamIsCapturing(stream, &capturing);
  // the call that is captured
  const Status s = gpu_->sample(v, p, graphed.get(), lp_graphed.get(), diag_graphed.get(), ws.get(),
                                bytes, stream);
  const std::string captured_error = gpu_->last_error();
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  EXPECT_EQ(refused_tokens, Status::kInvalidArgument);
  EXPECT_EQ(refused_tokens_error.rfind("sample: tokens is host memory", 0), 0u)
      << refused_tokens_error;
  EXPECT_EQ(refused_seed, Status::kInvalidArgument);
  EXPECT_EQ(refused_seed_error.rfind("sample: params.seed is host memory", 0), 0u)
      << refused_seed_error;
  EXPECT_EQ(host_tokens, std::vector<int32_t>(sz(B), -5));
  EXPECT_EQ(is_capturing, cudaSuccess);
  EXPECT_EQ(capturing, cudaStreamCaptureStatusActive) << "a refused call ended the capture";
  ASSERT_EQ(s, Status::kSuccess) << captured_error;
  // capturing ran nothing
  CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_EQ(graphed.download(), std::vector<int32_t>(sz(B), -5));
  cudaGraphExec_t exec;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int k = 0; k < 3; ++k) CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_EQ(graphed.download(), direct.download());
  const std::vector<float> a = lp_graphed.download(), b = lp_direct.download();
  for (int64_t r = 0; r < B; ++r) EXPECT_EQ(a[sz(r)], b[sz(r)]) << "row " << r;
  EXPECT_TRUE(same_bytes(diag_graphed.download(), diag_direct.download()));
  EXPECT_EQ(refused_tokens_out.download(), std::vector<int32_t>(sz(B), -5));
  EXPECT_TRUE(same_bytes(refused_lp_out.download(), lp_sentinel));

  // align too
  const size_t abytes = gpu_->workspace_size(linalign::Op::kAlign, v, p);
  DeviceArray<unsigned char> aws(abytes);
  DeviceArray<float> out_direct(sz(B * V)), out_graphed(sz(B * V));
  ASSERT_EQ(gpu_->align(v, p, out_direct.get(), V, nullptr, aws.get(), abytes, stream),
            Status::kSuccess);
  cudaGraph_t graph2;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Status s2 = gpu_->align(v, p, out_graphed.get(), V, nullptr, aws.get(), abytes, stream);
  CUDA_OK(cudaStreamEndCapture(stream, &graph2));
  ASSERT_EQ(s2, Status::kSuccess);
  cudaGraphExec_t exec2;
  CUDA_OK(cudaGraphInstantiate(&exec2, graph2, 0));
  CUDA_OK(cudaGraphLaunch(exec2, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  const std::vector<float> x = out_graphed.download(), y = out_direct.download();
  EXPECT_EQ(0, std::memcmp(x.data(), y.data(), x.size() * sizeof(float)));

  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphExecDestroy(exec2));
  CUDA_OK(cudaGraphDestroy(graph));
  CUDA_OK(cudaGraphDestroy(graph2));
  CUDA_OK(cudaStreamDestroy(stream));
}

// Bad arguments return a status naming the problem; nothing crashes.
TEST_F(CudaVsCpu, BadArgumentsReturnStatus) {
  const int64_t B = 2, V = 64;
  const Inputs in = make_inputs(DType::kBF16, B, V, V, 1);
  const DeviceInputs din(in);
  const LogitsView v = din.view(in);
  Params p;
  DeviceArray<float> out(sz(B * V));
  EXPECT_EQ(gpu_->align(v, p, nullptr, V, nullptr), Status::kInvalidArgument);
  EXPECT_NE(std::string(gpu_->last_error()), "");
  Params bad = p;
  bad.temperature = -1.f;
  EXPECT_EQ(gpu_->align(v, bad, out.get(), V, nullptr), Status::kInvalidArgument);
  const size_t need = gpu_->workspace_size(linalign::Op::kAlign, v, p);
  DeviceArray<unsigned char> ws(need);
  EXPECT_EQ(gpu_->align(v, p, out.get(), V, nullptr, ws.get(), need - 1),
            Status::kInsufficientWorkspace);
  // a bf16 buffer at an odd address
  const LogitsView odd =
      LogitsView::strided(DType::kBF16, B, V, din.z.get() + 1, din.y.get(), V, V);
  EXPECT_EQ(gpu_->align(odd, p, out.get(), V, nullptr), Status::kInvalidArgument);
  EXPECT_NE(std::string(gpu_->last_error()).find("align"), std::string::npos);
  // a misaligned output is refused on the host (a device fault would be sticky)
  float* odd_out = reinterpret_cast<float*>(reinterpret_cast<char*>(out.get()) + 2);
  EXPECT_EQ(gpu_->align(v, p, odd_out, V, nullptr), Status::kInvalidArgument);
  EXPECT_NE(std::string(gpu_->last_error()).find("out"), std::string::npos);
  // B = 0 is a successful no-op
  const LogitsView empty = LogitsView::strided(DType::kBF16, 0, V, din.z.get(), din.y.get());
  EXPECT_EQ(gpu_->align(empty, p, out.get(), V, nullptr), Status::kSuccess);
  // a device that does not exist
  ContextOptions o;
  o.backend = Backend::kCuda;
  o.device = 4096;
  std::unique_ptr<Context> ctx;
  EXPECT_EQ(Context::create(o, &ctx), Status::kInvalidArgument);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Plain host memory (cudaMemoryTypeUnregistered) handed to the CUDA backend,
// one argument at a time, for every kind of argument: the call is refused on
// the host with kInvalidArgument naming that argument, nothing is launched or
// written (every device output keeps its sentinel, every host buffer too),
// and the context stays usable — where a launch would have faulted with an
// illegal address and lost the context for the rest of the process. The same
// calls with device memory then succeed and overwrite the sentinels, so the
// sentinel checks can see a write.
TEST_F(CudaVsCpu, HostPointersAreRefused) {
  const int64_t B = 3, V = 64;
  const Inputs in = make_inputs(DType::kF32, B, V, V, 31);
  const DeviceInputs din(in);
  const LogitsView dv = din.view(in);
  const Params p;

  // Device outputs, all sentinels.
  const std::vector<float> out0(sz(B * V), -123.f), row0(sz(B), -123.f), seq0(2, -123.f);
  const std::vector<int32_t> tok0(sz(B), -5);
  RowDiagnostics dsent;
  std::memset(&dsent, 0x5a, sizeof(dsent));
  const std::vector<RowDiagnostics> diag0(sz(B), dsent);
  linalign::ShardStats ssent;
  std::memset(&ssent, 0xa5, sizeof(ssent));
  const std::vector<linalign::ShardStats> stats0(sz(B), ssent);
  DeviceArray<float> out(out0), logprob(row0), aligned(row0), seq(seq0);
  DeviceArray<int32_t> tokens(tok0);
  DeviceArray<RowDiagnostics> diag(diag0);
  DeviceArray<linalign::ShardStats> stats(stats0);

  // Inputs that are fine in device memory, and their host twins.
  const std::vector<int32_t> targets = {1, 2, p.ignore_index};
  const std::vector<int64_t> offsets = {0, 2, 3};
  DeviceArray<int32_t> dtargets(targets);
  DeviceArray<int64_t> doffsets(offsets);
  std::vector<const void*> zp(sz(B)), yp(sz(B));
  for (int64_t r = 0; r < B; ++r) {
    zp[sz(r)] = din.z.get() + r * V * 4;
    yp[sz(r)] = din.y.get() + r * V * 4;
  }
  DeviceArray<const void*> dzp(zp), dyp(yp);
  std::vector<int64_t> pair(sz(2 * B));
  for (int64_t k = 0; k < 2 * B; ++k) pair[sz(k)] = k;
  DeviceArray<int64_t> dpair(pair);
  std::vector<unsigned char> paired_host(in.z);
  paired_host.insert(paired_host.end(), in.y.begin(), in.y.end());
  DeviceArray<unsigned char> dpaired(paired_host);

  // Every device output still holds its sentinel, and the context is intact.
  auto untouched = [&](const std::string& what) {
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << what;
    EXPECT_TRUE(same_bytes(out.download(), out0)) << what << ": out was written";
    EXPECT_TRUE(same_bytes(logprob.download(), row0)) << what << ": token_logprob was written";
    EXPECT_TRUE(same_bytes(aligned.download(), row0)) << what << ": scores were written";
    EXPECT_TRUE(same_bytes(seq.download(), seq0)) << what << ": sums were written";
    EXPECT_TRUE(same_bytes(tokens.download(), tok0)) << what << ": tokens were written";
    EXPECT_TRUE(same_bytes(diag.download(), diag0)) << what << ": diagnostics were written";
    EXPECT_TRUE(same_bytes(stats.download(), stats0)) << what << ": shard stats were written";
  };
  auto refused = [&](Status s, const char* call, const char* arg) {
    const std::string what = std::string(call) + " with host " + arg;
    const std::string err = gpu_->last_error();
    EXPECT_EQ(s, Status::kInvalidArgument) << what << ": " << err;
    const std::string want =
        std::string(call) + ": " + arg + " is host memory (cudaMemoryTypeUnregistered)";
    EXPECT_EQ(err.rfind(want, 0), 0u) << what << ": the message does not name it: " << err;
    untouched(what);
  };

  // logits, every layout
  refused(gpu_->align(LogitsView::strided(DType::kF32, B, V, in.z.data(), din.y.get()), p,
                      out.get(), V, diag.get()),
          "align", "logits.base");
  refused(gpu_->align(LogitsView::strided(DType::kF32, B, V, din.z.get(), in.y.data()), p,
                      out.get(), V, diag.get()),
          "align", "logits.principle");
  refused(gpu_->align(LogitsView::pointers(DType::kF32, B, V, zp.data(), dyp.get()), p, out.get(),
                      V, diag.get()),
          "align", "logits.base_ptrs");
  refused(gpu_->align(LogitsView::pointers(DType::kF32, B, V, dzp.get(), yp.data()), p, out.get(),
                      V, diag.get()),
          "align", "logits.principle_ptrs");
  refused(gpu_->sample(LogitsView::pairs(DType::kF32, B, V, paired_host.data(), 2 * B, dpair.get()),
                       p, tokens.get(), logprob.get(), diag.get()),
          "sample", "logits.paired");
  refused(gpu_->sample(LogitsView::pairs(DType::kF32, B, V, dpaired.get(), 2 * B, pair.data()), p,
                       tokens.get(), logprob.get(), diag.get()),
          "sample", "logits.pair_index");

  // every per-row parameter array (valid values: only the memory is wrong)
  const std::vector<float> ones(sz(B), 1.f), halves(sz(B), 0.5f);
  const std::vector<int32_t> ks(sz(B), 5);
  const std::vector<uint64_t> sevens(sz(B), 7);
  const std::pair<const char*, std::function<void(Params&)>> param_cases[] = {
      {"params.temperature", [&](Params& q) { q.temperature = PerRow<float>::array(ones.data()); }},
      {"params.ratio", [&](Params& q) { q.ratio = PerRow<float>::array(ones.data()); }},
      {"params.epsilon", [&](Params& q) { q.epsilon = PerRow<float>::array(halves.data()); }},
      {"params.eta_max", [&](Params& q) { q.eta_max = PerRow<float>::array(ones.data()); }},
      {"params.top_p", [&](Params& q) { q.top_p = PerRow<float>::array(halves.data()); }},
      {"params.top_k", [&](Params& q) { q.top_k = PerRow<int32_t>::array(ks.data()); }},
      {"params.min_p", [&](Params& q) { q.min_p = PerRow<float>::array(halves.data()); }},
      {"params.seed", [&](Params& q) { q.seed = PerRow<uint64_t>::array(sevens.data()); }},
      {"params.offset", [&](Params& q) { q.offset = PerRow<uint64_t>::array(sevens.data()); }},
  };
  for (const auto& c : param_cases) {
    Params q;
    c.second(q);
    refused(gpu_->sample(dv, q, tokens.get(), logprob.get(), diag.get()), "sample", c.first);
  }

  // targets and every score output
  ScoreOutputs so;
  so.aligned = aligned.get();
  so.seq_offsets = doffsets.get();
  so.num_sequences = 2;
  so.seq_aligned = seq.get();
  refused(gpu_->score(dv, p, targets.data(), so, diag.get()), "score", "targets");
  std::vector<float> host_scores(row0), host_seq(seq0);
  ScoreOutputs bad = so;
  bad.aligned = host_scores.data();
  refused(gpu_->score(dv, p, dtargets.get(), bad, diag.get()), "score", "out.aligned");
  bad = so;
  bad.base = host_scores.data();
  refused(gpu_->score(dv, p, dtargets.get(), bad, diag.get()), "score", "out.base");
  bad = so;
  bad.seq_offsets = offsets.data();
  refused(gpu_->score(dv, p, dtargets.get(), bad, diag.get()), "score", "out.seq_offsets");
  bad = so;
  bad.seq_aligned = host_seq.data();
  refused(gpu_->score(dv, p, dtargets.get(), bad, diag.get()), "score", "out.seq_aligned");
  EXPECT_TRUE(same_bytes(host_scores, row0));
  EXPECT_TRUE(same_bytes(host_seq, seq0));

  // outputs of sample and align, the diagnostics
  std::vector<int32_t> host_tokens(tok0);
  std::vector<float> host_logprob(row0), host_out(out0);
  std::vector<RowDiagnostics> host_diag(diag0);
  refused(gpu_->sample(dv, p, host_tokens.data(), logprob.get(), diag.get()), "sample", "tokens");
  refused(gpu_->sample(dv, p, tokens.get(), host_logprob.data(), diag.get()), "sample",
          "token_logprob");
  refused(gpu_->align(dv, p, host_out.data(), V, diag.get()), "align", "out");
  refused(gpu_->align(dv, p, out.get(), V, host_diag.data()), "align", "diagnostics");
  refused(gpu_->sample(dv, p, tokens.get(), logprob.get(), host_diag.data()), "sample",
          "diagnostics");
  EXPECT_TRUE(same_bytes(host_tokens, tok0));
  EXPECT_TRUE(same_bytes(host_logprob, row0));
  EXPECT_TRUE(same_bytes(host_out, out0));
  EXPECT_TRUE(same_bytes(host_diag, diag0));

  // the workspace
  const size_t need = gpu_->workspace_size(linalign::Op::kAlign, dv, p);
  ASSERT_GT(need, 0u);
  std::vector<unsigned char> host_ws(need, 0x3c);
  refused(gpu_->align(dv, p, out.get(), V, diag.get(), host_ws.data(), need), "align", "workspace");
  EXPECT_TRUE(same_bytes(host_ws, std::vector<unsigned char>(need, 0x3c)));

  // the vocabulary-parallel records, out and in
  std::vector<linalign::ShardStats> host_stats(stats0);
  refused(gpu_->shard_stats(dv, p, host_stats.data()), "shard_stats", "out");
  refused(gpu_->align_shard(dv, p, host_stats.data(), 1, out.get(), V, diag.get()), "align_shard",
          "shards");
  EXPECT_TRUE(same_bytes(host_stats, stats0));

  // The control: the same calls in device memory run and write.
  ASSERT_EQ(gpu_->sample(dv, p, tokens.get(), logprob.get(), diag.get()), Status::kSuccess)
      << gpu_->last_error();
  ASSERT_EQ(gpu_->score(dv, p, dtargets.get(), so, nullptr), Status::kSuccess)
      << gpu_->last_error();
  ASSERT_EQ(gpu_->align(dv, p, out.get(), V, nullptr), Status::kSuccess) << gpu_->last_error();
  ASSERT_EQ(gpu_->shard_stats(dv, p, stats.get()), Status::kSuccess) << gpu_->last_error();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const std::vector<int32_t> t = tokens.download();
  for (int64_t r = 0; r < B; ++r) {
    EXPECT_GE(t[sz(r)], 0) << "row " << r;
    EXPECT_LT(t[sz(r)], V) << "row " << r;
  }
  EXPECT_FALSE(same_bytes(logprob.download(), row0));
  EXPECT_FALSE(same_bytes(diag.download(), diag0));
  EXPECT_FALSE(same_bytes(aligned.download(), row0));
  EXPECT_FALSE(same_bytes(seq.download(), seq0));
  EXPECT_FALSE(same_bytes(out.download(), out0));
  EXPECT_FALSE(same_bytes(stats.download(), stats0));
}

// Memory the device can address without being cudaMalloc'd is accepted:
// mapped pinned host memory (cudaMallocHost, cudaMemoryTypeHost through UVA)
// for the per-row seeds and the tokens, managed memory (cudaMallocManaged)
// for the logits and the diagnostics; the tokens equal those of the same
// call in device memory. (Real CUDA only: the emulator has neither kind.)
TEST_F(CudaVsCpu, PinnedAndManagedMemoryAccepted) {
#if defined(LINALIGN_SIMT_EMULATED)
  GTEST_SKIP() << "the SIMT emulator has no pinned or managed memory";
#else
  const int64_t B = 4, V = 4099;
  const Inputs in = make_inputs(DType::kF32, B, V, V, 41);
  const DeviceInputs din(in);
  const std::vector<uint64_t> seeds = {11, 12, 13, 14};
  const DeviceArray<uint64_t> dseeds(seeds);
  Params p = params_for(kRules[0]);
  p.top_p = 0.9f;
  p.seed = PerRow<uint64_t>::array(dseeds.get());
  DeviceArray<int32_t> dtokens(sz(B));
  DeviceArray<RowDiagnostics> ddiag(sz(B));
  ASSERT_EQ(gpu_->sample(din.view(in), p, dtokens.get(), nullptr, ddiag.get()), Status::kSuccess)
      << gpu_->last_error();

  uint64_t* pinned_seeds = nullptr;
  int32_t* pinned_tokens = nullptr;
  void* managed_z = nullptr;
  void* managed_y = nullptr;
  RowDiagnostics* managed_diag = nullptr;
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned_seeds), seeds.size() * sizeof(uint64_t)));
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned_tokens), sz(B) * sizeof(int32_t)));
  CUDA_OK(cudaMallocManaged(&managed_z, in.z.size()));
  CUDA_OK(cudaMallocManaged(&managed_y, in.y.size()));
  CUDA_OK(
      cudaMallocManaged(reinterpret_cast<void**>(&managed_diag), sz(B) * sizeof(RowDiagnostics)));
  std::memcpy(pinned_seeds, seeds.data(), seeds.size() * sizeof(uint64_t));
  std::memcpy(managed_z, in.z.data(), in.z.size());
  std::memcpy(managed_y, in.y.data(), in.y.size());
  for (int64_t r = 0; r < B; ++r) pinned_tokens[r] = -5;
  Params q = p;
  q.seed = PerRow<uint64_t>::array(pinned_seeds);
  const LogitsView mv = LogitsView::strided(DType::kF32, B, V, managed_z, managed_y);
  const Status s = gpu_->sample(mv, q, pinned_tokens, nullptr, managed_diag);
  EXPECT_EQ(s, Status::kSuccess) << gpu_->last_error();
  CUDA_OK(cudaDeviceSynchronize());
  const std::vector<int32_t> want = dtokens.download();
  const std::vector<RowDiagnostics> want_diag = ddiag.download();
  for (int64_t r = 0; r < B; ++r) {
    EXPECT_EQ(pinned_tokens[r], want[sz(r)]) << "row " << r;
    EXPECT_EQ(0, std::memcmp(&managed_diag[r], &want_diag[sz(r)], sizeof(RowDiagnostics)))
        << "row " << r;
  }
  CUDA_OK(cudaFreeHost(pinned_seeds));
  CUDA_OK(cudaFreeHost(pinned_tokens));
  CUDA_OK(cudaFree(managed_z));
  CUDA_OK(cudaFree(managed_y));
  CUDA_OK(cudaFree(managed_diag));
#endif
}

TEST(CudaBackend, CompiledAndCounted) {
  EXPECT_TRUE(linalign::cuda_compiled());
  EXPECT_GE(linalign::cuda_device_count(), 0);
}

}  // namespace
