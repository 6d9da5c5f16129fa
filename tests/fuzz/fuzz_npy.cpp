// libFuzzer target: the .npy reader (host/cli/npy.hpp) on arbitrary bytes.
//
// The bytes are the whole file, read through fmemopen by the same
// npy::read(FILE*, size, name) that reads files. Properties, on every input:
//   * the reader returns or throws npy::Error — nothing else escapes, and
//     ASan/UBSan see no bad access, overflow or leak;
//   * an error's message is non-empty printable ASCII (bytes of the file are
//     quoted, npy::quote_bytes), so no file writes control characters through it;
//   * an array it returns has the shape its header claims, exactly
//     product(shape) × itemsize bytes, and those bytes are the file's last
//     bytes (inside the file, nothing read beyond, no trailing garbage);
//   * nothing is allocated before the file is known to hold it: libFuzzer's
//     -malloc_limit_mb (tests/fuzz/run.sh) stops a run that tries.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/npy.hpp"
#include "fuzz_input.hpp"

namespace npy = linalign_cli::npy;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // fmemopen of zero bytes is an error on glibc: give it one byte and say 0.
  static const uint8_t kEmpty = 0;
  std::FILE* f = fmemopen(const_cast<uint8_t*>(size ? data : &kEmpty), size ? size : 1, "rb");
  if (f == nullptr) return 0;
  try {
    const npy::Array a = npy::read(f, size, "input.npy");
    size_t n = npy::itemsize(a.dtype());
    for (int64_t d : a.shape()) {
      LINALIGN_FUZZ_CHECK(d >= 0, "negative dimension " + std::to_string(d));
      n *= size_t(d);
    }
    LINALIGN_FUZZ_CHECK(a.nbytes() == n, "nbytes differs from product(shape) * itemsize");
    LINALIGN_FUZZ_CHECK(n <= size, "an array larger than the file");
    LINALIGN_FUZZ_CHECK(a.nbytes() == 0 || std::memcmp(a.data(), data + size - n, n) == 0,
                        "the data are not the file's last bytes");
    LINALIGN_FUZZ_CHECK(a.version() >= 1 && a.version() <= 3,
                        "version " + std::to_string(a.version()));
  } catch (const npy::Error& e) {
    const std::string m = e.what();
    LINALIGN_FUZZ_CHECK(m.size() > std::strlen("input.npy: "), "an empty message");
    for (unsigned char c : m)
      LINALIGN_FUZZ_CHECK(c >= 0x20 && c < 0x7f,
                          "a raw byte in the message: " + npy::quote_bytes(m, 200));
  }
  std::fclose(f);
  return 0;
}
