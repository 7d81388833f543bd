// W8A8 (int8 weights, int8 activations) on the CPU reference path: the activation quantizers, the
// exact int32 GEMM, W8A8Linear (load, from_dense, concat_rows, forward) and FakeW8A8Linear
// (FORMATS.md §6, FORMATS-REFERENCE.md §4).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/int8_gemm.h"
#include "layers/dense_linear.h"
#include "layers/w8a8_linear.h"
#include "model/safetensors.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::require_error;

namespace {

std::vector<float> random_normal(std::mt19937& rng, size_t count, float stddev) {
  std::normal_distribution<float> normal(0.0f, stddev);
  std::vector<float> values(count);
  for (float& value : values) value = normal(rng);
  return values;
}

std::vector<int8_t> random_int8(std::mt19937& rng, size_t count) {
  std::uniform_int_distribution<int> uniform(-128, 127);
  std::vector<int8_t> values(count);
  for (int8_t& value : values) value = static_cast<int8_t>(uniform(rng));
  return values;
}

// The plain reference: int64 accumulation in a triple loop.
std::vector<int64_t> int8_matmul_reference(const std::vector<int8_t>& a, const std::vector<int8_t>& w, int64_t M,
                                           int64_t N, int64_t K) {
  std::vector<int64_t> out(static_cast<size_t>(M * N), 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      int64_t sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += int64_t{a[m * K + k]} * int64_t{w[n * K + k]};
      out[m * N + n] = sum;
    }
  return out;
}

void require_gemm_exact(const std::vector<int8_t>& a, const std::vector<int8_t>& w, int64_t M, int64_t N, int64_t K) {
  std::vector<int32_t> acc(static_cast<size_t>(M * N), -1);
  cpu::int8_gemm_int32(a.data(), w.data(), M, N, K, acc.data());
  const std::vector<int64_t> expected = int8_matmul_reference(a, w, M, N, K);
  int64_t mismatches = 0;
  for (size_t i = 0; i < expected.size(); ++i) mismatches += int64_t{acc[i]} != expected[i];
  INFO("M=" << M << " N=" << N << " K=" << K);
  REQUIRE(mismatches == 0);
}

// The test's own statement of the activation rule (vLLM's formula, as int8_gemm.h documents it):
// scale = absmax / 127, xq = clamp(round_half_even(x * (127 / absmax)), -127, 127), all in fp32.
void reference_quantize_row(const float* x, int64_t K, const std::optional<float>& static_scale, int8_t* xq,
                            float* scale) {
  if (static_scale) {
    *scale = *static_scale;
    for (int64_t k = 0; k < K; ++k)
      xq[k] = static_cast<int8_t>(std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(x[k] / *static_scale))));
    return;
  }
  float absmax = 0.0f;
  for (int64_t k = 0; k < K; ++k) absmax = std::fmax(absmax, std::fabs(x[k]));
  *scale = absmax / 127.0f;
  const float inverse = absmax == 0.0f ? 0.0f : 127.0f / absmax;
  for (int64_t k = 0; k < K; ++k)
    xq[k] = static_cast<int8_t>(std::fmin(127.0f, std::fmax(-127.0f, std::nearbyint(x[k] * inverse))));
}

// y = Σ xq·w (int64) · a_scale · w_scale (+ b) in double. `magnitude` gets |Σ·scales| + |b| per output,
// the size the fp32 rounding error is relative to.
std::vector<double> reference_forward(const W8A8Linear& layer, const std::vector<float>& x, int64_t M,
                                      std::vector<double>* magnitude = nullptr) {
  const int64_t N = layer.out_features(), K = layer.in_features();
  std::vector<double> y(static_cast<size_t>(M * N));
  if (magnitude) magnitude->assign(y.size(), 0.0);
  std::vector<int8_t> xq(static_cast<size_t>(K));
  for (int64_t t = 0; t < M; ++t) {
    float a_scale = 0.0f;
    reference_quantize_row(x.data() + t * K, K, layer.input_scale(), xq.data(), &a_scale);
    for (int64_t n = 0; n < N; ++n) {
      int64_t sum = 0;
      for (int64_t k = 0; k < K; ++k) sum += int64_t{xq[k]} * int64_t{layer.weight()[n * K + k]};
      const double product = static_cast<double>(sum) * layer.weight_scale()[n] * a_scale;
      const double bias = layer.bias().empty() ? 0.0 : layer.bias()[n];
      y[t * N + n] = product + bias;
      if (magnitude) (*magnitude)[t * N + n] = std::fabs(product) + std::fabs(bias);
    }
  }
  return y;
}

