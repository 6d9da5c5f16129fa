// What the C entry points share (host/c_api.cpp for linalign_handle_t and
// the kernel-level calls, host/c_api_batcher.cpp for the host API): the
// handle, the error text (per handle, or the calling thread's), the guard
// that turns exceptions into statuses, the struct_size rule, and the
// conversions of the C structs to the C++ ones. Internal to the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "linalign/linalign.h"
#include "linalign/linalign.hpp"

// The handle: a Context plus the last error message of calls on it. The
// message of an error the C layer finds itself lives here; a Context error is
// copied here from Context::last_error().
struct linalign_handle_s {
  std::unique_ptr<linalign::Context> context;
  std::string error;
  // Set instead of `error` when recording `error` failed (out of memory).
  const char* static_error = nullptr;
};

namespace linalign {
namespace c_api {

using linalign::Backend;
using linalign::DType;
using linalign::NucleusSource;
using linalign::Op;
using linalign::Status;
using linalign::StepRule;
using linalign::UpdateForm;
using CDiag = linalign_row_diagnostics_t;
using CxxDiag = linalign::RowDiagnostics;

// ------------------------------------------------------------ error text ---

constexpr const char* kOutOfMemoryMessage =
    "linalign: out of memory while recording an error message";

// Errors of calls without a handle (a failed create, a NULL handle).
inline thread_local std::string t_error;
inline thread_local const char* t_static_error = nullptr;

inline void record(linalign_handle_t handle, const char* message) noexcept {
  std::string& text = handle ? handle->error : t_error;
  const char*& fallback = handle ? handle->static_error : t_static_error;
  try {
    text.assign(message);
    fallback = nullptr;
  } catch (...) {
    fallback = kOutOfMemoryMessage;
  }
}

inline void clear(linalign_handle_t handle) noexcept {
  std::string& text = handle ? handle->error : t_error;
  text.clear();  // keeps the capacity: no allocation, no throw
  (handle ? handle->static_error : t_static_error) = nullptr;
}

// A C entry point's error context — not a call description (that is
// host::Call): where its errors go and the name they start with (as the C++
// API's "align: ..." messages do).
struct EntryPoint {
  linalign_handle_t handle;  // NULL: the thread's message
  const char* name;          // "linalign_align", ...
};

inline linalign_status_t fail(const EntryPoint& call, linalign_status_t status,
                              const std::string& message) {
  record(call.handle, (std::string(call.name) + ": " + message).c_str());
  return status;
}

inline linalign_status_t to_c(Status s) {
  return static_cast<linalign_status_t>(static_cast<int>(s));
}

// Runs `body` for a call on `handle` with the handle's message cleared; turns
// a NULL handle into LINALIGN_INVALID_ARGUMENT and any exception into
// LINALIGN_INTERNAL. `body` takes the EntryPoint.
template <class BodyT>
inline linalign_status_t guarded(linalign_handle_t handle, const char* name,
                                 BodyT&& body) noexcept {
  if (handle == nullptr) {
    try {
      return fail(EntryPoint{nullptr, name}, LINALIGN_INVALID_ARGUMENT,
                  "handle is NULL (create one with linalign_create)");
    } catch (...) {
      record(nullptr, kOutOfMemoryMessage);
      return LINALIGN_INVALID_ARGUMENT;
    }
  }
  clear(handle);
  try {
    return body(EntryPoint{handle, name});
  } catch (const std::bad_alloc&) {
    record(handle, "linalign: out of host memory");
  } catch (const std::exception& e) {
    try {
      record(handle, (std::string("linalign internal error in ") + name + ": " + e.what() +
                      " (please report)")
                         .c_str());
    } catch (...) {
      record(handle, "linalign internal error: an exception escaped (please report)");
    }
  } catch (...) {
    record(handle, "linalign internal error: an unknown exception escaped (please report)");
  }
  return LINALIGN_INTERNAL;
}

// Records the Context's own message (it names the argument) after a failure.
inline linalign_status_t forward(const EntryPoint& call, Status status) {
  if (status != Status::kSuccess) {
    const char* message = call.handle->context->last_error();
    if (message == nullptr || *message == '\0') {
      fail(call, to_c(status), linalign::status_string(status));
    } else {
      record(call.handle, message);
    }
  }
  return to_c(status);
}

// ------------------------------------------------------ versioned structs ---

// A struct_size this large is not a newer header: the struct was not
// initialised. Refusing it also bounds the bytes the zero check below reads.
constexpr size_t kMaxStructSize = 4096;

// The struct_size rule of the header: at least this library's layout (the
// first published one); a larger struct (newer header) only with its unknown
// trailing bytes zero.
template <class StructT>
inline linalign_status_t check_struct(const EntryPoint& call, const StructT* s, const char* name,
                                      const char* init) {
  if (s == nullptr) return fail(call, LINALIGN_INVALID_ARGUMENT, std::string(name) + " is NULL");
  const size_t size = s->struct_size;
  if (size < sizeof(StructT) || size > kMaxStructSize) {
    return fail(call, LINALIGN_INVALID_ARGUMENT,
                std::string(name) + ".struct_size is " + std::to_string(size) +
                    "; this library expects " + std::to_string(sizeof(StructT)) +
                    " (initialise the struct with " + init + ")");
  }
  const unsigned char* bytes = reinterpret_cast<const unsigned char*>(s);
  for (size_t i = sizeof(StructT); i < size; ++i) {
    if (bytes[i] != 0) {
      return fail(call, LINALIGN_NOT_SUPPORTED,
                  std::string(name) + ".struct_size is " + std::to_string(size) +
                      " and fields beyond byte " + std::to_string(sizeof(StructT)) +
                      " are set; this library version (" + std::to_string(LINALIGN_VERSION_MAJOR) +
                      "." + std::to_string(LINALIGN_VERSION_MINOR) + "." +
                      std::to_string(LINALIGN_VERSION_PATCH) + ") does not know them");
    }
  }
  return LINALIGN_SUCCESS;
}

// ------------------------------------------------------------ conversions ---
// Enum values held in int32_t fields are not checked here: the C++ enums have
// a fixed underlying type int32_t, so any value converts, and the C++ API
// rejects unknown ones with the same field name (params.rule, logits.dtype).

template <class T>
inline linalign::PerRow<T> per_row(T value, const T* values) {
  linalign::PerRow<T> r(value);
  r.values = values;
  return r;
}

// *p (NULL: the defaults) as linalign::Params.
inline linalign_status_t to_params(const EntryPoint& call, const linalign_params_t* p,
                                   linalign::Params* out) {
  if (p == nullptr) {
    *out = linalign::Params{};
    return LINALIGN_SUCCESS;
  }
  const linalign_status_t s = check_struct(call, p, "params", "LINALIGN_PARAMS_INIT");
  if (s != LINALIGN_SUCCESS) return s;
  linalign::Params q;
  q.temperature = per_row(p->temperature, p->temperature_per_row);
  q.rule = static_cast<StepRule>(p->rule);
  q.ratio = per_row(p->ratio, p->ratio_per_row);
  q.epsilon = per_row(p->epsilon, p->epsilon_per_row);
  q.eta_max = per_row(p->eta_max, p->eta_max_per_row);
  q.update = static_cast<UpdateForm>(p->update);
  q.greedy = p->greedy != 0;
  q.top_p = per_row(p->top_p, p->top_p_per_row);
  q.top_k = per_row(p->top_k, p->top_k_per_row);
  q.min_p = per_row(p->min_p, p->min_p_per_row);
  q.nucleus_source = static_cast<NucleusSource>(p->nucleus_source);
  q.min_tokens_to_keep = p->min_tokens_to_keep;
  q.seed = per_row(p->seed, p->seed_per_row);
  q.offset = per_row(p->offset, p->offset_per_row);
  q.ignore_index = p->ignore_index;
  *out = q;
  return LINALIGN_SUCCESS;
}

inline linalign_status_t to_view(const EntryPoint& call, const linalign_logits_t* v,
                                 linalign::LogitsView* out) {
  const linalign_status_t s = check_struct(call, v, "logits", "LINALIGN_LOGITS_INIT");
  if (s != LINALIGN_SUCCESS) return s;
  linalign::LogitsView w;
  w.dtype = static_cast<DType>(v->dtype);
  w.rows = v->rows;
  w.vocab = v->vocab;
  w.base = v->base;
  w.principle = v->principle;
  w.base_stride = v->base_stride;
  w.principle_stride = v->principle_stride;
  w.base_ptrs = v->base_ptrs;
  w.principle_ptrs = v->principle_ptrs;
  w.paired = v->paired;
  w.pair_index = v->pair_index;
  w.paired_rows = v->paired_rows;
  w.paired_stride = v->paired_stride;
  *out = w;
  return LINALIGN_SUCCESS;
}

// The common front of the compute calls.
inline linalign_status_t prepare(const EntryPoint& call, const linalign_logits_t* logits,
                                 const linalign_params_t* params, linalign::LogitsView* view,
                                 linalign::Params* p) {
  const linalign_status_t s = to_view(call, logits, view);
  if (s != LINALIGN_SUCCESS) return s;
  return to_params(call, params, p);
}

inline CxxDiag* to_cxx(linalign_row_diagnostics_t* d) {
  return reinterpret_cast<CxxDiag*>(d);
}

}  // namespace c_api
}  // namespace linalign
