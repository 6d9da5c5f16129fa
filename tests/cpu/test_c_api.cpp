// The C API (linalign.h) against the C++ API (linalign.hpp): same defaults,
// same status values, bit-identical results, errors naming the argument, and
// no exception or crash on misuse. The C layer only converts, so every
// numeric comparison here is exact (memcmp, NaN payloads included).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "linalign/linalign.h"
#include "linalign/linalign.hpp"

namespace {

// Same thread count on both sides: a different vocabulary split could change
// the last bits of the merged statistics.
constexpr int kThreads = 2;

bool contains(const char* text, const char* word) {
  return text != nullptr && std::string(text).find(word) != std::string::npos;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

bool same_bits(const std::vector<linalign_row_diagnostics_t>& a,
               const std::vector<linalign::RowDiagnostics>& b) {
  static_assert(sizeof(linalign_row_diagnostics_t) == sizeof(linalign::RowDiagnostics), "layout");
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(linalign_row_diagnostics_t)) == 0;
}

// Round-to-nearest-even fp32 → bf16 bits (inputs here are finite or ±inf).
uint16_t to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  if (std::isnan(f)) return 0x7fc0;
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// ------------------------------------------------------------------ basics ---

TEST(c_api, Version) {
  EXPECT_EQ(LINALIGN_VERSION_MAJOR, 0);
  EXPECT_EQ(LINALIGN_VERSION_MINOR, 1);
  EXPECT_EQ(LINALIGN_VERSION_PATCH, 0);
  EXPECT_EQ(linalign_version(), static_cast<unsigned>(LINALIGN_VERSION_NUMBER));
  EXPECT_EQ(linalign_version(), 100u);
}

TEST(c_api, EntryPointsAreNoexcept) {
  static_assert(
      noexcept(linalign_align(nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr, 0, nullptr)),
      "noexcept");
  static_assert(noexcept(linalign_create(nullptr, nullptr)), "noexcept");
  static_assert(noexcept(linalign_destroy(nullptr)), "noexcept");
}

TEST(c_api, StatusValuesAndStrings) {
  using linalign::Status;
  const Status all[] = {Status::kSuccess,          Status::kInvalidArgument,
                        Status::kNotSupported,     Status::kInsufficientWorkspace,
                        Status::kNoDevice,         Status::kCudaError,
                        Status::kInternal,         Status::kCancelled,
                        Status::kDeadlineExceeded, Status::kShutdown,
                        Status::kQueueFull};
  const linalign_status_t c_all[] = {LINALIGN_SUCCESS,           LINALIGN_INVALID_ARGUMENT,
                                     LINALIGN_NOT_SUPPORTED,     LINALIGN_INSUFFICIENT_WORKSPACE,
                                     LINALIGN_NO_DEVICE,         LINALIGN_CUDA_ERROR,
                                     LINALIGN_INTERNAL,          LINALIGN_CANCELLED,
                                     LINALIGN_DEADLINE_EXCEEDED, LINALIGN_SHUTDOWN,
                                     LINALIGN_QUEUE_FULL};
  for (int i = 0; i < 11; ++i) {
    EXPECT_EQ(static_cast<int>(c_all[i]), i);  // values never change
    EXPECT_EQ(static_cast<int>(all[i]), i);
    const char* s = linalign_status_string(c_all[i]);
    ASSERT_NE(s, nullptr);
    EXPECT_GT(std::strlen(s), 0u);
    EXPECT_STREQ(s, linalign::status_string(all[i]));
    for (int j = 0; j < i; ++j) EXPECT_STRNE(s, linalign_status_string(c_all[j]));
  }
  EXPECT_STREQ(linalign_status_string(static_cast<linalign_status_t>(11)), "unknown status");
  EXPECT_STREQ(linalign_status_string(static_cast<linalign_status_t>(-1)), "unknown status");
}

TEST(c_api, RowStatusFlagsMatch) {
  EXPECT_EQ(static_cast<uint32_t>(LINALIGN_ROW_OK), static_cast<uint32_t>(linalign::kRowOk));
  EXPECT_EQ(static_cast<uint32_t>(LINALIGN_ROW_NAN), static_cast<uint32_t>(linalign::kRowNaN));
  EXPECT_EQ(static_cast<uint32_t>(LINALIGN_ROW_POS_INF),
            static_cast<uint32_t>(linalign::kRowPosInf));
  EXPECT_EQ(static_cast<uint32_t>(LINALIGN_ROW_EMPTY_SUPPORT),
            static_cast<uint32_t>(linalign::kRowEmptySupport));
}

// Every field of LINALIGN_PARAMS_INIT equals the C++ default (SPEC §2).
void expect_cxx_defaults(const linalign_params_t& c) {
  const linalign::Params d;
  EXPECT_EQ(c.struct_size, sizeof(linalign_params_t));
  EXPECT_EQ(c.temperature, d.temperature.value);
  EXPECT_EQ(c.rule, static_cast<int32_t>(d.rule));
  EXPECT_EQ(c.update, static_cast<int32_t>(d.update));
  EXPECT_EQ(c.ratio, d.ratio.value);
  EXPECT_EQ(c.epsilon, d.epsilon.value);
  EXPECT_EQ(c.eta_max, d.eta_max.value);
  EXPECT_EQ(c.greedy != 0, d.greedy);
  EXPECT_EQ(c.top_p, d.top_p.value);
  EXPECT_EQ(c.top_k, d.top_k.value);
  EXPECT_EQ(c.min_p, d.min_p.value);
  EXPECT_EQ(c.nucleus_source, static_cast<int32_t>(d.nucleus_source));
  EXPECT_EQ(c.min_tokens_to_keep, d.min_tokens_to_keep);
  EXPECT_EQ(c.seed, d.seed.value);
  EXPECT_EQ(c.offset, d.offset.value);
  EXPECT_EQ(c.ignore_index, d.ignore_index);
  EXPECT_EQ(c.temperature_per_row, nullptr);
  EXPECT_EQ(c.ratio_per_row, nullptr);
  EXPECT_EQ(c.epsilon_per_row, nullptr);
  EXPECT_EQ(c.eta_max_per_row, nullptr);
  EXPECT_EQ(c.top_p_per_row, nullptr);
  EXPECT_EQ(c.top_k_per_row, nullptr);
  EXPECT_EQ(c.min_p_per_row, nullptr);
  EXPECT_EQ(c.seed_per_row, nullptr);
  EXPECT_EQ(c.offset_per_row, nullptr);
  EXPECT_EQ(d.temperature.values, nullptr);
}

TEST(c_api, ParamsDefaultsEqualCxxDefaults) {
  const linalign_params_t p = LINALIGN_PARAMS_INIT;
  expect_cxx_defaults(p);
  // The SPEC values themselves, so both sides cannot drift together.
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.rule, LINALIGN_STEP_FIXED);
  EXPECT_EQ(p.ratio, 2.0f);
  EXPECT_EQ(p.epsilon, 0.1f);
  EXPECT_EQ(p.eta_max, 8.0f);
  EXPECT_EQ(p.update, LINALIGN_UPDATE_TILT);
  EXPECT_EQ(p.top_p, 1.0f);
  EXPECT_EQ(p.top_k, 0);
  EXPECT_EQ(p.min_p, 0.0f);
  EXPECT_EQ(p.nucleus_source, LINALIGN_NUCLEUS_PRINCIPLE);
  EXPECT_EQ(p.min_tokens_to_keep, 1);
  EXPECT_EQ(p.seed, 0u);
  EXPECT_EQ(p.offset, 0u);
  EXPECT_EQ(p.ignore_index, -100);
  EXPECT_EQ(p.greedy, 0);