std::vector<float> forward(const Linear& layer, const std::vector<float>& x, int64_t M) {
  std::vector<float> y(static_cast<size_t>(M * layer.out_features()));
  layer.forward(x.data(), M, y.data());
  return y;
}

double relative_error(const std::vector<float>& actual, const std::vector<float>& expected) {
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < actual.size(); ++i) {
    diff += (double{actual[i]} - expected[i]) * (double{actual[i]} - expected[i]);
    norm += double{expected[i]} * expected[i];
  }
  return std::sqrt(diff / norm);
}

// The 2-token, 3-output, 4-input example worked out by hand below.
W8A8Linear hand_layer(std::optional<float> input_scale = std::nullopt) {
  return W8A8Linear({1, 2, 3, 4, /**/ -128, 127, 0, 1, /**/ 10, -10, 5, -5}, {0.5f, 0.25f, 0.125f}, input_scale,
                    {1.0f, -1.0f, 0.5f}, 3, 4);
}
const std::vector<float> kHandInput = {127.0f, -63.5f, 2.5f, 10.0f, /**/ -254.0f, 3.0f, 5.0f, 0.4f};
const std::vector<float> kHandOutput = {23.5f, -6094.5f, 234.25f, /**/ -116.0f, 8254.0f, -319.5f};

// ---- checkpoint helpers ----

struct TensorSpec {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
using CheckpointSpec = std::map<std::string, TensorSpec>;

std::vector<uint8_t> i8_bytes(const std::vector<int8_t>& values) {
  std::vector<uint8_t> bytes(values.size());
  std::memcpy(bytes.data(), values.data(), values.size());
  return bytes;
}
std::vector<uint8_t> f32_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}
std::vector<uint8_t> half_bytes(const std::vector<float>& values, bool bf16) {
  std::vector<uint8_t> bytes;
  for (float value : values) {
    const uint16_t bits = bf16 ? float_to_bf16(value) : float_to_half(value);
    bytes.push_back(static_cast<uint8_t>(bits & 0xff));
    bytes.push_back(static_cast<uint8_t>(bits >> 8));
  }
  return bytes;
}

const std::string kPrefix = "model.layers.0.mlp.down_proj";

// The hand layer as llm-compressor would store it: int8 weight, F16 [N, 1] scales, BF16 bias.
CheckpointSpec hand_checkpoint() {
  const W8A8Linear layer = hand_layer();
  CheckpointSpec spec;
  spec[kPrefix + ".weight"] = {DType::I8, {3, 4}, i8_bytes(layer.weight())};
  spec[kPrefix + ".weight_scale"] = {DType::F16, {3, 1}, half_bytes(layer.weight_scale(), false)};
  spec[kPrefix + ".bias"] = {DType::BF16, {3}, half_bytes(layer.bias(), true)};
  return spec;
}

std::unique_ptr<W8A8Linear> load_spec(const CheckpointSpec& spec, const W8A8Format& format, bool with_bias = true) {
  const std::string dir = test::make_temp_dir("w8a8");
  struct Cleanup {
    std::string dir;
    ~Cleanup() { std::filesystem::remove_all(dir); }
  } cleanup{dir};
  SafetensorsWriter writer;
  for (const auto& [name, tensor] : spec) writer.add(name, tensor.dtype, tensor.shape, tensor.bytes);
  writer.write(dir + "/model.safetensors");
  const Checkpoint checkpoint = Checkpoint::open_dir(dir);
  return W8A8Linear::load(checkpoint, kPrefix, 3, 4, format, with_bias);
}

}  // namespace

