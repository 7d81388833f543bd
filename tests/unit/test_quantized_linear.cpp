// AwqLinear / GptqLinear on the CPU reference path: round-to-nearest quantization, loading from a
// synthetic safetensors checkpoint (correct and malformed), the AWQ -> ExLlama path, and fusion.
// Packed tensors are written with pack_* here: those are checked against independent packers in
// test_quant_packing.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "layers/dense_linear.h"
#include "layers/quantized_linear.h"
#include "model/safetensors.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::require_error;

namespace {

std::vector<float> random_values(std::mt19937& rng, size_t count, float spread) {
  std::normal_distribution<float> dist(0.0f, spread);
  std::vector<float> values(count);
  for (float& value : values) value = dist(rng);
  return values;
}

std::vector<float> fp16_values(std::vector<float> values) {
  for (float& value : values) value = half_to_float(float_to_half(value));
  return values;
}

std::vector<uint8_t> bytes_of(const std::vector<int32_t>& words) {
  std::vector<uint8_t> bytes(words.size() * 4);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}

// A checkpoint directory holding one model.safetensors, removed at scope exit.
class TestCheckpoint {
 public:
  TestCheckpoint() : dir_(test::make_temp_dir("quant")) {}
  ~TestCheckpoint() { std::filesystem::remove_all(dir_); }
  SafetensorsWriter writer;
  void add_i32(const std::string& name, std::vector<int64_t> shape, const std::vector<int32_t>& words) {
    writer.add(name, DType::I32, std::move(shape), bytes_of(words));
  }
  Checkpoint open() {
    writer.write(dir_ + "/model.safetensors");
    return Checkpoint::open_dir(dir_);
  }

 private:
  std::string dir_;
};

const std::string kPrefix = "model.layers.3.self_attn.q_proj";

// Packed AWQ tensors of a random 4-bit matrix N = 32, K = 64, g = 32 (G = 2), bias F16.
struct AwqFixture {
  QuantizedMatrix matrix;
  std::vector<float> bias;
  AwqTensors packed;
  AwqFixture() {
    std::mt19937 rng(11);
    const std::vector<float> weight = random_values(rng, 32 * 64, 0.05f);
    RtnOptions options;
    options.group_size = 32;
    matrix = rtn_quantize(weight.data(), 32, 64, options);
    bias = fp16_values(random_values(rng, 32, 0.1f));
    packed = pack_awq(matrix);
  }
  void write(TestCheckpoint& checkpoint) const {
    checkpoint.add_i32(kPrefix + ".qweight", {64, 4}, packed.qweight);
    checkpoint.add_i32(kPrefix + ".qzeros", {2, 4}, packed.qzeros);
    checkpoint.writer.add_f16(kPrefix + ".scales", {2, 32}, packed.scales);
    checkpoint.writer.add_f16(kPrefix + ".bias", {32}, bias);
  }
};

void require_same_matrix(const QuantizedMatrix& a, const QuantizedMatrix& b) {
  REQUIRE(a.bits == b.bits);
  REQUIRE(a.N == b.N);
  REQUIRE(a.K == b.K);
  REQUIRE(a.group_size == b.group_size);
  REQUIRE(a.q == b.q);
  REQUIRE(a.zeros == b.zeros);
  REQUIRE(a.scales == b.scales);
  REQUIRE(a.g_idx == b.g_idx);
}

std::vector<float> run(const Linear& linear, const std::vector<float>& x, int64_t M) {
  std::vector<float> y(static_cast<size_t>(M * linear.out_features()));
  linear.forward(x.data(), M, y.data());
  return y;
}

}  // namespace

