// linalign — command-line tool: align / sample / score .npy logits, plus
// gen (random test inputs), info (inspect .npy files) and demo.
//
// Exit status: 0 success; 1 bad usage, unreadable or malformed input, or an
// output that cannot be written; 2 an error reported by the library (its
// status string and Context::last_error() are printed) or by the CUDA driver.
// Row-level errors (NaN / +inf logits, empty support) are not failures: they
// show in the row's diagnostics "status" and its outputs (NaN, token -1).

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <limits>
#include <linalign/linalign.hpp>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "call.hpp"  // host/call.hpp: the library's call-level validation (SPEC §5)
#include "cli/common.hpp"
#include "cli/npy.hpp"
#include "cli/options.hpp"
#include "cli/score_job.hpp"
#include "cli/staging.hpp"
#include "cli/story.hpp"

namespace linalign_cli {
namespace {

using linalign::Status;

// ------------------------------------------------------------- formatting ---

// The shortest decimal that reads back as the same float (fmt's round-trip
// formatting, exponent only below 1e-4 or from 1e16); "null" when not finite.
std::string json_float(float f) {
  return std::isfinite(f) ? fmt::format("{}", f) : "null";
}

// Like json_float but "nan", "inf", "-inf" for the non-finite values.
std::string text_float(float f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f > 0 ? "inf" : "-inf";
  return json_float(f);
}

// The row's status bits as a JSON array of names ("bitN" for a bit this
// build does not know).
std::string status_json(uint32_t s) {
  std::vector<std::string> names;
  const std::pair<uint32_t, const char*> kKnown[] = {
      {linalign::kRowNaN, "\"nan\""},
      {linalign::kRowPosInf, "\"pos_inf\""},
      {linalign::kRowEmptySupport, "\"empty_support\""},
      {linalign::kRowBadParameter, "\"bad_parameter\""},
      {linalign::kRowOverflow, "\"overflow\""}};
  uint32_t unknown = s;
  for (const auto& [bit, name] : kKnown) {
    if (s & bit) names.emplace_back(name);
    unknown &= ~bit;
  }
  for (int b = 0; b < 32; ++b)
    if (unknown & (1u << b)) names.push_back(fmt::format("\"bit{}\"", b));
  return fmt::format("[{}]", fmt::join(names, ","));
}

// The common part of a row's JSON record, without the closing brace.
std::string diag_json(int64_t row, const linalign::RowDiagnostics& d) {
  return fmt::format(
      R"({{"row":{},"eta":{},"mu":{},"sigma":{},"kl_base":{},"kl_principle":{},"entropy":{},)"
      R"("support":{},"status":{})",
      row, json_float(d.eta), json_float(d.mu), json_float(d.sigma), json_float(d.kl_base),
      json_float(d.kl_principle), json_float(d.entropy), d.support, status_json(d.status));
}

// A sampled row's record: the common part, the token and its log-prob.
std::string token_json(int64_t row, const linalign::RowDiagnostics& d, int32_t token,
                       float logprob) {
  return diag_json(row, d) +
         fmt::format(R"(,"token":{},"logprob":{}}})", token, json_float(logprob));
}

// Collects the JSON lines and writes them at the end (stdout, a file, or nowhere).
class DiagnosticsOut {
 public:
  explicit DiagnosticsOut(const Args& a, bool default_stdout = true) {
    if (a.has("no-diagnostics")) return;  // the flag table: it excludes --diagnostics
    if (!a.has("diagnostics") && !default_stdout) return;
    path_ = a.str("diagnostics", "-");
    if (path_.empty()) throw UsageError("flag --diagnostics: empty value");
    enabled_ = true;
  }
  bool enabled() const { return enabled_; }
  void line(const std::string& s) {
    if (!enabled_) return;
    text_ += s;
    text_ += '\n';
  }
  void flush() {
    if (!enabled_) return;
    if (path_ == "-") {
      std::fwrite(text_.data(), 1, text_.size(), stdout);
      return;
    }
    std::FILE* f = std::fopen(path_.c_str(), "w");
    if (!f)
      throw UsageError("--diagnostics: " + path_ + ": cannot create: " + std::strerror(errno));
    bool ok = std::fwrite(text_.data(), 1, text_.size(), f) == text_.size();
    ok = (std::fclose(f) == 0) && ok;
    if (!ok)
      throw UsageError("--diagnostics: " + path_ + ": cannot write: " + std::strerror(errno));
  }

