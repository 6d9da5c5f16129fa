// An UNFUSED CPU implementation of linalign's result (fixed rule, tilt update),
// the benchmark's baseline. It does what the eager PyTorch reference does: one
// full pass over B×V fp32 buffers per operation, each writing its own B×V
// temporary, with no reuse of data across operations:
//
//   1. ℓ  = log_softmax(z/T)          row pass (max, Σexp, write)  → lz
//   2. ℓᵖ = log_softmax(y/T)          row pass                      → ly
//   3. δ  = ℓᵖ − ℓ                    elementwise                   → delta
//   4. π  = exp(ℓ)                    elementwise                   → prob
//   5. μ  = Σ π δ                     row reduction                 → mu[B]
//   6. σ² = Σ π (δ − μ)²              row reduction                 → sigma[B]
//   7. a  = ℓ + η δ                   elementwise                   → tilted
//   8. ℓ* = log_softmax(a)            row pass                      → out
//
// The division by T is folded into passes 1–2 (eager PyTorch spends one more
// pass on `logits / T`), and only μ and σ are computed as diagnostics (not
// KL(π*‖π), KL(π*‖πᵖ), H(π*), which would cost at least two more passes), so
// the baseline is, if anything, favoured. Inputs are assumed finite (no
// support masking, no row-status checks): the benchmark feeds finite rows.
//
// Threads (OpenMP when available, as PyTorch's CPU kernels): row passes are
// parallel over rows (PyTorch's last-dim log_softmax parallelises over the
// outer dimension only), elementwise passes over all B·V elements, row
// reductions over rows, or over the columns of each row when B < threads.
//
// The sampling peer (sample()): after align(), the top-p nucleus of πᵖ by a
// full descending sort (torch.sort), cumulative sum, mask of ℓ* outside the
// nucleus, softmax of the masked row, and a multinomial draw by CDF scan
// with a per-row seeded std::mt19937_64. Same distribution as linalign's
// Gumbel-max draw, not the same token.
//
// All temporaries are allocated by the constructor: align() and sample()
// allocate nothing.
#pragma once

#include <cstdint>
#include <vector>

namespace linalign_bench {

class UnfusedCpu {
 public:
  UnfusedCpu(int64_t rows, int64_t vocab, int threads);

  // out[B×V] = ℓ*; mu[B], sigma[B] optional (may be null).
  void align(const float* z, const float* y, float temperature, float ratio, float* out, float* mu,
             float* sigma);

  // tokens[B] from π* restricted to the top-p nucleus of πᵖ. Runs align()
  // first (into an internal buffer).
  void sample(const float* z, const float* y, float temperature, float ratio, float top_p,
              uint64_t seed, int32_t* tokens);

  // out[B×V] = z + y: the bytes align must move (read both rows, write one
  // per token), moved with the same threads, for the "fraction of copy"
  // every row of the benchmark reports (issue 20).
  void copy(const float* z, const float* y, float* out) const;

  int threads() const { return threads_; }

 private:
  void log_softmax_rows(const float* in, float scale, float* out);
  int64_t B_, V_;
  int threads_;
  std::vector<float> lz_, ly_, delta_, prob_, tilted_, aligned_, mu_, var_;
  std::vector<int32_t> order_;  // sampling: sorted indices
};

}  // namespace linalign_bench
