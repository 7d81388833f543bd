#include "kernels/cpu/attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace runllm::cpu {

namespace {
// Query rows are processed in blocks so the score matrix stays small for long prompts.
constexpr int64_t kQueryBlock = 128;
}  // namespace

void causal_attention(const float* q, int64_t q_stride, const float* k_cache, const float* v_cache,
                      const AttentionShape& shape, int64_t past, int64_t M, float* out) {
  const int64_t head_dim = shape.head_dim;
  const int64_t kv_stride = shape.num_kv_heads * head_dim;
  const int64_t out_stride = shape.num_heads * head_dim;
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> scores;

  for (int64_t block_start = 0; block_start < M; block_start += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, M - block_start);
    const int64_t keys = past + block_start + rows;  // the last row of the block sees this many keys
    scores.resize(static_cast<size_t>(rows * keys));
    for (int64_t head = 0; head < shape.num_heads; ++head) {
      const int64_t kv_head = head / group;
      const float* q_head = q + block_start * q_stride + head * head_dim;
      const float* k_head = k_cache + kv_head * head_dim;
      const float* v_head = v_cache + kv_head * head_dim;
      // scores[rows, keys] = scale * Q · Kᵀ
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(keys),
                  static_cast<int>(head_dim), scale, q_head, static_cast<int>(q_stride), k_head,
                  static_cast<int>(kv_stride), 0.0f, scores.data(), static_cast<int>(keys));
      for (int64_t r = 0; r < rows; ++r) {
        float* row = scores.data() + r * keys;
        const int64_t visible = past + block_start + r + 1;  // causal: keys after the query are masked
        // A sliding window also masks the keys more than sliding_window - 1 positions back.
        const int64_t first = shape.sliding_window > 0 ? std::max<int64_t>(0, visible - shape.sliding_window) : 0;
        float max_score = -std::numeric_limits<float>::infinity();
        for (int64_t j = first; j < visible; ++j) max_score = std::max(max_score, row[j]);
        double sum = 0.0;
        for (int64_t j = first; j < visible; ++j) {
          row[j] = std::exp(row[j] - max_score);
          sum += row[j];
        }
        const float inv_sum = static_cast<float>(1.0 / sum);
        for (int64_t j = first; j < visible; ++j) row[j] *= inv_sum;
        std::fill(row, row + first, 0.0f);
        std::fill(row + visible, row + keys, 0.0f);
      }
      // out[rows, head_dim] = P · V
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(head_dim),
                  static_cast<int>(keys), 1.0f, scores.data(), static_cast<int>(keys), v_head,
                  static_cast<int>(kv_stride), 0.0f, out + block_start * out_stride + head * head_dim,
                  static_cast<int>(out_stride));
    }
  }
}

}  // namespace runllm::cpu