 private:
  bool enabled_ = false;
  std::string path_;
  std::string text_;
};

// ------------------------------------------------------------------ files ---

void write_output(const Args& a, const std::string& flag, npy::DType t,
                  const std::vector<int64_t>& shape, const void* data) {
  if (!a.has(flag)) return;
  const std::string path = a.required(flag);
  try {
    npy::write(path, t, shape, data);
  } catch (const npy::Error& e) {
    throw UsageError("--" + flag + ": " + e.what());
  }
}

// ----------------------------------------------------------------- inputs ---

struct Logits {
  npy::Array base, principle;
  linalign::DType dtype = linalign::DType::kF32;
  int64_t rows = 0, vocab = 0;
  std::vector<int64_t> shape;  // of the inputs (and of align's output)
};

Logits load_logits(const Args& a) {
  Logits L;
  const bool bf16 = a.has("bf16");
  const std::string bpath = a.required("base"), ppath = a.required("principle");
  L.base = read_input(bpath, "--base");
  L.principle = read_input(ppath, "--principle");
  try {
    npy::require_rank(L.base, 1, 2, "--base " + bpath);
    npy::require_rank(L.principle, 1, 2, "--principle " + ppath);
    npy::require_same_shape(L.base, "--base", L.principle, "--principle");
  } catch (const npy::Error& e) {
    throw UsageError(e.what());
  }
  const linalign::DType bt = logits_dtype(L.base, bf16, "--base " + bpath);
  const linalign::DType pt = logits_dtype(L.principle, bf16, "--principle " + ppath);
  if (L.base.dtype() != L.principle.dtype())
    throw UsageError(std::string("mismatched dtypes: --base is '") + npy::descr(L.base.dtype()) +
                     "' but --principle is '" + npy::descr(L.principle.dtype()) + "'");
  (void)pt;
  L.dtype = bt;
  L.shape = L.base.shape();
  L.rows = L.base.rank() == 2 ? L.shape[0] : 1;
  L.vocab = L.shape.back();
  return L;
}

// A 1-D int32 or int64 array given by --flag, widened to int64. `expected`
// names the preferred dtype in the message for any other one.
std::vector<int64_t> load_index_array(const Args& a, const std::string& flag,
                                      const char* expected) {
  const std::string path = a.required(flag);
  const std::string where = "--" + flag + " " + path;
  npy::Array t = read_input(path, "--" + flag);
  if (t.dtype() != npy::DType::kI32 && t.dtype() != npy::DType::kI64)
    throw UsageError(where + ": dtype '" + npy::descr(t.dtype()) + "' (" +
                     npy::dtype_name(t.dtype()) + ") is not supported; expected " + expected);
  try {
    npy::require_rank(t, 1, 1, where);
  } catch (const npy::Error& e) {
    throw UsageError(e.what());
  }
  std::vector<int64_t> out(static_cast<size_t>(t.size()));
  for (int64_t i = 0; i < t.size(); ++i)
    out[i] = t.dtype() == npy::DType::kI64 ? t.as<int64_t>()[i] : t.as<int32_t>()[i];
  return out;
}

std::vector<int32_t> load_targets(const Args& a, int64_t rows) {
  const std::vector<int64_t> t = load_index_array(a, "targets", "int32 '<i4' (or int64 '<i8')");
  if (static_cast<int64_t>(t.size()) != rows)
    throw UsageError("mismatched shapes: --targets has " + std::to_string(t.size()) +
                     " entries but the logits have " + std::to_string(rows) + " rows");
  std::vector<int32_t> out(t.size());
  for (size_t r = 0; r < t.size(); ++r) {
    if (t[r] < std::numeric_limits<int32_t>::min() || t[r] > std::numeric_limits<int32_t>::max())
      throw UsageError("--targets " + a.str("targets") + ": entry " + std::to_string(r) + " = " +
                       std::to_string(t[r]) + " does not fit int32");
    out[r] = static_cast<int32_t>(t[r]);
  }
  return out;
}

std::vector<int64_t> load_offsets(const Args& a) {
  std::vector<int64_t> o = load_index_array(a, "offsets", "int64 '<i8' (or int32 '<i4')");
  if (o.empty())
    throw UsageError("--offsets " + a.str("offsets") +
                     ": needs at least one entry (S+1 offsets for S sequences)");
  return o;
}

// ------------------------------------------------------------- parameters ---

// ------------------------------------------------------------- validation ---
//
// The CLI checks every call on its host arrays before anything is uploaded,
// here, for every backend: it runs the library's own call-level validation
// (host/validate.cpp, SPEC §5) as the CPU backend runs it, with the score
// targets and the sequence offsets still in host memory and checked element
// by element. Once uploaded for the CUDA backend they are device-resident,
// where the library only flags the rows they touch (docs/SEMANTICS.md 14);
// checked here, a bad target or offset is exit 2 with the CPU backend's
// message ("invalid argument: score: targets[3] = 99 is outside ...")
// whatever --backend says. Every other check is the one the backend would
// make anyway, so no call the backend accepts is refused here.

// The host-side description of a call on the logits as read from the files.
linalign::host::Call host_call(linalign::Op op, const char* name, const Logits& L,
                               const linalign::Params& p) {
  linalign::host::Call call;
  call.op = op;
  call.name = name;
  call.logits =
      linalign::LogitsView::strided(L.dtype, L.rows, L.vocab, L.base.data(), L.principle.data());
  call.params = &p;
  return call;
}

void validate_on_host(linalign::host::Call call) {
  std::string message;
  const Status s = linalign::host::validate_call(&call, /*host_arrays=*/true, &message);
  if (s != Status::kSuccess)
    throw LibraryError(std::string(linalign::status_string(s)) + ": " + message);
}

linalign::LogitsView upload_view(Engine& e, const Logits& L) {
  const void* b = e.mem->upload(L.base.data(), L.base.nbytes());
  const void* p = e.mem->upload(L.principle.data(), L.principle.nbytes());
  return linalign::LogitsView::strided(L.dtype, L.rows, L.vocab, b, p);
}

std::vector<linalign::RowDiagnostics> fetch_diagnostics(Engine& e,
                                                        const linalign::RowDiagnostics* d,
                                                        int64_t rows) {
  std::vector<linalign::RowDiagnostics> out(static_cast<size_t>(rows));
  e.mem->download_n(out.data(), d, out.size());
  return out;
}

// --------------------------------------------------------------- commands ---

int run_align(const Args& a) {
  const Logits L = load_logits(a);
  const linalign::Params p = make_params(a);
  DiagnosticsOut diag(a);
  const bool bf16 = a.has("out-bf16");
  const npy::DType out_type = bf16 ? npy::DType::kU16 : npy::DType::kF32;
  npy::Array result(out_type, L.shape);
  linalign::host::Call call = host_call(linalign::Op::kAlign, "align", L, p);
  call.out = result.data();
  call.out_dtype = bf16 ? linalign::DType::kBF16 : linalign::DType::kF32;
  validate_on_host(call);
  Engine e = make_engine(a);
  const linalign::LogitsView v = upload_view(e, L);
  const size_t n = static_cast<size_t>(L.rows) * static_cast<size_t>(L.vocab);
  auto* d = e.mem->alloc_n<linalign::RowDiagnostics>(static_cast<size_t>(L.rows));
  if (bf16) {
    uint16_t* out = e.mem->alloc_n<uint16_t>(n);
    check(e.ctx->align(v, p, out, linalign::DType::kBF16, 0, d), *e.ctx, "align");
    e.mem->download_n(result.as<uint16_t>(), out, n);
  } else {
    float* out = e.mem->alloc_n<float>(n);
    check(e.ctx->align(v, p, out, 0, d), *e.ctx, "align");
    e.mem->download_n(result.as<float>(), out, n);
  }
  const auto diags = fetch_diagnostics(e, d, L.rows);
  write_output(a, "out", out_type, L.shape, result.data());
  for (int64_t r = 0; r < L.rows; ++r) diag.line(diag_json(r, diags[r]) + "}");
  diag.flush();
  return 0;
}

int run_sample(const Args& a) {
  const Logits L = load_logits(a);
  const linalign::Params p = make_params(a);
  DiagnosticsOut diag(a);
  const size_t B = static_cast<size_t>(L.rows);
  std::vector<int32_t> tok(B);
  std::vector<float> lp(B);
  linalign::host::Call call = host_call(linalign::Op::kSample, "sample", L, p);
  call.tokens = tok.data();
  call.token_logprob = lp.data();
  validate_on_host(call);
  Engine e = make_engine(a);
  const linalign::LogitsView v = upload_view(e, L);
  int32_t* tokens = e.mem->alloc_n<int32_t>(B);
  float* logprob = e.mem->alloc_n<float>(B);
  auto* d = e.mem->alloc_n<linalign::RowDiagnostics>(B);
  check(e.ctx->sample(v, p, tokens, logprob, d), *e.ctx, "sample");
  e.mem->download_n(tok.data(), tokens, B);
  e.mem->download_n(lp.data(), logprob, B);
  const auto diags = fetch_diagnostics(e, d, L.rows);
  const std::vector<int64_t> shape = {L.rows};
  write_output(a, "out", npy::DType::kI32, shape, tok.data());
  write_output(a, "out-logprob", npy::DType::kF32, shape, lp.data());
  for (size_t r = 0; r < B; ++r)
    diag.line(token_json(static_cast<int64_t>(r), diags[r], tok[r], lp[r]));
  diag.flush();
  return 0;
}

int run_score(const Args& a) {
  const Logits L = load_logits(a);
  const std::vector<int32_t> targets = load_targets(a, L.rows);
  const bool have_offsets = a.has("offsets");
  std::vector<int64_t> offsets;
  if (have_offsets) offsets = load_offsets(a);
  const linalign::Params p = make_params(a);
  DiagnosticsOut diag(a);
  const size_t B = static_cast<size_t>(L.rows);
  const size_t S = have_offsets ? offsets.size() - 1 : 0;
  std::vector<float> sa(B), sb(B), sp(B), qa(S), qb(S), qp(S);
  {  // the targets and offsets are checked here, in host memory (see validate_on_host)
    linalign::ScoreOutputs host_out;
    host_out.aligned = sa.data();
    host_out.base = sb.data();
    host_out.principle = sp.data();
    if (have_offsets) {
      host_out.seq_offsets = offsets.data();
      host_out.num_sequences = static_cast<int64_t>(S);
      host_out.seq_aligned = qa.data();
      host_out.seq_base = qb.data();
      host_out.seq_principle = qp.data();
    }
    linalign::host::Call call = host_call(linalign::Op::kScore, "score", L, p);
    call.targets = targets.data();
    call.score = &host_out;
    validate_on_host(call);
  }
  Engine e = make_engine(a);
  const linalign::LogitsView v = upload_view(e, L);

  linalign::ScoreOutputs out;
  out.aligned = e.mem->alloc_n<float>(B);
  out.base = e.mem->alloc_n<float>(B);
  out.principle = e.mem->alloc_n<float>(B);
  if (have_offsets) {
    out.seq_offsets = e.mem->upload_n(offsets.data(), offsets.size());
    out.num_sequences = static_cast<int64_t>(S);
    out.seq_aligned = e.mem->alloc_n<float>(S);
    out.seq_base = e.mem->alloc_n<float>(S);
    out.seq_principle = e.mem->alloc_n<float>(S);
  }
  const int32_t* t = e.mem->upload_n(targets.data(), B);
  auto* d = e.mem->alloc_n<linalign::RowDiagnostics>(B);
  check(e.ctx->score(v, p, t, out, d), *e.ctx, "score");

  e.mem->download_n(sa.data(), out.aligned, B);
  e.mem->download_n(sb.data(), out.base, B);
  e.mem->download_n(sp.data(), out.principle, B);
  if (have_offsets) {
    e.mem->download_n(qa.data(), out.seq_aligned, S);
    e.mem->download_n(qb.data(), out.seq_base, S);
    e.mem->download_n(qp.data(), out.seq_principle, S);
  }
  const auto diags = fetch_diagnostics(e, d, L.rows);
  const std::vector<int64_t> rshape = {L.rows}, sshape = {static_cast<int64_t>(S)};
  write_output(a, "out", npy::DType::kF32, rshape, sa.data());
  write_output(a, "out-base", npy::DType::kF32, rshape, sb.data());
  write_output(a, "out-principle", npy::DType::kF32, rshape, sp.data());
  write_output(a, "out-seq", npy::DType::kF32, sshape, qa.data());
  write_output(a, "out-seq-base", npy::DType::kF32, sshape, qb.data());
  write_output(a, "out-seq-principle", npy::DType::kF32, sshape, qp.data());
  for (size_t r = 0; r < B; ++r)
    diag.line(diag_json(static_cast<int64_t>(r), diags[r]) +
              fmt::format(R"(,"target":{},"score":{},"score_base":{},"score_principle":{}}})",
                          targets[r], json_float(sa[r]), json_float(sb[r]), json_float(sp[r])));
  for (size_t s = 0; s < S; ++s)
    diag.line(fmt::format(
        R"({{"sequence":{},"rows":[{},{}],"score":{},"score_base":{},"score_principle":{}}})", s,
        offsets[s], offsets[s + 1], json_float(qa[s]), json_float(qb[s]), json_float(qp[s])));
  diag.flush();
  return 0;
}

// ------------------------------------------------------------- generator ---

// SplitMix64 (Steele, Lea, Flood 2014): tiny, portable, same stream everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in (0, 1).
  double uniform() { return (static_cast<double>(next() >> 11) + 0.5) * 0x1.0p-53; }
  // Standard normal (Box–Muller).
  double normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    const double t = 6.283185307179586 * uniform();
    spare_ = r * std::sin(t);
    have_spare_ = true;
    return r * std::cos(t);
  }
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }

 private:
  uint64_t s_;
  double spare_ = 0;
  bool have_spare_ = false;
};

