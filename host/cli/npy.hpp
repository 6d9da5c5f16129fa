// NumPy .npy reader and writer for the linalign command-line tool (header-only).
//
// Format (numpy/lib/format.py, "NEP 1"): the magic "\x93NUMPY", a major and a
// minor version byte, the header length (uint16 little-endian for version 1.0,
// uint32 for 2.0 and 3.0), then an ASCII (3.0: UTF-8) Python dict literal
// {'descr': '<f4', 'fortran_order': False, 'shape': (8, 32000), } padded with
// spaces and a final '\n' so that the data starts at a multiple of 64 bytes,
// then the raw array data.
//
// What this reader accepts: versions 1.0, 2.0 and 3.0; little-endian ('<', or
// '=' / '|' where that means the same) dtypes float32 '<f4', float16 '<f2',
// uint16 '<u2' (bfloat16 bits by convention, NumPy having no bfloat16), the
// 2-byte void '<V2' that ml_dtypes' bfloat16 is saved as, int32 '<i4' and
// int64 '<i8'; C order only; any rank (callers check the rank they need).
// Everything else is an npy::Error whose message says what is wrong: not a
// regular file, bad magic, unsupported version, malformed header, unsupported
// dtype, big-endian data, Fortran order, truncated or over-long data.
//
// The bytes are untrusted (files someone else wrote): nothing is allocated
// from what the header claims before the file is known to hold it, and any
// text of the file an error message repeats (a key, a descr) goes through
// quote_bytes() first, so a file cannot write control characters or escape
// sequences to the terminal through a message. tests/fuzz/fuzz_npy.cpp
// searches for inputs that break either rule.
//
// The host must be little-endian (x86-64, AArch64), like every CUDA host.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "linalign/math/dtype.hpp"

namespace linalign_cli {
namespace npy {

// Every failure of this header: the message is complete and names the problem.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class DType : int {
  kF32 = 0,  // '<f4'
  kF16 = 1,  // '<f2'
  kU16 = 2,  // '<u2' (bfloat16 bits when the caller says so)
  kV2 = 3,   // '<V2' (ml_dtypes bfloat16 saved by np.save)
  kI32 = 4,  // '<i4'
  kI64 = 5,  // '<i8'
};

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kU16:
    case DType::kV2:
      return 2;
    case DType::kI64:
      return 8;
  }
  return 0;
}

// The descr written to a file ('<f4', ...).
inline const char* descr(DType t) {
  switch (t) {
    case DType::kF32:
      return "<f4";
    case DType::kF16:
      return "<f2";
    case DType::kU16:
      return "<u2";
    case DType::kV2:
      return "<V2";
    case DType::kI32:
      return "<i4";
    case DType::kI64:
      return "<i8";
  }
  return "?";
}

// A human name ("float32", ...).
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kU16:
      return "uint16";
    case DType::kV2:
      return "void16";
    case DType::kI32:
      return "int32";
    case DType::kI64:
      return "int64";
  }
  return "?";
}

// Bytes of an untrusted file as printable ASCII inside single quotes:
// printable characters as they are, \\ and \' escaped, every other byte
// (control characters, DEL, bytes ≥ 0x80 of any encoding) as \xNN; at most
// `max_bytes` of the input, then "...".
inline std::string quote_bytes(const std::string& bytes, size_t max_bytes = 64) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == max_bytes) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out + "'";
}

// "[8,32000]", "[37]", "[]".
inline std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Number of elements of `shape`; throws on a negative dimension or when the
// byte size would not fit size_t comfortably (nothing is allocated here).
inline size_t element_count(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape " + shape_string(shape));
    if (d != 0 && n > std::numeric_limits<size_t>::max() / 16 / static_cast<size_t>(d))
      throw Error("shape " + shape_string(shape) + " is too large");
    n *= static_cast<size_t>(d);
  }
  return n;
}

// An array read from or about to be written to a .npy file. The data is kept
// in 8-byte words so that a pointer to it is aligned for every dtype, and it
// is never null (even for zero elements).
class Array {
 public:
  Array() : storage_(1, 0) {}
  Array(DType t, std::vector<int64_t> shape) : dtype_(t), shape_(std::move(shape)) {
    const size_t n = element_count(shape_);
    size_ = static_cast<int64_t>(n);
    nbytes_ = n * itemsize(t);
    storage_.assign(nbytes_ / 8 + 1, 0);
  }

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t size() const { return size_; }  // number of elements
  size_t nbytes() const { return nbytes_; }
  void* data() { return storage_.data(); }
  const void* data() const { return storage_.data(); }
  template <class T>
  T* as() {
    return static_cast<T*>(data());
  }
  template <class T>
  const T* as() const {
    return static_cast<const T*>(data());
  }
  // Version of the file it was read from (1, 2 or 3; 0 for a new array).
  int version() const { return version_; }
  void set_version(int v) { version_ = v; }

