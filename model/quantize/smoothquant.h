// SmoothQuant (Xiao et al.; llm-compressor's SmoothQuantModifier): migrate activation outliers into
// the weights with a per-input-channel scale before int8 quantization.
#pragma once
#include <cstdint>
#include <vector>

namespace runllm {

// s_k = max|X_k|^α / max_n |W[n, k]|^(1-α), floored at 1e-5 (s_k = max|X_k|^α when the column is zero);
// weight [N, K] stacks every linear balanced against the same norm (q/k/v, or gate/up).
std::vector<float> smoothquant_scales(const std::vector<float>& activation_absmax, const float* weight, int64_t N,
                                      int64_t K, double alpha);

}  // namespace runllm