TEST_CASE("rtn_quantize asymmetric: error within half a step, zeros in range", "[quant]") {
  std::mt19937 rng(42);
  const int64_t N = 16, K = 256;
  std::vector<float> weight = random_values(rng, static_cast<size_t>(N * K), 0.02f);
  weight[5] = 0.0f;                               // an exact zero
  for (int64_t k = 128; k < 160; ++k) weight[static_cast<size_t>(K + k)] = 0.01f + 0.001f * k;  // all positive
  for (int bits : {2, 3, 4, 8})
    for (int64_t group_size : {32, 64, 128, -1}) {
      INFO("bits " << bits << " group " << group_size);
      RtnOptions options;
      options.bits = bits;
      options.group_size = group_size;
      const QuantizedMatrix m = rtn_quantize(weight.data(), N, K, options);
      m.validate("rtn");  // zeros and q in range, scales fp16, g_idx = k / g
      const int maxq = (1 << bits) - 1;
      const int64_t g = group_size == -1 ? K : group_size;
      CHECK_FALSE(m.has_act_order());
      const std::vector<float> dequantized = m.dequantize();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) {
          const size_t entry = static_cast<size_t>((k / g) * N + n);
          const float scale = m.scales[entry];
          const float w = weight[static_cast<size_t>(n * K + k)];
          const float error = std::fabs(dequantized[static_cast<size_t>(n * K + k)] - w);
          const int q = m.q[static_cast<size_t>(n * K + k)];
          // Half a step, plus float slack; at the clamp ends the fp16-rounded scale may cover the range
          // short by up to maxq * 2^-11 steps.
          const float bound = (q == 0 || q == maxq) ? scale * (0.5f + maxq * 0x1p-11f) : scale * 0.5f;
          REQUIRE(error <= bound * (1.0f + 1e-5f) + 1e-9f);
        }
      // The scale is the formula's, rounded to fp16: spot-check row 0, group 0.
      float xmin = 0.0f, xmax = 0.0f;
      for (int64_t k = 0; k < g; ++k) {
        xmin = std::min(xmin, weight[static_cast<size_t>(k)]);
        xmax = std::max(xmax, weight[static_cast<size_t>(k)]);
      }
      const float scale = half_to_float(float_to_half(std::max(xmax - xmin, 1e-5f) / maxq));
      CHECK(m.scales[0] == scale);
      CHECK(m.zeros[0] == static_cast<int32_t>(std::nearbyint(-xmin / scale)));
    }
  // A group of only positive weights still contains 0 in its range: its zero is 0.
  RtnOptions options;
  options.group_size = 32;
  const QuantizedMatrix m = rtn_quantize(weight.data(), N, K, options);
  CHECK(m.zeros[static_cast<size_t>((128 / 32) * N + 1)] == 0);
}

TEST_CASE("rtn_quantize symmetric uses the mid zero and 2 max|w| / maxq", "[quant]") {
  std::mt19937 rng(8);
  const int64_t N = 8, K = 64;
  const std::vector<float> weight = random_values(rng, static_cast<size_t>(N * K), 0.03f);
  for (int bits : {2, 3, 4, 8}) {
    RtnOptions options;
    options.bits = bits;
    options.group_size = 32;
    options.symmetric = true;
    const QuantizedMatrix m = rtn_quantize(weight.data(), N, K, options);
    for (int32_t zero : m.zeros) CHECK(zero == (1 << (bits - 1)));
    float absmax = 0.0f;
    for (int64_t k = 0; k < 32; ++k) absmax = std::max(absmax, std::fabs(weight[static_cast<size_t>(k)]));
    CHECK(m.scales[0] == half_to_float(float_to_half(2.0f * absmax / ((1 << bits) - 1))));
  }
}

TEST_CASE("rtn_quantize: partial last group, group -1, bad options", "[quant]") {
  std::vector<float> weight(8 * 40, 0.25f);
  RtnOptions options;
  options.group_size = 16;
  const QuantizedMatrix m = rtn_quantize(weight.data(), 8, 40, options);
  CHECK(m.groups() == 3);
  CHECK(m.g_idx.back() == 2);
  options.group_size = -1;
  CHECK(rtn_quantize(weight.data(), 8, 40, options).groups() == 1);
  options.bits = 5;
  require_error([&] { rtn_quantize(weight.data(), 8, 40, options); }, {"bits 5"});
  options.bits = 4;
  options.group_size = 0;
  require_error([&] { rtn_quantize(weight.data(), 8, 40, options); }, {"group_size 0"});
  weight[3] = NAN;
  options.group_size = 16;
  require_error([&] { rtn_quantize(weight.data(), 8, 40, options); }, {"weight [0, 3]", "not finite"});
}

