// The calibration-based quantizers as pure functions: GPTQ (against RTN, against a plain
// column-by-column reference, on an exact identity Hessian), AWQ's scale and clip searches, and
// SmoothQuant's scales. Inputs are synthetic and seeded, so every number asserted here is reproducible.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "layers/quantized_matrix.h"
#include "layers/rtn_quantize.h"
#include "model/quantize/awq_search.h"
#include "model/quantize/gptq.h"
#include "model/quantize/smoothquant.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::require_error;

namespace {

// splitmix64 + Box-Muller: the same numbers on every platform (std::normal_distribution is not).
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  double uniform() {  // (0, 1)
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (static_cast<double>(z >> 11) + 0.5) / 9007199254740992.0;
  }
  double normal() {
    const double r = std::sqrt(-2.0 * std::log(uniform()));
    return r * std::cos(6.283185307179586 * uniform());
  }
  std::vector<float> normals(int64_t count, double sigma = 1.0) {
    std::vector<float> out(static_cast<size_t>(count));
    for (float& v : out) v = static_cast<float>(sigma * normal());
    return out;
  }

 private:
  uint64_t state_;
};

// x [T, K] = Z [T, R] · B [R, K] + 0.05 · noise: strongly correlated input channels (a low-rank Hessian
// plus a little isotropic mass), the regime where GPTQ's error feedback pays off.
std::vector<float> correlated_inputs(Random& random, int64_t T, int64_t K, int64_t R) {
  const std::vector<float> z = random.normals(T * R);
  const std::vector<float> b = random.normals(R * K, 1.0 / std::sqrt(static_cast<double>(R)));
  std::vector<float> x(static_cast<size_t>(T * K));
  // x = z · b = z · (bᵀ)ᵀ: linear_forward wants the second operand as [K, R].
  std::vector<float> bt(static_cast<size_t>(K * R));
  for (int64_t r = 0; r < R; ++r)
    for (int64_t k = 0; k < K; ++k) bt[static_cast<size_t>(k * R + r)] = b[static_cast<size_t>(r * K + k)];
  cpu::linear_forward(z.data(), bt.data(), nullptr, T, K, R, x.data());
  for (float& v : x) v += static_cast<float>(0.05 * random.normal());
  return x;
}

// Σ (x · (W - Wq)ᵀ)² over all rows and outputs.
double output_squared_error(const std::vector<float>& x, int64_t T, const std::vector<float>& w,
                            const std::vector<float>& wq, int64_t N, int64_t K) {
  std::vector<float> difference(w.size());
  for (size_t i = 0; i < w.size(); ++i) difference[i] = wq[i] - w[i];
  std::vector<float> y(static_cast<size_t>(T * N));
  cpu::linear_forward(x.data(), difference.data(), nullptr, T, N, K, y.data());
  double sum = 0.0;
  for (float v : y) sum += static_cast<double>(v) * v;
  return sum;
}

bool fp16_exact(float value) { return half_to_float(float_to_half(value)) == value; }

// Independent range checks of a GPTQ result (besides QuantizedMatrix::validate).
void check_ranges(const QuantizedMatrix& m) {
  const int maxq = (1 << m.bits) - 1;
  for (uint8_t q : m.q) REQUIRE(q <= maxq);
  for (int32_t z : m.zeros) REQUIRE((z >= 0 && z <= maxq));
  for (float s : m.scales) REQUIRE((std::isfinite(s) && s > 0.0f && fp16_exact(s)));
  for (int32_t g : m.g_idx) REQUIRE((g >= 0 && g < m.groups()));
  m.validate("gptq test");
}

