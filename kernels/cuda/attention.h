// Causal grouped-query attention over a KV cache (CUDA twin of kernels/cpu/attention.h). q, k, v and
// out are of the activation type T (__half or __nv_bfloat16); scores, softmax and accumulation are
// fp32. head_dim 64 or 128.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace runllm::cuda {

// M query rows at absolute positions past .. past + M - 1 attend to cache positions 0 .. their own.
template <typename T>
struct AttentionArgs {
  const T* q = nullptr;             // M rows of stride q_stride, num_heads * head_dim values each (rotated)
  int64_t q_stride = 0;             // elements; the fused qkv row length when q points into qkv
  const T* k_cache = nullptr;       // [capacity, num_kv_heads * head_dim]; rows 0 .. past + M - 1 written
  const T* v_cache = nullptr;       // [capacity, num_kv_heads * head_dim]
  int64_t num_heads = 0;            // query heads; head h reads kv head h / (num_heads / num_kv_heads)
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;             // 64 or 128
  int64_t past = 0;                 // cache rows before this step's first query
  int64_t M = 0;                    // query rows
  T* out = nullptr;                 // [M, num_heads * head_dim]
  // Decode only. When set, the kernels read `past` from this device int32 at run time, so one
  // launch can be captured in a CUDA graph and replayed at every position; `past` above is then
  // the largest value it may hold (capacity - 1), which fixes the launch's split of the keys.
  const int32_t* device_past = nullptr;
};

// Any M (prompt processing). Flash-attention tiling: 16 query rows of one head per block, keys
// streamed through shared memory 32 at a time with an online softmax; no score matrix in memory.
template <typename T>
void attention_prefill(const AttentionArgs<T>& args, cudaStream_t stream);

// M == 1 (one decode step). The keys are split into chunks processed by separate blocks (each for
// one kv head and all the query heads of its group, so K/V are read once); a combine step merges
// the chunks' partial softmax states. `workspace` is device memory of at least
// attention_decode_workspace_bytes(num_heads, head_dim) bytes, used only during the call.
size_t attention_decode_workspace_bytes(int64_t num_heads, int64_t head_dim);
template <typename T>
void attention_decode(const AttentionArgs<T>& args, float* workspace, size_t workspace_bytes, cudaStream_t stream);

// Writes this step's keys and values into the caches: for m < M, k_cache[past + m, :] =
// qkv[m, k_column .. k_column + kv_dim) and v_cache[past + m, :] = qkv[m, v_column .. + kv_dim).
template <typename T>
struct KvAppendArgs {
  const T* qkv = nullptr;       // [M, qkv_stride]
  int64_t qkv_stride = 0;
  int64_t k_column = 0;
  int64_t v_column = 0;
  int64_t kv_dim = 0;           // num_kv_heads * head_dim
  int64_t past = 0;
  int64_t M = 0;
  T* k_cache = nullptr;         // [capacity, kv_dim]
  T* v_cache = nullptr;         // [capacity, kv_dim]
  const int32_t* device_past = nullptr;  // when set, past is read from this device int32 (CUDA graphs)
};
template <typename T>
void kv_cache_append(const KvAppendArgs<T>& args, cudaStream_t stream);

}  // namespace runllm::cuda