TEST_CASE("AwqLinear loads a checkpoint into the exact matrix", "[quant]") {
  const AwqFixture fixture;
  TestCheckpoint files;
  fixture.write(files);
  const Checkpoint checkpoint = files.open();
  const auto linear = AwqLinear::load(checkpoint, kPrefix, 32, 64, 32, true);
  require_same_matrix(linear->matrix(), fixture.matrix);
  CHECK(linear->bias() == fixture.bias);
  CHECK(linear->describe() == "AwqLinear int4 g32");
  // forward = dense GEMM on the dequantized weight, bias added once.
  std::mt19937 rng(1);
  const std::vector<float> x = random_values(rng, 3 * 64, 1.0f);
  const DenseLinear dense(fixture.matrix.dequantize(), fixture.bias, 32, 64);
  CHECK(run(*linear, x, 3) == run(dense, x, 3));
}

TEST_CASE("AwqLinear::load names the tensor and the expectation when the file is wrong", "[quant]") {
  const AwqFixture fixture;
  TestCheckpoint files;
  SECTION("qweight with the wrong shape") {
    files.add_i32(kPrefix + ".qweight", {64, 3}, std::vector<int32_t>(64 * 3));
    files.add_i32(kPrefix + ".qzeros", {2, 4}, fixture.packed.qzeros);
    files.writer.add_f16(kPrefix + ".scales", {2, 32}, fixture.packed.scales);
    const Checkpoint checkpoint = files.open();
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 32, 64, 32, false); },
                  {"model.layers.3.self_attn.q_proj.qweight: expected I32 [64, 4], got I32 [64, 3]"});
  }
  SECTION("qzeros with the wrong shape") {
    files.add_i32(kPrefix + ".qweight", {64, 4}, fixture.packed.qweight);
    files.add_i32(kPrefix + ".qzeros", {4, 2}, fixture.packed.qzeros);
    files.writer.add_f16(kPrefix + ".scales", {2, 32}, fixture.packed.scales);
    const Checkpoint checkpoint = files.open();
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 32, 64, 32, false); },
                  {"q_proj.qzeros: expected I32 [2, 4], got I32 [4, 2]"});
  }
  SECTION("scales stored as I32") {
    files.add_i32(kPrefix + ".qweight", {64, 4}, fixture.packed.qweight);
    files.add_i32(kPrefix + ".qzeros", {2, 4}, fixture.packed.qzeros);
    files.add_i32(kPrefix + ".scales", {2, 32}, std::vector<int32_t>(64, 1));
    const Checkpoint checkpoint = files.open();
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 32, 64, 32, false); },
                  {"q_proj.scales: expected F16 [2, 32], got I32 [2, 32]"});
  }
  SECTION("a scale that is not finite") {
    fixture.write(files);
    std::vector<float> scales = fixture.packed.scales;
    scales[33] = INFINITY;
    files.writer.add_f16(kPrefix + ".scales", {2, 32}, scales);  // replaces the good one
    const Checkpoint checkpoint = files.open();
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 32, 64, 32, false); },
                  {"q_proj.scales", "[1, 1]", "finite"});
  }
  SECTION("a missing tensor, a group size not dividing K, N not a multiple of 8") {
    files.add_i32(kPrefix + ".qweight", {64, 4}, fixture.packed.qweight);
    const Checkpoint checkpoint = files.open();
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 32, 64, 32, false); }, {"q_proj.qzeros"});
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 32, 64, 100, false); },
                  {kPrefix.c_str(), "in_features 64 is not divisible by group_size 100"});
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 36, 64, 32, false); }, {"out_features 36", "8"});
    require_error([&] { AwqLinear::load(checkpoint, kPrefix, 32, 64, 0, false); }, {"group_size 0"});
  }
}