TEST_CASE("quantize_per_token_int8 rounds half to even, handles zero and NaN rows", "[w8a8]") {
  // Row 0: absmax 127 -> scale 1, 127/absmax = 1: -63.5 -> -64 and 2.5 -> 2 (half to even).
  // Row 1: absmax 254 -> scale 2, 127/absmax = 0.5: -127, 1.5 -> 2, 2.5 -> 2, 0.2 -> 0.
  // Row 2: all zeros -> scale 0, no NaN. Row 3: a NaN -> scale NaN, xq 0.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> x = {127, -63.5f, 2.5f, 10, /**/ -254, 3, 5, 0.4f, /**/ 0, 0, 0, 0, /**/ 1, nan, 2, 3};
  std::vector<int8_t> xq(16, 99);
  std::vector<float> scales(4, -1.0f);
  cpu::quantize_per_token_int8(x.data(), 4, 4, xq.data(), scales.data());
  CHECK(std::vector<int8_t>(xq.begin(), xq.begin() + 8) == std::vector<int8_t>{127, -64, 2, 10, -127, 2, 2, 0});
  CHECK(std::vector<int8_t>(xq.begin() + 8, xq.end()) == std::vector<int8_t>(8, 0));
  CHECK(scales[0] == 1.0f);
  CHECK(scales[1] == 2.0f);
  CHECK(scales[2] == 0.0f);
  CHECK(std::isnan(scales[3]));
}

TEST_CASE("quantize_static_int8 divides by the scale and saturates at +-127", "[w8a8]") {
  // x / 0.5 = 2.5 -> 2, -200 -> -127, 1.5 -> 2, +inf -> 127.
  const std::vector<float> x = {1.25f, -100.0f, 0.75f, std::numeric_limits<float>::infinity()};
  std::vector<int8_t> xq(4);
  float scale = 0.0f;
  cpu::quantize_static_int8(x.data(), 1, 4, 0.5f, xq.data(), &scale);
  CHECK(xq == std::vector<int8_t>{2, -127, 2, 127});
  CHECK(scale == 0.5f);
}

TEST_CASE("int8_gemm_int32 equals an int64 triple loop", "[w8a8]") {
  std::mt19937 rng(1234);
  struct Shape {
    int64_t M, N, K;
  };
  // K = 1536 (two chunks), 2500 (not a multiple of the 1024 chunk), small K, M = 1 (the gemv path),
  // N > 2048 (several row tiles).
  for (const Shape& shape : {Shape{7, 33, 1536}, Shape{5, 17, 2500}, Shape{1, 29, 1536}, Shape{1, 9, 3001},
                             Shape{4, 3, 5}, Shape{3, 2100, 64}}) {
    const std::vector<int8_t> a = random_int8(rng, static_cast<size_t>(shape.M * shape.K));
    const std::vector<int8_t> w = random_int8(rng, static_cast<size_t>(shape.N * shape.K));
    require_gemm_exact(a, w, shape.M, shape.N, shape.K);
  }
}

TEST_CASE("int8_gemm_int32 is exact at the extremes of int8", "[w8a8]") {
  // -128 · -128 over K = 1536 is 25165824 > 2^24: only exact because of the 1024-wide chunks.
  const int64_t M = 3, N = 4, K = 1536;
  std::vector<int8_t> a(M * K, -128), w(N * K, -128);
  for (int64_t k = 0; k < K; ++k) {
    a[1 * K + k] = 127;                              // row 1: 127 · -128
    a[2 * K + k] = static_cast<int8_t>(k % 2 ? 127 : -128);  // row 2: alternating
    w[3 * K + k] = static_cast<int8_t>(k % 3 ? -128 : 127);
  }
  require_gemm_exact(a, w, M, N, K);
  std::vector<int32_t> acc(M * N);
  cpu::int8_gemm_int32(a.data(), w.data(), M, N, K, acc.data());
  CHECK(acc[0] == 128 * 128 * K);
  CHECK(acc[1 * N] == -127 * 128 * K);
  // Extremes with K not a multiple of the chunk.
  const int64_t K2 = 2049;
  std::vector<int8_t> a2(2 * K2, -128), w2(2 * K2, -128);
  for (int64_t k = 0; k < K2; ++k) w2[K2 + k] = 127;
  require_gemm_exact(a2, w2, 2, 2, K2);
}

