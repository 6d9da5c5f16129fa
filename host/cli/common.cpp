// The commands' shared helpers (common.hpp).
#include "cli/common.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace linalign_cli {

using linalign::Status;

void check(linalign::Status s, const linalign::Context& ctx, const char* op) {
  if (s == linalign::Status::kSuccess) return;
  (void)op;  // last_error() already names the call
  throw LibraryError(std::string(linalign::status_string(s)) + ": " + ctx.last_error());
}

npy::Array read_input(const std::string& path, const std::string& flag) {
  try {
    return npy::read(path);
  } catch (const npy::Error& e) {
    throw UsageError(flag + ": " + e.what());
  }
}

linalign::DType logits_dtype(const npy::Array& a, bool bf16, const std::string& flag) {
  switch (a.dtype()) {
    case npy::DType::kF32:
      return linalign::DType::kF32;
    case npy::DType::kF16:
      return linalign::DType::kF16;
    case npy::DType::kU16:
    case npy::DType::kV2:
      if (bf16) return linalign::DType::kBF16;
      throw UsageError(flag + ": dtype '" + npy::descr(a.dtype()) +
                       "' holds 16-bit integers; pass --bf16 to read them as bfloat16 bits");
    case npy::DType::kI32:
    case npy::DType::kI64:
      break;
  }
  throw UsageError(flag + ": logits of dtype '" + npy::descr(a.dtype()) + "' (" +
                   npy::dtype_name(a.dtype()) +
                   ") are not supported; expected float32 '<f4', float16 '<f2' or bfloat16 "
                   "bits '<u2' with --bf16");
}

linalign::Params make_params(const Args& a) {
  linalign::Params p;
  p.temperature = a.f32("temperature", 1.0f);
  p.rule =
      static_cast<linalign::StepRule>(a.choice("rule", {"fixed", "trust_region", "exact_kl"}, 0));
  p.ratio = a.f32("ratio", 2.0f);
  p.epsilon = a.f32("epsilon", 0.1f);
  p.eta_max = a.f32("eta-max", 8.0f);
  p.update = static_cast<linalign::UpdateForm>(a.choice("update", {"tilt", "linear"}, 0));
  p.greedy = a.has("greedy");
  p.top_p = a.f32("top-p", 1.0f);
  p.top_k = a.i32("top-k", 0);
  p.min_p = a.f32("min-p", 0.0f);
  p.nucleus_source =
      static_cast<linalign::NucleusSource>(a.choice("nucleus-source", {"principle", "aligned"}, 0));
  p.min_tokens_to_keep = a.i32("min-tokens-to-keep", 1);
  p.seed = a.u64("seed", 0);
  p.offset = a.u64("offset", 0);
  p.ignore_index = a.i32("ignore-index", -100);
  return p;
}

const char* backend_name(linalign::Backend b) {
  switch (b) {
    case linalign::Backend::kCpu:
      return "cpu";
    case linalign::Backend::kCuda:
      return "cuda";
    case linalign::Backend::kAuto:
      return "auto";
  }
  return "?";
}

Engine make_engine(const Args& a) {
  linalign::ContextOptions o;
  o.backend = static_cast<linalign::Backend>(a.choice("backend", {"cpu", "cuda", "auto"}, 2));
  o.num_threads = static_cast<int>(a.i64("threads", 0, 0, 1 << 16));
  o.device = static_cast<int>(a.i64("device", 0, 0, 1 << 16));
  Engine e;
  std::string err;
  Status s = linalign::Context::create(o, &e.ctx, &err);
  if (s != Status::kSuccess || !e.ctx)
    throw LibraryError(std::string("cannot create a context for backend ") +
                       backend_name(o.backend) + ": " + linalign::status_string(s) + ": " + err);
  if (e.ctx->backend() != linalign::Backend::kCuda) {
    e.mem = Staging::host();
    return e;
  }
  try {
    e.mem = Staging::cuda(o.device);
  } catch (const StagingError& ex) {
    if (o.backend != linalign::Backend::kAuto) throw;
    fmt::print(stderr, "linalign: note: {}; using the CPU backend\n", ex.what());
    e.ctx.reset();
    o.backend = linalign::Backend::kCpu;
    s = linalign::Context::create(o, &e.ctx, &err);
    if (s != Status::kSuccess || !e.ctx)
      throw LibraryError(std::string("cannot create a context for backend cpu: ") +
                         linalign::status_string(s) + ": " + err);
    e.mem = Staging::host();
  }
  return e;
}

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Progress::Progress(std::string what, std::string unit, int64_t total)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      total_(total),
      on_(::isatty(STDERR_FILENO) != 0),
      start_s_(now_s()) {}

void Progress::update(int64_t done, const std::string& extra) {
  if (!on_) return;
  const double t = now_s();
  if (t - start_s_ < 0.5 || (last_s_ >= 0 && t - last_s_ < 0.2)) return;
  last_s_ = t;
  print(done, extra, false);
}

void Progress::finish(int64_t done, const std::string& extra) {
  if (printed_) print(done, extra, true);
}

void Progress::print(int64_t done, const std::string& extra, bool last) {
  const double secs = now_s() - start_s_;
  const double rate = secs > 0 ? double(done) / secs : 0;
  std::string eta = "?";
  if (rate > 0 && total_ >= done) {
    const long s = long(double(total_ - done) / rate + 0.5);
    eta = fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  }
  const double pct = total_ > 0 ? 100.0 * double(done) / double(total_) : 0;
  fmt::print(stderr, "\r{}: {}/{} {} ({:.1f}%), {:.1f} {}/s, ETA {}{}   {}", what_, done, total_,
             unit_, pct, rate, unit_, eta, extra.empty() ? "" : ", " + extra, last ? "\n" : "");
  std::fflush(stderr);
  printed_ = true;
}

}  // namespace linalign_cli
