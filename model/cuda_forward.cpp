// The decoder's forward on the GPU, as a list of layer calls: norm, qkv, rope, KV append,
// attention, o, residual + norm, gate/up, SiLU, down, residual + next norm. Every launch is
// enqueued on the context's stream; the decode step captures this same code into its graph.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/norm_rope.h"
#include "model/cuda_llama_model.h"

namespace runllm {

namespace {

template <typename T>
const T* typed(const void* p) {
  return static_cast<const T*>(p);
}
template <typename T>
T* typed(void* p) {
  return static_cast<T*>(p);
}

}  // namespace

void CudaLlamaModel::run_linear(const DeviceLinear& linear, const void* x, int64_t M, void* y, bool fp32_output) const {
  linear.forward(x, M, y, device_run(context_, linear_workspace_), fp32_output);
}

template <typename T>
void CudaLlamaModel::enqueue_layer(int64_t l, int64_t M, int64_t past, bool graph_decode) {
  const ModelConfig& c = config_;
  const CudaDecoderLayer& w = weights_.layers[static_cast<size_t>(l)];
  const cudaStream_t stream = context_.stream();
  const int64_t H = c.hidden_size, I = c.intermediate_size, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  const int64_t qkv_dim = q_dim + 2 * kv_dim;
  T* keys = typed<T>(kv_memory_.get()) + (2 * l) * kv_capacity_ * kv_dim;
  T* values = keys + kv_capacity_ * kv_dim;
  T* x = typed<T>(x_);
  T* normed = typed<T>(normed_);
  T* qkv = typed<T>(qkv_);
  T* attention_out = typed<T>(attention_);
  T* projected = typed<T>(projected_);
  T* gate_up = typed<T>(gate_up_);
  T* activated = typed<T>(activated_);

  if (l == 0) cuda::rms_norm(x, typed<T>(w.input_norm), M, H, c.rms_norm_eps, normed, stream);
  run_linear(*w.qkv, normed, M, qkv);
  cuda::RopeArgs<T> rope;
  rope.x = qkv;
  rope.M = M;
  rope.row_stride = qkv_dim;
  rope.head_dim = c.head_dim;
  rope.positions = positions_;
  rope.inv_freq = inv_freq_;
  // q's heads and k's heads lie side by side in a qkv row with the same head_dim and positions:
  // one launch rotates both.
  rope.column_offset = 0;
  rope.num_heads = c.num_attention_heads + c.num_key_value_heads;
  cuda::apply_rope(rope, stream);

  cuda::KvAppendArgs<T> append;
  append.qkv = qkv;
  append.qkv_stride = qkv_dim;
  append.k_column = q_dim;
  append.v_column = q_dim + kv_dim;
  append.kv_dim = kv_dim;
  append.past = past;
  append.M = M;
  append.k_cache = keys;
  append.v_cache = values;
  append.device_past = graph_decode ? positions_ : nullptr;
  cuda::kv_cache_append(append, stream);

  cuda::AttentionArgs<T> attention;
  attention.q = qkv;
  attention.q_stride = qkv_dim;
  attention.k_cache = keys;
  attention.v_cache = values;
  attention.num_heads = c.num_attention_heads;
  attention.num_kv_heads = c.num_key_value_heads;
  attention.head_dim = c.head_dim;
  attention.past = graph_decode ? kv_capacity_ - 1 : past;
  attention.device_past = graph_decode ? positions_ : nullptr;
  attention.M = M;
  attention.out = attention_out;
  if (M == 1) cuda::attention_decode(attention, decode_workspace_, decode_workspace_bytes_, stream);
  else cuda::attention_prefill(attention, stream);

  run_linear(*w.o, attention_out, M, projected);
  cuda::add_rms_norm(x, projected, typed<T>(w.post_attention_norm), M, H, c.rms_norm_eps, normed, stream);
  run_linear(*w.gate_up, normed, M, gate_up);
  cuda::silu_mul(gate_up, M, I, activated, stream);
  run_linear(*w.down, activated, M, projected);
  // The residual add fused with the next layer's input norm.
  if (l + 1 < static_cast<int64_t>(weights_.layers.size()))
    cuda::add_rms_norm(x, projected, typed<T>(weights_.layers[static_cast<size_t>(l + 1)].input_norm), M, H,
                       c.rms_norm_eps, normed, stream);
  else
    cuda::add_in_place(x, projected, M * H, stream);
}

void CudaLlamaModel::enqueue_forward(int64_t M, int64_t past, int64_t logit_row0, bool graph_decode) {
  if (dtype_ == DType::BF16) enqueue_forward_typed<__nv_bfloat16>(M, past, logit_row0, graph_decode);
  else enqueue_forward_typed<__half>(M, past, logit_row0, graph_decode);
}

template <typename T>
void CudaLlamaModel::enqueue_forward_typed(int64_t M, int64_t past, int64_t logit_row0, bool graph_decode) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size;
  const cudaStream_t stream = context_.stream();
  T* x = typed<T>(x_);
  T* normed = typed<T>(normed_);
  cuda::embedding_gather(typed<T>(weights_.embed_tokens), H, ids_, M, x, stream);
  for (int64_t l = 0; l < static_cast<int64_t>(weights_.layers.size()); ++l)
    enqueue_layer<T>(l, M, past, graph_decode);
  const int64_t rows = M - logit_row0;
  if (rows <= 0) return;
  // Only the rows that need logits go through the final norm and lm_head (V is large).
  cuda::rms_norm(x + logit_row0 * H, typed<T>(weights_.final_norm), rows, H, c.rms_norm_eps, normed, stream);
  run_linear(*weights_.lm_head, normed, rows, logits_, true);
}

}  // namespace runllm
