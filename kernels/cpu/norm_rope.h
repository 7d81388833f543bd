// RMSNorm and rotary position embedding, fp32 reference (CPU twins of kernels/cuda/norm_rope).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runllm::cpu {

// y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * weight. In-place (y == x) is allowed.
void rms_norm(const float* x, const float* weight, int64_t M, int64_t H, float eps, float* y);

struct RopeParams {
  int64_t head_dim = 0;
  float theta = 10000.0f;
  std::string scaling_type = "default";  // "default" | "linear" | "llama3"
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position_embeddings = 8192;
};

// inv_freq[i], i < head_dim / 2, as transformers computes it (fp32), with linear or llama3 scaling.
std::vector<float> rope_inverse_frequencies(const RopeParams& params);

// Rotates `num_heads` heads of size head_dim in place, HF "rotate_half" layout: element i pairs with
// element i + head_dim/2. `x` holds M rows of stride `row_stride`; row m is at position positions[m].
void apply_rope(float* x, int64_t M, int64_t row_stride, int64_t num_heads, int64_t head_dim,
                const int64_t* positions, const std::vector<float>& inv_freq);

}  // namespace runllm::cpu
