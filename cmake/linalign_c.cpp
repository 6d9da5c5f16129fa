// The translation unit of liblinalign_c.so, the C API as a shared library for
// FFI users (Rust, Go, Python ctypes): every symbol comes from the static
// library, linked whole; cmake/linalign_c.map exports the linalign_* ones.
#include "linalign/linalign.h"