TEST_CASE("int8_gemm_int32 handles empty K and refuses a K that could overflow int32", "[w8a8]") {
  std::vector<int8_t> a(2), w(3);
  std::vector<int32_t> acc(6, 7);
  cpu::int8_gemm_int32(a.data(), w.data(), 2, 3, 0, acc.data());
  CHECK(acc == std::vector<int32_t>(6, 0));
  require_error([&] { cpu::int8_gemm_int32(a.data(), w.data(), 1, 1, 131073, acc.data()); }, {"int8_gemm_int32", "K"});
}

TEST_CASE("W8A8Linear forward on a hand-computed example", "[w8a8]") {
  // w = [[1, 2, 3, 4], [-128, 127, 0, 1], [10, -10, 5, -5]], w_scale = [0.5, 0.25, 0.125], b = [1, -1, 0.5].
  // Token 0: x = [127, -63.5, 2.5, 10] -> a_scale 1, xq = [127, -64, 2, 10]
  //   acc = [127 - 128 + 6 + 40, -16256 - 8128 + 0 + 10, 1270 + 640 + 10 - 50] = [45, -24374, 1870]
  //   y = acc · 1 · w_scale + b = [22.5 + 1, -6093.5 - 1, 233.75 + 0.5] = [23.5, -6094.5, 234.25]
  // Token 1: x = [-254, 3, 5, 0.4] -> a_scale 2, xq = [-127, 2, 2, 0]
  //   acc = [-127 + 4 + 6, 16256 + 254, -1270 - 20 + 10] = [-117, 16510, -1280]
  //   y = acc · 2 · w_scale + b = [-117 + 1, 8255 - 1, -320 + 0.5] = [-116, 8254, -319.5]
  const W8A8Linear layer = hand_layer();
  CHECK(forward(layer, kHandInput, 2) == kHandOutput);
  CHECK(layer.describe() == "W8A8Linear int8 per-channel, dynamic per-token activations");

  // Static input scale 2 for both tokens: token 0 x/2 = [63.5 -> 64, -31.75 -> -32, 1.25 -> 1, 5]
  //   acc = [64 - 64 + 3 + 20, -8192 - 4064 + 0 + 5, 640 + 320 + 5 - 25] = [23, -12251, 940]
  //   y = acc · 2 · w_scale + b = [23 + 1, -6125.5 - 1, 235 + 0.5] = [24, -6126.5, 235.5]
  const W8A8Linear static_layer = hand_layer(2.0f);
  const std::vector<float> y = forward(static_layer, kHandInput, 2);
  CHECK(std::vector<float>(y.begin(), y.begin() + 3) == std::vector<float>{24.0f, -6126.5f, 235.5f});
  CHECK(static_layer.describe() == "W8A8Linear int8 per-channel, static input scale");
}

TEST_CASE("W8A8Linear forward equals a double-precision int64 reference on random data", "[w8a8]") {
  std::mt19937 rng(42);
  const int64_t M = 9, N = 37, K = 1100;  // K over one chunk and not a multiple of it
  std::vector<float> scales = random_normal(rng, N, 1.0f);
  for (float& s : scales) s = 1e-3f * (1.0f + std::fabs(s));
  for (const bool with_bias : {false, true})
    for (const std::optional<float> input_scale : {std::optional<float>{}, std::optional<float>{0.03f}}) {
      const std::vector<float> bias = with_bias ? random_normal(rng, N, 0.5f) : std::vector<float>{};
      const W8A8Linear layer(random_int8(rng, N * K), scales, input_scale, bias, N, K);
      std::vector<float> x = random_normal(rng, M * K, 1.0f);
      x[5] = 40.0f;  // an outlier, as real activations have
      const std::vector<float> y = forward(layer, x, M);
      std::vector<double> magnitude;
      const std::vector<double> expected = reference_forward(layer, x, M, &magnitude);
      double worst = 0.0;
      for (size_t i = 0; i < y.size(); ++i)
        worst = std::max(worst, std::fabs(y[i] - expected[i]) / std::max(magnitude[i], 1e-30));
      INFO("bias " << with_bias << ", static " << input_scale.has_value() << ": worst relative error " << worst);
      CHECK(worst <= 1e-6);
    }
}

