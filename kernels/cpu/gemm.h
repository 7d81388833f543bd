// Dense fp32 GEMM on the CPU through OpenBLAS: the reference for every linear layer.
#pragma once
#include <cstdint>

namespace runllm::cpu {

// y[M, N] = x[M, K] · W[N, K]ᵀ (+ bias[N] when bias != nullptr). Row-major; W as nn.Linear stores it.
void linear_forward(const float* x, const float* weight, const float* bias, int64_t M, int64_t N, int64_t K,
                    float* y);

}  // namespace runllm::cpu