  linalign_params_t q;
  std::memset(&q, 0x5a, sizeof q);
  linalign_params_init(&q);
  expect_cxx_defaults(q);
  linalign_params_init(nullptr);  // no crash
}

TEST(c_api, ConfigAndViewDefaults) {
  const linalign_config_t c = LINALIGN_CONFIG_INIT;
  const linalign::ContextOptions o;
  EXPECT_EQ(c.struct_size, sizeof(linalign_config_t));
  EXPECT_EQ(c.backend, static_cast<int32_t>(o.backend));
  EXPECT_EQ(c.num_threads, o.num_threads);
  EXPECT_EQ(c.device, o.device);
  linalign_config_t d;
  std::memset(&d, 0x5a, sizeof d);
  linalign_config_init(&d);
  EXPECT_EQ(d.struct_size, c.struct_size);
  EXPECT_EQ(d.backend, c.backend);
  EXPECT_EQ(d.num_threads, c.num_threads);
  EXPECT_EQ(d.device, c.device);
  linalign_config_init(nullptr);

  const linalign_logits_t v = LINALIGN_LOGITS_INIT;
  const linalign::LogitsView w;
  EXPECT_EQ(v.struct_size, sizeof(linalign_logits_t));
  EXPECT_EQ(v.dtype, static_cast<int32_t>(w.dtype));
  EXPECT_EQ(v.rows, w.rows);
  EXPECT_EQ(v.vocab, w.vocab);
  EXPECT_EQ(v.base, nullptr);
  EXPECT_EQ(v.base_ptrs, nullptr);
  EXPECT_EQ(v.paired, nullptr);
  EXPECT_EQ(v.pair_index, nullptr);

  const linalign_score_outputs_t s = LINALIGN_SCORE_OUTPUTS_INIT;
  EXPECT_EQ(s.struct_size, sizeof(linalign_score_outputs_t));
  EXPECT_EQ(s.aligned, nullptr);
  EXPECT_EQ(s.seq_offsets, nullptr);
  EXPECT_EQ(s.num_sequences, 0);
}

// ----------------------------------------------------------------- handles ---

TEST(c_api, CreateDestroy) {
  linalign_destroy(nullptr);  // accepted, does nothing

  linalign_handle_t h = nullptr;
  ASSERT_EQ(linalign_create(nullptr, &h), LINALIGN_SUCCESS) << linalign_last_error(nullptr);
  ASSERT_NE(h, nullptr);
  linalign_backend_t b = LINALIGN_BACKEND_AUTO;
  EXPECT_EQ(linalign_get_backend(h, &b), LINALIGN_SUCCESS);
  EXPECT_EQ(b, LINALIGN_BACKEND_CPU);
  EXPECT_STREQ(linalign_last_error(h), "");
  EXPECT_EQ(linalign_get_backend(h, nullptr), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h), "backend")) << linalign_last_error(h);
  linalign_destroy(h);

  linalign_config_t config = LINALIGN_CONFIG_INIT;
  config.num_threads = kThreads;
  h = nullptr;
  ASSERT_EQ(linalign_create(&config, &h), LINALIGN_SUCCESS) << linalign_last_error(nullptr);
  EXPECT_STREQ(linalign_last_error(nullptr), "");
  linalign_destroy(h);

  // Auto without a device is the CPU backend.
  if (linalign_cuda_device_count() == 0) {
    config.backend = LINALIGN_BACKEND_AUTO;
    ASSERT_EQ(linalign_create(&config, &h), LINALIGN_SUCCESS) << linalign_last_error(nullptr);
    EXPECT_EQ(linalign_get_backend(h, &b), LINALIGN_SUCCESS);
    EXPECT_EQ(b, LINALIGN_BACKEND_CPU);
    linalign_destroy(h);
  }
}

TEST(c_api, CreateErrorsGoToLastErrorOfNull) {
  EXPECT_EQ(linalign_create(nullptr, nullptr), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "out")) << linalign_last_error(nullptr);

  linalign_handle_t h = reinterpret_cast<linalign_handle_t>(&h);  // must be reset to NULL
  linalign_config_t config = LINALIGN_CONFIG_INIT;
  config.struct_size = sizeof(linalign_config_t) - 4;
  EXPECT_EQ(linalign_create(&config, &h), LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "config")) << linalign_last_error(nullptr);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "struct_size"));

  config = linalign_config_t LINALIGN_CONFIG_INIT;
  config.backend = 7;
  EXPECT_EQ(linalign_create(&config, &h), LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "config.backend"))
      << linalign_last_error(nullptr);

  config = linalign_config_t LINALIGN_CONFIG_INIT;
  config.num_threads = -3;
  EXPECT_EQ(linalign_create(&config, &h), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "num_threads"));
  // A million threads is a typo, not a request (issue 18): refused, none started.
  config.num_threads = 1000000;
  EXPECT_EQ(linalign_create(&config, &h), LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "num_threads"));
  {
    linalign::ContextOptions o;
    o.num_threads = linalign::kMaxThreads + 1;
    std::unique_ptr<linalign::Context> ctx;
    std::string err;
    EXPECT_EQ(linalign::Context::create(o, &ctx, &err), linalign::Status::kInvalidArgument);
    EXPECT_EQ(ctx, nullptr);
    EXPECT_TRUE(contains(err.c_str(), "num_threads")) << err;
  }

  // A successful create resets the thread's message.
  config = linalign_config_t LINALIGN_CONFIG_INIT;
  ASSERT_EQ(linalign_create(&config, &h), LINALIGN_SUCCESS);
  EXPECT_STREQ(linalign_last_error(nullptr), "");
  linalign_destroy(h);
}

