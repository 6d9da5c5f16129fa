// linalign story: a real language model follows a principle.
//
// Karpathy's stories15M (examples/story/llama2.hpp; scripts/fetch_model.sh)
// runs two contexts per story — the prompt, and the principle followed by the
// prompt — and four stories decode side by side through the host API's
// batcher, one request each, all sampling with the same seed:
//   base        η = 0 (ratio −1): the plain model;
//   principle   η = 1 (ratio 0): the model reading the principle;
//   LA fixed    η = 1 + ratio (default 3): Linear Alignment, fixed step;
//   LA trust    trust_region: η = min(η_max, √(2ε)/σ) per step.
// Every step forwards the eight contexts (four stories × two), submits the
// four stories' rows as sample steps and appends each story's token to both
// of its contexts. Printed: the four texts, each story's per-step η and
// KL(π*‖π), and tokens per second.
#include "cli/story.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <linalign/batcher.hpp>
#include <string>
#include <vector>

#include "cli/common.hpp"
#include "cli/options.hpp"
#include "llama2.hpp"  // examples/story: the model and its tokenizer

namespace linalign_cli {
namespace {

using linalign::Status;

struct Mode {
  const char* name;
  linalign::Params params;
};

std::vector<Mode> modes(const Args& a) {
  linalign::Params p;
  p.temperature = a.f32("temperature", 1.0f);
  p.top_p = a.f32("top-p", 0.9f);
  p.seed = a.u64("seed", 7);
  p.update = static_cast<linalign::UpdateForm>(a.choice("update", {"tilt", "linear"}, 0));
  std::vector<Mode> m(4, Mode{"", p});
  m[0].name = "base";
  m[0].params.ratio = -1.0f;  // η = 0: π
  m[1].name = "principle";
  m[1].params.ratio = 0.0f;  // η = 1: πᵖ
  m[2].name = "LA fixed";
  m[2].params.ratio = a.f32("ratio", 2.0f);
  m[3].name = "LA trust";
  m[3].params.rule = linalign::StepRule::kTrustRegion;
  m[3].params.epsilon = a.f32("epsilon", 0.5f);
  m[3].params.eta_max = a.f32("eta-max", 8.0f);
  return m;
}

struct Story {
  std::string text;
  std::vector<float> eta, kl;
  int32_t last = story::Tokenizer::kBos;
  bool done = false;
};

}  // namespace

int run_story_command(const Args& a) {
  const std::string dir = a.str("model-dir", story::default_model_dir());
  const std::string prompt = a.str("prompt", "Once upon a time");
  const std::string principle = a.str("principle", "The story is sad.");
  const int64_t steps = a.i64("steps", 60, 1, 200);
  const std::vector<Mode> ms = modes(a);
  story::Model model(dir + "/stories15M.bin");
  const int32_t V = model.config().vocab_size;
  story::Tokenizer tok(dir + "/tokenizer.bin", V);
  const std::vector<int32_t> plain = tok.encode(prompt);
  const std::vector<int32_t> guided = tok.encode(principle + " " + prompt);
  if (int64_t(guided.size()) + steps > model.config().seq_len)
    throw UsageError("--steps: the principle, the prompt and the story exceed the model's " +
                     std::to_string(model.config().seq_len) + " positions");

  Engine e = make_engine(a);
  std::unique_ptr<linalign::Batcher> batcher;
  std::string err;
  linalign::BatcherOptions bo;
  bo.max_rows = 4;
  Status s = linalign::Batcher::create(*e.ctx, bo, &batcher, &err);
  if (s != Status::kSuccess)
    throw LibraryError(std::string(linalign::status_string(s)) + ": " + err);
  std::vector<linalign::RequestId> req(ms.size());
  for (size_t m = 0; m < ms.size(); ++m) {
    s = batcher->open(ms[m].params, &req[m], &err);
    if (s != Status::kSuccess) throw LibraryError(err);
  }

  // Two contexts per story: [2m] the prompt, [2m + 1] the principle + prompt.
  const size_t N = 2 * ms.size();
  std::vector<story::Model::State> states;
  for (size_t i = 0; i < N; ++i) states.push_back(model.new_state());
  std::vector<story::Model::State*> sp;
  for (auto& st : states) sp.push_back(&st);
  std::vector<float> logits(N * size_t(V));
  // The prompts, one token at a time (contexts of different lengths: each
  // sequence feeds its own tokens; the last forward of each gives its logits).
  for (size_t i = 0; i < N; ++i) {
    const std::vector<int32_t>& t = i % 2 == 0 ? plain : guided;
    std::vector<story::Model::State*> one{sp[i]};
    for (int32_t x : t) model.forward(one, {x}, logits.data() + i * size_t(V));
  }
  std::vector<Story> stories(ms.size());
  for (Story& st : stories) st.last = plain.back();  // the token the story continues
  const auto t0 = std::chrono::steady_clock::now();
  int64_t decoded = 0;
  const size_t row_bytes = size_t(V) * sizeof(float);
  Progress line("story", "steps", steps);
  for (int64_t k = 0; k < steps; ++k) {
    line.update(k);
    std::vector<linalign::Submission> subs(ms.size());
    std::vector<const void*> uploads;
    for (size_t m = 0; m < ms.size(); ++m) {
      if (stories[m].done) continue;
      const void* z = e.mem->upload(logits.data() + 2 * m * size_t(V), row_bytes);
      const void* y = e.mem->upload(logits.data() + (2 * m + 1) * size_t(V), row_bytes);
      uploads.insert(uploads.end(), {z, y});
      s = batcher->submit(linalign::Step::sample(req[m], {linalign::DType::kF32, V, z, y}),
                          &subs[m], &err);
      if (s != Status::kSuccess) throw LibraryError(err);
    }
    std::vector<int32_t> next(N, story::Tokenizer::kEos);
    for (size_t m = 0; m < ms.size(); ++m) {
      if (stories[m].done) continue;
      const linalign::StepResult r = subs[m].result.get();
      if (r.status != Status::kSuccess || r.token < 0)
        throw LibraryError("story '" + std::string(ms[m].name) + "': " + r.message);
      Story& st = stories[m];
      st.eta.push_back(r.diagnostics.eta);
      st.kl.push_back(r.diagnostics.kl_base);
      ++decoded;
      if (r.token == story::Tokenizer::kEos || r.token == story::Tokenizer::kBos) {
        st.done = true;
        continue;
      }
      st.text += tok.decode(st.last, r.token);
      st.last = r.token;
      next[2 * m] = next[2 * m + 1] = r.token;
    }
    for (const void* p : uploads) e.mem->release(p);
    std::vector<story::Model::State*> live;
    std::vector<int32_t> feed;
    std::vector<size_t> where;
    for (size_t i = 0; i < N; ++i) {
      if (stories[i / 2].done) continue;
      live.push_back(sp[i]);
      feed.push_back(next[i]);
      where.push_back(i);
    }
    if (live.empty()) break;
    std::vector<float> out(live.size() * size_t(V));
    model.forward(live, feed, out.data());
    for (size_t j = 0; j < where.size(); ++j)
      std::copy_n(out.data() + j * size_t(V), size_t(V), logits.data() + where[j] * size_t(V));
  }
  line.finish(steps);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  fmt::print("prompt: \"{}\"   principle: \"{}\"   backend {}   seed {}\n\n", prompt, principle,
             backend_name(e.ctx->backend()), ms[0].params.seed.value);
  for (size_t m = 0; m < ms.size(); ++m) {
    const Story& st = stories[m];
    fmt::print("== {} ==\n{}{}\n", ms[m].name, prompt, st.text);
    std::string etas, kls;
    for (size_t i = 0; i < st.eta.size(); ++i) {
      etas += fmt::format("{}{:.2f}", i ? " " : "", st.eta[i]);
      kls += fmt::format("{}{:.3f}", i ? " " : "", st.kl[i]);
    }
    fmt::print("eta per step: {}\nKL(pi*|pi) per step: {}\n\n", etas, kls);
  }
  fmt::print(
      "{} tokens in {:.2f} s: {:.1f} tokens/s (model forward on the CPU, 8 contexts; "
      "alignment on the {} backend)\n",
      decoded, secs, double(decoded) / secs, backend_name(e.ctx->backend()));
  return 0;
}

}  // namespace linalign_cli
