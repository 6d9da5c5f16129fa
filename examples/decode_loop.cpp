// How an inference engine adopts linalign: one call per decoding step over
// the batch of running requests, with per-request parameters, per-request
// seeds (so a request's tokens never depend on its batch neighbours) and the
// step counter as the Philox offset, a workspace sized once, and a stream.
//
// The "model" here is a stand-in that produces logits for the plain context
// (z) and for the context with the principle (y) as one [2B, V] buffer, the
// way an engine that batches both forward passes together would; linalign
// reads it through a pairing index, with no copy.
//
// Build: part of the project (target linalign_example_decode_loop, also run
// by ctest); run with no arguments. It uses the CPU backend so it runs
// anywhere; on the CUDA backend the same calls take device buffers and
// device per-row arrays, and `stream` is the engine's cudaStream_t.
#include <cmath>
#include <cstdio>
#include <linalign/linalign.hpp>
#include <random>
#include <vector>

namespace {

// A toy "model": logits depend on the request and the previous token.
void forward(int64_t rows, int64_t vocab, const std::vector<int32_t>& last, uint64_t step,
             std::vector<float>* paired) {
  for (int64_t r = 0; r < rows; ++r) {
    std::mt19937_64 g(uint64_t(r) * 1000003u + uint64_t(last[size_t(r)]) + step * 7919u);
    std::normal_distribution<float> n(0.f, 2.f);
    float* z = paired->data() + (2 * r) * vocab;      // plain context
    float* y = paired->data() + (2 * r + 1) * vocab;  // with the principle
    for (int64_t i = 0; i < vocab; ++i) {
      z[i] = n(g);
      y[i] = z[i] + (i % 7 == 0 ? 1.5f : -0.2f);  // the principle prefers some tokens
    }
  }
}

}  // namespace

int main() {
  const int64_t B = 4, V = 32000, steps = 8;

  std::unique_ptr<linalign::Context> ctx;
  std::string err;
  linalign::ContextOptions opt;
  opt.backend = linalign::Backend::kCpu;  // kAuto picks CUDA when a device is present
  if (linalign::Context::create(opt, &ctx, &err) != linalign::Status::kSuccess) {
    std::fprintf(stderr, "create: %s\n", err.c_str());
    return 1;
  }

  // Per-request state and parameters (device arrays on the CUDA backend).
  std::vector<uint64_t> seeds = {11, 22, 33, 44};
  std::vector<uint64_t> offsets(B, 0);  // the step counter of each request
  std::vector<float> temperature = {0.7f, 1.0f, 0.7f, 0.5f};
  std::vector<float> ratio = {2.f, 2.f, 3.f, 1.f};
  std::vector<int64_t> pair_index(2 * B);
  for (int64_t r = 0; r < B; ++r) {
    pair_index[size_t(2 * r)] = 2 * r;          // base row of request r
    pair_index[size_t(2 * r + 1)] = 2 * r + 1;  // principle row of request r
  }

  linalign::Params p;
  p.temperature = linalign::PerRow<float>::array(temperature.data());
  p.ratio = linalign::PerRow<float>::array(ratio.data());
  p.top_p = 0.8f;  // the reference setting: nucleus of the principle distribution
  p.seed = linalign::PerRow<uint64_t>::array(seeds.data());
  p.offset = linalign::PerRow<uint64_t>::array(offsets.data());

  std::vector<float> paired(size_t(2 * B * V));
  const auto view = linalign::LogitsView::pairs(linalign::DType::kF32, B, V, paired.data(), 2 * B,
                                                pair_index.data());

  // The workspace is sized once (for the largest batch) and reused: the calls
  // then allocate nothing (and on CUDA are graph-capturable).
  const size_t ws_bytes = ctx->workspace_size(linalign::Op::kSample, view, p);
  std::vector<unsigned char> workspace(ws_bytes);

  std::vector<int32_t> last(B, 0), tokens(B);
  std::vector<float> logprob(B);
  std::vector<linalign::RowDiagnostics> diag(B);
  void* stream = nullptr;  // a cudaStream_t on the CUDA backend

  for (uint64_t step = 0; step < uint64_t(steps); ++step) {
    forward(B, V, last, step, &paired);
    const linalign::Status st = ctx->sample(view, p, tokens.data(), logprob.data(), diag.data(),
                                            workspace.data(), ws_bytes, stream);
    if (st != linalign::Status::kSuccess) {
      std::fprintf(stderr, "sample: %s: %s\n", linalign::status_string(st), ctx->last_error());
      return 2;
    }
    std::printf("step %llu:", static_cast<unsigned long long>(step));
    for (int64_t r = 0; r < B; ++r) {
      if (diag[size_t(r)].status != linalign::kRowOk) {
        std::printf("  [req %lld: invalid row]", static_cast<long long>(r));
        continue;
      }
      std::printf("  %6d (%.2f, KL %.2f)", tokens[size_t(r)], logprob[size_t(r)],
                  diag[size_t(r)].kl_base);
      last[size_t(r)] = tokens[size_t(r)];
      offsets[size_t(r)] += 1;  // next step of this request: a fresh Philox stream
    }
    std::printf("\n");
  }
  return 0;
}