// linalign_last_error(NULL) is per thread; handles are independent.
TEST(c_api, NullHandleMessageIsPerThread) {
  EXPECT_EQ(linalign_create(nullptr, nullptr), LINALIGN_INVALID_ARGUMENT);
  std::string other = "unset";
  std::thread t([&other]() { other = linalign_last_error(nullptr); });
  t.join();
  EXPECT_EQ(other, "");
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "out"));

  linalign_handle_t a = nullptr, b = nullptr;
  ASSERT_EQ(linalign_create(nullptr, &a), LINALIGN_SUCCESS);
  ASSERT_EQ(linalign_create(nullptr, &b), LINALIGN_SUCCESS);
  EXPECT_EQ(linalign_get_backend(a, nullptr), LINALIGN_INVALID_ARGUMENT);
  EXPECT_STRNE(linalign_last_error(a), "");
  EXPECT_STREQ(linalign_last_error(b), "");
  linalign_destroy(a);
  linalign_destroy(b);
}

TEST(c_api, CudaCreateFailsCleanlyWithoutDevice) {
  if (linalign_cuda_device_count() > 0) GTEST_SKIP() << "a CUDA device is present";
  linalign_config_t config = LINALIGN_CONFIG_INIT;
  config.backend = LINALIGN_BACKEND_CUDA;
  linalign_handle_t h = reinterpret_cast<linalign_handle_t>(&config);
  const linalign_status_t s = linalign_create(&config, &h);
  EXPECT_TRUE(s == LINALIGN_NO_DEVICE || s == LINALIGN_NOT_SUPPORTED)
      << linalign_status_string(s) << ": " << linalign_last_error(nullptr);
  EXPECT_EQ(h, nullptr);
  EXPECT_GT(std::strlen(linalign_last_error(nullptr)), 0u);
  // The C++ API agrees.
  linalign::ContextOptions o;
  o.backend = linalign::Backend::kCuda;
  std::unique_ptr<linalign::Context> ctx;
  std::string error;
  EXPECT_EQ(static_cast<int>(linalign::Context::create(o, &ctx, &error)), static_cast<int>(s));
  EXPECT_EQ(ctx, nullptr);
  EXPECT_STREQ(linalign_last_error(nullptr), error.c_str());
  linalign_destroy(h);
}

// -------------------------------------------------------------- round trip ---

// B rows of V logits with padding, -inf masks, a NaN row (row-level error)
// and a one-hot-ish row, handled through the C handle and a C++ Context.
class c_api_round_trip : public ::testing::Test {
 protected:
  static constexpr int64_t kRows = 5;
  static constexpr int64_t kVocab = 37;   // odd, not a multiple of any vector width
  static constexpr int64_t kStride = 40;  // 3 padding columns

  void SetUp() override {
    linalign_config_t config = LINALIGN_CONFIG_INIT;
    config.num_threads = kThreads;
    ASSERT_EQ(linalign_create(&config, &h_), LINALIGN_SUCCESS) << linalign_last_error(nullptr);
    linalign::ContextOptions o;
    o.num_threads = kThreads;
    ASSERT_EQ(linalign::Context::create(o, &ctx_), linalign::Status::kSuccess);

    std::mt19937 gen(20240611);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    base_.assign(kRows * kStride, 1234.5f);  // padding: large, must be ignored
    principle_.assign(kRows * kStride, -987.25f);
    for (int64_t r = 0; r < kRows; ++r) {
      for (int64_t i = 0; i < kVocab; ++i) {
        base_[r * kStride + i] = normal(gen);
        principle_[r * kStride + i] = normal(gen);
      }
    }
    const float inf = std::numeric_limits<float>::infinity();
    base_[1 * kStride + 3] = -inf;        // masked in base only
    principle_[1 * kStride + 10] = -inf;  // masked in principle only
    principle_[2 * kStride + 5] = std::numeric_limits<float>::quiet_NaN();  // invalid row
    base_[4 * kStride + 20] = 40.0f;                                        // nearly one-hot
    principle_[4 * kStride + 20] = 41.0f;

    temperature_ = {1.0f, 0.7f, 0.5f, 1.3f, 1.0f};
    seeds_ = {11u, 22u, 33u, 44u, 55u};
  }
  void TearDown() override { linalign_destroy(h_); }

  linalign_logits_t c_view() const {
    linalign_logits_t v = LINALIGN_LOGITS_INIT;
    v.dtype = LINALIGN_DTYPE_F32;
    v.rows = kRows;
    v.vocab = kVocab;
    v.base = base_.data();
    v.principle = principle_.data();
    v.base_stride = kStride;
    v.principle_stride = kStride;
    return v;
  }
  linalign::LogitsView cxx_view() const {
    return linalign::LogitsView::strided(linalign::DType::kF32, kRows, kVocab, base_.data(),
                                         principle_.data(), kStride, kStride);
  }

