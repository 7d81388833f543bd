// CPU twin of the group-wise quantized kernels (kernels/cuda/group_quant_gemv.cu and
// group_quant_dequant.cu): the same GroupQuantLayout (kernels/group_quant_layout.h), plain loops.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/group_quant_layout.h"

namespace runllm::cpu {

// Value j of row n of the packed bit stream.
uint32_t group_quant_value(const GroupQuantLayout& layout, int64_t n, int64_t j);

// W [N, K] fp32 in the original input-column order: W[n, perm[j]] = (q - zero) * scale.
std::vector<float> group_quant_dequantize(const GroupQuantLayout& layout);

// y[M, N] = x[M, K] · Wᵀ (+ bias[N] when not null), fp32, through the dequantized W.
void group_quant_linear(const GroupQuantLayout& layout, const float* x, int64_t M, const float* bias, float* y);

}  // namespace runllm::cpu
