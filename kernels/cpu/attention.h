// Causal grouped-query attention over a KV cache, fp32 reference (CPU twin of kernels/cuda/attention).
#pragma once
#include <cstdint>

namespace runllm::cpu {

struct AttentionShape {
  int64_t num_heads = 0;     // query heads
  int64_t num_kv_heads = 0;  // key/value heads; query head h reads kv head h / (num_heads / num_kv_heads)
  int64_t head_dim = 0;
  // 0: full causal attention. Otherwise a query at position p sees only keys p - sliding_window + 1 .. p
  // (transformers' sliding_window_overlay: kv_idx > q_idx - sliding_window; Mistral, Qwen2).
  int64_t sliding_window = 0;
};

// M query rows at absolute positions past .. past + M - 1 attend to cache positions 0 .. their own.
// q: M rows of stride q_stride holding num_heads * head_dim values (already rotated).
// k_cache, v_cache: rows 0 .. past + M - 1 of stride num_kv_heads * head_dim (this step's keys included).
// out: M rows of num_heads * head_dim. Softmax scale is 1 / sqrt(head_dim).
void causal_attention(const float* q, int64_t q_stride, const float* k_cache, const float* v_cache,
                      const AttentionShape& shape, int64_t past, int64_t M, float* out);

}  // namespace runllm::cpu
