/*
 * linalign — C API.
 *
 * Linear Alignment (Gao et al., ICML 2024) at decode time. For each row (one
 * decoding step of one request) the library takes the logits of the plain
 * context z ("base") and of the context with a principle y ("principle") and
 * computes, fused over the whole vocabulary (SPEC.md §2–§3):
 *   - aligned log-probabilities l*                                (linalign_align)
 *   - the next token, greedy or seeded Gumbel-max sampling under
 *     top-p / top-k / min-p masks                                 (linalign_sample)
 *   - log-probs of given target tokens and per-sequence sums      (linalign_score)
 *   - per-row diagnostics: eta, mu, sigma, KL(pi*||pi), KL(pi*||pi_p), H(pi*),
 *     support size and row status                                 (all three calls)
 *
 * This header is C99 and C++ compatible and a thin layer over the C++ API in
 * linalign.hpp: every value, default and semantic is the C++ API's, and the
 * results of a C call are bit for bit those of the same C++ call.
 *
 * Typical use:
 *
 *     linalign_config_t config = LINALIGN_CONFIG_INIT;   // CPU backend
 *     linalign_handle_t h;
 *     if (linalign_create(&config, &h) != LINALIGN_SUCCESS) {
 *       fprintf(stderr, "%s\n", linalign_last_error(NULL));
 *     }
 *     linalign_logits_t logits = LINALIGN_LOGITS_INIT;
 *     logits.dtype = LINALIGN_DTYPE_F32;
 *     logits.rows = B;  logits.vocab = V;
 *     logits.base = z;  logits.principle = y;            // strided layout
 *     linalign_params_t params = LINALIGN_PARAMS_INIT;   // SPEC defaults
 *     params.top_p = 0.8f;
 *     linalign_status_t s = linalign_sample(h, &logits, &params, tokens, NULL, NULL,
 *                                           NULL, 0, NULL);
 *     if (s != LINALIGN_SUCCESS) fprintf(stderr, "%s\n", linalign_last_error(h));
 *     linalign_destroy(h);
 *
 * Error model (SPEC §5). No function aborts, throws or exits.
 *   - A call-level error (NULL pointer, bad shape or stride, bad parameter,
 *     too small workspace, no device, ...) returns a linalign_status_t other
 *     than LINALIGN_SUCCESS, launches nothing, writes no output, and leaves a
 *     message naming the offending argument in linalign_last_error(handle).
 *   - A row-level error (a NaN or +inf logit, an empty support) is reported in
 *     that row's diagnostics status (LINALIGN_ROW_* flags); the row's outputs
 *     are NaN / token -1 and every other row is computed exactly as if it were
 *     alone. The call itself returns LINALIGN_SUCCESS.
 *
 * Memory (docs/SEMANTICS.md item 17). The library never takes ownership of
 * caller memory and never keeps a pointer to it after a call returns (for the
 * CUDA backend: after the work enqueued by the call has run). The structs
 * themselves (config, params, logits view, score outputs) are read on the
 * host during the call and may be reused or freed as soon as it returns.
 * Every pointer they and the calls carry — logits (base, principle,
 * base_ptrs, principle_ptrs, paired, pair_index), every *_per_row array,
 * targets, every output (out, tokens, token_logprob, every score output and
 * seq_offsets, diagnostics), shard records, and the workspace — must be:
 *   - CPU backend: host memory (pageable, pinned or managed); not checked.
 *   - CUDA backend: memory the device can address — device (cudaMalloc),
 *     managed (cudaMallocManaged) or mapped pinned host memory
 *     (cudaMallocHost, cudaHostAlloc, cudaHostRegister; through UVA). Every
 *     call checks each non-NULL pointer on the host with
 *     cudaPointerGetAttributes (no synchronisation; legal under stream
 *     capture): plain pageable host memory is LINALIGN_INVALID_ARGUMENT with
 *     a message naming the argument (e.g. "sample: params.seed is host memory
 *     (cudaMemoryTypeUnregistered); ..."; C fields carry their C++ names,
 *     seed_per_row is params.seed), and nothing is launched or written. The
 *     row pointers stored inside base_ptrs / principle_ptrs are in device
 *     memory, out of the host's sight: the kernels flag a NULL or misaligned
 *     one per row, but one pointing to pageable host memory is not detected
 *     (an illegal-address fault).
 *
 * Streams. Every compute call takes `stream`, a cudaStream_t passed as void*
 * (NULL = the legacy default stream); the CPU backend ignores it. CUDA calls
 * are asynchronous: they enqueue work on `stream` and return without
 * synchronising — outputs are ready only once that stream has reached the
 * point of the call. CPU calls return when the outputs are written.
 *
 * Workspace (two-phase, as CUB). linalign_workspace_size() reports the bytes a
 * call needs; a call given a workspace of at least that size allocates
 * nothing and (on CUDA) is safe inside CUDA graph capture. Passing
 * workspace = NULL instead lets the handle use a buffer it owns, grown on
 * demand (may allocate; not graph-safe).
 *
 * Thread safety. linalign_version, linalign_status_string,
 * linalign_cuda_compiled, linalign_cuda_device_count, linalign_params_init,
 * linalign_config_init and linalign_create may be called from any thread at
 * any time. A handle may be used by one thread at a time (its last error
 * message and its internal workspace belong to it): use one handle per
 * thread, or serialise. Distinct handles are independent.
 *
 * ABI. Enum values never change. The structs passed in (config, params, logits,
 * score outputs) start with `struct_size`, which the caller sets to
 * sizeof(struct) — the *_INIT macros and *_init functions do it. Later
 * versions only append fields, and accept the smaller struct_size of an older
 * caller (the appended fields then take their defaults). A struct_size smaller
 * than the first published layout is LINALIGN_INVALID_ARGUMENT; a larger one
 * (a caller built against a newer header) is accepted when every unknown
 * trailing byte is zero, LINALIGN_NOT_SUPPORTED otherwise. Struct fields that
 * hold an enum are int32_t, so their size does not depend on the compiler.
 */