// AutoGPTQ's fasterquant written the plain way, for cross-checking the blocked/BLAS implementation:
// explicit Gauss-Jordan inverse, naive upper Cholesky of H⁻¹, one column at a time with immediate
// error feedback (no lazy batch), group parameters from the current weights, asymmetric.
QuantizedMatrix reference_gptq(const std::vector<float>& weight, int64_t N, int64_t K,
                               const std::vector<double>& hessian, int bits, int64_t g, double damp_percent) {
  const int maxq = (1 << bits) - 1;
  std::vector<double> W(weight.begin(), weight.end()), H = hessian;
  double mean = 0.0;
  for (int64_t k = 0; k < K; ++k) mean += H[static_cast<size_t>(k * K + k)] / static_cast<double>(K);
  for (int64_t k = 0; k < K; ++k) H[static_cast<size_t>(k * K + k)] += damp_percent * mean;
  // Gauss-Jordan inverse.
  std::vector<double> A = H, inv(static_cast<size_t>(K * K), 0.0);
  for (int64_t k = 0; k < K; ++k) inv[static_cast<size_t>(k * K + k)] = 1.0;
  for (int64_t c = 0; c < K; ++c) {
    const double pivot = A[static_cast<size_t>(c * K + c)];
    for (int64_t j = 0; j < K; ++j) {
      A[static_cast<size_t>(c * K + j)] /= pivot;
      inv[static_cast<size_t>(c * K + j)] /= pivot;
    }
    for (int64_t r = 0; r < K; ++r) {
      if (r == c) continue;
      const double f = A[static_cast<size_t>(r * K + c)];
      for (int64_t j = 0; j < K; ++j) {
        A[static_cast<size_t>(r * K + j)] -= f * A[static_cast<size_t>(c * K + j)];
        inv[static_cast<size_t>(r * K + j)] -= f * inv[static_cast<size_t>(c * K + j)];
      }
    }
  }
  // Upper Cholesky: inv = Uᵀ U.
  std::vector<double> U(static_cast<size_t>(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i) {
    double d = inv[static_cast<size_t>(i * K + i)];
    for (int64_t p = 0; p < i; ++p) d -= U[static_cast<size_t>(p * K + i)] * U[static_cast<size_t>(p * K + i)];
    U[static_cast<size_t>(i * K + i)] = std::sqrt(d);
    for (int64_t j = i + 1; j < K; ++j) {
      double v = inv[static_cast<size_t>(i * K + j)];
      for (int64_t p = 0; p < i; ++p) v -= U[static_cast<size_t>(p * K + i)] * U[static_cast<size_t>(p * K + j)];
      U[static_cast<size_t>(i * K + j)] = v / U[static_cast<size_t>(i * K + i)];
    }
  }
  QuantizedMatrix m;
  m.bits = bits;
  m.N = N;
  m.K = K;
  m.group_size = g;
  const int64_t G = m.groups();
  m.q.resize(static_cast<size_t>(N * K));
  m.zeros.resize(static_cast<size_t>(G * N));
  m.scales.resize(static_cast<size_t>(G * N));
  for (int64_t k = 0; k < K; ++k) m.g_idx.push_back(static_cast<int32_t>(k / g));
  for (int64_t c = 0; c < K; ++c) {
    if (c % g == 0) {
      for (int64_t n = 0; n < N; ++n) {
        double lo = 0.0, hi = 0.0;
        for (int64_t j = c; j < std::min(K, c + g); ++j) {
          lo = std::min(lo, W[static_cast<size_t>(n * K + j)]);
          hi = std::max(hi, W[static_cast<size_t>(n * K + j)]);
        }
        const float scale = half_to_float(float_to_half(static_cast<float>((hi - lo) / maxq)));
        m.scales[static_cast<size_t>(c / g * N + n)] = scale;
        m.zeros[static_cast<size_t>(c / g * N + n)] = static_cast<int32_t>(std::nearbyint(-lo / scale));
      }
    }
    const double d = U[static_cast<size_t>(c * K + c)];
    for (int64_t n = 0; n < N; ++n) {
      const double scale = m.scales[static_cast<size_t>(c / g * N + n)];
      const double zero = m.zeros[static_cast<size_t>(c / g * N + n)];
      const double w = W[static_cast<size_t>(n * K + c)];
      const double q = std::clamp(std::nearbyint(w / scale) + zero, 0.0, static_cast<double>(maxq));
      m.q[static_cast<size_t>(n * K + c)] = static_cast<uint8_t>(q);
      const double err = (w - scale * (q - zero)) / d;
      for (int64_t j = c + 1; j < K; ++j) W[static_cast<size_t>(n * K + j)] -= err * U[static_cast<size_t>(c * K + j)];
    }
  }
  return m;
}

size_t count_differences(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  size_t count = 0;
  for (size_t i = 0; i < a.size(); ++i) count += a[i] != b[i];
  return count;
}

}  // namespace

