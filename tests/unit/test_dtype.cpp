#include <cmath>
#include <cstdint>

#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"

using namespace runllm;

TEST_CASE("half conversion round-trips every finite half exactly", "[dtype]") {
  int checked = 0;
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    if (((h >> 10) & 0x1f) == 0x1f) continue;  // inf / nan
    REQUIRE(float_to_half(half_to_float(h)) == h);
    ++checked;
  }
  REQUIRE(checked == 63488);
}

TEST_CASE("float_to_half rounds to nearest even and saturates", "[dtype]") {
  REQUIRE(half_to_float(float_to_half(1.0f)) == 1.0f);
  REQUIRE(half_to_float(float_to_half(65504.0f)) == 65504.0f);
  REQUIRE(std::isinf(half_to_float(float_to_half(65520.0f))));
  // 1 + 2^-11 lies exactly between 1 and 1 + 2^-10: ties go to the even mantissa (1.0).
  REQUIRE(float_to_half(1.0f + std::ldexp(1.0f, -11)) == float_to_half(1.0f));
  REQUIRE(half_to_float(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11))) == 1.0f + std::ldexp(1.0f, -9));
  // Smallest subnormal half.
  REQUIRE(half_to_float(1) == std::ldexp(1.0f, -24));
  REQUIRE(float_to_half(std::ldexp(1.0f, -25)) == 0);  // tie to even -> 0
  REQUIRE(float_to_half(std::ldexp(1.5f, -25)) == 1);
}

TEST_CASE("bf16 conversion", "[dtype]") {
  REQUIRE(bf16_to_float(float_to_bf16(3.140625f)) == 3.140625f);
  REQUIRE(float_to_bf16(1.0f) == 0x3f80);
  REQUIRE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
}

TEST_CASE("dtype names", "[dtype]") {
  REQUIRE(dtype_from_name("BF16") == DType::BF16);
  REQUIRE(dtype_size(DType::I32) == 4);
  REQUIRE_THROWS_AS(dtype_from_name("F8_E4M3X"), Error);
}
