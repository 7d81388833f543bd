#include "layers/quantized_matrix.h"

#include <cmath>

#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {

bool QuantizedMatrix::has_act_order() const {
  // GPTQ without desc_act writes g_idx[k] = k / g (FORMATS.md §4); anything else is act-order.
  if (group_size <= 0) return false;  // invalid, and validate() says so; never divide by it here
  for (int64_t k = 0; k < static_cast<int64_t>(g_idx.size()); ++k)
    if (g_idx[static_cast<size_t>(k)] != k / group_size) return true;
  return false;
}

std::vector<float> QuantizedMatrix::dequantize() const {
  // W[n, k] = (q[n, k] - zeros[g_idx[k], n]) * scales[g_idx[k], n]: the integer difference is exact,
  // so the only rounding is the one fp32 product, the same for every caller (CPU reference = oracle).
  validate("QuantizedMatrix::dequantize");  // indices below come from g_idx: never read out of bounds
  std::vector<float> weight(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      const size_t group_entry = static_cast<size_t>(g_idx[static_cast<size_t>(k)] * N + n);
      const int32_t difference = static_cast<int32_t>(q[static_cast<size_t>(n * K + k)]) - zeros[group_entry];
      weight[static_cast<size_t>(n * K + k)] = static_cast<float>(difference) * scales[group_entry];
    }
  }
  return weight;
}

void QuantizedMatrix::validate(const std::string& what) const {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error(what + ": bits " + std::to_string(bits) + " is not supported (expected 2, 3, 4 or 8)");
  if (N <= 0 || K <= 0)
    throw Error(what + ": shape [" + std::to_string(N) + ", " + std::to_string(K) + "] must be positive");
  // g > K is legal (one partial group, as GPTQ writes for a small layer under a model-wide group size).
  if (group_size <= 0) throw Error(what + ": group_size " + std::to_string(group_size) + " must be positive");
  const int64_t G = groups();
  const int32_t maxq = (1 << bits) - 1;
  if (static_cast<int64_t>(q.size()) != N * K)
    throw Error(what + ": q holds " + std::to_string(q.size()) + " values, expected N * K = " + std::to_string(N * K));
  if (static_cast<int64_t>(zeros.size()) != G * N || static_cast<int64_t>(scales.size()) != G * N)
    throw Error(what + ": zeros/scales hold " + std::to_string(zeros.size()) + "/" + std::to_string(scales.size()) +
                " values, expected G * N = " + std::to_string(G * N));
  if (static_cast<int64_t>(g_idx.size()) != K)
    throw Error(what + ": g_idx holds " + std::to_string(g_idx.size()) + " entries, expected in_features " +
                std::to_string(K));
  for (size_t i = 0; i < q.size(); ++i)
    if (q[i] > maxq)
      throw Error(what + ": q[" + std::to_string(i / K) + ", " + std::to_string(i % K) + "] = " + std::to_string(q[i]) +
                  " exceeds " + std::to_string(maxq) + " for " + std::to_string(bits) + "-bit");
  for (size_t i = 0; i < zeros.size(); ++i)
    if (zeros[i] < 0 || zeros[i] > maxq)
      throw Error(what + ": zero [" + std::to_string(i / N) + ", " + std::to_string(i % N) + "] = " +
                  std::to_string(zeros[i]) + " is outside [0, " + std::to_string(maxq) + "]");
  // Scales live as fp16 in every format (and in the CUDA kernels), so a value fp16 cannot hold exactly
  // would make the CPU reference disagree with the file and the GPU.
  for (size_t i = 0; i < scales.size(); ++i)
    if (!std::isfinite(scales[i]) || half_to_float(float_to_half(scales[i])) != scales[i])
      throw Error(what + ": scale [" + std::to_string(i / N) + ", " + std::to_string(i % N) + "] = " +
                  std::to_string(scales[i]) + " is not a finite fp16 value");
  for (size_t k = 0; k < g_idx.size(); ++k)
    if (g_idx[k] < 0 || g_idx[k] >= G)
      throw Error(what + ": g_idx[" + std::to_string(k) + "] = " + std::to_string(g_idx[k]) + " is outside [0, " +
                  std::to_string(G) + ")");
}

QuantizedMatrix slice_rows(const QuantizedMatrix& matrix, int64_t begin, int64_t end) {
  if (begin < 0 || end > matrix.N || begin >= end)
    throw Error("slice_rows: rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") outside [0, " +
                std::to_string(matrix.N) + ")");
  QuantizedMatrix part;
  part.bits = matrix.bits;
  part.N = end - begin;
  part.K = matrix.K;
  part.group_size = matrix.group_size;
  part.g_idx = matrix.g_idx;
  part.q.assign(matrix.q.begin() + begin * matrix.K, matrix.q.begin() + end * matrix.K);
  const int64_t G = matrix.groups();
  part.zeros.resize(static_cast<size_t>(G * part.N));
  part.scales.resize(static_cast<size_t>(G * part.N));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < part.N; ++n) {
      part.zeros[static_cast<size_t>(g * part.N + n)] = matrix.zeros[static_cast<size_t>(g * matrix.N + begin + n)];
      part.scales[static_cast<size_t>(g * part.N + n)] = matrix.scales[static_cast<size_t>(g * matrix.N + begin + n)];
    }
  return part;
}

}  // namespace runllm