TEST_CASE("HessianAccumulator is 2/n Σ x xᵀ, whatever the batching", "[quantize-algo]") {
  Random random(11);
  const int64_t K = 13, M = 37;
  const std::vector<float> x = random.normals(M * K, 3.0);
  std::vector<double> direct(static_cast<size_t>(K * K), 0.0);
  for (int64_t t = 0; t < M; ++t)
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j < K; ++j)
        direct[static_cast<size_t>(i * K + j)] +=
            2.0 / M * static_cast<double>(x[static_cast<size_t>(t * K + i)]) * x[static_cast<size_t>(t * K + j)];

  HessianAccumulator one(K);
  one.add(x.data(), M);
  HessianAccumulator batched(K);
  batched.add(x.data(), 5);
  batched.add(x.data() + 5 * K, 0);
  batched.add(x.data() + 5 * K, 17);
  batched.add(x.data() + 22 * K, 15);
  REQUIRE(one.samples() == M);
  REQUIRE(batched.samples() == M);
  double scale = 0.0;
  for (double v : direct) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < direct.size(); ++i) {
    REQUIRE(std::fabs(one.matrix()[i] - direct[i]) <= 1e-12 * scale);
    REQUIRE(std::fabs(batched.matrix()[i] - direct[i]) <= 1e-12 * scale);
  }
  // Symmetric to the last bit (the lower triangle is a mirror).
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j)
      REQUIRE(one.matrix()[static_cast<size_t>(i * K + j)] == one.matrix()[static_cast<size_t>(j * K + i)]);

  std::vector<float> bad = x;
  bad[3] = NAN;
  require_error([&] { HessianAccumulator(K).add(bad.data(), M); }, {"not finite"});
  require_error([] { HessianAccumulator(0); }, {"in_features"});
}

TEST_CASE("GPTQ beats RTN on correlated inputs at every bit width, group size and order", "[quantize-algo]") {
  Random random(2024);
  const int64_t N = 64, K = 256, T = 2048;
  const std::vector<float> x = correlated_inputs(random, T, K, 32);
  const std::vector<float> w = random.normals(N * K, 0.05);
  HessianAccumulator hessian(K);
  hessian.add(x.data(), T);

  for (int bits : {2, 3, 4, 8}) {
    for (int64_t group : {32, 64, 128, -1}) {
      RtnOptions rtn;
      rtn.bits = bits;
      rtn.group_size = group;
      const double rtn_error = output_squared_error(x, T, w, rtn_quantize(w.data(), N, K, rtn).dequantize(), N, K);
      for (bool act_order : {false, true}) {
        CAPTURE(bits, group, act_order);
        GptqOptions options;
        options.bits = bits;
        options.group_size = group;
        options.act_order = act_order;
        const GptqResult result = gptq_quantize(w.data(), N, K, hessian, options);
        const QuantizedMatrix& m = result.matrix;
        check_ranges(m);
        REQUIRE(m.group_size == (group == -1 ? K : group));
        REQUIRE(std::isfinite(result.squared_error));
        REQUIRE(result.squared_error > 0.0);
        const double gptq_error = output_squared_error(x, T, w, m.dequantize(), N, K);
        CAPTURE(gptq_error, rtn_error, gptq_error / rtn_error);
        // Measured ratios are 0.04-0.09 here (rank-32 inputs); 0.25 is a clear margin.
        REQUIRE(gptq_error < 0.25 * rtn_error);

        const int64_t g = m.group_size;
        std::vector<int64_t> members(static_cast<size_t>(m.groups()), 0);
        for (int32_t gi : m.g_idx) ++members[static_cast<size_t>(gi)];
        for (int64_t count : members) REQUIRE(count == g);  // K % g == 0 for every g here
        if (act_order && group != -1) {
          REQUIRE(m.has_act_order());
        } else {
          for (int64_t k = 0; k < K; ++k) REQUIRE(m.g_idx[static_cast<size_t>(k)] == k / g);
        }
      }
    }
  }
}