  // Runs align through both APIs and expects identical bits everywhere.
  void expect_same_align(const linalign_logits_t& cv, const linalign_params_t& cp,
                         const linalign::LogitsView& xv, const linalign::Params& xp) {
    const int64_t out_stride = kVocab + 2;
    std::vector<float> c_out(kRows * out_stride, -7.0f), x_out(kRows * out_stride, -7.0f);
    std::vector<linalign_row_diagnostics_t> c_diag(kRows);
    std::vector<linalign::RowDiagnostics> x_diag(kRows);
    std::memset(c_diag.data(), 0, c_diag.size() * sizeof c_diag[0]);
    std::memset(x_diag.data(), 0, x_diag.size() * sizeof x_diag[0]);
    ASSERT_EQ(
        linalign_align(h_, &cv, &cp, c_out.data(), out_stride, c_diag.data(), nullptr, 0, nullptr),
        LINALIGN_SUCCESS)
        << linalign_last_error(h_);
    EXPECT_STREQ(linalign_last_error(h_), "");
    ASSERT_EQ(ctx_->align(xv, xp, x_out.data(), out_stride, x_diag.data()),
              linalign::Status::kSuccess)
        << ctx_->last_error();
    EXPECT_TRUE(same_bits(c_out, x_out));
    EXPECT_TRUE(same_bits(c_diag, x_diag));
  }

  linalign_handle_t h_ = nullptr;
  std::unique_ptr<linalign::Context> ctx_;
  std::vector<float> base_, principle_, temperature_;
  std::vector<uint64_t> seeds_;
};

TEST_F(c_api_round_trip, AlignDefaults) {
  const linalign_params_t cp = LINALIGN_PARAMS_INIT;
  expect_same_align(c_view(), cp, cxx_view(), linalign::Params{});

  // params = NULL means the defaults; out_stride 0 means vocab.
  const linalign_logits_t cv = c_view();
  std::vector<float> a(kRows * kVocab), b(kRows * kVocab);
  ASSERT_EQ(linalign_align(h_, &cv, nullptr, a.data(), 0, nullptr, nullptr, 0, nullptr),
            LINALIGN_SUCCESS)
      << linalign_last_error(h_);
  ASSERT_EQ(ctx_->align(cxx_view(), linalign::Params{}, b.data(), 0, nullptr),
            linalign::Status::kSuccess);
  EXPECT_TRUE(same_bits(a, b));
}

// linalign_align_typed: bf16 output equals the C++ bf16 output bit for bit,
// and F16 output is refused with the argument named.
TEST_F(c_api_round_trip, AlignTypedBf16) {
  const linalign_logits_t cv = c_view();
  std::vector<uint16_t> a(kRows * kVocab, 1), b(kRows * kVocab, 2);
  ASSERT_EQ(linalign_align_typed(h_, &cv, nullptr, a.data(), LINALIGN_DTYPE_BF16, 0, nullptr,
                                 nullptr, 0, nullptr),
            LINALIGN_SUCCESS)
      << linalign_last_error(h_);
  ASSERT_EQ(
      ctx_->align(cxx_view(), linalign::Params{}, b.data(), linalign::DType::kBF16, 0, nullptr),
      linalign::Status::kSuccess);
  EXPECT_TRUE(same_bits(a, b));
  EXPECT_EQ(linalign_align_typed(h_, &cv, nullptr, a.data(), LINALIGN_DTYPE_F16, 0, nullptr,
                                 nullptr, 0, nullptr),
            LINALIGN_NOT_SUPPORTED);
  EXPECT_NE(std::string(linalign_last_error(h_)).find("out_dtype"), std::string::npos);
}

// The vocabulary-parallel pair through the C API: two shards, equal to the
// C++ calls bit for bit.
TEST_F(c_api_round_trip, ShardsMatchCxx) {
  const int64_t cut = kVocab / 3;
  linalign_logits_t left = c_view(), right = c_view();
  left.vocab = cut;
  right.vocab = kVocab - cut;
  right.base = base_.data() + cut;
  right.principle = principle_.data() + cut;
  std::vector<linalign_shard_stats_t> all(2 * kRows);
  ASSERT_EQ(linalign_shard_stats(h_, &left, nullptr, all.data(), nullptr, 0, nullptr),
            LINALIGN_SUCCESS)
      << linalign_last_error(h_);
  ASSERT_EQ(linalign_shard_stats(h_, &right, nullptr, all.data() + kRows, nullptr, 0, nullptr),
            LINALIGN_SUCCESS);
  std::vector<float> c_out(kRows * kStride, -1.f), x_out(kRows * kStride, -1.f);
  ASSERT_EQ(linalign_align_shard(h_, &right, nullptr, all.data(), 2, c_out.data() + cut, kStride,
                                 nullptr, nullptr, 0, nullptr),
            LINALIGN_SUCCESS)
      << linalign_last_error(h_);
  std::vector<linalign::ShardStats> xall(2 * kRows);
  const auto xl = linalign::LogitsView::strided(linalign::DType::kF32, kRows, cut, base_.data(),
                                                principle_.data(), kStride, kStride);
  const auto xr =
      linalign::LogitsView::strided(linalign::DType::kF32, kRows, kVocab - cut, base_.data() + cut,
                                    principle_.data() + cut, kStride, kStride);
  ASSERT_EQ(ctx_->shard_stats(xl, linalign::Params{}, xall.data()), linalign::Status::kSuccess);
  ASSERT_EQ(ctx_->shard_stats(xr, linalign::Params{}, xall.data() + kRows),
            linalign::Status::kSuccess);
  EXPECT_EQ(std::memcmp(xall.data(), all.data(), all.size() * sizeof(all[0])), 0);
  ASSERT_EQ(ctx_->align_shard(xr, linalign::Params{}, xall.data(), 2, x_out.data() + cut, kStride,
                              nullptr),
            linalign::Status::kSuccess);
  EXPECT_TRUE(same_bits(c_out, x_out));
  size_t ws = 0;
  EXPECT_EQ(linalign_workspace_size(h_, LINALIGN_OP_ALIGN_SHARD, &right, nullptr, &ws),
            LINALIGN_SUCCESS);
}