 private:
  DType dtype_ = DType::kF32;
  std::vector<int64_t> shape_;
  int64_t size_ = 1;
  size_t nbytes_ = 4;
  std::vector<uint64_t> storage_;
  int version_ = 0;
};

namespace detail {

// The parts of the header dict.
struct Header {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// A small parser of the Python dict literal NumPy writes. Strict: exactly the
// keys 'descr', 'fortran_order' and 'shape', each once.
class HeaderParser {
 public:
  explicit HeaderParser(const std::string& text) : s_(text) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (have_descr) fail("key 'descr' appears twice");
        have_descr = true;
        if (peek() == '[')
          fail("structured dtypes (a list 'descr') are not supported; save a plain array");
        h.descr = parse_string();
      } else if (key == "fortran_order") {
        if (have_fortran) fail("key 'fortran_order' appears twice");
        have_fortran = true;
        h.fortran_order = parse_bool();
      } else if (key == "shape") {
        if (have_shape) fail("key 'shape' appears twice");
        have_shape = true;
        h.shape = parse_shape();
      } else {
        fail("unexpected key " + quote_bytes(key));
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the closing '}'");
    if (!have_descr) fail("key 'descr' is missing");
    if (!have_fortran) fail("key 'fortran_order' is missing");
    if (!have_shape) fail("key 'shape' is missing");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("malformed header: " + what + " (at character " + std::to_string(pos_) + ")");
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string parse_string() {
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != q) {
      if (s_[pos_] == '\\') fail("escape sequences are not supported");
      out += s_[pos_++];
    }
    if (pos_ >= s_.size()) fail("unterminated string");
    ++pos_;
    return out;
  }
  bool parse_bool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  int64_t parse_int() {
    if (peek() == '-') fail("negative dimension in 'shape'");
    if (peek() < '0' || peek() > '9') fail("expected a dimension in 'shape'");
    int64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      int d = peek() - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) fail("dimension too large");
      v = v * 10 + d;
      ++pos_;
    }
    if (peek() == 'L') ++pos_;  // Python 2 long literal
    return v;
  }
  std::vector<int64_t> parse_shape() {
    std::vector<int64_t> shape;
    expect('(');
    skip_ws();
    if (peek() == ')') {
      ++pos_;
      return shape;
    }
    for (;;) {
      skip_ws();
      shape.push_back(parse_int());
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        skip_ws();
        if (peek() == ')') {
          ++pos_;
          return shape;
        }
      } else if (peek() == ')') {
        ++pos_;
        if (shape.size() == 1) fail("a one-element shape needs a trailing comma, as in (3,)");
        return shape;
      } else {
        fail("expected ',' or ')' in 'shape'");
      }
      if (shape.size() > 32) fail("more than 32 dimensions");
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
};

// Maps a descr to a supported dtype or throws a message naming it.
inline DType parse_descr(const std::string& d) {
  const std::string q = quote_bytes(d);
  if (d.size() < 2) throw Error("unsupported dtype " + q);
  char order = d[0];
  std::string code = d.substr(1);
  if (order == '>') {
    if (code == "f4" || code == "f2" || code == "u2" || code == "i4" || code == "i8" ||
        code == "V2")
      throw Error("big-endian dtype " + q +
                  " is not supported; convert with arr.astype(arr.dtype.newbyteorder('<'))");
    throw Error("unsupported dtype " + q + " (and big-endian)");
  }
  if (order != '<' && order != '=' && order != '|')
    throw Error("unsupported dtype " + q + " (unknown byte-order character)");
  if (code == "V2") return DType::kV2;
  if (order == '|')
    throw Error("unsupported dtype " + q + ": a multi-byte type needs a byte order");
  if (code == "f4") return DType::kF32;
  if (code == "f2") return DType::kF16;
  if (code == "u2") return DType::kU16;
  if (code == "i4") return DType::kI32;
  if (code == "i8") return DType::kI64;
  throw Error("unsupported dtype " + q +
              "; supported: float32 '<f4', float16 '<f2', bfloat16 bits '<u2' or '<V2', "
              "int32 '<i4', int64 '<i8'");
}

inline std::string errno_text(int e) {
  return std::strerror(e);
}

