#include "model/llama_model.h"

#include <algorithm>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/norm_rope.h"
#include "layers/dense_linear.h"
#include "model/safetensors.h"
#include "runtime/error.h"

namespace runllm {

KvCache::KvCache(const ModelConfig& config, int64_t capacity)
    : capacity_(capacity), kv_dim_(config.kv_dim()) {
  if (capacity <= 0) throw Error("KV cache capacity must be positive");
  const size_t elements = static_cast<size_t>(config.num_hidden_layers * capacity * kv_dim_);
  keys_.assign(elements, 0.0f);
  values_.assign(elements, 0.0f);
}

namespace {

std::unique_ptr<Linear> load_fused(const Checkpoint& checkpoint, const std::vector<std::string>& prefixes,
                                   const std::vector<int64_t>& rows, int64_t K, bool with_bias) {
  std::vector<std::unique_ptr<DenseLinear>> parts;
  std::vector<const DenseLinear*> views;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    parts.push_back(DenseLinear::load(checkpoint, prefixes[i], rows[i], K, with_bias));
    views.push_back(parts.back().get());
  }
  return DenseLinear::concat_rows(views);
}

cpu::RopeParams rope_params(const ModelConfig& config) {
  cpu::RopeParams params;
  params.head_dim = config.head_dim;
  params.theta = config.rope_theta;
  params.scaling_type = config.rope_scaling.type;
  params.factor = config.rope_scaling.factor;
  params.low_freq_factor = config.rope_scaling.low_freq_factor;
  params.high_freq_factor = config.rope_scaling.high_freq_factor;
  params.original_max_position_embeddings = config.rope_scaling.original_max_position_embeddings;
  if (params.scaling_type == "dynamic")
    throw Error("config.json: rope_scaling type \"dynamic\" is not supported yet (supported: default, linear, llama3)");
  return params;
}

}  // namespace

std::unique_ptr<LlamaModel> LlamaModel::load(const Checkpoint& checkpoint, const ModelConfig& config) {
  std::unique_ptr<LlamaModel> model(new LlamaModel(config));
  const int64_t H = config.hidden_size, I = config.intermediate_size, V = config.vocab_size;
  const int64_t q_dim = config.q_dim(), kv_dim = config.kv_dim();
  model->rope_inv_freq_ = cpu::rope_inverse_frequencies(rope_params(config));
  model->embed_tokens_ = checkpoint.read_f32("model.embed_tokens.weight", {V, H});
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    DecoderLayer layer;
    layer.input_norm = checkpoint.read_f32(prefix + "input_layernorm.weight", {H});
    layer.post_attention_norm = checkpoint.read_f32(prefix + "post_attention_layernorm.weight", {H});
    const std::string attn = prefix + "self_attn.";
    layer.qkv = load_fused(checkpoint, {attn + "q_proj", attn + "k_proj", attn + "v_proj"}, {q_dim, kv_dim, kv_dim},
                           H, config.attention_bias);
    // Llama's attention_bias covers o_proj too; Qwen2 has biases on q/k/v only.
    const bool o_bias = config.attention_bias && config.architecture != "Qwen2ForCausalLM";
    layer.o = DenseLinear::load(checkpoint, attn + "o_proj", H, q_dim, o_bias);
    const std::string mlp = prefix + "mlp.";
    layer.gate_up = load_fused(checkpoint, {mlp + "gate_proj", mlp + "up_proj"}, {I, I}, H, false);
    layer.down = DenseLinear::load(checkpoint, mlp + "down_proj", H, I, false);
    model->layers_.push_back(std::move(layer));
  }
  model->final_norm_ = checkpoint.read_f32("model.norm.weight", {H});
  // A tied lm_head reuses the embedding; it is never looked up as a tensor of its own.
  if (!config.tie_word_embeddings) {
    if (!checkpoint.has("lm_head.weight"))
      throw Error("missing tensor lm_head.weight (config.json has tie_word_embeddings false)");
    model->lm_head_ = DenseLinear::load(checkpoint, "lm_head", V, H, false);
  }
  return model;
}

