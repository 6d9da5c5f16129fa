// Aligns one row through the installed package and checks the result sums to 1.
#include <cmath>
#include <cstdio>
#include <linalign/linalign.hpp>
#include <vector>

int main() {
  std::unique_ptr<linalign::Context> ctx;
  if (linalign::Context::create({}, &ctx) != linalign::Status::kSuccess) return 1;
  const int V = 1000;
  std::vector<float> z(V), y(V), out(V);
  for (int i = 0; i < V; ++i) {
    z[i] = std::sin(0.1f * i);
    y[i] = std::cos(0.07f * i);
  }
  linalign::Params p;
  auto view = linalign::LogitsView::strided(linalign::DType::kF32, 1, V, z.data(), y.data());
  if (ctx->align(view, p, out.data(), 0, nullptr) != linalign::Status::kSuccess) return 2;
  double s = 0;
  for (float l : out) s += std::exp(double(l));
  std::printf("consumer: sum exp(l*) = %.6f\n", s);
  return std::fabs(s - 1.0) < 1e-4 ? 0 : 3;
}