TEST_CASE("GPTQ with act_order forms groups in order of decreasing Hessian diagonal", "[quantize-algo]") {
  Random random(7);
  const int64_t N = 8, K = 64, T = 512;
  std::vector<float> x = random.normals(T * K);
  // Channel k has magnitude (k * 37 % 64) + 1: a known, scrambled order of H's diagonal.
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(t * K + k)] *= static_cast<float>((k * 37 % 64) + 1);
  HessianAccumulator hessian(K);
  hessian.add(x.data(), T);
  const std::vector<float> w = random.normals(N * K);
  GptqOptions options;
  options.group_size = 16;
  options.act_order = true;
  const QuantizedMatrix m = gptq_quantize(w.data(), N, K, hessian, options).matrix;
  // Magnitude rank r (0 = largest) is channel k with (k*37 % 64) = 63 - r; its group is r / 16.
  for (int64_t k = 0; k < K; ++k) {
    const int64_t rank = 63 - (k * 37 % 64);
    REQUIRE(m.g_idx[static_cast<size_t>(k)] == rank / 16);
  }
}

TEST_CASE("GPTQ's blocked BLAS implementation equals the plain column-by-column algorithm", "[quantize-algo]") {
  Random random(99);
  const int64_t N = 24, K = 96, T = 600;
  const std::vector<float> x = correlated_inputs(random, T, K, 20);
  const std::vector<float> w = random.normals(N * K, 0.1);
  HessianAccumulator hessian(K);
  hessian.add(x.data(), T);
  for (int bits : {3, 4}) {
    for (int64_t group : {16, 32, 96}) {
      CAPTURE(bits, group);
      const QuantizedMatrix reference = reference_gptq(w, N, K, hessian.matrix(), bits, group, 0.01);
      // Block sizes that start every group on a block boundary see the same weights at each group
      // start as the unbatched algorithm, so the result is the same up to rounding-order ties.
      for (int64_t block : {int64_t{1}, int64_t{16}, group}) {
        CAPTURE(block);
        GptqOptions options;
        options.bits = bits;
        options.group_size = group;
        options.block_size = block;
        const QuantizedMatrix m = gptq_quantize(w.data(), N, K, hessian, options).matrix;
        REQUIRE(count_differences(m.q, reference.q) <= m.q.size() / 500);
        REQUIRE(m.zeros == reference.zeros);
        size_t scale_differences = 0;
        for (size_t i = 0; i < m.scales.size(); ++i) scale_differences += m.scales[i] != reference.scales[i];
        REQUIRE(scale_differences <= 1);
      }
    }
  }
}