struct GenSpec {
  int64_t rows = 0, vocab = 0;
  uint64_t seed = 0;
  int dtype = 0;  // 0 f32, 1 f16, 2 bf16
  float scale = 3.f, shift = 1.f, mask_frac = 0.f;
};

GenSpec read_gen_spec(const Args& a, int64_t def_rows, int64_t def_vocab) {
  GenSpec g;
  const int64_t kMaxElems = int64_t{1} << 32;
  g.rows = a.i64("rows", def_rows, 0, std::numeric_limits<int32_t>::max());
  g.vocab = a.i64("vocab", def_vocab, 1, std::numeric_limits<int32_t>::max());
  if (g.rows > 0 && g.vocab > kMaxElems / g.rows)
    throw UsageError("--rows x --vocab = " + std::to_string(g.rows) + " x " +
                     std::to_string(g.vocab) + " is too large (limit 2^32 elements)");
  g.seed = a.u64("seed", 0);
  g.dtype = a.choice("dtype", {"f32", "f16", "bf16", "float32", "float16", "bfloat16"}, 0) % 3;
  g.scale = a.f32("scale", 3.f);
  g.shift = a.f32("shift", 1.f);
  g.mask_frac = a.f32("mask-frac", 0.f);
  if (!std::isfinite(g.scale)) throw UsageError("flag --scale: must be finite");
  if (!std::isfinite(g.shift)) throw UsageError("flag --shift: must be finite");
  if (!(g.mask_frac >= 0.f && g.mask_frac <= 1.f))
    throw UsageError("flag --mask-frac: must be in [0, 1]");
  return g;
}