TEST_CASE("W8A8Linear::from_dense is llm-compressor's symmetric per-channel int8 with fp16 scales", "[w8a8]") {
  // Row 0: absmax 0.99609375 = 127.5 · 2^-7 -> scale exactly 2^-7; w / scale = [-127.5, 127.5, 0.5, 1.5]
  //   -> round half to even [-128, 128, 0, 2] -> clamp [-128, 127, 0, 2].
  // Row 1: zeros -> scale fp32 eps (llm-compressor's floor), q = 0.
  // Row 2: absmax 1 -> 1 / 127.5 is not an fp16 value: the stored scale is its fp16 rounding.
  const DenseLinear dense({-0.99609375f, 0.99609375f, 0.00390625f, 0.01171875f, /**/ 0, 0, 0, 0,
                           /**/ 1.0f, -0.5f, 0.25f, 0.001f},
                          {0.5f, 0.0f, -2.0f}, 3, 4);
  const auto layer = W8A8Linear::from_dense(dense);
  CHECK(std::vector<int8_t>(layer->weight().begin(), layer->weight().begin() + 8) ==
        std::vector<int8_t>{-128, 127, 0, 2, 0, 0, 0, 0});
  CHECK(layer->weight_scale()[0] == 0.0078125f);
  CHECK(layer->weight_scale()[1] == std::numeric_limits<float>::epsilon());
  const float scale2 = layer->weight_scale()[2];
  CHECK(scale2 == half_to_float(float_to_half(1.0f / 127.5f)));
  CHECK(scale2 != 1.0f / 127.5f);
  for (int k = 0; k < 4; ++k)
    CHECK(layer->weight()[8 + k] == static_cast<int8_t>(std::fmin(127.0f, std::nearbyint(dense.weight()[8 + k] / scale2))));
  CHECK(layer->bias() == dense.bias());
  CHECK(!layer->input_scale().has_value());

  // On random weights every scale survives an fp16 round trip and the dequantized weight is within half
  // a step, except where the clamp acts: the fp16 scale may be up to 2^-11 below absmax / 127.5, so
  // |w| / scale <= 127.5 · (1 + 2^-11) ~ 127.56, clamped to 127 (or -128): off by at most 0.563 step.
  std::mt19937 rng(7);
  const int64_t N = 50, K = 300;
  const DenseLinear random_dense(random_normal(rng, N * K, 0.05f), {}, N, K);
  const auto random_layer = W8A8Linear::from_dense(random_dense);
  for (int64_t n = 0; n < N; ++n) {
    const float s = random_layer->weight_scale()[n];
    REQUIRE(s == half_to_float(float_to_half(s)));
    for (int64_t k = 0; k < K; ++k) {
      const float w = random_dense.weight()[n * K + k];
      const float error = std::fabs(w - random_layer->weight()[n * K + k] * s);
      if (std::fabs(w) <= 127.0f * s) REQUIRE(error <= 0.5001f * s);
      else REQUIRE(error <= 0.5634f * s);
    }
  }
}

TEST_CASE("W8A8Linear from_dense stays close to fp32 on random data", "[w8a8]") {
  std::mt19937 rng(99);
  const int64_t M = 16, N = 96, K = 512;
  const DenseLinear dense(random_normal(rng, N * K, 0.05f), random_normal(rng, N, 0.1f), N, K);
  const auto layer = W8A8Linear::from_dense(dense);
  const std::vector<float> x = random_normal(rng, M * K, 1.0f);
  const double error = relative_error(forward(*layer, x, M), forward(dense, x, M));
  // Gaussian data: absmax ~ 3.3 sigma, step ~ 3.3 sigma / 127, rounding noise step / sqrt(12) ~ 0.75% of
  // sigma for the weights and as much for the activations: about 1% in all.
  INFO("relative error W8A8 vs fp32: " << error);
  CHECK(error < 0.02);
  CHECK(error > 1e-4);  // it did quantize
}