TEST_CASE("GPTQ on an identity Hessian is RTN", "[quantize-algo]") {
  Random random(5);
  const int64_t N = 48, K = 128;
  const std::vector<float> w = random.normals(N * K, 0.02);
  SECTION("exact identity: no error feedback at all, so the result is RTN's bit for bit") {
    // Rows sqrt(K/2)·e_k give H = 2/K Σ (K/2) e_k e_kᵀ = I exactly; damping keeps it diagonal.
    std::vector<float> x(static_cast<size_t>(K * K), 0.0f);
    for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(k * K + k)] = std::sqrt(static_cast<float>(K) / 2.0f);
    HessianAccumulator hessian(K);
    hessian.add(x.data(), K);
    for (int bits : {2, 4, 8}) {
      for (int64_t group : {32, -1}) {
        for (bool sym : {false, true}) {
          CAPTURE(bits, group, sym);
          GptqOptions options;
          options.bits = bits;
          options.group_size = group;
          options.sym = sym;
          const QuantizedMatrix m = gptq_quantize(w.data(), N, K, hessian, options).matrix;
          RtnOptions rtn;
          rtn.bits = bits;
          rtn.group_size = group;
          rtn.symmetric = sym;
          const QuantizedMatrix r = rtn_quantize(w.data(), N, K, rtn);
          REQUIRE(m.scales == r.scales);
          REQUIRE(m.zeros == r.zeros);
          REQUIRE(m.q == r.q);
          REQUIRE(m.g_idx == r.g_idx);
        }
      }
    }
  }
  SECTION("uncorrelated inputs: H ≈ 2I, the feedback is tiny") {
    // Off-diagonal H/2 entries are ≈ N(0, 1/T) (std 0.008 at T = 16384), so each column's error moves
    // the later columns by ~1% of a step: a few percent of q change, by one step, and the output error
    // stays within a few percent of RTN's (never much above it).
    const int64_t T = 16384;
    const std::vector<float> x = random.normals(T * K);
    HessianAccumulator hessian(K);
    hessian.add(x.data(), T);
    GptqOptions options;
    options.bits = 4;
    options.group_size = 32;
    const QuantizedMatrix m = gptq_quantize(w.data(), N, K, hessian, options).matrix;
    RtnOptions rtn;
    rtn.bits = 4;
    rtn.group_size = 32;
    const QuantizedMatrix r = rtn_quantize(w.data(), N, K, rtn);
    const size_t changed = count_differences(m.q, r.q);
    CAPTURE(changed, m.q.size());
    REQUIRE(changed <= m.q.size() * 5 / 100);
    for (size_t i = 0; i < m.q.size(); ++i) REQUIRE(std::abs(static_cast<int>(m.q[i]) - static_cast<int>(r.q[i])) <= 1);
    const double gptq_error = output_squared_error(x, T, w, m.dequantize(), N, K);
    const double rtn_error = output_squared_error(x, T, w, r.dequantize(), N, K);
    CAPTURE(gptq_error / rtn_error);
    REQUIRE(gptq_error <= 1.02 * rtn_error);
    REQUIRE(gptq_error >= 0.85 * rtn_error);
  }
}