// Base logits scale·N(0,1); principle = base + shift·N(0,1), masked to -inf
// with probability mask_frac. A long one shows a progress line on a terminal.
void generate(const GenSpec& g, std::vector<float>* z, std::vector<float>* y) {
  const size_t n = static_cast<size_t>(g.rows) * static_cast<size_t>(g.vocab);
  z->resize(n);
  y->resize(n);
  Rng rng(g.seed);
  Progress line("gen", "rows", g.rows);
  const size_t V = static_cast<size_t>(g.vocab);
  for (size_t i = 0; i < n; ++i) {
    if (i % V == 0) line.update(int64_t(i / V));
    const double zi = g.scale * rng.normal();
    const double yi = zi + g.shift * rng.normal();
    (*z)[i] = static_cast<float>(zi);
    (*y)[i] = static_cast<float>(yi);
    if (g.mask_frac > 0.f && rng.uniform() < g.mask_frac)
      (*y)[i] = -std::numeric_limits<float>::infinity();
  }
  line.finish(g.rows);
}

npy::Array to_array(const std::vector<float>& v, const std::vector<int64_t>& shape, int dtype) {
  if (dtype == 0) {
    npy::Array a(npy::DType::kF32, shape);
    std::copy(v.begin(), v.end(), a.as<float>());
    return a;
  }
  npy::Array a(dtype == 1 ? npy::DType::kF16 : npy::DType::kU16, shape);
  uint16_t* o = a.as<uint16_t>();
  for (size_t i = 0; i < v.size(); ++i)
    o[i] = dtype == 1 ? linalign::math::float_to_fp16(v[i]) : linalign::math::float_to_bf16(v[i]);
  return a;
}

