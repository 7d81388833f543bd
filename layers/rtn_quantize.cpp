#include "layers/rtn_quantize.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {
namespace {

// Scales are stored as fp16 in every format; rounding here means q is computed with the scale the
// file (and the dequantization) will use, not a more precise one.
float to_fp16(float value) { return half_to_float(float_to_half(value)); }

}  // namespace

QuantizedMatrix rtn_quantize(const float* weight, int64_t N, int64_t K, const RtnOptions& options) {
  const int bits = options.bits;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error("rtn_quantize: bits " + std::to_string(bits) + " is not supported (expected 2, 3, 4 or 8)");
  if (N <= 0 || K <= 0)
    throw Error("rtn_quantize: shape [" + std::to_string(N) + ", " + std::to_string(K) + "] must be positive");
  if (options.group_size == 0 || options.group_size < -1)
    throw Error("rtn_quantize: group_size " + std::to_string(options.group_size) + " must be positive or -1");

  QuantizedMatrix m;
  m.bits = bits;
  m.N = N;
  m.K = K;
  m.group_size = options.group_size == -1 ? K : options.group_size;
  // GPTQ allows a last, partial group (G = ceil(K / g)); AWQ callers check K % g themselves.
  const int64_t G = m.groups();
  const int maxq = (1 << bits) - 1;
  m.q.resize(static_cast<size_t>(N * K));
  m.zeros.resize(static_cast<size_t>(G * N));
  m.scales.resize(static_cast<size_t>(G * N));
  m.g_idx.resize(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) m.g_idx[static_cast<size_t>(k)] = static_cast<int32_t>(k / m.group_size);

  for (int64_t n = 0; n < N; ++n) {
    const float* row = weight + n * K;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t begin = g * m.group_size;
      const int64_t end = std::min(K, begin + m.group_size);
      // The range always contains 0 (AutoGPTQ's quantizer), so 0 is representable up to rounding.
      float xmin = 0.0f, xmax = 0.0f;
      for (int64_t k = begin; k < end; ++k) {
        if (!std::isfinite(row[k]))
          throw Error("rtn_quantize: weight [" + std::to_string(n) + ", " + std::to_string(k) + "] is not finite");
        xmin = std::min(xmin, row[k]);
        xmax = std::max(xmax, row[k]);
      }
      float scale;
      int32_t zero;
      if (options.symmetric) {
        // AutoGPTQ sym: a range symmetric about 0 and the mid value as zero. The 1e-5 floor (as in the
        // asymmetric case) keeps an all-zero group from dividing by zero.
        const float absmax = std::max(-xmin, xmax);
        scale = to_fp16(std::max(2.0f * absmax, 1e-5f) / static_cast<float>(maxq));
        zero = 1 << (bits - 1);
      } else {
        scale = to_fp16(std::max(xmax - xmin, 1e-5f) / static_cast<float>(maxq));
        // nearbyint rounds half to even, like torch.round.
        zero = static_cast<int32_t>(std::clamp(std::nearbyint(-xmin / scale), 0.0f, static_cast<float>(maxq)));
      }
      if (!std::isfinite(scale) || scale == 0.0f)
        throw Error("rtn_quantize: the scale of row " + std::to_string(n) + ", group " + std::to_string(g) +
                    " is not a positive finite fp16 value (weights out of fp16 range)");
      m.scales[static_cast<size_t>(g * N + n)] = scale;
      m.zeros[static_cast<size_t>(g * N + n)] = zero;
      for (int64_t k = begin; k < end; ++k) {
        const float value = std::nearbyint(row[k] / scale) + static_cast<float>(zero);
        m.q[static_cast<size_t>(n * K + k)] = static_cast<uint8_t>(std::clamp(value, 0.0f, static_cast<float>(maxq)));
      }
    }
  }
  return m;
}

}  // namespace runllm
