// libFuzzer target: the kernel-level C API on the CPU backend (call_fuzz.hpp
// has the decoding and the properties). Buffers are exact-size heap blocks,
// so AddressSanitizer stops any read or write outside them.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "call_fuzz.hpp"
#include "fuzz_handle.hpp"

namespace {

linalign_handle_t handle() {
  static linalign_handle_t h = linalign_fuzz::make_handle(LINALIGN_BACKEND_CPU, 2);
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  linalign_fuzz::run_call_input<linalign_fuzz::HostMem, linalign_fuzz::HostMem>(
      data, size, handle(), /*device=*/false,
      /*max_vocab=*/300, nullptr);
  return 0;
}