linalign::DType lib_dtype(int dtype) {
  return dtype == 0   ? linalign::DType::kF32
         : dtype == 1 ? linalign::DType::kF16
                      : linalign::DType::kBF16;
}

int run_gen(const Args& a) {
  a.required("rows");
  a.required("vocab");
  const GenSpec g = read_gen_spec(a, 0, 1);
  const std::string zpath = a.required("out-base"), ypath = a.required("out-principle");
  std::vector<int64_t> shape = {g.rows, g.vocab};
  if (a.has("flat")) {
    if (g.rows != 1) throw UsageError("--flat writes 1-D [V] arrays and needs --rows 1");
    shape = {g.vocab};
  }
  auto row_flag = [&](const char* name) -> int64_t {
    if (!a.has(name)) return -1;
    if (g.rows == 0) throw UsageError(std::string("flag --") + name + ": there are no rows");
    return a.i64(name, -1, 0, g.rows - 1);
  };
  const int64_t nan_row = row_flag("nan-row"), posinf_row = row_flag("posinf-row"),
                empty_row = row_flag("empty-row");
  std::vector<float> z, y;
  generate(g, &z, &y);
  const size_t V = static_cast<size_t>(g.vocab);
  if (nan_row >= 0) z[nan_row * V + V / 2] = std::numeric_limits<float>::quiet_NaN();
  if (posinf_row >= 0) y[posinf_row * V] = std::numeric_limits<float>::infinity();
  if (empty_row >= 0)
    std::fill(z.begin() + empty_row * V, z.begin() + (empty_row + 1) * V,
              -std::numeric_limits<float>::infinity());
  const npy::Array za = to_array(z, shape, g.dtype), ya = to_array(y, shape, g.dtype);
  write_output(a, "out-base", za.dtype(), shape, za.data());
  write_output(a, "out-principle", ya.dtype(), shape, ya.data());
  Rng rng(g.seed ^ 0x5eed5eed5eed5eedull);
  if (a.has("out-targets")) {
    std::vector<int32_t> t(static_cast<size_t>(g.rows));
    for (auto& x : t) x = static_cast<int32_t>(rng.below(static_cast<uint64_t>(g.vocab)));
    write_output(a, "out-targets", npy::DType::kI32, {g.rows}, t.data());
  }
  if (a.has("out-offsets")) {
    const int64_t S = a.i64("sequences", 2, 1, 1 << 30);
    std::vector<int64_t> o(static_cast<size_t>(S + 1));
    o[0] = 0;
    o[S] = g.rows;
    for (int64_t s = 1; s < S; ++s)
      o[s] = static_cast<int64_t>(rng.below(static_cast<uint64_t>(g.rows) + 1));
    std::sort(o.begin(), o.end());
    write_output(a, "out-offsets", npy::DType::kI64, {S + 1}, o.data());
  }
  return 0;
}

// ------------------------------------------------------------------- info ---

