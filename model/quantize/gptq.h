// GPTQ (Frantar et al.; AutoGPTQ's gptq.py): quantize a weight column by column, feeding each column's
// rounding error into the columns not yet quantized through the inverse Hessian of the layer's inputs.
#pragma once
#include <cstdint>
#include <vector>

#include "layers/quantized_matrix.h"

namespace runllm {

// H = 2/n · Σ x xᵀ over every calibration row seen (AutoGPTQ keeps this running average).
class HessianAccumulator {
 public:
  explicit HessianAccumulator(int64_t K);
  void add(const float* x, int64_t M);  // x [M, K]
  int64_t K() const { return K_; }
  int64_t samples() const { return samples_; }
  const std::vector<double>& matrix() const { return hessian_; }  // [K, K]

 private:
  int64_t K_;
  int64_t samples_ = 0;
  std::vector<double> hessian_;
};

struct GptqOptions {
  int bits = 4;                // 2, 3, 4 or 8
  int64_t group_size = 128;    // -1 = one group of K
  bool sym = false;
  bool act_order = false;      // desc_act: columns in order of decreasing Hessian diagonal; writes g_idx
  double damp_percent = 0.01;  // λ = damp_percent · mean(diag H) added to the diagonal
  int64_t block_size = 128;    // columns per lazy-batch block
};

struct GptqResult {
  QuantizedMatrix matrix;      // g_idx[k] = (position of column k in the quantization order) / g
  double squared_error = 0.0;  // Σ (w - q)² / d² / 2, GPTQ's own loss (AutoGPTQ's), for progress output
};

// weight: [N, K] fp32 (nn.Linear orientation). Dead inputs (H[k][k] == 0) get H[k][k] = 1 and weight 0,
// as AutoGPTQ does. Throws when H is not positive definite even after dampening.
GptqResult gptq_quantize(const float* weight, int64_t N, int64_t K, const HessianAccumulator& hessian,
                         const GptqOptions& options);

}  // namespace runllm
