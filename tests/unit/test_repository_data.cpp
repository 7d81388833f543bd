// The repository stands alone: the evaluation and calibration texts live in tests/data/text/ with the
// sizes and SHA-256 sums its README states (the committed reference numbers were measured on exactly
// these bytes), and `run-llm quantize`'s default calibration text is found from the executable's
// directory whatever the working directory is.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "model/quantize/calibration.h"
#include "tests/catch.h"
#include "tests/test_support.h"

namespace runllm {
namespace {

// FIPS 180-4 SHA-256, enough to check a file's bytes against the sum in tests/data/text/README.md.
std::string sha256_hex(const std::string& data) {
  static const uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
      0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
      0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
      0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
      0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
      0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
      0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::string message = data;
  const uint64_t bit_length = static_cast<uint64_t>(data.size()) * 8;
  message += static_cast<char>(0x80);
  while (message.size() % 64 != 56) message += '\0';
  for (int shift = 56; shift >= 0; shift -= 8) message += static_cast<char>((bit_length >> shift) & 0xff);
  const auto rotate = [](uint32_t x, int n) { return (x >> n) | (x << (32 - n)); };
  for (size_t block = 0; block < message.size(); block += 64) {
    uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(message.data() + block + 4 * i);
      w[i] = (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
    }
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotate(w[i - 15], 7) ^ rotate(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotate(w[i - 2], 17) ^ rotate(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = hh + (rotate(e, 6) ^ rotate(e, 11) ^ rotate(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotate(a, 2) ^ rotate(a, 13) ^ rotate(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
  }
  std::string hex;
  char byte[3];
  for (uint32_t word : h)
    for (int shift = 24; shift >= 0; shift -= 8) {
      std::snprintf(byte, sizeof byte, "%02x", (word >> shift) & 0xff);
      hex += byte;
    }
  return hex;
}

TEST_CASE("sha256 of known strings", "[repository-data]") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("the evaluation and calibration texts are in the repository, byte for byte", "[repository-data]") {
  const std::string wiki = test::read_file(test::text_data("wiki.test.raw"));
  CHECK(wiki.size() == 1290547);
  CHECK(sha256_hex(wiki) == "4f3e427e4aff23acff917a8a51aeae21bf12832256e26914c8fc250dcef4103c");
  const std::string pride = test::read_file(test::text_data("pride_and_prejudice.txt"));
  CHECK(pride.size() == 704145);
  CHECK(sha256_hex(pride) == "859c908774105fe56669e355156f2c9db0fe4ad2b6b67c068e3f8731aae55a99");
}

TEST_CASE("the default calibration text is found from the executable, whatever the working directory",
          "[repository-data]") {
  namespace fs = std::filesystem;
  const fs::path expected = fs::canonical(test::text_data("pride_and_prejudice.txt"));
  const fs::path saved = fs::current_path();
  const std::string elsewhere = test::make_temp_dir("calib-cwd");
  fs::current_path(elsewhere);
  std::string found, resolved;
  try {
    found = find_default_calibration_file();
    resolved = resolve_calibration_file("");
  } catch (...) {
    fs::current_path(saved);
    throw;
  }
  fs::current_path(saved);
  fs::remove_all(elsewhere);
  REQUIRE(!found.empty());
  CHECK(fs::path(found).is_absolute());
  CHECK(fs::canonical(found) == expected);
  CHECK(fs::canonical(resolved) == expected);
  // An explicit --calib wins, and the evaluation text is refused by name.
  CHECK(resolve_calibration_file(test::text_data("pride_and_prejudice.txt")) == test::text_data("pride_and_prejudice.txt"));
  test::require_error([] { resolve_calibration_file(test::text_data("wiki.test.raw")); }, {"evaluation text"});
}

}  // namespace
}  // namespace runllm