#ifndef LINALIGN_LINALIGN_H_
#define LINALIGN_LINALIGN_H_

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- macros --- */

/* Exported symbols: every entry point of this header stays visible even when
 * the library is built with -fvisibility=hidden. Define LINALIGN_API before
 * including this header to override. */
#ifndef LINALIGN_API
#if defined(__GNUC__) || defined(__clang__)
#define LINALIGN_API __attribute__((visibility("default")))
#else
#define LINALIGN_API
#endif
#endif

/* The entry points never throw; C++ callers see them as noexcept. */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define LINALIGN_NOEXCEPT noexcept
#else
#define LINALIGN_NOEXCEPT
#endif

#define LINALIGN_VERSION_MAJOR 0
#define LINALIGN_VERSION_MINOR 1
#define LINALIGN_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 100 for 0.1.0 (as zstd). */
#define LINALIGN_VERSION_NUMBER \
  (LINALIGN_VERSION_MAJOR * 10000 + LINALIGN_VERSION_MINOR * 100 + LINALIGN_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

/* Version of the library actually linked, as LINALIGN_VERSION_NUMBER. Compare
 * it with the macro to detect a header/library mismatch. */
LINALIGN_API unsigned linalign_version(void) LINALIGN_NOEXCEPT;

/* ------------------------------------------------------------- status --- */

/* Result of every call. The values equal linalign::Status and never change. */
typedef enum linalign_status_t {
  LINALIGN_SUCCESS = 0,
  /* A NULL pointer, bad struct_size, bad shape or stride, bad parameter value,
   * a target outside [0, vocab) that is not ignore_index, pageable host
   * memory passed to the CUDA backend, ... */
  LINALIGN_INVALID_ARGUMENT = 1,
  /* E.g. an unknown dtype, the CUDA backend not compiled in, struct fields
   * from a newer header that this library does not know. */
  LINALIGN_NOT_SUPPORTED = 2,
  /* workspace != NULL and workspace_bytes < linalign_workspace_size(). */
  LINALIGN_INSUFFICIENT_WORKSPACE = 3,
  /* A CUDA handle or call without a usable CUDA device. */
  LINALIGN_NO_DEVICE = 4,
  /* The CUDA runtime reported an error; its text is in linalign_last_error. */
  LINALIGN_CUDA_ERROR = 5,
  /* A bug in linalign (including an unexpected C++ exception or an allocation
   * failure caught at the API boundary): please report it. */
  LINALIGN_INTERNAL = 6,
  /* The host API's request lifecycle (a step's result, or a refused submission):
   * cancelled before it ran; its deadline passed before it ran; the batcher
   * shut down; the bounded queue had no room. */
  LINALIGN_CANCELLED = 7,
  LINALIGN_DEADLINE_EXCEEDED = 8,
  LINALIGN_SHUTDOWN = 9,
  LINALIGN_QUEUE_FULL = 10
} linalign_status_t;

/* Short static name of a status ("success", "invalid argument", ...); an
 * unknown value gives "unknown status". Never NULL; never free it. */
LINALIGN_API const char* linalign_status_string(linalign_status_t status) LINALIGN_NOEXCEPT;

/* ------------------------------------------------------- enumerations --- */
/* Stored in int32_t struct fields; values equal the C++ enums. */

/* Element type of the logits. Arithmetic is fp32 whatever the input type. */
typedef enum linalign_dtype_t {
  LINALIGN_DTYPE_F32 = 0,
  LINALIGN_DTYPE_BF16 = 1, /* bfloat16 bits (uint16_t storage) */
  LINALIGN_DTYPE_F16 = 2   /* IEEE binary16 bits (uint16_t storage) */
} linalign_dtype_t;

/* Step rule choosing eta per row (SPEC §2). */
typedef enum linalign_step_rule_t {
  LINALIGN_STEP_FIXED = 0,        /* eta = 1 + ratio */
  LINALIGN_STEP_TRUST_REGION = 1, /* eta = min(eta_max, sqrt(2 eps) / sigma); 0 if sigma = 0 */
  LINALIGN_STEP_EXACT_KL = 2      /* eta in [0, eta_max] with KL(pi*||pi) = eps */
} linalign_step_rule_t;

/* Update form producing pi* from pi, delta and eta (SPEC §2). */
typedef enum linalign_update_form_t {
  LINALIGN_UPDATE_TILT = 0,  /* l* = log_softmax(l + eta delta) over S */
  LINALIGN_UPDATE_LINEAR = 1 /* pi* ∝ max(0, pi (1 + eta (delta - mu))) over S */
} linalign_update_form_t;

/* Distribution the top-p / top-k / min-p masks are computed on (SPEC §3). */
typedef enum linalign_nucleus_source_t {
  LINALIGN_NUCLEUS_PRINCIPLE = 0, /* pi_p (the reference model.py) */
  LINALIGN_NUCLEUS_ALIGNED = 1    /* pi* (the reference demo.py, usual engine order) */
} linalign_nucleus_source_t;

/* Compute backend of a handle. */
typedef enum linalign_backend_t {
  LINALIGN_BACKEND_CPU = 0,
  LINALIGN_BACKEND_CUDA = 1,
  LINALIGN_BACKEND_AUTO = 2 /* CUDA when compiled in and a device is present, else CPU */
} linalign_backend_t;

/* The operations, for linalign_workspace_size(). */
typedef enum linalign_op_t {
  LINALIGN_OP_ALIGN = 0,
  LINALIGN_OP_SAMPLE = 1,
  LINALIGN_OP_SCORE = 2,
  LINALIGN_OP_SHARD_STATS = 3, /* linalign_shard_stats */
  LINALIGN_OP_ALIGN_SHARD = 4  /* linalign_align_shard */
} linalign_op_t;

/* Row status flags (linalign_row_diagnostics_t.status; SPEC §5). 0 means the
 * row is valid; any flag makes it invalid. Values equal linalign::RowStatus. */
typedef enum linalign_row_status_t {
  LINALIGN_ROW_OK = 0,
  LINALIGN_ROW_NAN = 1,           /* a NaN logit in the base or principle row (within vocab) */
  LINALIGN_ROW_POS_INF = 2,       /* a +inf logit in the base or principle row */
  LINALIGN_ROW_EMPTY_SUPPORT = 4, /* no token is finite in both rows (S is empty) */
  LINALIGN_ROW_BAD_PARAMETER = 8, /* CUDA backend only: a per-row parameter in a device
                                     array (or the row's source) was unusable */
  LINALIGN_ROW_OVERFLOW = 16      /* finite logits, but at the row's parameters a derived
                                     quantity (z/T, eta*delta, a normaliser, a KL, ...)
                                     overflows fp32 (e.g. T = 1e-38) */
} linalign_row_status_t;

/* ------------------------------------------------------------- handle --- */

/* Opaque handle: a backend, its cached device facts, an internal workspace
 * and the last error message. Create with linalign_create, free with
 * linalign_destroy. */
typedef struct linalign_handle_s* linalign_handle_t;

/* Options of linalign_create. Initialise with LINALIGN_CONFIG_INIT (or
 * linalign_config_init), then change fields. */
typedef struct linalign_config_t {
  size_t struct_size;  /* sizeof(linalign_config_t) */
  int32_t backend;     /* linalign_backend_t; default LINALIGN_BACKEND_CPU */
  int32_t num_threads; /* CPU backend worker threads, 0..LINALIGN_MAX_THREADS;
                          0 (default) = hardware concurrency */
  int32_t device;      /* CUDA device ordinal; -1 (default) = the current device */
} linalign_config_t;

/* The most CPU worker threads a handle starts. */
#define LINALIGN_MAX_THREADS 1024

/* clang-format off */
#define LINALIGN_CONFIG_INIT                                                    \
  {sizeof(linalign_config_t), LINALIGN_BACKEND_CPU, 0, -1}
/* clang-format on */

/* Writes the defaults of LINALIGN_CONFIG_INIT into *config (for bindings that
 * cannot expand macros). Does nothing when config is NULL. */
LINALIGN_API void linalign_config_init(linalign_config_t* config) LINALIGN_NOEXCEPT;

/* Creates a handle.
 *   config: options; NULL means LINALIGN_CONFIG_INIT.
 *   out:    receives the handle; set to NULL on failure.
 * Returns LINALIGN_SUCCESS, or:
 *   LINALIGN_INVALID_ARGUMENT  out is NULL, config->struct_size too small, an
 *                              unknown backend value, num_threads outside
 *                              [0, LINALIGN_MAX_THREADS], a bad
 *                              device ordinal (CUDA);
 *   LINALIGN_NOT_SUPPORTED     LINALIGN_BACKEND_CUDA in a build without CUDA;
 *   LINALIGN_NO_DEVICE         LINALIGN_BACKEND_CUDA without a usable device;
 *   LINALIGN_CUDA_ERROR, LINALIGN_INTERNAL.
 * Since there is no handle on failure, the message goes to
 * linalign_last_error(NULL). May allocate host memory; allocates no device
 * memory until a call needs a workspace. Thread-safe. */
LINALIGN_API linalign_status_t linalign_create(const linalign_config_t* config,
                                               linalign_handle_t* out) LINALIGN_NOEXCEPT;

/* Frees a handle and its internal workspace. NULL is accepted and does
 * nothing. For the CUDA backend the caller must first make sure no enqueued
 * call still uses the handle's internal workspace (synchronise the streams
 * used with workspace = NULL). */
LINALIGN_API void linalign_destroy(linalign_handle_t handle) LINALIGN_NOEXCEPT;

/* Message of the last failed call on `handle` ("" after a successful call),
 * naming the argument at fault, e.g. "params.top_p: 1.5 is not in (0, 1]".
 * The string belongs to the handle and stays valid until the next call with
 * that handle or its destruction.
 * With handle = NULL: the message of the latest failure on this thread that
 * had no handle to record it in — a failed linalign_create, or any call given
 * a NULL handle; "" if there was none (a successful linalign_create resets
 * it). Valid until the next such call on this thread. Never returns NULL. */
LINALIGN_API const char* linalign_last_error(linalign_handle_t handle) LINALIGN_NOEXCEPT;

/* The backend a handle actually uses (never LINALIGN_BACKEND_AUTO) into
 * *backend. LINALIGN_INVALID_ARGUMENT when handle or backend is NULL. */
LINALIGN_API linalign_status_t linalign_get_backend(linalign_handle_t handle,
                                                    linalign_backend_t* backend) LINALIGN_NOEXCEPT;

/* Non-zero when the library was built with the CUDA backend. */
LINALIGN_API int linalign_cuda_compiled(void) LINALIGN_NOEXCEPT;
/* Number of usable CUDA devices (0 without CUDA support or without a device). */
LINALIGN_API int linalign_cuda_device_count(void) LINALIGN_NOEXCEPT;

/* --------------------------------------------------------- parameters --- */

/* Every parameter of SPEC §2–§4. A per-row parameter is a scalar `x` plus an
 * optional array `x_per_row`: when the array is non-NULL, row r uses
 * x_per_row[r] (rows entries; host memory for the CPU backend; device,
 * managed or mapped pinned memory for CUDA, checked on the host per call)
 * and the scalar is ignored. Initialise with LINALIGN_PARAMS_INIT
 * (or linalign_params_init), which gives the SPEC defaults, then change
 * fields. Ranges (LINALIGN_INVALID_ARGUMENT otherwise), checked by every
 * call: temperature > 0 and finite (>= 0 for linalign_sample, where 0 means
 * greedy); the rule's own parameters — ratio finite (fixed rule), epsilon > 0
 * finite and eta_max >= 0 finite (trust-region / exact-KL rules) — while a
 * parameter the rule does not use must only not be NaN; min_tokens_to_keep
 * >= 1; enum fields one of their values. Checked by linalign_sample only (the
 * calls that draw no token ignore them): top_p in (0, 1], top_k >= 0, min_p
 * in [0, 1]. */
typedef struct linalign_params_t {
  size_t struct_size; /* sizeof(linalign_params_t) */

  /* Temperature T (default 1). T = 0 is accepted by linalign_sample only and
   * means greedy (the limit T -> 0); statistics are then computed at T = 1. */
  float temperature;
  const float* temperature_per_row;

  int32_t rule;   /* linalign_step_rule_t; default LINALIGN_STEP_FIXED */
  int32_t update; /* linalign_update_form_t; default LINALIGN_UPDATE_TILT */

  float ratio; /* fixed rule: eta = 1 + ratio (default 2) */
  const float* ratio_per_row;
  float epsilon; /* trust-region / exact-KL: KL budget (default 0.1) */
  const float* epsilon_per_row;
  float eta_max; /* trust-region / exact-KL: upper bound of eta (default 8) */
  const float* eta_max_per_row;

  /* Token selection (linalign_sample). */
  int32_t greedy; /* non-zero: argmax instead of Gumbel-max sampling (default 0) */
  float top_p;    /* nucleus mass; 1 (default) disables */
  const float* top_p_per_row;
  int32_t top_k; /* keep the k most probable; 0 (default) disables */
  const int32_t* top_k_per_row;
  float min_p; /* keep p >= min_p * max p; 0 (default) disables */
  const float* min_p_per_row;
  int32_t nucleus_source;     /* linalign_nucleus_source_t; default LINALIGN_NUCLEUS_PRINCIPLE */
  int32_t min_tokens_to_keep; /* the masks always keep this many top tokens (default 1) */
  /* Philox4x32-10 key and offset (SPEC §4). With a scalar seed one seed serves
   * the whole call and the Philox sub-stream is the row index; with
   * seed_per_row every row has sub-stream 0, so its token does not depend on
   * its position in the batch. offset is the request's step counter. */
  uint64_t seed; /* default 0 */
  const uint64_t* seed_per_row;
  uint64_t offset; /* default 0 */
  const uint64_t* offset_per_row;

  /* Scoring (linalign_score): targets equal to this score 0 and are left out
   * of the sums (default -100). */
  int32_t ignore_index;
} linalign_params_t;

/* The SPEC defaults, in field order. */
/* clang-format off */
#define LINALIGN_PARAMS_INIT                                                    \
  {                                                                             \
    sizeof(linalign_params_t),                                                  \
    1.0f, NULL,                   /* temperature */                             \
    LINALIGN_STEP_FIXED,          /* rule */                                    \
    LINALIGN_UPDATE_TILT,         /* update */                                  \
    2.0f, NULL,                   /* ratio */                                   \
    0.1f, NULL,                   /* epsilon */                                 \
    8.0f, NULL,                   /* eta_max */                                 \
    0,                            /* greedy */                                  \
    1.0f, NULL,                   /* top_p */                                   \
    0, NULL,                      /* top_k */                                   \
    0.0f, NULL,                   /* min_p */                                   \
    LINALIGN_NUCLEUS_PRINCIPLE,   /* nucleus_source */                          \
    1,                            /* min_tokens_to_keep */                      \
    0, NULL,                      /* seed */                                    \
    0, NULL,                      /* offset */                                  \
    -100                          /* ignore_index */                            \
  }
/* clang-format on */

/* Writes the defaults of LINALIGN_PARAMS_INIT into *params (for bindings that
 * cannot expand macros). Does nothing when params is NULL. */
LINALIGN_API void linalign_params_init(linalign_params_t* params) LINALIGN_NOEXCEPT;

/* ------------------------------------------------------------- inputs --- */

/* B rows of base logits z and principle logits y, in exactly one of three
 * layouts (set the fields of one, leave the others NULL / 0):
 *   1. strided:        row r is base + r*base_stride and
 *                      principle + r*principle_stride;
 *   2. pointer arrays: row r is base_ptrs[r] and principle_ptrs[r] (zero-copy
 *                      batching of rows in different buffers);
 *   3. paired:         one [paired_rows, paired_stride] buffer `paired`; row
 *                      r's base is paired row pair_index[2r] and its principle
 *                      paired row pair_index[2r+1] (e.g. one [2B, V] LM-head
 *                      output).
 * Strides are in elements. `vocab` is V_valid: columns at and beyond it are
 * padding and are never read; every token id returned is < vocab. Memory:
 * host memory for the CPU backend; for CUDA every pointer here (including
 * the pointer and index arrays, and the rows base_ptrs / principle_ptrs
 * point to) is device, managed or mapped pinned memory, each field checked
 * on the host per call (not the rows behind base_ptrs / principle_ptrs).
 * Initialise with LINALIGN_LOGITS_INIT. */
typedef struct linalign_logits_t {
  size_t struct_size; /* sizeof(linalign_logits_t) */
  int32_t dtype;      /* linalign_dtype_t; default LINALIGN_DTYPE_F32 */
  int64_t rows;       /* B >= 0 (0 is a valid, empty call) */
  int64_t vocab;      /* V_valid >= 1 */
  /* layout 1 */
  const void* base;
  const void* principle;
  int64_t base_stride;      /* >= vocab; 0 means vocab */
  int64_t principle_stride; /* >= vocab; 0 means vocab */
  /* layout 2 */
  const void* const* base_ptrs;      /* [rows] */
  const void* const* principle_ptrs; /* [rows] */
  /* layout 3 */
  const void* paired;
  const int64_t* pair_index; /* [2*rows], each in [0, paired_rows) */
  int64_t paired_rows;
  int64_t paired_stride; /* >= vocab; 0 means vocab */
} linalign_logits_t;

/* clang-format off */
#define LINALIGN_LOGITS_INIT                                                    \
  {                                                                             \
    sizeof(linalign_logits_t), LINALIGN_DTYPE_F32, 0, 0, /* dtype rows vocab */ \
    NULL, NULL, 0, 0,        /* layout 1 */                                     \
    NULL, NULL,              /* layout 2 */                                     \
    NULL, NULL, 0, 0         /* layout 3 */                                     \
  }
/* clang-format on */

/* ------------------------------------------------------------ outputs --- */

/* Per-row diagnostics (SPEC §2). For an invalid row every float is NaN,
 * `support` is the number of tokens of S that were counted, status != 0.
 * Same layout as linalign::RowDiagnostics. */
typedef struct linalign_row_diagnostics_t {
  float eta;          /* step size eta */
  float mu;           /* mu = E_pi[delta] = -KL(pi||pi_p) */
  float sigma;        /* sigma = sqrt(Var_pi[delta]) */
  float kl_base;      /* KL(pi*||pi) */
  float kl_principle; /* KL(pi*||pi_p) */
  float entropy;      /* H(pi*) in nats */
  int32_t support;    /* |S| */
  uint32_t status;    /* linalign_row_status_t flags */
} linalign_row_diagnostics_t;

/* Where linalign_score writes. `aligned` is required; the others may be NULL.
 * Every pointer (seq_offsets included) is host memory for the CPU backend;
 * device, managed or mapped pinned memory for CUDA, checked on the host per
 * call. Initialise with LINALIGN_SCORE_OUTPUTS_INIT. */
typedef struct linalign_score_outputs_t {
  size_t struct_size; /* sizeof(linalign_score_outputs_t) */
  float* aligned;     /* [B]: l*_t (0 for ignored rows, NaN for invalid rows) */
  float* base;        /* [B]: l_t   (optional) */
  float* principle;   /* [B]: l_p_t (optional) */
  /* Per-sequence sums over ragged sequences: sequence s is rows
   * [seq_offsets[s], seq_offsets[s+1]); rows whose target is ignore_index are
   * left out; a sequence containing an invalid row sums to NaN. Set
   * seq_offsets and seq_aligned together, or neither. */
  const int64_t* seq_offsets; /* [num_sequences + 1], non-decreasing, in [0, B] */
  int64_t num_sequences;
  float* seq_aligned;   /* [num_sequences]: sum of l*_t */
  float* seq_base;      /* [num_sequences]: sum of l_t   (optional) */
  float* seq_principle; /* [num_sequences]: sum of l_p_t (optional) */
} linalign_score_outputs_t;

/* clang-format off */
#define LINALIGN_SCORE_OUTPUTS_INIT                                             \
  {sizeof(linalign_score_outputs_t), NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL}
/* clang-format on */

/* ------------------------------------------------------------ compute --- */
/* Common arguments of the calls below:
 *   handle:          from linalign_create.
 *   logits:          the input rows (see linalign_logits_t). Required.
 *   params:          parameters; NULL means LINALIGN_PARAMS_INIT.
 *   diagnostics:     [B] per-row diagnostics, or NULL.
 *   workspace:       scratch of at least linalign_workspace_size() bytes, or
 *                    NULL to use the handle's own buffer (may allocate; not
 *                    graph-safe).
 * Memory of every pointer argument and field (see "Memory" at the top): host
 * memory for the CPU backend; device, managed or mapped pinned memory for
 * CUDA, each non-NULL one checked on the host per call.
 *   workspace_bytes: size of `workspace`; ignored when workspace is NULL.
 *   stream:          cudaStream_t for the CUDA backend (NULL = default
 *                    stream); ignored by the CPU backend.
 * Returns LINALIGN_SUCCESS, or a call-level error (nothing written, nothing
 * launched, message in linalign_last_error(handle)):
 *   LINALIGN_INVALID_ARGUMENT        NULL handle/logits/output, struct_size
 *                                    too small, bad shape/stride/layout,
 *                                    parameter out of range, bad target,
 *                                    pageable host memory on CUDA;
 *   LINALIGN_NOT_SUPPORTED           unsupported dtype, unknown struct fields;
 *   LINALIGN_INSUFFICIENT_WORKSPACE  workspace_bytes too small;
 *   LINALIGN_NO_DEVICE, LINALIGN_CUDA_ERROR, LINALIGN_INTERNAL.
 * With the CUDA backend the call is asynchronous on `stream` and never
 * synchronises; a status of LINALIGN_SUCCESS means the work was enqueued.
 * Not thread-safe per handle (see the top of this file). */

/* Bytes of workspace a call of `op` on these shapes and parameters needs, into
 * *bytes (may be 0). Does not synchronise, launch or allocate; needs no data
 * pointer. LINALIGN_INVALID_ARGUMENT when handle, logits or bytes is NULL, a
 * struct_size is too small, op is unknown, or the shape is one no call could
 * take (rows < 0, vocab < 1, a stride set below vocab; *bytes = 0, the message
 * names the argument); LINALIGN_NOT_SUPPORTED for an unknown dtype. */
LINALIGN_API linalign_status_t linalign_workspace_size(linalign_handle_t handle, linalign_op_t op,
                                                       const linalign_logits_t* logits,
                                                       const linalign_params_t* params,
                                                       size_t* bytes) LINALIGN_NOEXCEPT;

/* Aligned log-probabilities l* (fp32) into out[r*out_stride + i] for i < vocab.
 *   out:        [B, out_stride] fp32. Required.
 *               Padding columns (i >= vocab) are not written. Tokens outside
 *               the support get -inf; invalid rows get NaN.
 *   out_stride: >= vocab; 0 means vocab. */
LINALIGN_API linalign_status_t linalign_align(
    linalign_handle_t handle, const linalign_logits_t* logits, const linalign_params_t* params,
    float* out, int64_t out_stride, linalign_row_diagnostics_t* diagnostics, void* workspace,
    size_t workspace_bytes, void* stream) LINALIGN_NOEXCEPT;

/* The same, with l* written as `out_dtype`: LINALIGN_DTYPE_F32 (float) or
 * LINALIGN_DTYPE_BF16 (bfloat16 bits in uint16_t, rounded to nearest even;
 * -inf and NaN kept). LINALIGN_DTYPE_F16 gives LINALIGN_NOT_SUPPORTED (its
 * range would clip l*). `out` points to [B, out_stride] elements of that type. */
LINALIGN_API linalign_status_t linalign_align_typed(
    linalign_handle_t handle, const linalign_logits_t* logits, const linalign_params_t* params,
    void* out, int32_t out_dtype, int64_t out_stride, linalign_row_diagnostics_t* diagnostics,
    void* workspace, size_t workspace_bytes, void* stream) LINALIGN_NOEXCEPT;

/* Vocabulary-parallel use (SPEC section 7). An engine that shards the LM head
 * over G devices calls linalign_shard_stats on each device (`logits` = that
 * device's columns), all-gathers the B records of each device into G*B
 * records laid out shard-major (record g*B + r), and calls linalign_align_shard
 * on each device with all of them: each writes l* of its own columns, equal
 * to the single-device result within SPEC section 6. Supported for the fixed
 * rule with the tilt update (LINALIGN_NOT_SUPPORTED otherwise: the other
 * rules need a second exchange). A record is 64 opaque, trivially copyable
 * bytes. */
typedef struct linalign_shard_stats_t {
  uint32_t words[16];
} linalign_shard_stats_t;

/* out: [B] records of this shard (device, managed or mapped pinned memory on
 * CUDA; host memory on the CPU backend). */
LINALIGN_API linalign_status_t linalign_shard_stats(linalign_handle_t handle,
                                                    const linalign_logits_t* logits,
                                                    const linalign_params_t* params,
                                                    linalign_shard_stats_t* out, void* workspace,
                                                    size_t workspace_bytes,
                                                    void* stream) LINALIGN_NOEXCEPT;

/* shards: [num_shards * B] records, shard-major; out: [B, out_stride] fp32 for
 * this shard's columns; diagnostics (optional) are those of the whole row. */
LINALIGN_API linalign_status_t linalign_align_shard(
    linalign_handle_t handle, const linalign_logits_t* logits, const linalign_params_t* params,
    const linalign_shard_stats_t* shards, int64_t num_shards, float* out, int64_t out_stride,
    linalign_row_diagnostics_t* diagnostics, void* workspace, size_t workspace_bytes,
    void* stream) LINALIGN_NOEXCEPT;

/* Next token per row: greedy (params->greedy or temperature 0) or Gumbel-max
 * sampling with Philox4x32-10 (same token on CPU and CUDA for the same seed),
 * from pi* restricted to the top-p / top-k / min-p mask.
 *   tokens:        [B] int32 token ids in [0, vocab); -1 for invalid rows. Required.
 *   token_logprob: [B] l* of the chosen token (NaN for invalid rows), or NULL. */
LINALIGN_API linalign_status_t linalign_sample(
    linalign_handle_t handle, const linalign_logits_t* logits, const linalign_params_t* params,
    int32_t* tokens, float* token_logprob, linalign_row_diagnostics_t* diagnostics, void* workspace,
    size_t workspace_bytes, void* stream) LINALIGN_NOEXCEPT;

/* Scores of target tokens without materialising B x V: l*_t and optionally
 * l_t, l_p_t per row, and per-sequence sums (see linalign_score_outputs_t).
 *   targets: [B] int32, each in [0, vocab) or params->ignore_index. A target
 *            outside the support scores -inf.
 *   outputs: where to write. Required. */
LINALIGN_API linalign_status_t
linalign_score(linalign_handle_t handle, const linalign_logits_t* logits,
               const linalign_params_t* params, const int32_t* targets,
               const linalign_score_outputs_t* outputs, linalign_row_diagnostics_t* diagnostics,
               void* workspace, size_t workspace_bytes, void* stream) LINALIGN_NOEXCEPT;

/* ===================================================================
 * The host API: decoding requests and dynamic batching (the C mirror of
 * linalign/batcher.hpp; read its header comment for the guarantees). A
 * batcher runs on a handle's backend from its own threads; many threads may
 * submit steps concurrently. Each step is answered exactly once, by a
 * callback (on the batcher's completion thread) or by linalign_wait.
 *
 * Errors of these functions are the calling thread's (several threads share
 * a batcher): read them with linalign_last_error(NULL).
 * =================================================================== */

typedef struct linalign_batcher_s* linalign_batcher_t;
typedef uint64_t linalign_request_t; /* 0 is never a request */

typedef enum linalign_step_kind_t {
  LINALIGN_STEP_SAMPLE = 0, /* the next token (+ its log-prob) */
  LINALIGN_STEP_ALIGN = 1,  /* l* into the step's `aligned` row */
  LINALIGN_STEP_SCORE = 2   /* the score of the step's `target` */
} linalign_step_kind_t;

typedef enum linalign_submit_mode_t {
  LINALIGN_SUBMIT_BLOCK = 0,  /* wait for room in the queue */
  LINALIGN_SUBMIT_TRY = 1,    /* LINALIGN_QUEUE_FULL at once */
  LINALIGN_SUBMIT_TIMEOUT = 2 /* wait up to options.submit_timeout_us */
} linalign_submit_mode_t;

typedef enum linalign_shutdown_mode_t {
  LINALIGN_SHUTDOWN_DRAIN = 0, /* run every pending step */
  LINALIGN_SHUTDOWN_FAIL = 1   /* answer pending steps LINALIGN_SHUTDOWN */
} linalign_shutdown_mode_t;

typedef struct linalign_batcher_options_t {
  size_t struct_size;        /* sizeof(linalign_batcher_options_t) */
  int32_t max_rows;          /* rows per batch, >= 1 (default 64) */
  int32_t streams;           /* batches in flight, [1, 64] (CUDA streams; default 2) */
  int64_t max_wait_us;       /* the first step's wait for company, >= 0 (default 200) */
  int64_t queue_capacity;    /* accepted steps not yet in a batch, >= 1 (default 4096) */
  int64_t submit_timeout_us; /* LINALIGN_SUBMIT_TIMEOUT's wait, >= 0 (default 1000) */
} linalign_batcher_options_t;

/* clang-format off */
#define LINALIGN_BATCHER_OPTIONS_INIT                                           \
  {sizeof(linalign_batcher_options_t), 64, 2, 200, 4096, 1000}
/* clang-format on */

/* The answer to one step. */
typedef struct linalign_step_result_t {
  size_t struct_size;       /* sizeof(linalign_step_result_t), set by the caller */
  linalign_status_t status; /* SUCCESS, CANCELLED, DEADLINE_EXCEEDED, SHUTDOWN, ... */
  int32_t token;            /* sample: the token (-1 for an invalid row) */
  uint64_t ticket;          /* the submission this answers */
  uint64_t offset;          /* the Philox offset the step used */
  float logprob;            /* sample: l*_token; score: l*_target */
  float score_base;         /* score: log pi(target) */
  float score_principle;    /* score: log pi_p(target) */
  linalign_row_diagnostics_t diagnostics;
} linalign_step_result_t;

/* clang-format off */
#define LINALIGN_STEP_RESULT_INIT                                               \
  {sizeof(linalign_step_result_t), LINALIGN_SUCCESS, -1, 0, 0, 0.0f, 0.0f, 0.0f, \
   {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0, 0}}
/* clang-format on */

/* Called once with the step's answer (result->struct_size is this
 * library's), on the batcher's completion thread; must return quickly and
 * must not submit with LINALIGN_SUBMIT_BLOCK. */
typedef void (*linalign_step_callback_t)(const linalign_step_result_t* result, void* user_data);

/* One step of one request. The rows (and `aligned`) are the caller's memory
 * (host for the CPU backend; device, managed or mapped pinned for CUDA),
 * read and written by the batch: they must stay valid until the step is
 * answered. */
typedef struct linalign_step_t {
  size_t struct_size; /* sizeof(linalign_step_t) */
  linalign_request_t request;
  int32_t kind;  /* linalign_step_kind_t */
  int32_t dtype; /* linalign_dtype_t of both rows */
  int64_t vocab;
  const void* base;      /* the base row z: vocab elements */
  const void* principle; /* the principle row y: vocab elements */
  float* aligned;        /* align: vocab floats of l* */
  int32_t target;        /* score: in [0, vocab) or the request's ignore_index */
  int32_t reserved;      /* 0 */
  int64_t timeout_us;    /* answered DEADLINE_EXCEEDED if not started by then; < 0: none */
  linalign_step_callback_t callback; /* NULL: collect the answer with linalign_wait */
  void* user_data;                   /* passed to callback */
} linalign_step_t;

/* clang-format off */
#define LINALIGN_STEP_INIT                                                      \
  {sizeof(linalign_step_t), 0, LINALIGN_STEP_SAMPLE, LINALIGN_DTYPE_F32, 0, NULL, NULL, NULL, \
   0, 0, -1, NULL, NULL}
/* clang-format on */

typedef struct linalign_batcher_stats_t {
  size_t struct_size; /* sizeof(linalign_batcher_stats_t) */
  /* submitted = completed + cancelled + deadline_exceeded + failed + pending */
  uint64_t submitted, completed, cancelled, deadline_exceeded, failed, pending;
  uint64_t refused; /* submissions that returned an error */
  uint64_t batches, batched_rows;
} linalign_batcher_stats_t;

/* Writes the defaults (for bindings that cannot expand macros); NULL: nothing. */
LINALIGN_API void linalign_batcher_options_init(linalign_batcher_options_t* options)
    LINALIGN_NOEXCEPT;
LINALIGN_API void linalign_step_init(linalign_step_t* step) LINALIGN_NOEXCEPT;

/* A batcher over the handle's backend; the handle must outlive it and must
 * not be used for other calls meanwhile.
 *   options: NULL means LINALIGN_BATCHER_OPTIONS_INIT.
 * INVALID_ARGUMENT (NULL handle or out, an option out of range), CUDA_ERROR. */
LINALIGN_API linalign_status_t linalign_batcher_create(linalign_handle_t handle,
                                                       const linalign_batcher_options_t* options,
                                                       linalign_batcher_t* out) LINALIGN_NOEXCEPT;
/* Drains (every pending step is answered) and frees; NULL: nothing. Steps
 * never collected with linalign_wait are dropped. */
LINALIGN_API void linalign_batcher_destroy(linalign_batcher_t batcher) LINALIGN_NOEXCEPT;
/* Stops accepting steps and drains or fails the pending ones; returns when
 * every accepted step has been answered. mode: linalign_shutdown_mode_t. */
LINALIGN_API linalign_status_t linalign_batcher_shutdown(linalign_batcher_t batcher,
                                                         int32_t mode) LINALIGN_NOEXCEPT;
LINALIGN_API linalign_status_t linalign_batcher_get_stats(
    linalign_batcher_t batcher, linalign_batcher_stats_t* stats) LINALIGN_NOEXCEPT;

/* Opens a request with scalar parameters (every *_per_row NULL); params->offset
 * is its first sample step's Philox offset, +1 per accepted sample step.
 * NULL params: the defaults. INVALID_ARGUMENT naming a bad parameter. */
LINALIGN_API linalign_status_t linalign_request_open(linalign_batcher_t batcher,
                                                     const linalign_params_t* params,
                                                     linalign_request_t* out) LINALIGN_NOEXCEPT;
/* No more steps for the request (its pending ones still run). */
LINALIGN_API linalign_status_t linalign_request_close(linalign_batcher_t batcher,
                                                      linalign_request_t request) LINALIGN_NOEXCEPT;

/* Queues a step. On LINALIGN_SUCCESS *ticket identifies it (for
 * linalign_wait and linalign_cancel). Otherwise nothing is queued and
 * nothing will be answered: INVALID_ARGUMENT / NOT_SUPPORTED as the direct
 * call on these rows would return them (or an unknown request), QUEUE_FULL,
 * SHUTDOWN. mode: linalign_submit_mode_t. */
LINALIGN_API linalign_status_t linalign_submit(linalign_batcher_t batcher,
                                               const linalign_step_t* step, int32_t mode,
                                               uint64_t* ticket) LINALIGN_NOEXCEPT;
/* Waits for the answer of a step submitted without a callback and writes it
 * to *result (result->struct_size set by the caller); each ticket can be
 * waited for once. INVALID_ARGUMENT for an unknown ticket. */
LINALIGN_API linalign_status_t linalign_wait(linalign_batcher_t batcher, uint64_t ticket,
                                             linalign_step_result_t* result) LINALIGN_NOEXCEPT;
/* 1 when the step had not started and is now answered CANCELLED; 0 otherwise. */
LINALIGN_API int linalign_cancel(linalign_batcher_t batcher, uint64_t ticket) LINALIGN_NOEXCEPT;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LINALIGN_LINALIGN_H_ */
