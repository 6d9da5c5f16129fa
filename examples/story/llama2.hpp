// A llama2.c checkpoint (Karpathy's legacy format) on the CPU: the forward
// pass with a KV cache, for several sequences at once, and its BPE tokenizer.
// Enough for the 15M-parameter TinyStories model the story demo runs
// (scripts/fetch_model.sh); not part of the linalign library.
//
// Checkpoint: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size — negative when the classifier is not shared with the embedding
// — seq_len), then float32 weights in this order: token embedding [V, dim];
// per layer stacked: rms_att [dim], wq [dim, dim], wk [kv_dim, dim],
// wv [kv_dim, dim], wo [dim, dim], rms_ffn [dim], w1 [hidden, dim],
// w2 [dim, hidden], w3 [hidden, dim]; rms_final [dim]; two legacy RoPE
// tables [seq_len, head_size/2] (skipped: RoPE is computed); the classifier
// [V, dim] when not shared.
//
// Tokenizer: int32 max_token_length, then per token a float score, an int32
// length and the bytes. Encoding is llama2.c's: BOS, a dummy-prefix space,
// UTF-8 bytes (byte-fallback tokens <0xHH> = 3 + byte), then the best-scoring
// merges until none applies.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace story {

struct Config {
  int32_t dim = 0, hidden_dim = 0, n_layers = 0, n_heads = 0, n_kv_heads = 0, vocab_size = 0,
          seq_len = 0;
  int32_t head_size() const { return dim / n_heads; }
  int32_t kv_dim() const { return dim * n_kv_heads / n_heads; }
};

// Where scripts/fetch_model.sh puts the model: $LINALIGN_MODEL_DIR, else
// $XDG_CACHE_HOME/linalign/stories15M, else ~/.cache/linalign/stories15M.
inline std::string default_model_dir() {
  if (const char* d = std::getenv("LINALIGN_MODEL_DIR")) return d;
  if (const char* c = std::getenv("XDG_CACHE_HOME")) return std::string(c) + "/linalign/stories15M";
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/linalign/stories15M";
}

inline std::vector<char> read_all(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error(path + ": cannot open (run scripts/fetch_model.sh)");
  std::vector<char> bytes;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    bytes.insert(bytes.end(), buf, buf + n);
  std::fclose(f);
  return bytes;
}

class Model {
 public:
  explicit Model(const std::string& path) : bytes_(read_all(path)) {
    if (bytes_.size() < sizeof(Config)) throw std::runtime_error(path + ": too short");
    std::memcpy(&c_, bytes_.data(), sizeof(Config));
    shared_ = c_.vocab_size > 0;
    c_.vocab_size = std::abs(c_.vocab_size);
    if (c_.dim <= 0 || c_.n_heads <= 0 || c_.n_kv_heads <= 0 || c_.n_layers <= 0 ||
        c_.dim % c_.n_heads != 0)
      throw std::runtime_error(path + ": not a llama2.c checkpoint");
    const float* p = reinterpret_cast<const float*>(bytes_.data() + sizeof(Config));
    const size_t L = size_t(c_.n_layers), D = size_t(c_.dim), H = size_t(c_.hidden_dim),
                 KV = size_t(c_.kv_dim()), V = size_t(c_.vocab_size);
    auto take = [&](size_t n) {
      const float* q = p;
      p += n;
      return q;
    };
    emb_ = take(V * D);
    rms_att_ = take(L * D);
    wq_ = take(L * D * D);
    wk_ = take(L * KV * D);
    wv_ = take(L * KV * D);
    wo_ = take(L * D * D);
    rms_ffn_ = take(L * D);
    w1_ = take(L * H * D);
    w2_ = take(L * D * H);
    w3_ = take(L * H * D);
    rms_final_ = take(D);
    take(size_t(c_.seq_len) * size_t(c_.head_size()));  // the legacy RoPE tables
    wcls_ = shared_ ? emb_ : take(V * D);
    const size_t used = size_t(reinterpret_cast<const char*>(p) - bytes_.data());
    if (used > bytes_.size())
      throw std::runtime_error(path + ": " + std::to_string(bytes_.size()) +
                               " bytes, the header asks for " + std::to_string(used));
  }
  const Config& config() const { return c_; }