void LlamaModel::forward(const int32_t* tokens, int64_t M, KvCache& cache, int64_t first_logit_row,
                         float* logits) const {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim(), qkv_dim = q_dim + 2 * kv_dim;
  const int64_t past = cache.length_;
  if (M <= 0) throw Error("forward: no tokens to run");
  if (past + M > cache.capacity_)
    throw Error("context overflow: " + std::to_string(past + M) + " tokens exceed the context of " +
                std::to_string(cache.capacity_) + " (use a larger --ctx or a shorter prompt)");
  for (int64_t m = 0; m < M; ++m)
    if (tokens[m] < 0 || tokens[m] >= V)
      throw Error("token id " + std::to_string(tokens[m]) + " is outside the vocabulary of " + std::to_string(V));

  std::vector<float> x(static_cast<size_t>(M * H)), normed(x.size()), qkv(static_cast<size_t>(M * qkv_dim));
  std::vector<float> attention_out(static_cast<size_t>(M * q_dim)), projected(x.size());
  std::vector<float> gate_up(static_cast<size_t>(M * 2 * I)), activated(static_cast<size_t>(M * I));
  std::vector<int64_t> positions(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) positions[m] = past + m;
  const cpu::AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim};

  cpu::embedding_gather(embed_tokens_.data(), H, tokens, M, x.data());
  for (size_t l = 0; l < layers_.size(); ++l) {
    const DecoderLayer& layer = layers_[l];
    cpu::rms_norm(x.data(), layer.input_norm.data(), M, H, c.rms_norm_eps, normed.data());
    layer.qkv->forward(normed.data(), M, qkv.data());
    cpu::apply_rope(qkv.data(), M, qkv_dim, c.num_attention_heads, c.head_dim, positions.data(), rope_inv_freq_);
    cpu::apply_rope(qkv.data() + q_dim, M, qkv_dim, c.num_key_value_heads, c.head_dim, positions.data(),
                    rope_inv_freq_);
    float* keys = cache.keys(static_cast<int64_t>(l));
    float* values = cache.values(static_cast<int64_t>(l));
    for (int64_t m = 0; m < M; ++m) {
      const float* row = qkv.data() + m * qkv_dim;
      std::copy(row + q_dim, row + q_dim + kv_dim, keys + (past + m) * kv_dim);
      std::copy(row + q_dim + kv_dim, row + qkv_dim, values + (past + m) * kv_dim);
    }
    cpu::causal_attention(qkv.data(), qkv_dim, keys, values, shape, past, M, attention_out.data());
    layer.o->forward(attention_out.data(), M, projected.data());
    cpu::add_in_place(x.data(), projected.data(), M * H);

    cpu::rms_norm(x.data(), layer.post_attention_norm.data(), M, H, c.rms_norm_eps, normed.data());
    layer.gate_up->forward(normed.data(), M, gate_up.data());
    cpu::silu_mul(gate_up.data(), M, I, activated.data());
    layer.down->forward(activated.data(), M, projected.data());
    cpu::add_in_place(x.data(), projected.data(), M * H);
  }
  cache.length_ = past + M;

  // Only the rows that need logits go through the final norm and lm_head (V is large).
  const int64_t logit_rows = M - first_logit_row;
  if (logit_rows <= 0) return;
  const float* tail = x.data() + first_logit_row * H;
  cpu::rms_norm(tail, final_norm_.data(), logit_rows, H, c.rms_norm_eps, normed.data());
  if (lm_head_) lm_head_->forward(normed.data(), logit_rows, logits);
  else cpu::linear_forward(normed.data(), embed_tokens_.data(), nullptr, logit_rows, V, H, logits);
}

std::vector<std::string> LlamaModel::describe_layers() const {
  const std::string last = std::to_string(layers_.size() - 1);
  const DecoderLayer& first = layers_.front();
  return {
      "layers 0-" + last + " q/k/v: " + first.qkv->describe() + " fused qkv",
      "layers 0-" + last + " o: " + first.o->describe(),
      "layers 0-" + last + " gate/up: " + first.gate_up->describe() + " fused gate_up",
      "layers 0-" + last + " down: " + first.down->describe(),
      std::string("lm_head: ") + (lm_head_ ? lm_head_->describe() : "DenseLinear fp32 (tied to embed_tokens)"),
  };
}

}  // namespace runllm
