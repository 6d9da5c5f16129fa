// Unit tests of the command-line tool's .npy reader/writer (host/cli/npy.hpp)
// and strict number parsing (host/cli/parse.hpp): round trips of every
// supported dtype, headers as NumPy writes them (v1/v2/v3), and every kind of
// malformed file, which must give an npy::Error naming the problem.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cli/npy.hpp"
#include "cli/parse.hpp"
#include "linalign/math/dtype.hpp"

namespace npy = linalign_cli::npy;
namespace parse = linalign_cli::parse;

namespace {

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "linalign_npy_" + std::to_string(::getpid()) + "_" + info->name();
    ::mkdir(dir_.c_str(), 0700);
  }
  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
    ::rmdir(dir_.c_str());
  }
  std::string path(const std::string& name) {
    files_.push_back(dir_ + "/" + name);
    return files_.back();
  }
  // Writes raw bytes to a new file in the test directory.
  std::string raw(const std::string& name, const std::string& bytes) {
    const std::string p = path(name);
    std::FILE* f = std::fopen(p.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (f) {
      std::fwrite(bytes.data(), 1, bytes.size(), f);
      std::fclose(f);
    }
    return p;
  }
  static std::string read_all(const std::string& p) {
    std::string s;
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (!f) return s;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    std::fclose(f);
    return s;
  }
  // A complete file: magic, version, header length, header (padded to 64 as
  // NumPy does unless pad is false), then `data_bytes` zero bytes.
  static std::string file(const std::string& header, size_t data_bytes, int major = 1,
                          bool pad = true) {
    std::string h = header;
    const size_t prefix = major == 1 ? 10 : 12;
    if (pad) h.append((64 - (prefix + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string s = "\x93NUMPY";
    s += static_cast<char>(major);
    s += '\0';
    s += static_cast<char>(h.size() & 0xff);
    s += static_cast<char>((h.size() >> 8) & 0xff);
    if (major != 1) s.append(2, '\0');
    s += h;
    s.append(data_bytes, '\0');
    return s;
  }
  // Expects npy::read(p) to throw with a message containing `needle`.
  static void expect_error(const std::string& p, const std::string& needle) {
    try {
      npy::read(p);
      ADD_FAILURE() << "no error reading " << p << " (expected '" << needle << "')";
    } catch (const npy::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << "message: " << e.what() << "\nexpected to contain: " << needle;
      EXPECT_EQ(std::string(e.what()).rfind(p, 0), 0u) << "message should start with the path";
    }
  }

  std::string dir_;
  std::vector<std::string> files_;
};

// ---------------------------------------------------------------- round trips

TEST_F(NpyTest, RoundTripFloat32Matrix) {
  npy::Array a(npy::DType::kF32, {3, 5});
  for (int i = 0; i < 15; ++i) a.as<float>()[i] = 0.25f * static_cast<float>(i) - 1.f;
  a.as<float>()[7] = -std::numeric_limits<float>::infinity();
  a.as<float>()[8] = std::numeric_limits<float>::quiet_NaN();
  const std::string p = path("a.npy");
  npy::write(p, a);
  const npy::Array b = npy::read(p);
  EXPECT_EQ(b.dtype(), npy::DType::kF32);
  EXPECT_EQ(b.shape(), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(b.version(), 1);
  EXPECT_EQ(b.size(), 15);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), 15 * 4), 0);
}

TEST_F(NpyTest, HeaderIsNumpyCompatible) {
  npy::Array a(npy::DType::kF32, {3});
  const std::string p = path("h.npy");
  npy::write(p, a);
  const std::string s = read_all(p);
  // Exactly what np.save writes for np.zeros(3, np.float32).
  ASSERT_EQ(s.size(), 128u + 12u);
  EXPECT_EQ(s.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(static_cast<unsigned char>(s[8]) | (static_cast<unsigned char>(s[9]) << 8), 118);
  EXPECT_EQ(s.substr(10, 57), "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
  EXPECT_EQ(s.substr(67, 60), std::string(60, ' '));
  EXPECT_EQ(s[127], '\n');
}

TEST_F(NpyTest, RoundTripEveryDtypeAndRank) {
  const npy::DType types[] = {npy::DType::kF32, npy::DType::kF16, npy::DType::kU16,
                              npy::DType::kI32, npy::DType::kI64};
  const std::vector<std::vector<int64_t>> shapes = {{}, {1}, {7}, {2, 3}, {0}, {4, 0}, {2, 3, 4}};
  int k = 0;
  for (npy::DType t : types) {
    for (const auto& shape : shapes) {
      npy::Array a(t, shape);
      auto* bytes = static_cast<unsigned char*>(a.data());
      for (size_t i = 0; i < a.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(i * 37 + 11);
      const std::string p = path("r" + std::to_string(k++) + ".npy");
      npy::write(p, a);
      EXPECT_EQ(read_all(p).size() % 64, a.nbytes() % 64) << "data starts at a multiple of 64";
      const npy::Array b = npy::read(p);
      EXPECT_EQ(b.dtype(), t);
      EXPECT_EQ(b.shape(), shape);
      EXPECT_EQ(b.nbytes(), a.nbytes());
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.nbytes()), 0);
      EXPECT_NE(b.data(), nullptr);
    }
  }
}

TEST_F(NpyTest, ReadsVersion2) {
  const std::string p = raw("v2.npy", file("{'descr': '<i4', 'fortran_order': False, "
                                           "'shape': (2,), }",
                                           8, 2));
  const npy::Array a = npy::read(p);
  EXPECT_EQ(a.version(), 2);
  EXPECT_EQ(a.shape(), (std::vector<int64_t>{2}));
}

TEST_F(NpyTest, ReadsVersion3AndHeaderVariants) {
  // Version 3, double quotes, other key order, no trailing comma, extra spaces.
  const std::string p1 = raw("v3.npy", file("{\"shape\": ( 2 , 3 ), \"fortran_order\": False, "
                                            "\"descr\": \"<f2\"}",
                                            12, 3));
  const npy::Array a = npy::read(p1);
  EXPECT_EQ(a.version(), 3);
  EXPECT_EQ(a.dtype(), npy::DType::kF16);
  EXPECT_EQ(a.shape(), (std::vector<int64_t>{2, 3}));
  // Unpadded header (older writers), Python 2 long dims, '=' byte order.
  const std::string p2 =
      raw("old.npy",
          file("{'descr': '=i8', 'fortran_order': False, 'shape': (2L, 1L), }", 16, 1, false));
  const npy::Array b = npy::read(p2);
  EXPECT_EQ(b.dtype(), npy::DType::kI64);
  EXPECT_EQ(b.shape(), (std::vector<int64_t>{2, 1}));
  // ml_dtypes bfloat16 is saved as '<V2'; '|V2' also occurs.
  const std::string p3 =
      raw("v2d.npy", file("{'descr': '|V2', 'fortran_order': False, 'shape': (4,), }", 8));
  EXPECT_EQ(npy::read(p3).dtype(), npy::DType::kV2);
  // Fortran order is harmless when at most one dimension exceeds 1.
  const std::string p4 =
      raw("f1.npy", file("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 5), }", 20));
  EXPECT_EQ(npy::read(p4).shape(), (std::vector<int64_t>{1, 5}));
}

// ------------------------------------------------------------ malformed files

TEST_F(NpyTest, NotAFile) {
  expect_error(dir_ + "/does_not_exist.npy", "no such file");
  expect_error(dir_, "is a directory");
}

TEST_F(NpyTest, BadMagic) {
  expect_error(raw("empty.npy", ""), "bad magic");
  expect_error(raw("text.npy", "hello world, this is not numpy"), "bad magic");
  expect_error(raw("short.npy", "\x93NUM"), "bad magic");
  std::string s = file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
  s[1] = 'n';
  expect_error(raw("case.npy", s), "bad magic");
}

TEST_F(NpyTest, UnsupportedVersion) {
  std::string s = file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
  s[6] = 4;
  expect_error(raw("v4.npy", s), "unsupported .npy format version 4.0");
  s[6] = 1;
  s[7] = 1;
  expect_error(raw("v11.npy", s), "version 1.1");
}

TEST_F(NpyTest, TruncatedHeader) {
  expect_error(raw("t1.npy", std::string("\x93NUMPY\x01", 7)), "truncated header");
  expect_error(raw("t2.npy", std::string("\x93NUMPY\x01\x00\x10", 9)), "truncated header");
  const std::string s = file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4);
  expect_error(raw("t3.npy", s.substr(0, 40)), "truncated header");
  expect_error(raw("t4.npy", std::string("\x93NUMPY\x02\x00\x10\x00", 10)), "truncated header");
}

TEST_F(NpyTest, MalformedHeader) {
  struct Case {
    const char* header;
    const char* needle;
  } cases[] = {
      {"not a dict", "expected '{'"},
      {"{'descr': '<f4', 'fortran_order': False}", "'shape' is missing"},
      {"{'descr': '<f4', 'shape': (1,)}", "'fortran_order' is missing"},
      {"{'fortran_order': False, 'shape': (1,)}", "'descr' is missing"},
      {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", "twice"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
       "unexpected key 'extra'"},
      {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}", "True or False"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "negative dimension"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", "trailing comma"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "expected '('"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,) junk", "expected ',' or '}'"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", "after the closing"},
      {"{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "expected ',' or '}'"},
      {"{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", "expected ':'"},
      {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", "structured"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", "too large"},
      {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", "too large"},
  };
  int k = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.header);
    expect_error(raw("m" + std::to_string(k++) + ".npy", file(c.header, 4)), c.needle);
  }
  expect_error(raw("nul.npy", file(std::string("{'descr': '<f4'\0}", 17), 4)), "NUL");
}

