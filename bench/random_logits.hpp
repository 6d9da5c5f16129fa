// The benchmarks' inputs: fixed-seed logits z ~ 3·N(0,1), y = z + N(0,1)
// (a principle correlated with the base), [B, V] fp32, made once per
// (B, V, seed) and kept for the life of the process.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

namespace linalign_bench {

struct Logits {
  int64_t B = 0, V = 0;
  std::vector<float> z, y;
  const float* z_row(int64_t r) const { return z.data() + r * V; }
  const float* y_row(int64_t r) const { return y.data() + r * V; }
};

inline const Logits& random_logits(int64_t B, int64_t V, uint64_t seed) {
  static std::map<std::tuple<int64_t, int64_t, uint64_t>, std::unique_ptr<Logits>> cache;
  auto& slot = cache[{B, V, seed}];
  if (!slot) {
    slot.reset(new Logits);
    slot->B = B;
    slot->V = V;
    std::mt19937_64 rng(seed ^ uint64_t(B * 1000003 + V));
    std::normal_distribution<float> n01(0.f, 1.f);
    slot->z.resize(size_t(B * V));
    slot->y.resize(size_t(B * V));
    for (size_t i = 0; i < slot->z.size(); ++i) {
      slot->z[i] = 3.f * n01(rng);
      slot->y[i] = slot->z[i] + n01(rng);
    }
  }
  return *slot;
}

}  // namespace linalign_bench
