#include "kernels/cpu/elementwise.h"

#include <cmath>
#include <cstring>

namespace runllm::cpu {

void silu_mul(const float* gate_up, int64_t M, int64_t I, float* out) {
  for (int64_t m = 0; m < M; ++m) {
    const float* gate = gate_up + m * 2 * I;
    const float* up = gate + I;
    float* row = out + m * I;
    for (int64_t i = 0; i < I; ++i) row[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  }
}

void add_in_place(float* x, const float* delta, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += delta[i];
}

void embedding_gather(const float* table, int64_t H, const int32_t* ids, int64_t M, float* out) {
  for (int64_t m = 0; m < M; ++m)
    std::memcpy(out + m * H, table + static_cast<int64_t>(ids[m]) * H, static_cast<size_t>(H) * sizeof(float));
}

}  // namespace runllm::cpu
