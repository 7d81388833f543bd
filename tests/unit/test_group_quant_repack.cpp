// repack_for_gpu (layers/group_quant_repack.h): every AWQ/GPTQ matrix becomes the GPU's
// GroupQuantLayout, read back by the CPU twin of the CUDA kernels (kernels/cpu/group_quant.h). The
// twin's dequantized weight must equal QuantizedMatrix::dequantize() bit for bit, for every bit
// width, group size, act-order g_idx (groups of equal size, and arbitrary g_idx of unequal groups)
// and K not a multiple of 32; and the layout must say when the fused GEMV can take it.
#include <algorithm>
#include <random>

#include "kernels/cpu/group_quant.h"
#include "layers/group_quant_repack.h"
#include "runtime/dtype.h"
#include "tests/catch.h"

using namespace runllm;

namespace {

QuantizedMatrix random_matrix(std::mt19937& rng, int bits, int64_t N, int64_t K, int64_t group_size, int act_order) {
  QuantizedMatrix m;
  m.bits = bits;
  m.N = N;
  m.K = K;
  m.group_size = group_size == -1 ? K : group_size;
  std::uniform_int_distribution<int> value(0, (1 << bits) - 1);
  std::uniform_real_distribution<float> scale(1e-3f, 5e-2f);
  for (int64_t i = 0; i < N * K; ++i) m.q.push_back(static_cast<uint8_t>(value(rng)));
  for (int64_t i = 0; i < m.groups() * N; ++i) {
    m.zeros.push_back(value(rng));
    m.scales.push_back(half_to_float(float_to_half(scale(rng))));
  }
  for (int64_t k = 0; k < K; ++k) m.g_idx.push_back(static_cast<int32_t>(k / m.group_size));
  if (act_order == 1) std::shuffle(m.g_idx.begin(), m.g_idx.end(), rng);  // GPTQ desc_act: equal groups
  if (act_order == 2)  // any g_idx a file may hold: groups of unequal size
    for (int32_t& g : m.g_idx) g = static_cast<int32_t>(rng() % static_cast<uint32_t>(m.groups()));
  return m;
}

}  // namespace

TEST_CASE("repack_for_gpu: the CPU twin of the GPU layout dequantizes exactly as the format defines", "[repack]") {
  std::mt19937 rng(20261208);
  for (const int bits : {2, 3, 4, 8})
    for (const int64_t group_size : {int64_t{32}, int64_t{64}, int64_t{128}, int64_t{-1}})
      for (const int act_order : {0, 1, 2})
        for (const int64_t K : {int64_t{128}, int64_t{200}, int64_t{576}}) {
          const QuantizedMatrix matrix = random_matrix(rng, bits, 37, K, group_size, act_order);
          const GroupQuantHostLayout host = repack_for_gpu(matrix);
          const GroupQuantLayout layout = host.view();
          INFO("bits " << bits << " group " << group_size << " act-order " << act_order << " K " << K);
          REQUIRE(layout.words_per_row * 32 == layout.padded_K * bits);
          CHECK((layout.perm != nullptr) == matrix.has_act_order());
          CHECK(cpu::group_quant_dequantize(layout) == matrix.dequantize());
          // Uniform: after the sort, packed column j lies in group j / g (always so for GPTQ's own g_idx).
          std::vector<int32_t> sorted = matrix.g_idx;
          std::sort(sorted.begin(), sorted.end());
          bool uniform = true;
          for (int64_t j = 0; j < K; ++j) uniform = uniform && sorted[static_cast<size_t>(j)] == j / matrix.group_size;
          CHECK(layout.uniform_groups == uniform);
          if (act_order < 2) CHECK(layout.uniform_groups);
          // The packed order visits each group's columns contiguously and ascending.
          CHECK(std::is_sorted(host.group_of.begin(), host.group_of.end()));
        }
}

TEST_CASE("repack_for_gpu: group_quant_linear equals the dense product of the dequantized weight", "[repack]") {
  std::mt19937 rng(7);
  const QuantizedMatrix matrix = random_matrix(rng, 4, 24, 96, 32, 1);
  const GroupQuantHostLayout host = repack_for_gpu(matrix);
  const int64_t M = 3;
  std::vector<float> x(static_cast<size_t>(M * matrix.K)), bias(static_cast<size_t>(matrix.N), 0.25f);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  std::vector<float> y(static_cast<size_t>(M * matrix.N));
  cpu::group_quant_linear(host.view(), x.data(), M, bias.data(), y.data());
  const std::vector<float> weight = matrix.dequantize();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < matrix.N; ++n) {
      double expected = 0.25;
      for (int64_t k = 0; k < matrix.K; ++k)
        expected += static_cast<double>(x[static_cast<size_t>(m * matrix.K + k)]) * weight[static_cast<size_t>(n * matrix.K + k)];
      CHECK(y[static_cast<size_t>(m * matrix.N + n)] == Approx(expected).epsilon(1e-5).margin(1e-5));
    }
}
