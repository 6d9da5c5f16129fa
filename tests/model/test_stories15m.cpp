// Known facts of Karpathy's stories15M checkpoint (scripts/fetch_model.sh)
// under examples/story/llama2.hpp's forward pass and tokenizer: the prompt's
// tokens, the first logits (checksum, argmax), and the greedy continuation of
// "Once upon a time" (", there was a little girl named Lily", as llama2.c's
// run.c gives it). The model is fetched by scripts/test.sh; a missing model
// fails these tests (it is not skipped).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "llama2.hpp"

namespace {

struct Loaded {
  story::Model model;
  story::Tokenizer tok;
  Loaded()
      : model(story::default_model_dir() + "/stories15M.bin"),
        tok(story::default_model_dir() + "/tokenizer.bin", model.config().vocab_size) {}
};

TEST(Stories15M, ConfigAndTokens) {
  Loaded m;
  const story::Config& c = m.model.config();
  EXPECT_EQ(c.dim, 288);
  EXPECT_EQ(c.hidden_dim, 768);
  EXPECT_EQ(c.n_layers, 6);
  EXPECT_EQ(c.n_heads, 6);
  EXPECT_EQ(c.n_kv_heads, 6);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.seq_len, 256);
  EXPECT_EQ(m.tok.encode("Once upon a time"), (std::vector<int32_t>{1, 9038, 2501, 263, 931}));
  EXPECT_EQ(m.tok.encode("The story is sad. Once upon a time"),
            (std::vector<int32_t>{1, 450, 5828, 338, 14610, 49, 9038, 2501, 263, 931}));
}

TEST(Stories15M, FirstLogitsAndGreedyContinuation) {
  Loaded m;
  const int32_t V = m.model.config().vocab_size;
  story::Model::State s = m.model.new_state();
  std::vector<story::Model::State*> st{&s};
  std::vector<float> logits(static_cast<size_t>(V));
  const std::vector<int32_t> prompt = m.tok.encode("Once upon a time");
  for (int32_t t : prompt) m.model.forward(st, {t}, logits.data());
  double sum = 0;
  for (float v : logits) sum += v;
  const int32_t top = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
  // Recorded from this forward pass (float32, no FMA contraction); the sum
  // of 32000 logits agrees to 0.05 across compilers' summation orders.
  EXPECT_NEAR(sum, -280656.049, 0.05);
  EXPECT_EQ(top, 29892);
  EXPECT_NEAR(logits[size_t(top)], 18.359737f, 1e-4f);
  std::string text;
  int32_t prev = prompt.back();
  for (int k = 0; k < 12; ++k) {
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    text += m.tok.decode(prev, next);
    prev = next;
    m.model.forward(st, {next}, logits.data());
  }
  EXPECT_EQ(text.rfind(", there was a little girl named Lily", 0), 0u) << text;
}

TEST(Stories15M, TwoSequencesAtOnceEqualOneByOne) {
  Loaded m;
  const int32_t V = m.model.config().vocab_size;
  story::Model::State a = m.model.new_state(), b = m.model.new_state(), c = m.model.new_state();
  std::vector<story::Model::State*> both{&a, &b}, one{&c};
  std::vector<float> two(2 * static_cast<size_t>(V)), single(static_cast<size_t>(V));
  const std::vector<int32_t> x = m.tok.encode("Once upon a time"),
                             y = m.tok.encode("Tom had a red ball");
  for (size_t i = 0; i < 5; ++i) {
    m.model.forward(both, {x[i], y[i]}, two.data());
    m.model.forward(one, {y[i]}, single.data());
  }
  EXPECT_TRUE(std::equal(single.begin(), single.end(), two.begin() + V));
}

}  // namespace