int run_info(const Args& a) {
  if (a.positional().empty()) throw UsageError("no file given (usage: linalign info FILE.npy...)");
  const bool bf16 = a.has("bf16"), values = a.has("values");
  int rc = 0;
  for (const std::string& path : a.positional()) {
    npy::Array arr;
    try {
      arr = npy::read(path);
    } catch (const npy::Error& e) {
      fmt::print(stderr, "linalign info: error: {}\n", e.what());
      rc = 1;
      continue;
    }
    const npy::DType t = arr.dtype();
    const bool as_bf16 = bf16 && (t == npy::DType::kU16 || t == npy::DType::kV2);
    const bool is_float = t == npy::DType::kF32 || t == npy::DType::kF16 || as_bf16;
    std::string name = npy::dtype_name(t);
    if (as_bf16) name = "bfloat16 bits";
    fmt::print("{}: dtype={} ({}) shape={} npy={}.0", path, npy::descr(t), name,
               npy::shape_string(arr.shape()), arr.version());
    const int64_t n = arr.size();
    auto fval = [&](int64_t i) -> float {
      if (t == npy::DType::kF32) return arr.as<float>()[i];
      if (t == npy::DType::kF16) return linalign::math::fp16_to_float(arr.as<uint16_t>()[i]);
      return linalign::math::bf16_to_float(arr.as<uint16_t>()[i]);
    };
    auto ival = [&](int64_t i) -> int64_t {
      if (t == npy::DType::kI32) return arr.as<int32_t>()[i];
      if (t == npy::DType::kI64) return arr.as<int64_t>()[i];
      return arr.as<uint16_t>()[i];
    };
    if (t == npy::DType::kV2 && !as_bf16) {
      fmt::print("\n");
    } else if (is_float) {
      int64_t finite = 0, nan = 0, pinf = 0, ninf = 0;
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (int64_t i = 0; i < n; ++i) {
        const float f = fval(i);
        if (std::isnan(f)) {
          ++nan;
        } else if (std::isinf(f)) {
          ++(f > 0 ? pinf : ninf);
        } else {
          ++finite;
          lo = std::min(lo, f);
          hi = std::max(hi, f);
        }
      }
      fmt::print(" finite={} nan={} posinf={} neginf={}", finite, nan, pinf, ninf);
      if (finite) fmt::print(" min={} max={}", text_float(lo), text_float(hi));
      fmt::print("\n");
    } else {
      if (n) {
        int64_t lo = ival(0), hi = lo;
        for (int64_t i = 1; i < n; ++i) {
          lo = std::min(lo, ival(i));
          hi = std::max(hi, ival(i));
        }
        fmt::print(" min={} max={}", lo, hi);
      }
      fmt::print("\n");
    }
    if (values && !(t == npy::DType::kV2 && !as_bf16)) {
      for (int64_t i = 0; i < n; ++i) {
        if (is_float) {
          fmt::print("{}\n", text_float(fval(i)));
        } else {
          fmt::print("{}\n", ival(i));
        }
      }
    }
  }
  return rc;
}

// ------------------------------------------------------------------- demo ---

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The demo in phases: a generated batch uploaded once; one call of each
// operation with every output; the per-row table; the self-check that the
// three calls agree; the timing of each call.

struct DemoBatch {
  GenSpec g;
  Logits L;
  linalign::LogitsView view;
  size_t B = 0, V = 0;
};

DemoBatch make_demo_batch(const GenSpec& g, Engine& e) {
  DemoBatch d;
  d.g = g;
  std::vector<float> zf, yf;
  generate(d.g, &zf, &yf);
  d.L.shape = {d.g.rows, d.g.vocab};
  d.L.base = to_array(zf, d.L.shape, d.g.dtype);
  d.L.principle = to_array(yf, d.L.shape, d.g.dtype);
  d.L.dtype = lib_dtype(d.g.dtype);
  d.L.rows = d.g.rows;
  d.L.vocab = d.g.vocab;
  d.view = upload_view(e, d.L);
  d.B = static_cast<size_t>(d.g.rows);
  d.V = static_cast<size_t>(d.g.vocab);
  return d;
}

void print_demo_header(const DemoBatch& d, const linalign::Params& p, linalign::Backend backend) {
  static const char* kRules[] = {"fixed", "trust_region", "exact_kl"};
  static const char* kUpdates[] = {"tilt", "linear"};
  static const char* kDtypes[] = {"float32", "float16", "bfloat16"};
  fmt::print(
      "linalign demo: {} rows x {} vocab, {} logits (base {}*N(0,1), principle base + {}*N(0,1)), "
      "backend {}\n",
      d.B, d.V, kDtypes[d.g.dtype], text_float(d.g.scale), text_float(d.g.shift),
      backend_name(backend));
  fmt::print(
      "params: T={} rule={} ratio={} epsilon={} eta_max={} update={} top_p={} top_k={} min_p={} "
      "{} seed={}\n\n",
      text_float(p.temperature.value), kRules[static_cast<int>(p.rule)], text_float(p.ratio.value),
      text_float(p.epsilon.value), text_float(p.eta_max.value),
      kUpdates[static_cast<int>(p.update)], text_float(p.top_p.value), p.top_k.value,
      text_float(p.min_p.value), p.greedy ? "greedy" : "sampling", p.seed.value);
}

