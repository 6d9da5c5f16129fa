// libFuzzer target: the kernel-level C API on the CPU backend (call_fuzz.hpp
// has the decoding and the properties). Buffers are exact-size heap blocks,
// so AddressSanitizer stops any read or write outside them.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "call_fuzz.hpp"

namespace {

linalign_handle_t handle() {
  static linalign_handle_t h = [] {
    linalign_config_t config = LINALIGN_CONFIG_INIT;
    config.num_threads = 2;  // two workers: the row split across threads is exercised
    linalign_handle_t out = nullptr;
    if (linalign_create(&config, &out) != LINALIGN_SUCCESS) std::abort();
    return out;
  }();
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  linalign_fuzz::run_call_input<linalign_fuzz::HostMem, linalign_fuzz::HostMem>(
      data, size, handle(), /*device=*/false,
      /*max_vocab=*/300, nullptr);
  return 0;
}