  // One sequence's decoding state: the KV cache and the next position.
  struct State {
    int32_t pos = 0;
    std::vector<float> key, value;  // [layers, seq_len, kv_dim]
  };
  State new_state() const {
    State s;
    const size_t n = size_t(c_.n_layers) * size_t(c_.seq_len) * size_t(c_.kv_dim());
    s.key.assign(n, 0.f);
    s.value.assign(n, 0.f);
    return s;
  }

  // Feeds tokens[b] to states[b] (each at its own position) and writes the
  // next-token logits of sequence b to logits + b·vocab.
  void forward(std::vector<State*>& states, const std::vector<int32_t>& tokens,
               float* logits) const {
    for (size_t b = 0; b < states.size(); ++b)
      forward_one(*states[b], tokens[b], logits + b * size_t(c_.vocab_size));
  }

 private:
  static void rmsnorm(float* o, const float* x, const float* w, int n) {
    float ss = 0.f;
    for (int j = 0; j < n; ++j) ss += x[j] * x[j];
    ss = 1.0f / std::sqrt(ss / float(n) + 1e-5f);
    for (int j = 0; j < n; ++j) o[j] = w[j] * (ss * x[j]);
  }
  // o[d] = W[d, n] · x[n]
  static void matmul(float* o, const float* x, const float* w, int n, int d) {
    for (int i = 0; i < d; ++i) {
      float v = 0.f;
      const float* row = w + size_t(i) * size_t(n);
      for (int j = 0; j < n; ++j) v += row[j] * x[j];
      o[i] = v;
    }
  }

  void forward_one(State& s, int32_t token, float* logits) const {
    const int D = c_.dim, H = c_.hidden_dim, KV = c_.kv_dim(), hs = c_.head_size();
    const int pos = s.pos;
    if (pos >= c_.seq_len) throw std::runtime_error("sequence longer than seq_len");
    const int kv_mul = c_.n_heads / c_.n_kv_heads;
    std::vector<float> x(emb_ + size_t(token) * D, emb_ + size_t(token + 1) * D);
    std::vector<float> xb(D), xb2(D), q(D), hb(H), hb2(H), att(size_t(c_.seq_len));
    for (int l = 0; l < c_.n_layers; ++l) {
      rmsnorm(xb.data(), x.data(), rms_att_ + size_t(l) * D, D);
      const size_t off = (size_t(l) * c_.seq_len + pos) * KV;
      float* k = s.key.data() + off;
      float* v = s.value.data() + off;
      matmul(q.data(), xb.data(), wq_ + size_t(l) * D * D, D, D);
      matmul(k, xb.data(), wk_ + size_t(l) * KV * D, D, KV);
      matmul(v, xb.data(), wv_ + size_t(l) * KV * D, D, KV);
      for (int i = 0; i < D; i += 2) {  // RoPE
        const int head_dim = i % hs;
        const float freq = 1.0f / std::pow(10000.0f, float(head_dim) / float(hs));
        const float val = float(pos) * freq, fcr = std::cos(val), fci = std::sin(val);
        for (int r = 0; r < (i < KV ? 2 : 1); ++r) {
          float* vec = r == 0 ? q.data() : k;
          const float v0 = vec[i], v1 = vec[i + 1];
          vec[i] = v0 * fcr - v1 * fci;
          vec[i + 1] = v0 * fci + v1 * fcr;
        }
      }
      for (int h = 0; h < c_.n_heads; ++h) {
        const float* qh = q.data() + h * hs;
        float mx = -INFINITY;
        for (int t = 0; t <= pos; ++t) {
          const float* kt = s.key.data() + (size_t(l) * c_.seq_len + t) * KV + (h / kv_mul) * hs;
          float score = 0.f;
          for (int i = 0; i < hs; ++i) score += qh[i] * kt[i];
          att[size_t(t)] = score / std::sqrt(float(hs));
          mx = std::max(mx, att[size_t(t)]);
        }
        float sum = 0.f;
        for (int t = 0; t <= pos; ++t) sum += (att[size_t(t)] = std::exp(att[size_t(t)] - mx));
        float* out = xb.data() + h * hs;
        std::fill(out, out + hs, 0.f);
        for (int t = 0; t <= pos; ++t) {
          const float* vt = s.value.data() + (size_t(l) * c_.seq_len + t) * KV + (h / kv_mul) * hs;
          const float a = att[size_t(t)] / sum;
          for (int i = 0; i < hs; ++i) out[i] += a * vt[i];
        }
      }
      matmul(xb2.data(), xb.data(), wo_ + size_t(l) * D * D, D, D);
      for (int i = 0; i < D; ++i) x[size_t(i)] += xb2[size_t(i)];
      rmsnorm(xb.data(), x.data(), rms_ffn_ + size_t(l) * D, D);
      matmul(hb.data(), xb.data(), w1_ + size_t(l) * H * D, D, H);
      matmul(hb2.data(), xb.data(), w3_ + size_t(l) * H * D, D, H);
      for (int i = 0; i < H; ++i) {
        const float g = hb[size_t(i)];
        hb[size_t(i)] = g * (1.0f / (1.0f + std::exp(-g))) * hb2[size_t(i)];
      }
      matmul(xb.data(), hb.data(), w2_ + size_t(l) * D * H, H, D);
      for (int i = 0; i < D; ++i) x[size_t(i)] += xb[size_t(i)];
    }
    rmsnorm(x.data(), x.data(), rms_final_, D);
    matmul(logits, x.data(), wcls_, D, c_.vocab_size);
    ++s.pos;
  }

