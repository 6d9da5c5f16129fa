// The fuzz targets' handles: created once per process (libFuzzer calls the
// target many times), never destroyed; a failure to create one stops the run.
#pragma once

#include <cstdlib>

#include "linalign/linalign.h"

namespace linalign_fuzz {

inline linalign_handle_t make_handle(int32_t backend, int32_t threads) {
  linalign_config_t config = LINALIGN_CONFIG_INIT;
  config.backend = backend;
  config.num_threads = threads;
  linalign_handle_t out = nullptr;
  if (linalign_create(&config, &out) != LINALIGN_SUCCESS) std::abort();
  return out;
}

}  // namespace linalign_fuzz