TEST_CASE("GPTQ is deterministic, handles dead inputs and refuses what it cannot do", "[quantize-algo]") {
  Random random(31);
  const int64_t N = 40, K = 192, T = 800;
  std::vector<float> x = correlated_inputs(random, T, K, 24);
  for (int64_t t = 0; t < T; ++t) x[static_cast<size_t>(t * K + 17)] = 0.0f;  // a dead input channel
  const std::vector<float> w = random.normals(N * K, 0.05);
  HessianAccumulator hessian(K);
  hessian.add(x.data(), T);
  GptqOptions options;
  options.bits = 3;
  options.group_size = 64;
  options.act_order = true;
  const GptqResult a = gptq_quantize(w.data(), N, K, hessian, options);
  const GptqResult b = gptq_quantize(w.data(), N, K, hessian, options);
  REQUIRE(a.matrix.q == b.matrix.q);
  REQUIRE(a.matrix.zeros == b.matrix.zeros);
  REQUIRE(a.matrix.scales == b.matrix.scales);
  REQUIRE(a.matrix.g_idx == b.matrix.g_idx);
  REQUIRE(a.squared_error == b.squared_error);
  check_ranges(a.matrix);
  // The dead channel's weights are zeroed (AutoGPTQ: nothing reads them), so it dequantizes to exactly 0.
  const std::vector<float> dq = a.matrix.dequantize();
  for (int64_t n = 0; n < N; ++n) REQUIRE(dq[static_cast<size_t>(n * K + 17)] == 0.0f);

  // A rank-deficient Hessian without dampening is not positive definite: rows (1, 2) and (0, 0) give
  // H = [[1, 2], [2, 4]] exactly, whose second Cholesky pivot is exactly 0.
  const std::vector<float> rows = {1.0f, 2.0f, 0.0f, 0.0f};
  HessianAccumulator singular(2);
  singular.add(rows.data(), 2);
  GptqOptions undamped;
  undamped.damp_percent = 0.0;
  undamped.group_size = -1;
  const std::vector<float> small_w = random.normals(8 * 2);
  require_error([&] { gptq_quantize(small_w.data(), 8, 2, singular, undamped); },
                {"not positive definite", "damp_percent", "calibration data"});
  // Damping makes the same Hessian usable.
  GptqOptions damped = undamped;
  damped.damp_percent = 0.01;
  REQUIRE_NOTHROW(gptq_quantize(small_w.data(), 8, 2, singular, damped));

  // K not a multiple of g: a last, partial group (GPTQ allows it; G = ceil(K / g)).
  {
    const int64_t K2 = 100;
    const std::vector<float> x2 = correlated_inputs(random, 400, K2, 16);
    const std::vector<float> w2 = random.normals(N * K2, 0.05);
    HessianAccumulator h2(K2);
    h2.add(x2.data(), 400);
    GptqOptions partial;
    partial.group_size = 32;
    partial.act_order = true;
    const QuantizedMatrix m = gptq_quantize(w2.data(), N, K2, h2, partial).matrix;
    check_ranges(m);
    REQUIRE(m.groups() == 4);
    REQUIRE(std::count(m.g_idx.begin(), m.g_idx.end(), 3) == 4);
    RtnOptions rtn;
    rtn.group_size = 32;
    REQUIRE(output_squared_error(x2, 400, w2, m.dequantize(), N, K2) <
            0.5 * output_squared_error(x2, 400, w2, rtn_quantize(w2.data(), N, K2, rtn).dequantize(), N, K2));
  }

  GptqOptions bad_bits;
  bad_bits.bits = 5;
  require_error([&] { gptq_quantize(w.data(), N, K, hessian, bad_bits); }, {"bits 5"});
  require_error([&] { gptq_quantize(w.data(), N, K + 1, hessian, options); }, {"in_features"});
  require_error([&] { gptq_quantize(w.data(), N, K, HessianAccumulator(K), options); }, {"no calibration"});
  std::vector<float> nan_w = w;
  nan_w[5] = NAN;
  require_error([&] { gptq_quantize(nan_w.data(), N, K, hessian, options); }, {"not finite"});
}

TEST_CASE("AWQ's scale search protects the large-activation channels", "[quantize-algo]") {
  Random random(77);
  const int64_t N = 128, K = 256, T = 2048;
  std::vector<float> x = random.normals(T * K);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k : {3, 50, 129, 200}) x[static_cast<size_t>(t * K + k)] *= 40.0f;  // outlier channels
  const std::vector<float> w = random.normals(N * K, 0.02);
  AwqSearchOptions options;
  options.group_size = 64;
  const AwqScaleResult result = awq_search_scales(w.data(), N, K, x.data(), T, options);
  REQUIRE(result.scales.size() == static_cast<size_t>(K));
  for (float s : result.scales) REQUIRE((std::isfinite(s) && s > 0.0f));
  CAPTURE(result.alpha, result.best_loss, result.rtn_loss);
  REQUIRE(result.alpha > 0.0);
  REQUIRE(result.best_loss < 0.8 * result.rtn_loss);
  // The outlier channels get the largest scales.
  const float smallest_outlier =
      std::min({result.scales[3], result.scales[50], result.scales[129], result.scales[200]});
  for (int64_t k = 0; k < K; ++k)
    if (k != 3 && k != 50 && k != 129 && k != 200) REQUIRE(result.scales[static_cast<size_t>(k)] < smallest_outlier);

  // rtn_loss and best_loss are what a direct evaluation of the outputs on every row gives.
  auto loss_of = [&](const std::vector<float>& s) {
    std::vector<float> scaled(w.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        scaled[static_cast<size_t>(n * K + k)] = w[static_cast<size_t>(n * K + k)] * s[static_cast<size_t>(k)];
    RtnOptions rtn;
    rtn.group_size = 64;
    std::vector<float> wq = rtn_quantize(scaled.data(), N, K, rtn).dequantize();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) wq[static_cast<size_t>(n * K + k)] /= s[static_cast<size_t>(k)];
    return output_squared_error(x, T, w, wq, N, K) / static_cast<double>(T * N);
  };
  REQUIRE(loss_of(std::vector<float>(static_cast<size_t>(K), 1.0f)) == Approx(result.rtn_loss).epsilon(1e-4));
  REQUIRE(loss_of(result.scales) == Approx(result.best_loss).epsilon(1e-4));
  // Normalised: sqrt(max · min) = 1.
  const auto [lo, hi] = std::minmax_element(result.scales.begin(), result.scales.end());
  REQUIRE(std::sqrt(static_cast<double>(*lo) * *hi) == Approx(1.0).epsilon(1e-5));

  // Deterministic.
  const AwqScaleResult again = awq_search_scales(w.data(), N, K, x.data(), T, options);
  REQUIRE(again.scales == result.scales);
  REQUIRE(again.alpha == result.alpha);

  require_error([&] { awq_search_scales(w.data(), N, K, x.data(), 0, options); }, {"calibration rows"});
  std::vector<float> bad_x = x;
  bad_x[K + 2] = INFINITY;
  require_error([&] { awq_search_scales(w.data(), N, K, bad_x.data(), T, options); }, {"input [1, 2]", "not finite"});
}