TEST_F(c_api_round_trip, AlignEveryRuleAndUpdate) {
  const int32_t rules[] = {LINALIGN_STEP_FIXED, LINALIGN_STEP_TRUST_REGION, LINALIGN_STEP_EXACT_KL};
  const int32_t updates[] = {LINALIGN_UPDATE_TILT, LINALIGN_UPDATE_LINEAR};
  const float ratios[] = {3.0f, -1.0f, 0.5f, 2.0f, 1.0f};
  for (int32_t rule : rules) {
    for (int32_t update : updates) {
      SCOPED_TRACE("rule " + std::to_string(rule) + " update " + std::to_string(update));
      linalign_params_t cp = LINALIGN_PARAMS_INIT;
      cp.rule = rule;
      cp.update = update;
      cp.epsilon = 0.05f;
      cp.eta_max = 6.0f;
      cp.temperature_per_row = temperature_.data();
      cp.ratio_per_row = ratios;
      linalign::Params xp;
      xp.rule = static_cast<linalign::StepRule>(rule);
      xp.update = static_cast<linalign::UpdateForm>(update);
      xp.epsilon = 0.05f;
      xp.eta_max = 6.0f;
      xp.temperature = linalign::PerRow<float>::array(temperature_.data());
      xp.ratio = linalign::PerRow<float>::array(ratios);
      expect_same_align(c_view(), cp, cxx_view(), xp);
    }
  }
}

TEST_F(c_api_round_trip, AlignPairedPointersAndBf16) {
  // Paired: one [2B, stride] buffer, principle rows first, base rows after.
  std::vector<float> paired(2 * kRows * kStride);
  std::vector<int64_t> index(2 * kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    std::memcpy(&paired[(kRows + r) * kStride], &base_[r * kStride], kStride * sizeof(float));
    std::memcpy(&paired[r * kStride], &principle_[r * kStride], kStride * sizeof(float));
    index[2 * r] = kRows + r;
    index[2 * r + 1] = r;
  }
  linalign_logits_t cv = LINALIGN_LOGITS_INIT;
  cv.rows = kRows;
  cv.vocab = kVocab;
  cv.paired = paired.data();
  cv.pair_index = index.data();
  cv.paired_rows = 2 * kRows;
  cv.paired_stride = kStride;
  const linalign_params_t cp = LINALIGN_PARAMS_INIT;
  {
    SCOPED_TRACE("paired");
    expect_same_align(cv, cp,
                      linalign::LogitsView::pairs(linalign::DType::kF32, kRows, kVocab,
                                                  paired.data(), 2 * kRows, index.data(), kStride),
                      linalign::Params{});
  }

  // Pointer arrays, rows in reverse order.
  std::vector<const void*> bp(kRows), pp(kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    bp[r] = &base_[(kRows - 1 - r) * kStride];
    pp[r] = &principle_[(kRows - 1 - r) * kStride];
  }
  cv = linalign_logits_t LINALIGN_LOGITS_INIT;
  cv.rows = kRows;
  cv.vocab = kVocab;
  cv.base_ptrs = bp.data();
  cv.principle_ptrs = pp.data();
  {
    SCOPED_TRACE("pointers");
    expect_same_align(
        cv, cp,
        linalign::LogitsView::pointers(linalign::DType::kF32, kRows, kVocab, bp.data(), pp.data()),
        linalign::Params{});
  }

  // bf16, strided.
  std::vector<uint16_t> b16(base_.size()), p16(principle_.size());
  for (size_t i = 0; i < base_.size(); ++i) {
    b16[i] = to_bf16(base_[i]);
    p16[i] = to_bf16(principle_[i]);
  }
  cv = c_view();
  cv.dtype = LINALIGN_DTYPE_BF16;
  cv.base = b16.data();
  cv.principle = p16.data();
  {
    SCOPED_TRACE("bf16");
    expect_same_align(cv, cp,
                      linalign::LogitsView::strided(linalign::DType::kBF16, kRows, kVocab,
                                                    b16.data(), p16.data(), kStride, kStride),
                      linalign::Params{});
  }
}

TEST_F(c_api_round_trip, Sample) {
  struct Case {
    const char* name;
    int32_t greedy;
    bool per_row_seed;
    int32_t nucleus_source;
  };
  const Case cases[] = {{"sampled, scalar seed", 0, false, LINALIGN_NUCLEUS_PRINCIPLE},
                        {"sampled, per-row seed", 0, true, LINALIGN_NUCLEUS_ALIGNED},
                        {"greedy", 1, false, LINALIGN_NUCLEUS_PRINCIPLE}};
  const int32_t top_k[] = {0, 5, 3, 1, 10};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    linalign_params_t cp = LINALIGN_PARAMS_INIT;
    cp.greedy = c.greedy;
    cp.top_p = 0.8f;
    cp.top_k_per_row = top_k;
    cp.min_p = 0.01f;
    cp.nucleus_source = c.nucleus_source;
    cp.min_tokens_to_keep = 2;
    cp.seed = 0x1234567890abcdefull;
    cp.seed_per_row = c.per_row_seed ? seeds_.data() : nullptr;
    cp.offset = 7;
    cp.temperature_per_row = temperature_.data();
    linalign::Params xp;
    xp.greedy = c.greedy != 0;
    xp.top_p = 0.8f;
    xp.top_k = linalign::PerRow<int32_t>::array(top_k);
    xp.min_p = 0.01f;
    xp.nucleus_source = static_cast<linalign::NucleusSource>(c.nucleus_source);
    xp.min_tokens_to_keep = 2;
    xp.seed = uint64_t{0x1234567890abcdefull};
    if (c.per_row_seed) xp.seed.values = seeds_.data();
    xp.offset = uint64_t{7};
    xp.temperature = linalign::PerRow<float>::array(temperature_.data());

    const linalign_logits_t cv = c_view();
    std::vector<int32_t> c_tok(kRows, -5), x_tok(kRows, -5);
    std::vector<float> c_lp(kRows, 9.0f), x_lp(kRows, 9.0f);
    std::vector<linalign_row_diagnostics_t> c_diag(kRows);
    std::vector<linalign::RowDiagnostics> x_diag(kRows);
    std::memset(c_diag.data(), 0, c_diag.size() * sizeof c_diag[0]);
    std::memset(x_diag.data(), 0, x_diag.size() * sizeof x_diag[0]);
    ASSERT_EQ(linalign_sample(h_, &cv, &cp, c_tok.data(), c_lp.data(), c_diag.data(), nullptr, 0,
                              nullptr),
              LINALIGN_SUCCESS)
        << linalign_last_error(h_);
    ASSERT_EQ(ctx_->sample(cxx_view(), xp, x_tok.data(), x_lp.data(), x_diag.data()),
              linalign::Status::kSuccess)
        << ctx_->last_error();
    EXPECT_EQ(c_tok, x_tok);
    EXPECT_TRUE(same_bits(c_lp, x_lp));
    EXPECT_TRUE(same_bits(c_diag, x_diag));
    // The NaN row is a row-level error, not a call-level one.
    EXPECT_EQ(c_tok[2], -1);
    EXPECT_NE(c_diag[2].status & LINALIGN_ROW_NAN, 0u);
    for (int64_t r = 0; r < kRows; ++r) {
      if (r != 2) {
        EXPECT_GE(c_tok[r], 0);
        EXPECT_LT(c_tok[r], kVocab);
        EXPECT_EQ(c_diag[r].status, static_cast<uint32_t>(LINALIGN_ROW_OK));
      }
    }
  }
}