TEST_CASE("GptqLinear loads 3-bit act-order v1 and 4-bit without g_idx", "[quant]") {
  std::mt19937 rng(77);
  SECTION("3-bit, act-order, v1 zeros, BF16 scales accepted") {
    const std::vector<float> weight = random_values(rng, 64 * 128, 0.05f);
    RtnOptions options;
    options.bits = 3;
    options.group_size = 32;
    QuantizedMatrix truth = rtn_quantize(weight.data(), 64, 128, options);
    std::shuffle(truth.g_idx.begin(), truth.g_idx.end(), rng);  // act-order: arbitrary group per column
    for (int32_t& zero : truth.zeros) zero = std::max(zero, 1);  // v1 cannot store 0
    const GptqTensors packed = pack_gptq(truth, GptqZeros::V1);
    TestCheckpoint files;
    files.add_i32(kPrefix + ".qweight", {12, 64}, packed.qweight);  // K * 3 / 32 = 12
    files.add_i32(kPrefix + ".qzeros", {4, 6}, packed.qzeros);      // N * 3 / 32 = 6
    std::vector<uint8_t> bf16(packed.scales.size() * 2);
    for (size_t i = 0; i < packed.scales.size(); ++i) {
      const uint16_t bits = float_to_bf16(packed.scales[i]);
      std::memcpy(&bf16[2 * i], &bits, 2);
    }
    files.writer.add(kPrefix + ".scales", DType::BF16, {4, 64}, bf16);
    files.add_i32(kPrefix + ".g_idx", {128}, packed.g_idx);
    const Checkpoint checkpoint = files.open();
    GptqFormat format;
    format.bits = 3;
    format.group_size = 32;
    format.sym = false;
    format.zeros = GptqZeros::V1;
    const auto linear = GptqLinear::load(checkpoint, kPrefix, 64, 128, format, true, false);
    // BF16 scales are rounded to fp16 at load: compare against the same rounding.
    QuantizedMatrix expected = truth;
    for (size_t i = 0; i < expected.scales.size(); ++i)
      expected.scales[i] = half_to_float(float_to_half(bf16_to_float(float_to_bf16(truth.scales[i]))));
    require_same_matrix(linear->matrix(), expected);
    CHECK(linear->describe() == "GptqLinear int3 g32 act-order");
  }
  SECTION("4-bit, group -1, v2 zeros, no g_idx in the file") {
    const std::vector<float> weight = random_values(rng, 16 * 64, 0.05f);
    RtnOptions options;
    options.group_size = -1;
    const QuantizedMatrix truth = rtn_quantize(weight.data(), 16, 64, options);
    const GptqTensors packed = pack_gptq(truth, GptqZeros::V2);
    TestCheckpoint files;
    files.add_i32(kPrefix + ".qweight", {8, 16}, packed.qweight);
    files.add_i32(kPrefix + ".qzeros", {1, 2}, packed.qzeros);
    files.writer.add_f16(kPrefix + ".scales", {1, 16}, packed.scales);
    const Checkpoint checkpoint = files.open();
    GptqFormat format;
    format.group_size = -1;
    format.zeros = GptqZeros::V2;
    const auto linear = GptqLinear::load(checkpoint, kPrefix, 16, 64, format, false, false);
    require_same_matrix(linear->matrix(), truth);
    CHECK(linear->describe() == "GptqLinear int4 g=all");
    require_error([&] { GptqLinear::load(checkpoint, kPrefix, 16, 64, format, true, false); },
                  {"q_proj.g_idx", "missing"});
  }
}

