// RMSNorm and rotary position embedding, fp32 reference (CPU twins of kernels/cuda/norm_rope).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runllm::cpu {

// y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * weight. In-place (y == x) is allowed.
void rms_norm(const float* x, const float* weight, int64_t M, int64_t H, float eps, float* y);

// The formulas are transformers 5.x modeling_rope_utils.py's (_compute_*_parameters).
struct RopeParams {
  int64_t head_dim = 0;
  float theta = 10000.0f;
  std::string scaling_type = "default";  // "default" | "linear" | "llama3" | "dynamic" | "yarn"
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int64_t original_max_position_embeddings = 8192;  // llama3, yarn
  int64_t max_position_embeddings = 2048;           // dynamic: the length past which the base grows
  float attention_factor = 0.0f;                    // yarn; 0 = derived from factor / mscale
  float beta_fast = 32.0f, beta_slow = 1.0f;        // yarn
  float mscale = 0.0f, mscale_all_dim = 0.0f;       // yarn; 0 = absent
  bool truncate = true;                             // yarn
};

// What a forward rotates with: inv_freq [head_dim / 2] and the factor that multiplies cos and sin
// (yarn's attention factor; 1 for the other types).
struct RopeTable {
  std::vector<float> inv_freq;
  float attention_scaling = 1.0f;
};

// The table for a forward whose highest position is seq_len - 1. Only "dynamic" depends on seq_len
// (NTK: the base grows once seq_len passes max_position_embeddings, recomputed per forward as
// transformers' dynamic_rope_update does; keys already in a cache keep the rotation they got).
RopeTable rope_table(const RopeParams& params, int64_t seq_len);

// inv_freq[i], i < head_dim / 2, as transformers computes it (fp32), for the types whose table is
// fixed and whose cos/sin are unscaled: default, linear, llama3. Throws for dynamic and yarn, which
// need rope_table (a per-length table, an attention factor).
std::vector<float> rope_inverse_frequencies(const RopeParams& params);

// Rotates `num_heads` heads of size head_dim in place, HF "rotate_half" layout: element i pairs with
// element i + head_dim/2. `x` holds M rows of stride `row_stride`; row m is at position positions[m].
// cos and sin are multiplied by `attention_scaling` (RopeTable::attention_scaling).
void apply_rope(float* x, int64_t M, int64_t row_stride, int64_t num_heads, int64_t head_dim,
                const int64_t* positions, const std::vector<float>& inv_freq, float attention_scaling = 1.0f);

}  // namespace runllm::cpu