TEST_F(c_api_round_trip, Score) {
  const std::vector<int32_t> targets = {4, -100, 0, 36, 20};
  const std::vector<int64_t> offsets = {0, 2, 2, 5};  // an empty sequence in the middle
  linalign_params_t cp = LINALIGN_PARAMS_INIT;
  cp.ratio = 3.0f;
  linalign::Params xp;
  xp.ratio = 3.0f;

  std::vector<float> c_al(kRows, 5.f), c_ba(kRows, 5.f), c_pr(kRows, 5.f);
  std::vector<float> x_al(kRows, 5.f), x_ba(kRows, 5.f), x_pr(kRows, 5.f);
  std::vector<float> c_sa(3, 5.f), c_sb(3, 5.f), c_sp(3, 5.f);
  std::vector<float> x_sa(3, 5.f), x_sb(3, 5.f), x_sp(3, 5.f);
  linalign_score_outputs_t co = LINALIGN_SCORE_OUTPUTS_INIT;
  co.aligned = c_al.data();
  co.base = c_ba.data();
  co.principle = c_pr.data();
  co.seq_offsets = offsets.data();
  co.num_sequences = 3;
  co.seq_aligned = c_sa.data();
  co.seq_base = c_sb.data();
  co.seq_principle = c_sp.data();
  linalign::ScoreOutputs xo;
  xo.aligned = x_al.data();
  xo.base = x_ba.data();
  xo.principle = x_pr.data();
  xo.seq_offsets = offsets.data();
  xo.num_sequences = 3;
  xo.seq_aligned = x_sa.data();
  xo.seq_base = x_sb.data();
  xo.seq_principle = x_sp.data();

  std::vector<linalign_row_diagnostics_t> c_diag(kRows);
  std::vector<linalign::RowDiagnostics> x_diag(kRows);
  std::memset(c_diag.data(), 0, c_diag.size() * sizeof c_diag[0]);
  std::memset(x_diag.data(), 0, x_diag.size() * sizeof x_diag[0]);
  const linalign_logits_t cv = c_view();
  ASSERT_EQ(linalign_score(h_, &cv, &cp, targets.data(), &co, c_diag.data(), nullptr, 0, nullptr),
            LINALIGN_SUCCESS)
      << linalign_last_error(h_);
  ASSERT_EQ(ctx_->score(cxx_view(), xp, targets.data(), xo, x_diag.data()),
            linalign::Status::kSuccess)
      << ctx_->last_error();
  EXPECT_TRUE(same_bits(c_al, x_al));
  EXPECT_TRUE(same_bits(c_ba, x_ba));
  EXPECT_TRUE(same_bits(c_pr, x_pr));
  EXPECT_TRUE(same_bits(c_sa, x_sa));
  EXPECT_TRUE(same_bits(c_sb, x_sb));
  EXPECT_TRUE(same_bits(c_sp, x_sp));
  EXPECT_TRUE(same_bits(c_diag, x_diag));
  EXPECT_EQ(c_al[1], 0.0f);          // ignore_index scores 0
  EXPECT_TRUE(std::isnan(c_al[2]));  // the NaN row
}

TEST_F(c_api_round_trip, CallerWorkspace) {
  const linalign_logits_t cv = c_view();
  const linalign_params_t cp = LINALIGN_PARAMS_INIT;
  const linalign_op_t ops[] = {LINALIGN_OP_ALIGN, LINALIGN_OP_SAMPLE, LINALIGN_OP_SCORE};
  for (linalign_op_t op : ops) {
    size_t bytes = 12345;
    ASSERT_EQ(linalign_workspace_size(h_, op, &cv, &cp, &bytes), LINALIGN_SUCCESS)
        << linalign_last_error(h_);
    EXPECT_EQ(bytes,
              ctx_->workspace_size(static_cast<linalign::Op>(op), cxx_view(), linalign::Params{}));
  }
  // A shape no call could take is an error naming the argument, 0 bytes.
  linalign_logits_t bad = cv;
  bad.vocab = 0;
  size_t none = 12345;
  EXPECT_EQ(linalign_workspace_size(h_, LINALIGN_OP_ALIGN, &bad, &cp, &none),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_EQ(none, 0u);
  EXPECT_TRUE(contains(linalign_last_error(h_), "logits.vocab")) << linalign_last_error(h_);

  size_t bytes = 0;
  ASSERT_EQ(linalign_workspace_size(h_, LINALIGN_OP_ALIGN, &cv, nullptr, &bytes), LINALIGN_SUCCESS);
  std::vector<unsigned char> ws(bytes + 64);
  std::vector<float> a(kRows * kVocab, 3.f), b(kRows * kVocab, 3.f);
  ASSERT_EQ(linalign_align(h_, &cv, &cp, a.data(), 0, nullptr, ws.data(), bytes, nullptr),
            LINALIGN_SUCCESS)
      << linalign_last_error(h_);
  ASSERT_EQ(ctx_->align(cxx_view(), linalign::Params{}, b.data(), 0, nullptr),
            linalign::Status::kSuccess);
  EXPECT_TRUE(same_bits(a, b));

  if (bytes > 0) {
    std::vector<float> c(kRows * kVocab, 3.f);
    EXPECT_EQ(linalign_align(h_, &cv, &cp, c.data(), 0, nullptr, ws.data(), bytes - 1, nullptr),
              LINALIGN_INSUFFICIENT_WORKSPACE);
    EXPECT_TRUE(contains(linalign_last_error(h_), "workspace")) << linalign_last_error(h_);
    EXPECT_TRUE(std::all_of(c.begin(), c.end(), [](float x) { return x == 3.f; }));
  }
}

// A stride set below vocab is refused by the workspace query and by the call
// alike, whichever layout is in use and at B = 0 (the query sees no pointers,
// so it cannot tell the layouts apart). Found by fuzz_calls_cpu: the call
// checked only the strides of its layout, and none at B = 0.
TEST_F(c_api_round_trip, QueryAndCallRefuseTheSameStrides) {
  struct Case {
    const char* name;
    void (*set)(linalign_logits_t*);
  } cases[] = {
      {"logits.base_stride", [](linalign_logits_t* v) { v->base_stride = 3; }},
      {"logits.principle_stride", [](linalign_logits_t* v) { v->principle_stride = 3; }},
      // The paired layout's stride, set on a strided call: unused, still refused.
      {"logits.paired_stride", [](linalign_logits_t* v) { v->paired_stride = 3; }},
  };
  for (const Case& c : cases) {
    for (int64_t rows : {kRows, int64_t(0)}) {
      SCOPED_TRACE(std::string(c.name) + " rows " + std::to_string(rows));
      linalign_logits_t v = c_view();
      v.rows = rows;
      c.set(&v);
      size_t bytes = 12345;
      EXPECT_EQ(linalign_workspace_size(h_, LINALIGN_OP_ALIGN, &v, nullptr, &bytes),
                LINALIGN_INVALID_ARGUMENT);
      EXPECT_EQ(bytes, 0u);
      EXPECT_TRUE(contains(linalign_last_error(h_), c.name)) << linalign_last_error(h_);
      std::vector<float> out(kRows * kVocab, 3.f);
      EXPECT_EQ(linalign_align(h_, &v, nullptr, out.data(), 0, nullptr, nullptr, 0, nullptr),
                LINALIGN_INVALID_ARGUMENT);
      EXPECT_TRUE(contains(linalign_last_error(h_), c.name)) << linalign_last_error(h_);
      EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](float x) { return x == 3.f; }));
    }
  }
}