TEST_F(NpyTest, UnsupportedDtypes) {
  struct Case {
    const char* descr;
    const char* needle;
  } cases[] = {
      {"<f8", "unsupported dtype '<f8'"},
      {"<i2", "unsupported dtype '<i2'"},
      {"|u1", "unsupported dtype '|u1'"},
      {"|b1", "unsupported dtype '|b1'"},
      {"<c8", "unsupported dtype '<c8'"},
      {"|O", "unsupported dtype '|O'"},
      {">f4", "big-endian"},
      {">i8", "big-endian"},
      {">f8", "big-endian"},
      {"|f4", "needs a byte order"},
      {"", "unsupported dtype ''"},
  };
  int k = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.descr);
    expect_error(raw("d" + std::to_string(k++) + ".npy",
                     file(std::string("{'descr': '") + c.descr +
                              "', 'fortran_order': False, 'shape': (2,), }",
                          16)),
                 c.needle);
  }
}

TEST_F(NpyTest, FortranOrder) {
  expect_error(raw("f.npy", file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24)),
               "Fortran");
}

TEST_F(NpyTest, TruncatedAndTrailingData) {
  const std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  expect_error(raw("short.npy", file(h, 23)), "truncated data");
  expect_error(raw("none.npy", file(h, 0)), "needs 24 bytes, the file has 0");
  expect_error(raw("long.npy", file(h, 25)), "1 unexpected bytes after the data");
  // A shape whose size overflows is an error, not an allocation.
  expect_error(raw("huge.npy", file("{'descr': '<f4', 'fortran_order': False, "
                                    "'shape': (1000000000, 1000000000), }",
                                    8)),
               "truncated data");
}

