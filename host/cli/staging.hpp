// Memory the library reads and writes for the command-line tool.
//
// The CPU backend works on host memory; the CUDA backend wants device
// pointers. The tool is plain C++ (no CUDA headers, no link to the CUDA
// runtime), so for the CUDA backend it loads the CUDA driver (libcuda.so.1)
// at run time and uses the primary context of the device, which is the
// context the CUDA runtime inside the library uses too: device pointers from
// one are valid in the other. Built against the SIMT emulator
// (linalign_cli_emulated, LINALIGN_SIMT_EMULATED) it uses the emulator's
// runtime API instead.
#pragma once

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>

namespace linalign_cli {

// A failure of device memory management (exit code 2, like library errors).
class StagingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Staging {
 public:
  virtual ~Staging() = default;
  // Host memory: returns `src` itself. Device: a device copy of `bytes` bytes.
  virtual const void* upload(const void* src, size_t bytes) = 0;
  // Zero-filled memory the library may write (never null, even for 0 bytes).
  virtual void* alloc(size_t bytes) = 0;
  // Copies `bytes` from memory returned by upload/alloc to host memory.
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  // Frees memory returned by upload/alloc now (after the device's work);
  // an upload of host memory (its own `src`) is left alone.
  virtual void release(const void* p) = 0;
  // Waits for all work queued on the device (no-op on the host).
  virtual void synchronize() = 0;
  virtual bool on_device() const = 0;

  template <class T>
  T* alloc_n(size_t n) {
    return static_cast<T*>(alloc(n * sizeof(T)));
  }
  template <class T>
  const T* upload_n(const T* src, size_t n) {
    return static_cast<const T*>(upload(src, n * sizeof(T)));
  }
  template <class T>
  void download_n(T* dst, const T* src, size_t n) {
    download(dst, src, n * sizeof(T));
  }

  static std::unique_ptr<Staging> host();
  // Device memory on CUDA device `device` through the driver API; throws
  // StagingError when the driver cannot be loaded or the device not used.
  static std::unique_ptr<Staging> cuda(int device);
};

}  // namespace linalign_cli