// ------------------------------------------------------------------ errors ---

TEST_F(c_api_round_trip, NullHandle) {
  const linalign_logits_t cv = c_view();
  std::vector<float> out(kRows * kVocab);
  EXPECT_EQ(linalign_align(nullptr, &cv, nullptr, out.data(), 0, nullptr, nullptr, 0, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "handle")) << linalign_last_error(nullptr);
  std::vector<int32_t> tok(kRows);
  EXPECT_EQ(
      linalign_sample(nullptr, &cv, nullptr, tok.data(), nullptr, nullptr, nullptr, 0, nullptr),
      LINALIGN_INVALID_ARGUMENT);
  linalign_score_outputs_t so = LINALIGN_SCORE_OUTPUTS_INIT;
  so.aligned = out.data();
  EXPECT_EQ(linalign_score(nullptr, &cv, nullptr, tok.data(), &so, nullptr, nullptr, 0, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  size_t bytes = 0;
  EXPECT_EQ(linalign_workspace_size(nullptr, LINALIGN_OP_ALIGN, &cv, nullptr, &bytes),
            LINALIGN_INVALID_ARGUMENT);
  linalign_backend_t b;
  EXPECT_EQ(linalign_get_backend(nullptr, &b), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(nullptr), "handle"));
}

TEST_F(c_api_round_trip, StructErrorsNameTheStruct) {
  linalign_logits_t cv = c_view();
  linalign_params_t cp = LINALIGN_PARAMS_INIT;
  std::vector<float> out(kRows * kVocab, 3.f);
  auto align = [&]() {
    return linalign_align(h_, &cv, &cp, out.data(), 0, nullptr, nullptr, 0, nullptr);
  };
  auto untouched = [&]() {
    return std::all_of(out.begin(), out.end(), [](float x) { return x == 3.f; });
  };

  EXPECT_EQ(linalign_align(h_, nullptr, &cp, out.data(), 0, nullptr, nullptr, 0, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "logits")) << linalign_last_error(h_);

  cv.struct_size = 0;  // e.g. not initialised with LINALIGN_LOGITS_INIT
  EXPECT_EQ(align(), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "logits")) << linalign_last_error(h_);
  EXPECT_TRUE(contains(linalign_last_error(h_), "struct_size"));
  EXPECT_TRUE(contains(linalign_last_error(h_), "LINALIGN_LOGITS_INIT"));
  cv = c_view();

  cp.struct_size = sizeof(linalign_params_t) - 1;
  EXPECT_EQ(align(), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "params")) << linalign_last_error(h_);
  cp.struct_size = 1u << 30;  // garbage
  EXPECT_EQ(align(), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "params")) << linalign_last_error(h_);
  cp = linalign_params_t LINALIGN_PARAMS_INIT;

  // A caller built against a newer header: unknown trailing fields must be 0.
  struct Newer {
    linalign_params_t params;
    uint64_t future_field;
  } newer;
  std::memset(&newer, 0, sizeof newer);
  linalign_params_init(&newer.params);
  newer.params.struct_size = sizeof newer;
  EXPECT_EQ(linalign_align(h_, &cv, &newer.params, out.data(), 0, nullptr, nullptr, 0, nullptr),
            LINALIGN_SUCCESS)
      << linalign_last_error(h_);
  std::fill(out.begin(), out.end(), 3.f);
  newer.future_field = 1;
  EXPECT_EQ(linalign_align(h_, &cv, &newer.params, out.data(), 0, nullptr, nullptr, 0, nullptr),
            LINALIGN_NOT_SUPPORTED);
  EXPECT_TRUE(contains(linalign_last_error(h_), "params")) << linalign_last_error(h_);
  EXPECT_TRUE(untouched());

  // Enum values held in int32_t fields.
  cp.rule = 3;
  EXPECT_EQ(align(), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "params.rule")) << linalign_last_error(h_);
  cp = linalign_params_t LINALIGN_PARAMS_INIT;
  cp.update = -1;
  EXPECT_EQ(align(), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "params.update")) << linalign_last_error(h_);
  cp = linalign_params_t LINALIGN_PARAMS_INIT;
  cp.nucleus_source = 2;
  EXPECT_EQ(align(), LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "params.nucleus_source"));
  cp = linalign_params_t LINALIGN_PARAMS_INIT;
  cv.dtype = 9;
  EXPECT_EQ(align(), LINALIGN_NOT_SUPPORTED);
  EXPECT_TRUE(contains(linalign_last_error(h_), "logits.dtype")) << linalign_last_error(h_);
  cv = c_view();
  EXPECT_TRUE(untouched());

  size_t bytes = 77;
  EXPECT_EQ(linalign_workspace_size(h_, static_cast<linalign_op_t>(5), &cv, &cp, &bytes),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "op")) << linalign_last_error(h_);
  EXPECT_EQ(linalign_workspace_size(h_, LINALIGN_OP_ALIGN, &cv, &cp, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "bytes")) << linalign_last_error(h_);
  EXPECT_EQ(bytes, 77u);

  // Score outputs.
  std::vector<int32_t> targets(kRows, 0);
  EXPECT_EQ(linalign_score(h_, &cv, &cp, targets.data(), nullptr, nullptr, nullptr, 0, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "outputs")) << linalign_last_error(h_);
  linalign_score_outputs_t so = LINALIGN_SCORE_OUTPUTS_INIT;
  so.aligned = out.data();
  so.struct_size = 8;
  EXPECT_EQ(linalign_score(h_, &cv, &cp, targets.data(), &so, nullptr, nullptr, 0, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "outputs")) << linalign_last_error(h_);
  EXPECT_TRUE(untouched());

  // A successful call clears the message.
  ASSERT_EQ(align(), LINALIGN_SUCCESS) << linalign_last_error(h_);
  EXPECT_STREQ(linalign_last_error(h_), "");
}