TEST_CASE("GptqLinear::load names the tensor when the file is wrong", "[quant]") {
  std::mt19937 rng(5);
  const std::vector<float> weight = random_values(rng, 32 * 64, 0.05f);
  RtnOptions options;
  options.group_size = 32;
  const GptqTensors packed = pack_gptq(rtn_quantize(weight.data(), 32, 64, options), GptqZeros::V2);
  GptqFormat format;
  format.group_size = 32;
  format.zeros = GptqZeros::V2;
  TestCheckpoint files;
  files.add_i32(kPrefix + ".qweight", {8, 32}, packed.qweight);
  files.writer.add_f16(kPrefix + ".scales", {2, 32}, packed.scales);
  SECTION("g_idx out of range") {
    std::vector<int32_t> g_idx = packed.g_idx;
    g_idx[17] = 2;  // G = 2
    files.add_i32(kPrefix + ".qzeros", {2, 4}, packed.qzeros);
    files.add_i32(kPrefix + ".g_idx", {64}, g_idx);
    const Checkpoint checkpoint = files.open();
    require_error([&] { GptqLinear::load(checkpoint, kPrefix, 32, 64, format, true, false); },
                  {"q_proj.g_idx", "entry 17 is 2", "[0, 2)"});
  }
  SECTION("qzeros with the wrong shape") {
    files.add_i32(kPrefix + ".qzeros", {2, 8}, std::vector<int32_t>(16));
    const Checkpoint checkpoint = files.open();
    require_error([&] { GptqLinear::load(checkpoint, kPrefix, 32, 64, format, false, false); },
                  {"q_proj.qzeros: expected I32 [2, 4], got I32 [2, 8]"});
  }
  SECTION("layout rules") {
    files.add_i32(kPrefix + ".qzeros", {2, 4}, packed.qzeros);
    const Checkpoint checkpoint = files.open();
    format.bits = 3;  // 3-bit needs K and N multiples of 32: N = 48 is not
    require_error([&] { GptqLinear::load(checkpoint, kPrefix, 48, 64, format, false, false); },
                  {kPrefix.c_str(), "out_features 48", "32"});
    format.bits = 5;
    require_error([&] { GptqLinear::load(checkpoint, kPrefix, 32, 64, format, false, false); }, {"bits 5"});
    format.bits = 4;
    require_error([&] { GptqLinear::load(checkpoint, kPrefix, 32, 64, format, false, true); }, {"q_proj.bias"});
  }
}

TEST_CASE("GptqLinear::from_awq keeps AWQ's integers, zeros and scales exactly", "[quant]") {
  AwqFixture fixture;
  fixture.matrix.zeros[0] = 0;  // the zero a "zeros - 1" conversion breaks
  fixture.matrix.zeros[1] = 15;
  const auto awq = AwqLinear::from_matrix(fixture.matrix, fixture.bias);
  const auto gptq = GptqLinear::from_awq(*awq);
  require_same_matrix(gptq->matrix(), awq->matrix());
  CHECK(gptq->bias() == awq->bias());
  CHECK(gptq->describe() == "GptqLinear int4 g32 (ExLlama path, from AWQ)");
  std::mt19937 rng(2);
  const std::vector<float> x = random_values(rng, 2 * 64, 1.0f);
  CHECK(run(*gptq, x, 2) == run(*awq, x, 2));
}