TEST_CASE("W8A8Linear::concat_rows gives the same outputs as the separate layers", "[w8a8]") {
  std::mt19937 rng(5);
  const int64_t K = 1030, M = 4;
  const DenseLinear q(random_normal(rng, 8 * K, 0.05f), random_normal(rng, 8, 0.1f), 8, K);
  const DenseLinear k(random_normal(rng, 3 * K, 0.05f), {}, 3, K);
  const DenseLinear v(random_normal(rng, 5 * K, 0.02f), {}, 5, K);
  const auto q8 = W8A8Linear::from_dense(q), k8 = W8A8Linear::from_dense(k), v8 = W8A8Linear::from_dense(v);
  // A per-tensor part: one scale repeated over its rows, as load() expands it.
  const W8A8Linear per_tensor(random_int8(rng, 2 * K), {0.004f, 0.004f}, std::nullopt, {}, 2, K);
  CHECK(per_tensor.describe() == "W8A8Linear int8 per-tensor, dynamic per-token activations");

  const std::vector<const W8A8Linear*> parts = {q8.get(), k8.get(), v8.get(), &per_tensor};
  REQUIRE(W8A8Linear::can_concat({q8.get(), k8.get(), v8.get(), &per_tensor}));
  const auto fused = W8A8Linear::concat_rows(parts);
  REQUIRE(fused->out_features() == 18);
  CHECK(fused->bias().size() == 18);
  CHECK(fused->bias()[9] == 0.0f);  // k had no bias: zeros
  CHECK(fused->weight_scale()[16] == 0.004f);
  CHECK(fused->weight_scale()[17] == 0.004f);

  const std::vector<float> x = random_normal(rng, M * K, 1.0f);
  const std::vector<float> y = forward(*fused, x, M);
  int64_t offset = 0;
  for (const W8A8Linear* part : parts) {
    const std::vector<float> part_y = forward(*part, x, M);
    const int64_t n_part = part->out_features();
    for (int64_t t = 0; t < M; ++t)
      for (int64_t n = 0; n < n_part; ++n) REQUIRE(y[t * 18 + offset + n] == part_y[t * n_part + n]);
    offset += n_part;
  }
}

TEST_CASE("W8A8Linear::can_concat needs equal in_features and equal static input scales", "[w8a8]") {
  const W8A8Linear a({1, 2}, {0.1f}, 0.05f, {}, 1, 2);
  const W8A8Linear b({3, 4}, {0.2f}, 0.05f, {}, 1, 2);
  const W8A8Linear c({3, 4}, {0.2f}, 0.06f, {}, 1, 2);
  const W8A8Linear dynamic({3, 4}, {0.2f}, std::nullopt, {}, 1, 2);
  const W8A8Linear wide({3, 4, 5}, {0.2f}, 0.05f, {}, 1, 3);
  const DenseLinear dense({1.0f, 2.0f}, {}, 1, 2);
  CHECK(W8A8Linear::can_concat({&a, &b}));
  CHECK_FALSE(W8A8Linear::can_concat({&a, &c}));
  CHECK_FALSE(W8A8Linear::can_concat({&a, &dynamic}));
  CHECK_FALSE(W8A8Linear::can_concat({&a, &wide}));
  CHECK_FALSE(W8A8Linear::can_concat({&a, &dense}));
  CHECK_FALSE(W8A8Linear::can_concat({}));
  const auto fused = W8A8Linear::concat_rows({&a, &b});
  CHECK(fused->input_scale() == std::optional<float>(0.05f));
  require_error([&] { W8A8Linear::concat_rows({&a, &c}); }, {"static input scale"});
}

