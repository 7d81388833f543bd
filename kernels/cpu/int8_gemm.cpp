#include "kernels/cpu/int8_gemm.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "runtime/error.h"

namespace runllm::cpu {

namespace {

// 128 * 128 * 1024 = 2^24: the largest chunk whose partial sums fp32 represents exactly.
constexpr int64_t kExactChunkK = 1024;
// Rows of w converted to fp32 at a time, so the temporary stays small even for an lm_head-sized N.
constexpr int64_t kRowTile = 2048;

// std::nearbyint rounds in the current mode, round-to-nearest-even by default (torch.round and
// CUDA's __float2int_rn agree).
inline int8_t round_clamp_127(float value) {
  const float rounded = std::nearbyint(value);
  return static_cast<int8_t>(std::min(127.0f, std::max(-127.0f, rounded)));
}

}  // namespace

void quantize_per_token_int8(const float* x, int64_t M, int64_t K, int8_t* xq, float* scales) {
  for (int64_t t = 0; t < M; ++t) {
    const float* row = x + t * K;
    int8_t* out = xq + t * K;
    float absmax = 0.0f;
    bool finite = true;
    for (int64_t k = 0; k < K; ++k) {
      if (!std::isfinite(row[k])) finite = false;
      absmax = std::max(absmax, std::fabs(row[k]));
    }
    if (!finite) {
      std::fill(out, out + K, int8_t{0});
      scales[t] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    if (absmax == 0.0f) {
      std::fill(out, out + K, int8_t{0});
      scales[t] = 0.0f;
      continue;
    }
    scales[t] = absmax / 127.0f;
    const float inverse = 127.0f / absmax;
    for (int64_t k = 0; k < K; ++k) out[k] = round_clamp_127(row[k] * inverse);
  }
}

void quantize_static_int8(const float* x, int64_t M, int64_t K, float scale, int8_t* xq, float* scales) {
  for (int64_t t = 0; t < M; ++t) {
    const float* row = x + t * K;
    int8_t* out = xq + t * K;
    bool has_nan = false;
    for (int64_t k = 0; k < K; ++k) {
      if (std::isnan(row[k])) {
        has_nan = true;
        out[k] = 0;
      } else {
        out[k] = round_clamp_127(row[k] / scale);  // +-inf saturate to +-127
      }
    }
    if (has_nan) std::fill(out, out + K, int8_t{0});
    scales[t] = has_nan ? std::numeric_limits<float>::quiet_NaN() : scale;
  }
}

void int8_gemm_int32(const int8_t* a, const int8_t* w, int64_t M, int64_t N, int64_t K, int32_t* acc) {
  // |Σ| <= 128 * 128 * K must fit in int32.
  if (K > (int64_t{1} << 31) / (128 * 128))
    throw Error("int8_gemm_int32: K = " + std::to_string(K) + " exceeds 131072, int32 accumulation could overflow");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    std::fill(acc, acc + M * N, 0);
    return;
  }

  // Scratch kept per thread between calls: fresh multi-megabyte allocations each call cost page faults
  // comparable to the conversions themselves.
  thread_local std::vector<float> a_float, w_float, partial;
  a_float.resize(static_cast<size_t>(M * K));
  for (int64_t i = 0; i < M * K; ++i) a_float[static_cast<size_t>(i)] = static_cast<float>(a[i]);

  const int64_t tile_rows = std::min(N, kRowTile);
  const int64_t chunk = std::min(K, kExactChunkK);
  w_float.resize(static_cast<size_t>(tile_rows * chunk));
  partial.resize(static_cast<size_t>(M * tile_rows));

  for (int64_t n0 = 0; n0 < N; n0 += tile_rows) {
    const int64_t rows = std::min(tile_rows, N - n0);
    for (int64_t k0 = 0; k0 < K; k0 += chunk) {
      const int64_t width = std::min(chunk, K - k0);
      for (int64_t n = 0; n < rows; ++n) {
        const int8_t* source = w + (n0 + n) * K + k0;
        float* target = w_float.data() + n * width;
        for (int64_t k = 0; k < width; ++k) target[k] = static_cast<float>(source[k]);
      }
      if (M == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(rows), static_cast<int>(width), 1.0f,
                    w_float.data(), static_cast<int>(width), a_float.data() + k0, 1, 0.0f, partial.data(), 1);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(rows),
                    static_cast<int>(width), 1.0f, a_float.data() + k0, static_cast<int>(K), w_float.data(),
                    static_cast<int>(width), 0.0f, partial.data(), static_cast<int>(rows));
      }
      // Each partial value is an exact integer, so the conversion (truncation) only changes its type.
      for (int64_t m = 0; m < M; ++m) {
        const float* source = partial.data() + m * rows;
        int32_t* target = acc + m * N + n0;
        if (k0 == 0)
          for (int64_t n = 0; n < rows; ++n) target[n] = static_cast<int32_t>(source[n]);
        else
          for (int64_t n = 0; n < rows; ++n) target[n] += static_cast<int32_t>(source[n]);
      }
    }
  }
}

}  // namespace runllm::cpu