// The device (or host) buffers of the three calls, reused by the timing.
struct DemoBuffers {
  float* lstar = nullptr;
  int32_t* tokens = nullptr;
  float* logprob = nullptr;
  linalign::RowDiagnostics* diags = nullptr;
  std::vector<int32_t> host_targets;  // the sampled tokens (invalid rows: ignore_index)
  const int32_t* targets = nullptr;   // host_targets where the backend reads them
  linalign::ScoreOutputs score;
};

struct DemoResults {
  std::vector<float> lstar, logprob, score;
  std::vector<int32_t> tokens;
  std::vector<linalign::RowDiagnostics> diags;
};

DemoResults run_demo_calls(Engine& e, const DemoBatch& d, const linalign::Params& p,
                           DemoBuffers* buf) {
  const size_t B = d.B, V = d.V;
  buf->lstar = e.mem->alloc_n<float>(B * V);
  buf->tokens = e.mem->alloc_n<int32_t>(B);
  buf->logprob = e.mem->alloc_n<float>(B);
  buf->diags = e.mem->alloc_n<linalign::RowDiagnostics>(B);
  check(e.ctx->align(d.view, p, buf->lstar, 0, nullptr), *e.ctx, "align");
  check(e.ctx->sample(d.view, p, buf->tokens, buf->logprob, buf->diags), *e.ctx, "sample");
  DemoResults r;
  r.lstar.resize(B * V);
  r.logprob.resize(B);
  r.tokens.resize(B);
  r.score.resize(B);
  e.mem->download_n(r.lstar.data(), buf->lstar, B * V);
  e.mem->download_n(r.tokens.data(), buf->tokens, B);
  e.mem->download_n(r.logprob.data(), buf->logprob, B);
  r.diags = fetch_diagnostics(e, buf->diags, d.g.rows);
  buf->host_targets.resize(B);
  for (size_t i = 0; i < B; ++i)
    buf->host_targets[i] = r.tokens[i] >= 0 ? r.tokens[i] : p.ignore_index;
  buf->targets = e.mem->upload_n(buf->host_targets.data(), B);
  buf->score.aligned = e.mem->alloc_n<float>(B);
  check(e.ctx->score(d.view, p, buf->targets, buf->score, nullptr), *e.ctx, "score");
  e.mem->download_n(r.score.data(), buf->score.aligned, B);
  return r;
}

void print_demo_rows(const DemoResults& r) {
  const size_t B = r.tokens.size();
  fmt::print("{:>5} {:>8} {:>9} {:>8} {:>9} {:>9} {:>8} {:>7} {:>7} {:>9}  {}\n", "row", "eta",
             "mu", "sigma", "KL(*|z)", "KL(*|y)", "H(*)", "support", "token", "logprob", "status");
  const size_t shown = std::min<size_t>(B, 16);
  for (size_t i = 0; i < shown; ++i) {
    const auto& x = r.diags[i];
    fmt::print("{:5} {:8.4f} {:9.5f} {:8.5f} {:9.5f} {:9.5f} {:8.4f} {:7} {:7} {:9.4f}  {}\n", i,
               x.eta, x.mu, x.sigma, x.kl_base, x.kl_principle, x.entropy, x.support, r.tokens[i],
               r.logprob[i], x.status ? status_json(x.status) : "ok");
  }
  if (shown < B) fmt::print("  ... ({} more rows)\n", B - shown);
}

// The three calls agree on l*[token] for every valid row; invalid rows have
// token -1. Prints the verdict and returns the number of rows that fail.
size_t check_demo(const DemoResults& r, size_t V) {
  size_t bad = 0, valid = 0;
  double worst = 0;
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    const int32_t tok = r.tokens[i];
    if (r.diags[i].status != 0) {
      if (tok != -1) ++bad;
      continue;
    }
    ++valid;
    if (tok < 0 || static_cast<size_t>(tok) >= V) {
      ++bad;
      continue;
    }
    const double tol = 1e-4 * std::max(1.0, std::fabs(static_cast<double>(r.diags[i].eta)));
    const double d1 = std::fabs(static_cast<double>(r.logprob[i]) - r.lstar[i * V + tok]);
    const double d2 = std::fabs(static_cast<double>(r.logprob[i]) - r.score[i]);
    worst = std::max({worst, d1, d2});
    if (!(d1 <= tol && d2 <= tol)) ++bad;
  }
  fmt::print(
      "\ncheck: sample logprob == align l*[token] == score(token) on {} valid rows: {} "
      "(max |diff| {:.3g})\n",
      valid, bad ? "MISMATCH" : "ok", worst);
  return bad;
}