TEST_F(NpyTest, WriteErrors) {
  npy::Array a(npy::DType::kF32, {2});
  try {
    npy::write(dir_ + "/no/such/dir/x.npy", a);
    ADD_FAILURE() << "no error";
  } catch (const npy::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot create"), std::string::npos) << e.what();
  }
  EXPECT_THROW(npy::write(dir_, a), npy::Error);  // a directory
}

TEST_F(NpyTest, RankAndShapeChecks) {
  npy::Array m(npy::DType::kF32, {2, 3}), v(npy::DType::kF32, {3}), s(npy::DType::kF32, {});
  EXPECT_NO_THROW(npy::require_rank(m, 1, 2, "--base"));
  EXPECT_NO_THROW(npy::require_rank(v, 1, 2, "--base"));
  try {
    npy::require_rank(s, 1, 2, "--base");
    ADD_FAILURE();
  } catch (const npy::Error& e) {
    EXPECT_STREQ(e.what(), "--base: wrong rank: shape [] is 0-D, expected 1-D to 2-D");
  }
  try {
    npy::require_same_shape(m, "--base", v, "--principle");
    ADD_FAILURE();
  } catch (const npy::Error& e) {
    EXPECT_STREQ(e.what(), "mismatched shapes: --base is [2,3] but --principle is [3]");
  }
  EXPECT_THROW(npy::Array(npy::DType::kF32, {-1}), npy::Error);
}