// Closes a FILE* on every path.
class File {
 public:
  File(const std::string& path, const char* mode) : f_(std::fopen(path.c_str(), mode)) {}
  ~File() {
    if (f_) std::fclose(f_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  std::FILE* get() const { return f_; }
  // Closes now; returns false when the close (the final flush) failed.
  bool close() {
    std::FILE* f = f_;
    f_ = nullptr;
    return f == nullptr || std::fclose(f) == 0;
  }

 private:
  std::FILE* f_;
};

inline std::string header_text(DType t, const std::vector<int64_t>& shape) {
  std::string h = "{'descr': '";
  h += descr(t);
  h += "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) h += ", ";
    h += std::to_string(shape[i]);
  }
  if (shape.size() == 1) h += ",";
  h += "), }";
  return h;
}

}  // namespace detail

namespace detail {

// The file's size once it is known to be a regular file; Error otherwise.
inline uint64_t regular_file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT) throw Error("no such file");
    throw Error("cannot access: " + errno_text(e));
  }
  if (S_ISDIR(st.st_mode)) throw Error("is a directory, not a .npy file");
  if (!S_ISREG(st.st_mode)) throw Error("not a regular file");
  return static_cast<uint64_t>(st.st_size);
}

// The fixed prefix: magic, version, header length (2 bytes in 1.0, 4 after).
struct Prefix {
  int major = 0;
  uint64_t header_len = 0;
  size_t size = 0;  // bytes before the header text
};

inline Prefix read_prefix(std::FILE* f, uint64_t file_size) {
  unsigned char pre[12];
  size_t got = std::fread(pre, 1, 10, f);
  static const unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (got < 6 || std::memcmp(pre, kMagic, 6) != 0)
    throw Error("not a .npy file (bad magic: expected \\x93NUMPY)");
  if (got < 8) throw Error("truncated header (file ends inside the version bytes)");
  Prefix x;
  x.major = pre[6];
  const int minor = pre[7];
  if (!((x.major == 1 || x.major == 2 || x.major == 3) && minor == 0))
    throw Error("unsupported .npy format version " + std::to_string(x.major) + "." +
                std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  if (x.major == 1) {
    if (got < 10) throw Error("truncated header (file ends inside the header length)");
    x.header_len = pre[8] | (static_cast<uint64_t>(pre[9]) << 8);
    x.size = 10;
  } else {
    got += std::fread(pre + 10, 1, 2, f);
    if (got < 12) throw Error("truncated header (file ends inside the header length)");
    x.header_len = pre[8] | (static_cast<uint64_t>(pre[9]) << 8) |
                   (static_cast<uint64_t>(pre[10]) << 16) | (static_cast<uint64_t>(pre[11]) << 24);
    x.size = 12;
  }
  if (x.header_len > (1u << 20))
    throw Error("header length " + std::to_string(x.header_len) + " is implausibly large");
  if (x.size + x.header_len > file_size)
    throw Error("truncated header: it claims " + std::to_string(x.header_len) +
                " bytes, the file has " + std::to_string(file_size - x.size) + " after the prefix");
  return x;
}

// The header's text (a Python dict literal), checked for NUL bytes.
inline std::string read_header_text(std::FILE* f, uint64_t header_len) {
  std::string text(header_len, '\0');
  if (header_len && std::fread(&text[0], 1, header_len, f) != header_len)
    throw Error("cannot read the header: " + errno_text(errno));
  for (char c : text)
    if (c == '\0') throw Error("malformed header: contains a NUL byte");
  return text;
}

}  // namespace detail