TEST_CASE("concat_rows equals separate forwards, each bias applied once", "[quant]") {
  std::mt19937 rng(31);
  const int64_t K = 64;
  const std::vector<float> x = random_values(rng, 4 * K, 1.0f);
  std::vector<std::unique_ptr<DenseLinear>> dense;
  for (int64_t N : {32, 16, 16}) {
    std::vector<float> bias = N == 32 ? std::vector<float>() : fp16_values(random_values(rng, static_cast<size_t>(N), 0.5f));
    dense.push_back(std::make_unique<DenseLinear>(random_values(rng, static_cast<size_t>(N * K), 0.05f), bias, N, K));
  }
  // The reference: separate forwards, side by side per token.
  const auto require_fused_matches = [&](const Linear& fused, const std::vector<const Linear*>& parts) {
    const std::vector<float> y = run(fused, x, 4);
    int64_t offset = 0;
    for (const Linear* part : parts) {
      const std::vector<float> y_part = run(*part, x, 4);
      for (int64_t t = 0; t < 4; ++t)
        for (int64_t n = 0; n < part->out_features(); ++n) {
          const float expected = y_part[static_cast<size_t>(t * part->out_features() + n)];
          REQUIRE(y[static_cast<size_t>(t * fused.out_features() + offset + n)] ==
                  Approx(expected).margin(1e-5).epsilon(1e-5));
        }
      offset += part->out_features();
    }
    REQUIRE(offset == fused.out_features());
  };
  SECTION("AWQ q/k/v") {
    std::vector<std::unique_ptr<AwqLinear>> parts;
    for (const auto& d : dense) parts.push_back(AwqLinear::from_dense(*d, 32));
    const std::vector<const Linear*> linears = {parts[0].get(), parts[1].get(), parts[2].get()};
    REQUIRE(AwqLinear::can_concat(linears));
    const auto fused = AwqLinear::concat_rows({parts[0].get(), parts[1].get(), parts[2].get()});
    CHECK(fused->out_features() == 64);
    CHECK(fused->bias().size() == 64);
    CHECK(fused->bias()[0] == 0.0f);  // q had no bias: zeros, not a neighbour's bias
    require_fused_matches(*fused, linears);
  }
  SECTION("GPTQ 4-bit act-order parts sharing one g_idx") {
    std::vector<std::unique_ptr<GptqLinear>> parts;
    std::vector<int32_t> g_idx(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) g_idx[static_cast<size_t>(k)] = static_cast<int32_t>(k / 16);
    std::shuffle(g_idx.begin(), g_idx.end(), rng);
    for (const auto& d : dense) {
      RtnOptions options;
      options.group_size = 16;
      QuantizedMatrix matrix = rtn_quantize(d->weight().data(), d->out_features(), K, options);
      matrix.g_idx = g_idx;  // same integers, read through the act-order map
      parts.push_back(GptqLinear::from_matrix(matrix, d->bias()));
    }
    const std::vector<const Linear*> linears = {parts[0].get(), parts[1].get(), parts[2].get()};
    REQUIRE(GptqLinear::can_concat(linears));
    const auto fused = GptqLinear::concat_rows({parts[0].get(), parts[1].get(), parts[2].get()});
    CHECK(fused->describe() == "GptqLinear int4 g16 act-order");
    require_fused_matches(*fused, linears);
  }
  SECTION("what cannot be fused") {
    const auto awq32 = AwqLinear::from_dense(*dense[0], 32);
    const auto awq64 = AwqLinear::from_dense(*dense[1], 64);
    RtnOptions options;
    options.group_size = 32;
    const auto gptq = GptqLinear::from_dense(*dense[1], options);
    QuantizedMatrix shuffled = gptq->matrix();
    std::shuffle(shuffled.g_idx.begin(), shuffled.g_idx.end(), rng);
    const auto gptq_act_order = GptqLinear::from_matrix(shuffled, {});
    options.bits = 8;
    const auto gptq8 = GptqLinear::from_dense(*dense[2], options);
    CHECK_FALSE(AwqLinear::can_concat({awq32.get(), awq64.get()}));
    CHECK_FALSE(AwqLinear::can_concat({awq32.get(), gptq.get()}));
    CHECK_FALSE(AwqLinear::can_concat({awq32.get(), dense[1].get()}));
    CHECK_FALSE(AwqLinear::can_concat({}));
    CHECK_FALSE(GptqLinear::can_concat({gptq.get(), awq32.get()}));
    CHECK_FALSE(GptqLinear::can_concat({gptq.get(), gptq8.get()}));
    CHECK_FALSE(GptqLinear::can_concat({gptq.get(), gptq_act_order.get()}));
    CHECK(GptqLinear::can_concat({gptq.get(), gptq.get()}));
    require_error([&] { AwqLinear::concat_rows({awq32.get(), awq64.get()}); }, {"concat_rows", "group_size"});
    require_error([&] { GptqLinear::concat_rows({gptq.get(), gptq_act_order.get()}); }, {"g_idx"});
  }
}

TEST_CASE("from_dense and from_matrix refuse what the format cannot hold", "[quant]") {
  const DenseLinear dense(std::vector<float>(32 * 48, 0.1f), {}, 32, 48);
  require_error([&] { AwqLinear::from_dense(dense, 32); }, {"in_features 48 is not divisible by group_size 32"});
  CHECK(AwqLinear::from_dense(dense, -1)->describe() == "AwqLinear int4 g=all");
  RtnOptions options;
  options.bits = 3;
  require_error([&] { GptqLinear::from_dense(dense, options); }, {"in_features 48", "32"});
  options.bits = 4;
  options.group_size = 32;  // GPTQ allows a partial last group: G = 2
  CHECK(GptqLinear::from_dense(dense, options)->matrix().groups() == 2);
  const DenseLinear dense64(std::vector<float>(32 * 64, 0.1f), {}, 32, 64);
  QuantizedMatrix act_order = GptqLinear::from_dense(dense64, options)->matrix();
  act_order.g_idx[0] = 1;
  require_error([&] { AwqLinear::from_matrix(act_order, {}); }, {"act-order"});
  require_error([&] { GptqLinear::from_matrix(act_order, std::vector<float>(5)); }, {"bias"});
}