TEST_CASE("AWQ's clip search never does worse than no clipping", "[quantize-algo]") {
  Random random(123);
  const int64_t N = 64, K = 256, T = 1500;
  const std::vector<float> x = random.normals(T * K);
  // Heavy-tailed weights (a normal divided by a uniform-ish magnitude): clipping the few large values
  // buys resolution for the rest of the group.
  std::vector<float> w(static_cast<size_t>(N * K));
  for (float& v : w) v = static_cast<float>(0.02 * random.normal() / std::sqrt(random.uniform() + 0.02));
  AwqSearchOptions options;
  options.group_size = 64;
  const int64_t G = K / 64;

  // The per-group error without clipping, evaluated directly on every row (the search uses them all).
  const std::vector<float>& xs = x;
  const int64_t rows = T;
  auto per_group_error = [&](const std::vector<float>& weights) {
    RtnOptions rtn;
    rtn.group_size = 64;
    const std::vector<float> wq = rtn_quantize(weights.data(), N, K, rtn).dequantize();
    double total = 0.0;
    for (int64_t group = 0; group < G; ++group)
      for (int64_t n = 0; n < N; ++n) {
        double sum = 0.0;
        for (int64_t t = 0; t < rows; ++t) {
          double y = 0.0;
          for (int64_t k = group * 64; k < (group + 1) * 64; ++k)
            y += static_cast<double>(xs[static_cast<size_t>(t * K + k)]) *
                 (wq[static_cast<size_t>(n * K + k)] - w[static_cast<size_t>(n * K + k)]);
          sum += y * y;
        }
        total += sum / static_cast<double>(rows);
      }
    return total / static_cast<double>(N * G);
  };
  const double unclipped = per_group_error(w);

  std::vector<float> clipped = w;
  const double clipped_error = awq_search_clip(clipped.data(), N, K, x.data(), T, options);
  CAPTURE(unclipped, clipped_error);
  REQUIRE(clipped_error <= unclipped);
  REQUIRE(clipped_error < 0.95 * unclipped);  // heavy tails: clipping clearly helps
  // The returned value is the error of the clipped weights (against the original ones).
  REQUIRE(per_group_error(clipped) == Approx(clipped_error).epsilon(1e-3));
  // Only clamping happened: |w| never grows, values either stay or sit on a common limit.
  size_t changed = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    REQUIRE(std::fabs(clipped[i]) <= std::fabs(w[i]));
    REQUIRE(((clipped[i] == w[i]) || (std::signbit(clipped[i]) == std::signbit(w[i]))));
    changed += clipped[i] != w[i];
  }
  REQUIRE(changed > 0);
  // The whole-output error (cross-group terms included) also drops.
  RtnOptions rtn;
  rtn.group_size = 64;
  const double full_unclipped = output_squared_error(x, T, w, rtn_quantize(w.data(), N, K, rtn).dequantize(), N, K);
  const double full_clipped = output_squared_error(x, T, w, rtn_quantize(clipped.data(), N, K, rtn).dequantize(), N, K);
  CAPTURE(full_unclipped, full_clipped);
  REQUIRE(full_clipped < full_unclipped);
}

