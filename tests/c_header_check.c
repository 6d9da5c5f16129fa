/* linalign.h from a C99 compiler: the header compiles as C (-std=c99
 * -pedantic), every initializer macro works, every entry point links, and a
 * small align / sample / score round trip through the CPU backend succeeds.
 * Exit status 0 on success; prints what failed otherwise. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "linalign/linalign.h"

/* C99 has no _Static_assert: a negative array size fails the build. */
#define CHECK_AT_COMPILE_TIME(name, cond) typedef char check_##name[(cond) ? 1 : -1]
CHECK_AT_COMPILE_TIME(version, LINALIGN_VERSION_NUMBER == 100);
CHECK_AT_COMPILE_TIME(status, LINALIGN_SUCCESS == 0 && LINALIGN_INTERNAL == 6);
CHECK_AT_COMPILE_TIME(diag_size, sizeof(linalign_row_diagnostics_t) == 32);

static int failures = 0;

#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

#define EXPECT_OK(call)                                                   \
  do {                                                                    \
    linalign_status_t s_ = (call);                                        \
    if (s_ != LINALIGN_SUCCESS) {                                         \
      fprintf(stderr, "%s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call, \
              linalign_status_string(s_), linalign_last_error(handle));   \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

enum { kRows = 2, kVocab = 5 };

int main(void) {
  static const float base[kRows * kVocab] = {0.0f, 1.0f,  2.0f, -1.0f, 0.5f,
                                             3.0f, -2.0f, 0.0f, 1.0f,  1.0f};
  static const float principle[kRows * kVocab] = {1.0f, 0.0f,  2.5f, -1.0f, 0.0f,
                                                  2.0f, -1.0f, 0.5f, 1.0f,  3.0f};
  const int32_t targets[kRows] = {2, -100};
  const int64_t seq_offsets[2] = {0, kRows};
  float out[kRows * kVocab];
  float token_logprob[kRows];
  int32_t tokens[kRows];
  float scores[kRows];
  float seq_sum[1];
  linalign_row_diagnostics_t diag[kRows];
  linalign_config_t config = LINALIGN_CONFIG_INIT;
  linalign_params_t params = LINALIGN_PARAMS_INIT;
  linalign_logits_t logits = LINALIGN_LOGITS_INIT;
  linalign_score_outputs_t outputs = LINALIGN_SCORE_OUTPUTS_INIT;
  linalign_handle_t handle = NULL;
  linalign_backend_t backend = LINALIGN_BACKEND_AUTO;
  size_t bytes = 0;
  int r, i;

  EXPECT(linalign_version() == LINALIGN_VERSION_NUMBER);
  EXPECT(strcmp(linalign_status_string(LINALIGN_SUCCESS), "success") == 0);
  EXPECT(linalign_cuda_device_count() >= 0);
  (void)linalign_cuda_compiled();
  linalign_destroy(NULL);
  EXPECT(linalign_create(&config, NULL) == LINALIGN_INVALID_ARGUMENT);
  EXPECT(strlen(linalign_last_error(NULL)) > 0);

  config.num_threads = 1;
  EXPECT_OK(linalign_create(&config, &handle));
  if (handle == NULL) return 1;
  EXPECT_OK(linalign_get_backend(handle, &backend));
  EXPECT(backend == LINALIGN_BACKEND_CPU);

  logits.dtype = LINALIGN_DTYPE_F32;
  logits.rows = kRows;
  logits.vocab = kVocab;
  logits.base = base;
  logits.principle = principle;

  EXPECT_OK(linalign_workspace_size(handle, LINALIGN_OP_ALIGN, &logits, &params, &bytes));
  EXPECT_OK(linalign_align(handle, &logits, &params, out, 0, diag, NULL, 0, NULL));
  for (r = 0; r < kRows; ++r) {
    double total = 0.0;
    for (i = 0; i < kVocab; ++i) total += exp((double)out[r * kVocab + i]);
    EXPECT(fabs(total - 1.0) < 1e-5);
    EXPECT(diag[r].status == LINALIGN_ROW_OK);
    EXPECT(diag[r].support == kVocab);
    EXPECT(diag[r].eta == 3.0f); /* fixed rule, ratio 2 */
  }

  params.greedy = 1;
  EXPECT_OK(linalign_sample(handle, &logits, &params, tokens, token_logprob, NULL, NULL, 0, NULL));
  for (r = 0; r < kRows; ++r) {
    int best = 0;
    for (i = 1; i < kVocab; ++i) {
      if (out[r * kVocab + i] > out[r * kVocab + best]) best = i;
    }
    EXPECT(tokens[r] == best);
    EXPECT(fabsf(token_logprob[r] - out[r * kVocab + best]) < 1e-5f);
  }

  linalign_params_init(&params);
  outputs.aligned = scores;
  outputs.seq_offsets = seq_offsets;
  outputs.num_sequences = 1;
  outputs.seq_aligned = seq_sum;
  EXPECT_OK(linalign_score(handle, &logits, &params, targets, &outputs, NULL, NULL, 0, NULL));
  EXPECT(fabsf(scores[0] - out[2]) < 1e-5f);
  EXPECT(scores[1] == 0.0f); /* ignore_index */
  EXPECT(fabsf(seq_sum[0] - out[2]) < 1e-5f);

  params.top_p = 2.0f;
  EXPECT(linalign_sample(handle, &logits, &params, tokens, NULL, NULL, NULL, 0, NULL) ==
         LINALIGN_INVALID_ARGUMENT);
  EXPECT(strstr(linalign_last_error(handle), "top_p") != NULL);

  linalign_destroy(handle);
  if (failures == 0) printf("c_header_check: OK\n");
  return failures == 0 ? 0 : 1;
}
