#include "unfused_cpu.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#ifdef _OPENMP
#define UNFUSED_PRAGMA(x) _Pragma(#x)
#else
#define UNFUSED_PRAGMA(x)
#endif

namespace linalign_bench {

UnfusedCpu::UnfusedCpu(int64_t rows, int64_t vocab, int threads)
    : B_(rows),
      V_(vocab),
      threads_(std::max(1, threads)),
      lz_(size_t(rows * vocab)),
      ly_(size_t(rows * vocab)),
      delta_(size_t(rows * vocab)),
      prob_(size_t(rows * vocab)),
      tilted_(size_t(rows * vocab)),
      aligned_(size_t(rows * vocab)),
      mu_(size_t(rows)),
      var_(size_t(rows)),
      order_(size_t(rows * vocab)) {}

void UnfusedCpu::copy(const float* z, const float* y, float* out) const {
  const int64_t n = B_ * V_;
  [[maybe_unused]] const int nt = threads_;  // OpenMP thread count
  UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
  for (int64_t i = 0; i < n; ++i) out[i] = z[i] + y[i];
}

// out = log_softmax(in · scale) row by row: max, Σ exp, write (three sweeps
// of the row, as PyTorch's last-dim log_softmax).
void UnfusedCpu::log_softmax_rows(const float* in, float scale, float* out) {
  const int64_t V = V_;
  [[maybe_unused]] const int nt = threads_;  // OpenMP thread count
  UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
  for (int64_t r = 0; r < B_; ++r) {
    const float* x = in + r * V;
    float* o = out + r * V;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < V; ++i) m = std::max(m, x[i] * scale);
    float s = 0.f;
    for (int64_t i = 0; i < V; ++i) s += std::exp(x[i] * scale - m);
    const float shift = m + std::log(s);
    for (int64_t i = 0; i < V; ++i) o[i] = x[i] * scale - shift;
  }
}

void UnfusedCpu::align(const float* z, const float* y, float temperature, float ratio, float* out,
                       float* mu, float* sigma) {
  const int64_t B = B_, V = V_, N = B_ * V_;
  [[maybe_unused]] const int nt = threads_;  // OpenMP thread count
  const float inv_t = 1.0f / temperature;
  const float eta = 1.0f + ratio;  // fixed rule
  float* lz = lz_.data();
  float* ly = ly_.data();
  float* delta = delta_.data();
  float* prob = prob_.data();
  float* tilted = tilted_.data();
  float* mean = mu_.data();
  float* var = var_.data();

  log_softmax_rows(z, inv_t, lz);  // 1. ℓ
  log_softmax_rows(y, inv_t, ly);  // 2. ℓᵖ

  UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
  for (int64_t i = 0; i < N; ++i) delta[i] = ly[i] - lz[i];  // 3. δ

  UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
  for (int64_t i = 0; i < N; ++i) prob[i] = std::exp(lz[i]);  // 4. π

  // 5. μ = Σ π δ and 6. σ² = Σ π (δ − μ)²: over rows, or over the columns of
  // each row when there are fewer rows than threads.
  if (B >= nt) {
    UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
    for (int64_t r = 0; r < B; ++r) {
      float s = 0.f;
      for (int64_t i = r * V; i < (r + 1) * V; ++i) s += prob[i] * delta[i];
      mean[r] = s;
    }
    UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
    for (int64_t r = 0; r < B; ++r) {
      float s = 0.f;
      const float m = mean[r];
      for (int64_t i = r * V; i < (r + 1) * V; ++i) s += prob[i] * (delta[i] - m) * (delta[i] - m);
      var[r] = s;
    }
  } else {
    for (int64_t r = 0; r < B; ++r) {
      float s = 0.f;
      UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static) reduction(+ : s))
      for (int64_t i = r * V; i < (r + 1) * V; ++i) s += prob[i] * delta[i];
      mean[r] = s;
      const float m = s;
      float s2 = 0.f;
      UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static) reduction(+ : s2))
      for (int64_t i = r * V; i < (r + 1) * V; ++i) s2 += prob[i] * (delta[i] - m) * (delta[i] - m);
      var[r] = s2;
    }
  }

  UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
  for (int64_t i = 0; i < N; ++i) tilted[i] = lz[i] + eta * delta[i];  // 7. ℓ + ηδ

  log_softmax_rows(tilted, 1.0f, out);  // 8. normalise

  for (int64_t r = 0; r < B; ++r) {
    if (mu != nullptr) mu[r] = mean[r];
    if (sigma != nullptr) sigma[r] = std::sqrt(var[r]);
  }
}

void UnfusedCpu::sample(const float* z, const float* y, float temperature, float ratio, float top_p,
                        uint64_t seed, int32_t* tokens) {
  align(z, y, temperature, ratio, aligned_.data(), nullptr, nullptr);
  const int64_t B = B_, V = V_, N = B_ * V_;
  [[maybe_unused]] const int nt = threads_;  // OpenMP thread count
  const float kNegInf = -std::numeric_limits<float>::infinity();
  float* ly = ly_.data();
  float* prob = prob_.data();
  float* cum = delta_.data();
  float* masked = tilted_.data();
  const float* aligned = aligned_.data();

  UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
  for (int64_t i = 0; i < N; ++i) prob[i] = std::exp(ly[i]);  // softmax of the principle

  UNFUSED_PRAGMA(omp parallel for num_threads(nt) schedule(static))
  for (int64_t r = 0; r < B; ++r) {
    const float* q = prob + r * V;
    int32_t* ord = order_.data() + r * V;
    float* c = cum + r * V;
    float* mrow = masked + r * V;
    const float* a = aligned + r * V;
    // torch.sort(descending=True): a full sort of the row
    std::iota(ord, ord + V, 0);
    std::sort(ord, ord + V,
              [q](int32_t i, int32_t j) { return q[i] > q[j] || (q[i] == q[j] && i < j); });
    // cumulative sum in sorted order
    float s = 0.f;
    for (int64_t k = 0; k < V; ++k) c[k] = (s += q[ord[k]]);
    // keep sorted position k iff the mass before it is < p (at least one kept)
    for (int64_t k = 0; k < V; ++k) {
      const float before = c[k] - q[ord[k]];
      mrow[ord[k]] = (k == 0 || before < top_p) ? a[ord[k]] : kNegInf;
    }
    // softmax of the masked aligned row, then a multinomial draw by CDF scan
    float m = kNegInf;
    for (int64_t i = 0; i < V; ++i) m = std::max(m, mrow[i]);
    float total = 0.f;
    float* p = prob + r * V;  // the principle probabilities of this row are no longer needed
    for (int64_t i = 0; i < V; ++i) total += (p[i] = std::exp(mrow[i] - m));
    std::mt19937_64 rng(seed + uint64_t(r));
    const float u = std::uniform_real_distribution<float>(0.f, 1.f)(rng) * total;
    float acc = 0.f;
    int32_t tok = -1;
    for (int64_t i = 0; i < V; ++i) {
      if (p[i] > 0.f) tok = int32_t(i);  // the last token with mass, should rounding miss u
      acc += p[i];
      if (acc > u && p[i] > 0.f) break;
    }
    tokens[r] = tok;
  }
}

}  // namespace linalign_bench