  std::vector<char> bytes_;
  Config c_;
  bool shared_ = true;
  const float *emb_, *rms_att_, *wq_, *wk_, *wv_, *wo_, *rms_ffn_, *w1_, *w2_, *w3_, *rms_final_,
      *wcls_;
};

class Tokenizer {
 public:
  static constexpr int32_t kBos = 1, kEos = 2;

  Tokenizer(const std::string& path, int32_t vocab) {
    const std::vector<char> b = read_all(path);
    size_t at = 4;  // max_token_length
    pieces_.resize(size_t(vocab));
    scores_.resize(size_t(vocab));
    for (int32_t i = 0; i < vocab; ++i) {
      int32_t len = 0;
      if (at + 8 > b.size()) throw std::runtime_error(path + ": truncated");
      std::memcpy(&scores_[size_t(i)], b.data() + at, 4);
      std::memcpy(&len, b.data() + at + 4, 4);
      at += 8;
      if (len < 0 || at + size_t(len) > b.size()) throw std::runtime_error(path + ": truncated");
      pieces_[size_t(i)].assign(b.data() + at, size_t(len));
      at += size_t(len);
      ids_.emplace(pieces_[size_t(i)], i);
    }
  }

  std::vector<int32_t> encode(const std::string& text, bool bos = true) const {
    std::vector<int32_t> t;
    if (bos) t.push_back(kBos);
    if (!text.empty()) t.push_back(id(" "));
    for (size_t i = 0; i < text.size();) {  // one UTF-8 code point at a time
      size_t n = 1;
      while (i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80 &&
             n < 4)
        ++n;
      const auto it = ids_.find(text.substr(i, n));
      if (it != ids_.end()) {
        t.push_back(it->second);
      } else {
        for (size_t j = 0; j < n; ++j) t.push_back(3 + static_cast<unsigned char>(text[i + j]));
      }
      i += n;
    }
    for (;;) {  // the best-scoring merge, until none applies
      float best = -1e10f;
      int32_t best_id = -1;
      size_t best_at = 0;
      for (size_t i = (bos ? 1 : 0); i + 1 < t.size(); ++i) {
        const auto it = ids_.find(pieces_[size_t(t[i])] + pieces_[size_t(t[i + 1])]);
        if (it != ids_.end() && scores_[size_t(it->second)] > best) {
          best = scores_[size_t(it->second)];
          best_id = it->second;
          best_at = i;
        }
      }
      if (best_id < 0) break;
      t[best_at] = best_id;
      t.erase(t.begin() + long(best_at) + 1);
    }
    return t;
  }

  // The text of `token` following `prev` (BOS strips a leading space; byte
  // tokens <0xHH> become their byte).
  std::string decode(int32_t prev, int32_t token) const {
    std::string piece = pieces_[size_t(token)];
    if (prev == kBos && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    unsigned byte = 0;
    if (piece.size() == 6 && std::sscanf(piece.c_str(), "<0x%02X>", &byte) == 1)
      piece = std::string(1, char(byte));
    return piece;
  }

 private:
  int32_t id(const std::string& s) const {
    const auto it = ids_.find(s);
    if (it == ids_.end()) throw std::runtime_error("tokenizer: no token for '" + s + "'");
    return it->second;
  }
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::map<std::string, int32_t> ids_;
};

}  // namespace story