// Reads a .npy array from `f`, positioned at its start, which holds exactly
// `file_size` bytes (a file, or bytes in memory through fmemopen). Throws
// npy::Error with a message that starts with `name`.
inline Array read(std::FILE* f, uint64_t file_size, const std::string& name) {
  auto fail = [&](const std::string& what) -> Error { return Error(name + ": " + what); };
  detail::Prefix pre;
  std::string text;
  try {
    pre = detail::read_prefix(f, file_size);
    text = detail::read_header_text(f, pre.header_len);
  } catch (const Error& e) {
    throw fail(e.what());
  }
  const int major = pre.major;
  const uint64_t header_len = pre.header_len;
  const size_t prefix = pre.size;

  detail::Header h;
  try {
    h = detail::HeaderParser(text).parse();
  } catch (const Error& e) {
    throw fail(e.what());
  }
  DType t;
  try {
    t = detail::parse_descr(h.descr);
  } catch (const Error& e) {
    throw fail(e.what());
  }
  // Fortran order is only a problem for rank ≥ 2 (1-D data is the same).
  int non_unit = 0;
  for (int64_t d : h.shape) non_unit += d > 1;
  if (h.fortran_order && non_unit > 1)
    throw fail(
        "Fortran-ordered (column-major) arrays are not supported; save "
        "np.ascontiguousarray(arr)");

  // Check the size against the file before allocating anything.
  uint64_t nbytes;
  try {
    nbytes = element_count(h.shape) * itemsize(t);
  } catch (const Error& e) {
    throw fail(e.what());
  }
  const uint64_t data_offset = prefix + header_len;
  const uint64_t available = file_size - data_offset;
  if (available < nbytes)
    throw fail("truncated data: shape " + shape_string(h.shape) + " of " + dtype_name(t) +
               " needs " + std::to_string(nbytes) + " bytes, the file has " +
               std::to_string(available));
  if (available > nbytes)
    throw fail(std::to_string(available - nbytes) + " unexpected bytes after the data of shape " +
               shape_string(h.shape) + " of " + dtype_name(t));
  Array a(t, h.shape);
  a.set_version(major);
  if (a.nbytes() && std::fread(a.data(), 1, a.nbytes(), f) != a.nbytes())
    throw fail("cannot read the data: " + detail::errno_text(errno));
  return a;
}

// Reads a .npy file. Throws npy::Error with a message that starts with the
// path (quoted when it holds anything but printable ASCII).
inline Array read(const std::string& path) {
  std::string name = path;
  for (char c : path)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      name = quote_bytes(path, path.size());
  uint64_t file_size;
  try {
    file_size = detail::regular_file_size(path);  // before fopen: a FIFO would block it
  } catch (const Error& e) {
    throw Error(name + ": " + e.what());
  }
  detail::File f(path, "rb");
  if (!f.get()) throw Error(name + ": cannot open: " + detail::errno_text(errno));
  return read(f.get(), file_size, name);
}

// Writes `nbytes` of data as a C-ordered .npy array (version 1.0, or 2.0 when
// the header does not fit 1.0). Throws npy::Error naming the path; a partly
// written file is removed.
inline void write(const std::string& path, DType t, const std::vector<int64_t>& shape,
                  const void* data) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(path + ": negative dimension in shape " + shape_string(shape));
    n *= static_cast<size_t>(d);
  }
  const size_t nbytes = n * itemsize(t);
  std::string h = detail::header_text(t, shape);
  // Pad with spaces to make prefix + header + '\n' a multiple of 64.
  int major = 1;
  size_t prefix = 10;
  if (h.size() + 1 + 64 > 65535) {
    major = 2;
    prefix = 12;
  }
  size_t total = prefix + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const uint64_t len = h.size();
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>((len >> 8) & 0xff);
  if (major == 2) {
    out += static_cast<char>((len >> 16) & 0xff);
    out += static_cast<char>((len >> 24) & 0xff);
  }
  out += h;

  detail::File f(path, "wb");
  if (!f.get()) throw Error(path + ": cannot create: " + detail::errno_text(errno));
  bool ok = std::fwrite(out.data(), 1, out.size(), f.get()) == out.size();
  if (ok && nbytes) ok = std::fwrite(data, 1, nbytes, f.get()) == nbytes;
  int e = errno;
  ok = f.close() && ok;
  if (!ok) {
    if (!e) e = errno;
    std::remove(path.c_str());
    throw Error(path + ": cannot write: " + detail::errno_text(e));
  }
}

inline void write(const std::string& path, const Array& a) {
  write(path, a.dtype(), a.shape(), a.data());
}

// Throws unless a.rank() is in [min_rank, max_rank]; `what` names the input.
inline void require_rank(const Array& a, int min_rank, int max_rank, const std::string& what) {
  if (a.rank() >= min_rank && a.rank() <= max_rank) return;
  std::string want = min_rank == max_rank
                         ? std::to_string(min_rank) + "-D"
                         : std::to_string(min_rank) + "-D to " + std::to_string(max_rank) + "-D";
  throw Error(what + ": wrong rank: shape " + shape_string(a.shape()) + " is " +
              std::to_string(a.rank()) + "-D, expected " + want);
}

// Throws unless both arrays have the same shape.
inline void require_same_shape(const Array& a, const std::string& a_name, const Array& b,
                               const std::string& b_name) {
  if (a.shape() == b.shape()) return;
  throw Error("mismatched shapes: " + a_name + " is " + shape_string(a.shape()) + " but " + b_name +
              " is " + shape_string(b.shape()));
}

// 16-bit float conversions: linalign::math (math/dtype.hpp), the codecs the
// kernels and the CPU backend use — one definition.

}  // namespace npy
}  // namespace linalign_cli