TEST_CASE("W8A8Linear::load reads compressed-tensors int8 tensors", "[w8a8]") {
  SECTION("per-channel F16 [N, 1] scales, BF16 bias, an all-zero weight_zero_point") {
    CheckpointSpec spec = hand_checkpoint();
    spec[kPrefix + ".weight_zero_point"] = {DType::I8, {3, 1}, {0, 0, 0}};
    const auto layer = load_spec(spec, W8A8Format{});
    CHECK(layer->weight() == hand_layer().weight());
    CHECK(layer->weight_scale() == hand_layer().weight_scale());
    CHECK(layer->bias() == hand_layer().bias());
    CHECK(forward(*layer, kHandInput, 2) == kHandOutput);
    CHECK(layer->describe() == "W8A8Linear int8 per-channel, dynamic per-token activations");
  }
  SECTION("per-channel F32 [N] scales, no bias") {
    CheckpointSpec spec = hand_checkpoint();
    spec[kPrefix + ".weight_scale"] = {DType::F32, {3}, f32_bytes({0.5f, 0.25f, 0.125f})};
    const auto layer = load_spec(spec, W8A8Format{}, false);
    CHECK(layer->weight_scale() == std::vector<float>{0.5f, 0.25f, 0.125f});
    CHECK(layer->bias().empty());
  }
  SECTION("per-tensor BF16 [1] and scalar [] scales with a static F32 input_scale") {
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{1}, std::vector<int64_t>{}}) {
      CheckpointSpec spec = hand_checkpoint();
      spec[kPrefix + ".weight_scale"] = {DType::BF16, shape, half_bytes({0.25f}, true)};
      spec[kPrefix + ".input_scale"] = {DType::F32, {1}, f32_bytes({2.0f})};
      const auto layer = load_spec(spec, W8A8Format{false, true});
      CHECK(layer->weight_scale() == std::vector<float>{0.25f, 0.25f, 0.25f});
      CHECK(layer->input_scale() == std::optional<float>(2.0f));
      CHECK(layer->describe() == "W8A8Linear int8 per-tensor, static input scale");
    }
  }
}

TEST_CASE("W8A8Linear::load refuses malformed tensors, naming them", "[w8a8]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::string weight = kPrefix + ".weight", scale = kPrefix + ".weight_scale";
  SECTION("weight of the wrong dtype") {
    CheckpointSpec spec = hand_checkpoint();
    spec[weight] = {DType::F16, {3, 4}, half_bytes(std::vector<float>(12, 1.0f), false)};
    require_error([&] { load_spec(spec, W8A8Format{}); },
                  {"model.layers.0.mlp.down_proj.weight: expected I8 [3, 4], got F16 [3, 4]"});
  }
  SECTION("weight of the wrong shape") {
    CheckpointSpec spec = hand_checkpoint();
    spec[weight] = {DType::I8, {4, 3}, std::vector<uint8_t>(12, 1)};
    require_error([&] { load_spec(spec, W8A8Format{}); }, {weight.c_str(), "expected I8 [3, 4], got I8 [4, 3]"});
  }
  SECTION("weight_scale of the wrong shape") {
    CheckpointSpec spec = hand_checkpoint();
    spec[scale] = {DType::F16, {3, 2}, half_bytes(std::vector<float>(6, 0.5f), false)};
    require_error([&] { load_spec(spec, W8A8Format{}); }, {scale.c_str(), "[3, 1]", "got F16 [3, 2]"});
  }
  SECTION("per-channel scales where the format says per-tensor") {
    require_error([&] { load_spec(hand_checkpoint(), W8A8Format{false, false}); },
                  {scale.c_str(), "[1]", "got F16 [3, 1]"});
  }
  SECTION("weight_scale of an integer dtype") {
    CheckpointSpec spec = hand_checkpoint();
    spec[scale] = {DType::I8, {3, 1}, {1, 1, 1}};
    require_error([&] { load_spec(spec, W8A8Format{}); }, {scale.c_str(), "F16/BF16/F32", "got I8 [3, 1]"});
  }
  SECTION("NaN, zero and negative scales") {
    for (const float bad : {nan, 0.0f, -0.5f}) {
      CheckpointSpec spec = hand_checkpoint();
      spec[scale] = {DType::F32, {3, 1}, f32_bytes({0.5f, bad, 0.125f})};
      require_error([&] { load_spec(spec, W8A8Format{}); }, {scale.c_str(), "finite and > 0", "index 1"});
    }
  }
  SECTION("static activations without input_scale") {
    require_error([&] { load_spec(hand_checkpoint(), W8A8Format{true, true}); },
                  {"model.layers.0.mlp.down_proj.input_scale", "missing"});
  }
  SECTION("a NaN input_scale") {
    CheckpointSpec spec = hand_checkpoint();
    spec[kPrefix + ".input_scale"] = {DType::F32, {1}, f32_bytes({nan})};
    require_error([&] { load_spec(spec, W8A8Format{true, true}); }, {"down_proj.input_scale", "finite"});
  }
  SECTION("an input_scale where the config says dynamic") {
    CheckpointSpec spec = hand_checkpoint();
    spec[kPrefix + ".input_scale"] = {DType::F32, {1}, f32_bytes({1.0f})};
    require_error([&] { load_spec(spec, W8A8Format{}); }, {"down_proj.input_scale", "dynamic"});
  }
  SECTION("a nonzero weight_zero_point (asymmetric)") {
    CheckpointSpec spec = hand_checkpoint();
    spec[kPrefix + ".weight_zero_point"] = {DType::I8, {3, 1}, {0, 3, 0}};
    require_error([&] { load_spec(spec, W8A8Format{}); },
                  {"model.layers.0.mlp.down_proj.weight_zero_point", "asymmetric"});
  }
  SECTION("a missing or misshapen bias") {
    CheckpointSpec spec = hand_checkpoint();
    spec[kPrefix + ".bias"] = {DType::F32, {4}, f32_bytes({1, 2, 3, 4})};
    require_error([&] { load_spec(spec, W8A8Format{}); }, {"down_proj.bias", "[3]"});
    spec.erase(kPrefix + ".bias");
    require_error([&] { load_spec(spec, W8A8Format{}); }, {"down_proj.bias"});
  }
}

