#include "kernels/cpu/norm_rope.h"

#include <cmath>

namespace runllm::cpu {

void rms_norm(const float* x, const float* weight, int64_t M, int64_t H, float eps, float* y) {
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * H;
    double sum_squares = 0.0;
    for (int64_t h = 0; h < H; ++h) sum_squares += static_cast<double>(row[h]) * row[h];
    const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_squares / static_cast<double>(H) + eps));
    float* out = y + m * H;
    for (int64_t h = 0; h < H; ++h) out[h] = weight[h] * (row[h] * inv_rms);
  }
}

std::vector<float> rope_inverse_frequencies(const RopeParams& params) {
  const int64_t half = params.head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    // transformers: 1 / base ** (arange(0, dim, 2) / dim), evaluated in fp32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(params.head_dim);
    inv_freq[i] = 1.0f / std::pow(params.theta, exponent);
  }
  if (params.scaling_type == "linear") {
    for (float& f : inv_freq) f /= params.factor;
  } else if (params.scaling_type == "llama3") {
    // Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
    const float original = static_cast<float>(params.original_max_position_embeddings);
    const float low_freq_wavelen = original / params.low_freq_factor;
    const float high_freq_wavelen = original / params.high_freq_factor;
    const float two_pi = 6.283185307179586f;
    for (float& f : inv_freq) {
      const float wavelen = two_pi / f;
      if (wavelen > low_freq_wavelen) {
        f = f / params.factor;
      } else if (wavelen >= high_freq_wavelen) {
        const float smooth = (original / wavelen - params.low_freq_factor) /
                             (params.high_freq_factor - params.low_freq_factor);
        f = (1.0f - smooth) * f / params.factor + smooth * f;
      }
    }
  }
  return inv_freq;
}

void apply_rope(float* x, int64_t M, int64_t row_stride, int64_t num_heads, int64_t head_dim,
                const int64_t* positions, const std::vector<float>& inv_freq) {
  const int64_t half = head_dim / 2;
  std::vector<float> cos_table(static_cast<size_t>(half)), sin_table(static_cast<size_t>(half));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[m]) * inv_freq[i];  // fp32 product, as transformers
      cos_table[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin_table[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
    float* row = x + m * row_stride;
    for (int64_t head = 0; head < num_heads; ++head) {
      float* v = row + head * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cos_table[i] - b * sin_table[i];
        v[i + half] = b * cos_table[i] + a * sin_table[i];
      }
    }
  }
}

}  // namespace runllm::cpu