TEST_CASE("SmoothQuant scales follow the original formula and leave x·Wᵀ unchanged", "[quantize-algo]") {
  // W [2, 5]; column maxima |W| = [2, 4, 0.5, 0, 3]; activation ranges [4, 1, 9, 16, 0].
  const std::vector<float> w = {1.0f,  -4.0f, 0.5f, 0.0f, 3.0f,  //
                                -2.0f, 1.0f,  0.0f, 0.0f, 0.0f};
  const std::vector<float> absmax = {4.0f, 1.0f, 9.0f, 16.0f, 0.0f};
  const std::vector<float> s = smoothquant_scales(absmax, w.data(), 2, 5, 0.5);
  REQUIRE(s.size() == 5);
  REQUIRE(s[0] == Approx(2.0 / std::sqrt(2.0)).epsilon(1e-6));  // sqrt(4) / sqrt(2)
  REQUIRE(s[1] == Approx(0.5).epsilon(1e-6));                   // sqrt(1) / sqrt(4)
  REQUIRE(s[2] == Approx(3.0 / std::sqrt(0.5)).epsilon(1e-6));  // sqrt(9) / sqrt(0.5)
  REQUIRE(s[3] == Approx(4.0).epsilon(1e-6));                   // zero column: sqrt(16)
  REQUIRE(s[4] == Approx(1e-5).epsilon(1e-6));                  // dead channel: the floor
  const std::vector<float> s08 = smoothquant_scales(absmax, w.data(), 2, 5, 0.8);
  REQUIRE(s08[0] == Approx(std::pow(4.0, 0.8) / std::pow(2.0, 0.2)).epsilon(1e-6));
  REQUIRE(s08[2] == Approx(std::pow(9.0, 0.8) / std::pow(0.5, 0.2)).epsilon(1e-6));

  Random random(8);
  const int64_t N = 96, K = 64, T = 32;
  std::vector<float> x = random.normals(T * K);
  for (int64_t t = 0; t < T; ++t) x[static_cast<size_t>(t * K + 9)] *= 60.0f;
  const std::vector<float> weight = random.normals(N * K, 0.05);
  std::vector<float> range(static_cast<size_t>(K), 0.0f);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k)
      range[static_cast<size_t>(k)] =
          std::max(range[static_cast<size_t>(k)], std::fabs(x[static_cast<size_t>(t * K + k)]));
  const std::vector<float> scales = smoothquant_scales(range, weight.data(), N, K, 0.5);
  REQUIRE(scales[9] > 4.0f * scales[10]);  // the outlier channel migrates most
  std::vector<float> xs = x, ws = weight;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) xs[static_cast<size_t>(t * K + k)] /= scales[static_cast<size_t>(k)];
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) ws[static_cast<size_t>(n * K + k)] *= scales[static_cast<size_t>(k)];
  std::vector<float> y(static_cast<size_t>(T * N)), y_smoothed(static_cast<size_t>(T * N));
  cpu::linear_forward(x.data(), weight.data(), nullptr, T, N, K, y.data());
  cpu::linear_forward(xs.data(), ws.data(), nullptr, T, N, K, y_smoothed.data());
  double scale = 0.0, worst = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    scale = std::max(scale, static_cast<double>(std::fabs(y[i])));
    worst = std::max(worst, static_cast<double>(std::fabs(y[i] - y_smoothed[i])));
  }
  REQUIRE(worst <= 1e-5 * scale);

  require_error([&] { smoothquant_scales({1.0f, 2.0f}, w.data(), 2, 5, 0.5); }, {"activation ranges", "5"});
  require_error([&] { smoothquant_scales(absmax, w.data(), 2, 5, 1.5); }, {"alpha"});
}
