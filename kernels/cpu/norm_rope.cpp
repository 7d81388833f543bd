#include "kernels/cpu/norm_rope.h"

#include <algorithm>
#include <cmath>

#include "runtime/error.h"

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

namespace {

// transformers: 1 / base ** (arange(0, dim, 2) / dim), evaluated in fp32.
std::vector<float> plain_inverse_frequencies(float base, int64_t head_dim) {
  const int64_t half = head_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv_freq[i] = 1.0f / std::pow(base, exponent);
  }
  return inv_freq;
}

// YaRN's mscale (paper eq. 21), transformers' yarn_get_mscale.
double yarn_mscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

// transformers _compute_yarn_parameters: frequencies that turn fewer than beta_slow times over the
// original context are interpolated (divided by factor), those turning more than beta_fast times kept,
// a linear ramp between; cos and sin are scaled by the attention factor.
RopeTable yarn_table(const RopeParams& params) {
  const double base = params.theta, factor = params.factor;
  const int64_t dim = params.head_dim, half = dim / 2;
  const double original = static_cast<double>(params.original_max_position_embeddings);
  const double pi = 3.141592653589793;
  RopeTable table;
  if (params.attention_factor > 0.0f) table.attention_scaling = params.attention_factor;
  else if (params.mscale > 0.0f && params.mscale_all_dim > 0.0f)
    table.attention_scaling = static_cast<float>(yarn_mscale(factor, params.mscale) / yarn_mscale(factor, params.mscale_all_dim));
  else table.attention_scaling = static_cast<float>(yarn_mscale(factor, 1.0));

  const auto correction_dim = [&](double rotations) {
    return (static_cast<double>(dim) * std::log(original / (rotations * 2.0 * pi))) / (2.0 * std::log(base));
  };
  double low = correction_dim(params.beta_fast), high = correction_dim(params.beta_slow);
  if (params.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;  // transformers: prevent a singularity

  table.inv_freq.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    const float pos_freq = std::pow(static_cast<float>(base), exponent);  // base ** (2i / dim), fp32
    const float interpolation = 1.0f / (static_cast<float>(factor) * pos_freq);
    const float ramp = std::min(1.0f, std::max(0.0f, (static_cast<float>(i) - static_cast<float>(low)) /
                                                         static_cast<float>(high - low)));
    const float extrapolation_factor = 1.0f - ramp;
    table.inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + (1.0f / pos_freq) * extrapolation_factor;
  }
  return table;
}

}  // namespace

RopeTable rope_table(const RopeParams& params, int64_t seq_len) {
  if (params.scaling_type == "yarn") return yarn_table(params);
  if (params.scaling_type == "dynamic") {
    // transformers _compute_dynamic_ntk_parameters: base * ((factor * L / max) - (factor - 1)) ** (dim / (dim - 2))
    // with L = max(seq_len, max_position_embeddings), in double; then the plain fp32 table.
    const double max_positions = static_cast<double>(params.max_position_embeddings);
    const double length = std::max(static_cast<double>(seq_len), max_positions);
    const double dim = static_cast<double>(params.head_dim);
    const double base = static_cast<double>(params.theta) *
                        std::pow(params.factor * length / max_positions - (params.factor - 1.0), dim / (dim - 2.0));
    return {plain_inverse_frequencies(static_cast<float>(base), params.head_dim), 1.0f};
  }
  RopeTable table;
  std::vector<float>& inv_freq = table.inv_freq;
  inv_freq = plain_inverse_frequencies(params.theta, params.head_dim);
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
  } else if (params.scaling_type != "default") {
    throw Error("rope type \"" + params.scaling_type + "\" is not supported (supported: default, linear, dynamic, llama3, yarn)");
  }
  return table;
}

std::vector<float> rope_inverse_frequencies(const RopeParams& params) {
  if (params.scaling_type == "dynamic" || params.scaling_type == "yarn")
    throw Error("rope type \"" + params.scaling_type +
                "\" is not supported here (this path supports default, linear and llama3; dynamic and yarn need "
                "per-length frequencies or scaled cos/sin)");
  return rope_table(params, 0).inv_freq;
}

void apply_rope(float* x, int64_t M, int64_t row_stride, int64_t num_heads, int64_t head_dim,
                const int64_t* positions, const std::vector<float>& inv_freq, float attention_scaling) {
  const int64_t half = head_dim / 2;
  std::vector<float> cos_table(static_cast<size_t>(half)), sin_table(static_cast<size_t>(half));
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[m]) * inv_freq[i];  // fp32 product, as transformers
      cos_table[i] = static_cast<float>(std::cos(static_cast<double>(angle))) * attention_scaling;
      sin_table[i] = static_cast<float>(std::sin(static_cast<double>(angle))) * attention_scaling;
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
