#include "kernels/cpu/group_quant.h"

#include "kernels/cpu/gemm.h"
#include "runtime/dtype.h"

namespace runllm::cpu {

uint32_t group_quant_value(const GroupQuantLayout& layout, int64_t n, int64_t j) {
  const uint32_t* row = layout.words + n * layout.words_per_row;
  const int64_t bit = layout.bits * j;
  const int shift = static_cast<int>(bit % 32);
  uint64_t window = row[bit / 32];
  if (shift + layout.bits > 32) window |= static_cast<uint64_t>(row[bit / 32 + 1]) << 32;
  return static_cast<uint32_t>(window >> shift) & ((1u << layout.bits) - 1u);
}

std::vector<float> group_quant_dequantize(const GroupQuantLayout& layout) {
  const int64_t N = layout.N, K = layout.K, G = layout.groups;
  std::vector<float> weight(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < K; ++j) {
      const int64_t g = layout.group_of[j];
      const float scale = half_to_float(layout.scales[n * G + g]);
      const float zero = static_cast<float>(layout.zeros[n * G + g]);
      const int64_t k = layout.perm ? layout.perm[j] : j;
      weight[static_cast<size_t>(n * K + k)] = (static_cast<float>(group_quant_value(layout, n, j)) - zero) * scale;
    }
  return weight;
}

void group_quant_linear(const GroupQuantLayout& layout, const float* x, int64_t M, const float* bias, float* y) {
  const std::vector<float> weight = group_quant_dequantize(layout);
  linear_forward(x, weight.data(), bias, M, layout.N, layout.K, y);
}

}  // namespace runllm::cpu