void time_demo(Engine& e, const DemoBatch& d, const linalign::Params& p, const DemoBuffers& buf,
               int64_t iters) {
  auto timed = [&](const char* name, size_t bytes, auto&& call) {
    check(call(), *e.ctx, name);  // warm-up
    e.mem->synchronize();
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; ++i) check(call(), *e.ctx, name);
    e.mem->synchronize();
    const double s = seconds_since(t0) / static_cast<double>(iters);
    fmt::print("  {:<7} {:10.3f} ms/call {:12.0f} rows/s {:8.2f} GB/s\n", name, s * 1e3,
               static_cast<double>(d.B) / s, static_cast<double>(bytes) / s * 1e-9);
  };
  const size_t in_bytes = 2 * d.B * d.V * (d.g.dtype == 0 ? 4 : 2);
  fmt::print("\ntiming ({} calls each, bytes = logits read + outputs written):\n", iters);
  timed("align", in_bytes + d.B * d.V * 4,
        [&] { return e.ctx->align(d.view, p, buf.lstar, 0, nullptr); });
  timed("sample", in_bytes,
        [&] { return e.ctx->sample(d.view, p, buf.tokens, buf.logprob, nullptr); });
  timed("score", in_bytes,
        [&] { return e.ctx->score(d.view, p, buf.targets, buf.score, nullptr); });
}

int run_demo(const Args& a) {
  const GenSpec g = read_gen_spec(a, 8, 32000);
  const int64_t iters = a.i64("iters", 20, 1, 1000000);
  const linalign::Params p = make_params(a);
  DiagnosticsOut diag(a, /*default_stdout=*/false);
  Engine e = make_engine(a);
  const DemoBatch d = make_demo_batch(g, e);
  print_demo_header(d, p, e.ctx->backend());
  DemoBuffers buf;
  const DemoResults r = run_demo_calls(e, d, p, &buf);
  print_demo_rows(r);
  for (size_t i = 0; i < d.B; ++i)
    diag.line(token_json(static_cast<int64_t>(i), r.diags[i], r.tokens[i], r.logprob[i]));
  const size_t bad = check_demo(r, d.V);
  time_demo(e, d, p, buf, iters);
  diag.flush();
  if (bad) {
    fmt::print(stderr, "linalign demo: error: {} rows failed the consistency check\n", bad);
    return 2;
  }
  return 0;
}

// ------------------------------------------------------------------- main ---

int run(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(usage().c_str(), stderr);
    return 1;
  }
  const std::string first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    if (argc >= 3) {
      const CommandSpec* c = find_command(argv[2]);
      if (!c) {
        fmt::print(stderr, "linalign: error: unknown command '{}'\n", argv[2]);
        return 1;
      }
      std::fputs(command_usage(*c).c_str(), stdout);
      return 0;
    }
    std::fputs(usage().c_str(), stdout);
    return 0;
  }
  const CommandSpec* cmd = find_command(first);
  if (!cmd) {
    fmt::print(stderr, "linalign: error: unknown command '{}' (see linalign --help)\n", first);
    return 1;
  }
  const char* name = cmd->name;
  try {
    const Args a = Args::parse(*cmd, argc, argv, 2);
    if (a.help()) {
      std::fputs(command_usage(*cmd).c_str(), stdout);
      return 0;
    }
    switch (cmd->bit) {
      case kCmdAlign:
        return run_align(a);
      case kCmdSample:
        return run_sample(a);
      case kCmdScore:
        return run_score(a);
      case kCmdDemo:
        return run_demo(a);
      case kCmdGen:
        return run_gen(a);
      case kCmdInfo:
        return run_info(a);
      case kCmdScoreJob:
        return run_score_job_command(a);
      case kCmdStory:
        return run_story_command(a);
    }
    return 1;
  } catch (const UsageError& e) {
    fmt::print(stderr, "linalign {}: error: {}\n", name, e.what());
    return 1;
  } catch (const npy::Error& e) {
    fmt::print(stderr, "linalign {}: error: {}\n", name, e.what());
    return 1;
  } catch (const LibraryError& e) {
    fmt::print(stderr, "linalign {}: error: {}\n", name, e.what());
    return 2;
  } catch (const StagingError& e) {
    fmt::print(stderr, "linalign {}: error: {}\n", name, e.what());
    return 2;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "linalign {}: error: out of memory\n", name);
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "linalign {}: error: {}\n", name, e.what());
    return 1;
  }
}

}  // namespace
}  // namespace linalign_cli

int main(int argc, char** argv) {
  // A closed pipe on stdout becomes a write error (exit 1), not a SIGPIPE death.
  std::signal(SIGPIPE, SIG_IGN);
  int rc;
  try {
    rc = linalign_cli::run(argc, argv);
  } catch (...) {
    std::fputs("linalign: error: unexpected exception\n", stderr);
    return 1;
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    fmt::print(stderr, "linalign: error: cannot write to stdout: {}\n", std::strerror(errno));
    return 1;
  }
  return rc;
}