TEST_CASE("FakeW8A8Linear agrees with W8A8Linear up to fp32 rounding", "[w8a8]") {
  std::mt19937 rng(2024);
  const int64_t M = 6, N = 40, K = 700;
  const DenseLinear dense(random_normal(rng, N * K, 0.05f), random_normal(rng, N, 0.1f), N, K);
  const auto real = W8A8Linear::from_dense(dense);
  const auto fake = FakeW8A8Linear::from_dense(dense);
  CHECK(fake->describe() == "FakeW8A8Linear (int8 grid, fp32 math)");
  std::vector<float> x = random_normal(rng, M * K, 1.0f);
  x[3] = -25.0f;
  const std::vector<float> y_real = forward(*real, x, M), y_fake = forward(*fake, x, M);
  // Same grids, so they differ only by fp32 rounding: the fake's products and its K-term sum
  // (at most (K + 2) units of 2^-24 of Σ|x̂||ŵ|) and the real's epilogue (a few units).
  std::vector<int8_t> xq(M * K);
  std::vector<float> a_scale(M);
  cpu::quantize_per_token_int8(x.data(), M, K, xq.data(), a_scale.data());
  double worst_ratio = 0.0;
  for (int64_t t = 0; t < M; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double sum_abs = std::fabs(dense.bias()[n]);
      for (int64_t k = 0; k < K; ++k)
        sum_abs += std::fabs(static_cast<double>(xq[t * K + k]) * a_scale[t] * real->weight()[n * K + k] * real->weight_scale()[n]);
      const double bound = (K + 8) * std::ldexp(1.0, -24) * sum_abs;
      const double diff = std::fabs(double{y_real[t * N + n]} - y_fake[t * N + n]);
      worst_ratio = std::max(worst_ratio, diff / bound);
    }
  INFO("worst |fake - real| as a fraction of the rounding bound: " << worst_ratio);
  CHECK(worst_ratio <= 1.0);
  CHECK(relative_error(y_fake, y_real) < 1e-5);
}