// Errors found by the C++ layer come back with its exact status and message.
TEST_F(c_api_round_trip, ContextErrorsAreForwarded) {
  struct Case {
    const char* name;
    const char* word;  // the argument the message must name
    void (*edit_c)(linalign_logits_t*, linalign_params_t*);
    void (*edit_x)(linalign::LogitsView*, linalign::Params*);
  };
  const Case cases[] = {
      {"vocab 0", "vocab", [](linalign_logits_t* v, linalign_params_t*) { v->vocab = 0; },
       [](linalign::LogitsView* v, linalign::Params*) { v->vocab = 0; }},
      {"rows -1", "rows", [](linalign_logits_t* v, linalign_params_t*) { v->rows = -1; },
       [](linalign::LogitsView* v, linalign::Params*) { v->rows = -1; }},
      {"base NULL", "base", [](linalign_logits_t* v, linalign_params_t*) { v->base = nullptr; },
       [](linalign::LogitsView* v, linalign::Params*) { v->base = nullptr; }},
      {"stride < vocab", "stride",
       [](linalign_logits_t* v, linalign_params_t*) { v->base_stride = 3; },
       [](linalign::LogitsView* v, linalign::Params*) { v->base_stride = 3; }},
      {"temperature -1", "temperature",
       [](linalign_logits_t*, linalign_params_t* p) { p->temperature = -1.f; },
       [](linalign::LogitsView*, linalign::Params* p) { p->temperature = -1.f; }},
      {"ratio NaN", "ratio",
       [](linalign_logits_t*, linalign_params_t* p) {
         p->ratio = std::numeric_limits<float>::quiet_NaN();
       },
       [](linalign::LogitsView*, linalign::Params* p) {
         p->ratio = std::numeric_limits<float>::quiet_NaN();
       }},
      {"top_p 1.5", "top_p", [](linalign_logits_t*, linalign_params_t* p) { p->top_p = 1.5f; },
       [](linalign::LogitsView*, linalign::Params* p) { p->top_p = 1.5f; }},
      {"min_tokens_to_keep 0", "min_tokens_to_keep",
       [](linalign_logits_t*, linalign_params_t* p) { p->min_tokens_to_keep = 0; },
       [](linalign::LogitsView*, linalign::Params* p) { p->min_tokens_to_keep = 0; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    linalign_logits_t cv = c_view();
    linalign_params_t cp = LINALIGN_PARAMS_INIT;
    c.edit_c(&cv, &cp);
    linalign::LogitsView xv = cxx_view();
    linalign::Params xp;
    c.edit_x(&xv, &xp);

    std::vector<int32_t> c_tok(kRows, -5), x_tok(kRows, -5);
    const linalign_status_t s =
        linalign_sample(h_, &cv, &cp, c_tok.data(), nullptr, nullptr, nullptr, 0, nullptr);
    const linalign::Status xs = ctx_->sample(xv, xp, x_tok.data(), nullptr, nullptr);
    EXPECT_EQ(static_cast<int>(s), static_cast<int>(xs));
    EXPECT_NE(s, LINALIGN_SUCCESS);
    EXPECT_STREQ(linalign_last_error(h_), ctx_->last_error());
    EXPECT_TRUE(contains(linalign_last_error(h_), c.word)) << linalign_last_error(h_);
    EXPECT_EQ(c_tok, std::vector<int32_t>(kRows, -5));  // nothing written
  }

  // A target outside [0, vocab) that is not ignore_index.
  const linalign_logits_t cv = c_view();
  std::vector<int32_t> targets = {0, 1, 37, 2, 3};
  std::vector<float> al(kRows, 5.f);
  linalign_score_outputs_t so = LINALIGN_SCORE_OUTPUTS_INIT;
  so.aligned = al.data();
  EXPECT_EQ(linalign_score(h_, &cv, nullptr, targets.data(), &so, nullptr, nullptr, 0, nullptr),
            LINALIGN_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linalign_last_error(h_), "target")) << linalign_last_error(h_);
  EXPECT_EQ(al, std::vector<float>(kRows, 5.f));
}

// Edge shapes: whatever the C++ API answers, the C API answers the same.
TEST_F(c_api_round_trip, EmptyBatchMatchesCxx) {
  linalign_logits_t cv = c_view();
  cv.rows = 0;
  linalign::LogitsView xv = cxx_view();
  xv.rows = 0;
  const linalign_status_t s =
      linalign_align(h_, &cv, nullptr, nullptr, 0, nullptr, nullptr, 0, nullptr);
  const linalign::Status xs = ctx_->align(xv, linalign::Params{}, nullptr, 0, nullptr);
  EXPECT_EQ(static_cast<int>(s), static_cast<int>(xs));
  EXPECT_STREQ(linalign_last_error(h_), ctx_->last_error());
}

}  // namespace
