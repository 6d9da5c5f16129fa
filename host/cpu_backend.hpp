// The CPU backend: every output of SPEC §2–§3 from the shared math headers,
// each row processed as vocabulary chunks merged with the same merge operator
// the kernels use, rows (and, for small batches, vocabulary slices) spread
// over a thread pool. Allocates nothing per call once given a workspace.
#pragma once

#include <cstddef>
#include <string>

#include "call.hpp"
#include "cpu_lanes.hpp"
#include "linalign/math/update.hpp"
#include "thread_pool.hpp"

namespace linalign {
namespace host {

// Tokens per chunk, in both sweeps: the vectorised first sweep
// (cpu_lanes.hpp, exact two-pass moments inside a chunk) and the online
// second sweeps (math::chunk_tilt_moments / chunk_linear_sums). Chunks (and
// the vocabulary slices they form) merge by the row-statistics merge, as GPU
// threads and blocks do. Short chunks keep each sequential fp32 update short.
// Measured against float64 (tilted variance, 40 random rows of up to 5000
// tokens, some +100-shifted): one online pass over the row is off by up to
// 5e-4 relative, 256-token chunks by 8e-5, 128 by 3e-5, 64 by 1.2e-5 —
// about a GPU thread's share of a row.
constexpr int64_t kCpuChunk = kLaneChunk;
// A vocabulary slice — the unit of work of one thread — is this many tokens
// (the last one shorter). The split depends on V alone, never on the batch
// size or the thread count, so the merge order, and hence every bit of a
// row's result, is the same whether the row is computed alone or in any
// batch (SPEC §5: "every other row is computed exactly as if it were alone").
constexpr int64_t kCpuSliceTokens = 16384;

// Workspace layout of one CPU call (byte offsets, 64-byte aligned).
struct CpuLayout {
  int64_t slices = 1;       // vocabulary slices per row
  size_t stats_off = 0;     // rows*slices RowStats
  size_t sweep_off = 0;     // rows*slices second-sweep partials
  size_t plan_off = 0;      // rows RowPlan
  size_t select_off = 0;    // threads * vocab mask entries (sample with masks)
  size_t select_bytes = 0;  // per thread
  size_t total = 0;
};

class CpuBackend {
 public:
  explicit CpuBackend(int threads) : pool_(threads) {}
  int threads() const { return pool_.size(); }
  // `call` must have passed validate_call.
  CpuLayout layout(const Call& call) const;
  Status run(const Call& call, void* workspace, size_t workspace_bytes, std::string* message);

 private:
  struct Setup;  // what every phase needs (cpu_backend.cpp)
  // One call: the phases in order (cpu_backend.cpp's header lists them).
  template <class E>
  void run_typed(const Call& call, const CpuLayout& layout, char* ws);
  template <class E>
  void first_sweep(const Call& call, const Setup& u);
  template <class E>
  void plan_rows(const Call& call, const Setup& u);
  template <class E>
  void second_sweep(const Call& call, const CpuLayout& layout, const Setup& u, char* ws);
  template <class E>
  void sample_rows(const Call& call, const CpuLayout& layout, const Setup& u, char* ws);
  template <class E>
  void score_rows(const Call& call, const Setup& u);
  template <class E, class OutT, class CvtT>
  void align_rows(const Call& call, const CpuLayout& layout, const math::RowPlan* plans, OutT* out,
                  const CvtT& cvt);
  ThreadPool pool_;
};

}  // namespace host
}  // namespace linalign