// ------------------------------------------------------------ half / bfloat16

TEST(NpyConvert, HalfKnownValues) {
  EXPECT_EQ(linalign::math::float_to_fp16(1.0f), 0x3c00);
  EXPECT_EQ(linalign::math::float_to_fp16(-2.0f), 0xc000);
  EXPECT_EQ(linalign::math::float_to_fp16(65504.f), 0x7bff);
  EXPECT_EQ(linalign::math::float_to_fp16(65519.f), 0x7bff);  // rounds down
  EXPECT_EQ(linalign::math::float_to_fp16(65520.f), 0x7c00);  // rounds to inf
  EXPECT_EQ(linalign::math::float_to_fp16(std::ldexp(1.f, -24)), 0x0001);
  EXPECT_EQ(linalign::math::float_to_fp16(std::ldexp(1.f, -25)), 0x0000);   // tie to even: 0
  EXPECT_EQ(linalign::math::float_to_fp16(std::ldexp(1.5f, -25)), 0x0001);  // above the tie
  EXPECT_EQ(linalign::math::float_to_fp16(std::ldexp(3.f, -25)), 0x0002);   // tie 1.5 ulp -> even 2
  EXPECT_EQ(linalign::math::float_to_fp16(std::ldexp(1.f, -14)), 0x0400);   // smallest normal
  EXPECT_EQ(linalign::math::float_to_fp16(1.f + std::ldexp(1.f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(linalign::math::float_to_fp16(1.f + std::ldexp(3.f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(linalign::math::float_to_fp16(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(linalign::math::float_to_fp16(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(linalign::math::float_to_fp16(-0.f), 0x8000);
  EXPECT_TRUE(std::isnan(linalign::math::fp16_to_float(
      linalign::math::float_to_fp16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(linalign::math::fp16_to_float(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(linalign::math::fp16_to_float(0x03ff), std::ldexp(1023.f, -24));
  EXPECT_EQ(linalign::math::fp16_to_float(0x7bff), 65504.f);
  EXPECT_EQ(linalign::math::fp16_to_float(0xfc00), -std::numeric_limits<float>::infinity());
}

TEST(NpyConvert, HalfRoundTripsEveryValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = linalign::math::fp16_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(linalign::math::float_to_fp16(f), h) << std::hex << h;
  }
}

TEST(NpyConvert, BFloat16) {
  EXPECT_EQ(linalign::math::float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(linalign::math::bf16_to_float(0x3f80), 1.0f);
  EXPECT_EQ(linalign::math::bf16_to_float(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(linalign::math::float_to_bf16(1.f + std::ldexp(1.f, -8)), 0x3f80);  // tie -> even
  EXPECT_EQ(linalign::math::float_to_bf16(1.f + std::ldexp(3.f, -8)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(linalign::math::float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_TRUE(std::isnan(linalign::math::bf16_to_float(
      linalign::math::float_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float f = linalign::math::bf16_to_float(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(linalign::math::float_to_bf16(f), b) << std::hex << b;
  }
}

// ------------------------------------------------------------ strict numbers

TEST(CliParse, Floats) {
  float f = 0;
  std::string why;
  EXPECT_TRUE(parse::to_f32("1.5", &f, &why));
  EXPECT_EQ(f, 1.5f);
  EXPECT_TRUE(parse::to_f32("-2e-3", &f, &why));
  EXPECT_EQ(f, -2e-3f);
  EXPECT_TRUE(parse::to_f32(".5", &f, &why));
  EXPECT_TRUE(parse::to_f32("0", &f, &why));
  EXPECT_TRUE(parse::to_f32("nan", &f, &why));  // passed on: the library names the argument
  EXPECT_TRUE(std::isnan(f));
  EXPECT_TRUE(parse::to_f32("-inf", &f, &why));
  EXPECT_TRUE(std::isinf(f));
  for (const char* bad : {"", " 1", "1 ", "1.5x", "x", "1,5", "--1", "0x"}) {
    EXPECT_FALSE(parse::to_f32(bad, &f, &why)) << "'" << bad << "'";
  }
  EXPECT_FALSE(parse::to_f32("", &f, &why));
  EXPECT_EQ(why, "empty value");
  EXPECT_FALSE(parse::to_f32("1e999", &f, &why));
  EXPECT_NE(why.find("out of range"), std::string::npos);
  EXPECT_FALSE(parse::to_f32("1e39", &f, &why));
  EXPECT_NE(why.find("float32"), std::string::npos);
  EXPECT_FALSE(parse::to_f32("1e-50", &f, &why));
  EXPECT_NE(why.find("underflow"), std::string::npos);
}

TEST(CliParse, Integers) {
  int32_t i = 0;
  int64_t l = 0;
  uint64_t u = 0;
  std::string why;
  EXPECT_TRUE(parse::to_i32("-100", &i, &why));
  EXPECT_EQ(i, -100);
  EXPECT_TRUE(parse::to_i32("2147483647", &i, &why));
  EXPECT_FALSE(parse::to_i32("2147483648", &i, &why));
  EXPECT_NE(why.find("out of range"), std::string::npos);
  EXPECT_TRUE(parse::to_i32("-2147483648", &i, &why));
  EXPECT_EQ(i, std::numeric_limits<int32_t>::min());
  for (const char* bad : {"", "1.5", "1x", " 1", "1 ", "+", "-", "0x10", "1e3"}) {
    EXPECT_FALSE(parse::to_i32(bad, &i, &why)) << "'" << bad << "'";
  }
  EXPECT_TRUE(parse::to_i64("-9223372036854775808", std::numeric_limits<int64_t>::min(),
                            std::numeric_limits<int64_t>::max(), &l, &why));
  EXPECT_EQ(l, std::numeric_limits<int64_t>::min());
  EXPECT_FALSE(parse::to_i64("9223372036854775808", std::numeric_limits<int64_t>::min(),
                             std::numeric_limits<int64_t>::max(), &l, &why));
  EXPECT_FALSE(parse::to_i64("5", 0, 4, &l, &why));
  EXPECT_EQ(why, "out of range [0, 4]");
  EXPECT_TRUE(parse::to_u64("18446744073709551615", &u, &why));
  EXPECT_EQ(u, std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(parse::to_u64("18446744073709551616", &u, &why));
  EXPECT_TRUE(parse::to_u64("0xDEADbeef", &u, &why));
  EXPECT_EQ(u, 0xdeadbeefull);
  EXPECT_FALSE(parse::to_u64("-1", &u, &why));
  EXPECT_EQ(why, "must not be negative");
  EXPECT_FALSE(parse::to_u64("0xg", &u, &why));
}

}  // namespace
