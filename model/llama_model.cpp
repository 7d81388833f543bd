#include "model/llama_model.h"

#include <algorithm>
#include <functional>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/norm_rope.h"
#include "layers/dense_linear.h"
#include "layers/released_linear.h"
#include "model/decoder_checks.h"
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


}  // namespace

std::unique_ptr<LlamaModel> LlamaModel::load(const Checkpoint& checkpoint, const ModelConfig& config,
                                             LinearSource& linears, LayerSink* sink) {
  std::unique_ptr<LlamaModel> model(new LlamaModel(config));
  if (sink) sink->begin(config);
  const int64_t H = config.hidden_size, V = config.vocab_size;
  model->rope_params_ = rope_params_of(config);
  model->rope_ = cpu::rope_table(model->rope_params_, config.max_position_embeddings);
  model->embed_tokens_ = checkpoint.read_f32("model.embed_tokens.weight", {V, H});
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    model->layers_.push_back(linears.load_layer(i));
    if (!sink) continue;
    DecoderLayer& layer = model->layers_.back();
    sink->take_layer(i, layer);
    if (sink->releases_linears())
      for (std::unique_ptr<Linear>* linear : {&layer.qkv, &layer.o, &layer.gate_up, &layer.down})
        *linear = std::make_unique<ReleasedLinear>(**linear);
  }
  model->final_norm_ = checkpoint.read_f32("model.norm.weight", {H});
  model->lm_head_ = linears.load_lm_head();
  return model;
}

void LlamaModel::embed(const int32_t* tokens, int64_t M, float* x) const {
  check_token_ids(tokens, M, config_.vocab_size);
  cpu::embedding_gather(embed_tokens_.data(), config_.hidden_size, tokens, M, x);
}

const cpu::RopeTable& LlamaModel::rope_for_length(int64_t seq_len, cpu::RopeTable& scratch) const {
  // Only dynamic NTK rope changes with the length: transformers recomputes it per forward from the
  // highest position (dynamic_rope_update); every other type has one table.
  if (rope_params_.scaling_type != "dynamic" || seq_len <= config_.max_position_embeddings) return rope_;
  scratch = cpu::rope_table(rope_params_, seq_len);
  return scratch;
}

void LlamaModel::run_layer(int64_t index, float* x, int64_t M, int64_t past, float* keys, float* values,
                           const cpu::RopeTable& rope, LinearInputObserver* observer) const {
  const ModelConfig& c = config_;
  const DecoderLayer& layer = layers_[static_cast<size_t>(index)];
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim(), qkv_dim = q_dim + 2 * kv_dim;
  std::vector<float> normed(static_cast<size_t>(M * H)), qkv(static_cast<size_t>(M * qkv_dim));
  std::vector<float> attention_out(static_cast<size_t>(M * q_dim)), projected(normed.size());
  std::vector<float> gate_up(static_cast<size_t>(M * 2 * I)), activated(static_cast<size_t>(M * I));
  std::vector<int64_t> positions(static_cast<size_t>(M));
  for (int64_t m = 0; m < M; ++m) positions[m] = past + m;
  const cpu::AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                                  c.layer_sliding_window(index)};
  auto observe = [&](Projection projection, const float* input, int64_t K) {
    if (observer) observer->observe(index, projection, input, M, K);
  };

  cpu::rms_norm(x, layer.input_norm.data(), M, H, c.rms_norm_eps, normed.data());
  observe(Projection::Qkv, normed.data(), H);
  layer.qkv->forward(normed.data(), M, qkv.data());
  cpu::apply_rope(qkv.data(), M, qkv_dim, c.num_attention_heads, c.head_dim, positions.data(), rope.inv_freq,
                  rope.attention_scaling);
  cpu::apply_rope(qkv.data() + q_dim, M, qkv_dim, c.num_key_value_heads, c.head_dim, positions.data(),
                  rope.inv_freq, rope.attention_scaling);
  for (int64_t m = 0; m < M; ++m) {
    const float* row = qkv.data() + m * qkv_dim;
    std::copy(row + q_dim, row + q_dim + kv_dim, keys + (past + m) * kv_dim);
    std::copy(row + q_dim + kv_dim, row + qkv_dim, values + (past + m) * kv_dim);
  }
  cpu::causal_attention(qkv.data(), qkv_dim, keys, values, shape, past, M, attention_out.data());
  observe(Projection::O, attention_out.data(), q_dim);
  layer.o->forward(attention_out.data(), M, projected.data());
  cpu::add_in_place(x, projected.data(), M * H);

  cpu::rms_norm(x, layer.post_attention_norm.data(), M, H, c.rms_norm_eps, normed.data());
  observe(Projection::GateUp, normed.data(), H);
  layer.gate_up->forward(normed.data(), M, gate_up.data());
  cpu::silu_mul(gate_up.data(), M, I, activated.data());
  observe(Projection::Down, activated.data(), I);
  layer.down->forward(activated.data(), M, projected.data());
  cpu::add_in_place(x, projected.data(), M * H);
}

void LlamaModel::forward_layer_sequence(int64_t layer, float* x, int64_t M, LinearInputObserver* observer) const {
  std::vector<float> keys(static_cast<size_t>(M * config_.kv_dim())), values(keys.size());
  cpu::RopeTable scratch;
  run_layer(layer, x, M, 0, keys.data(), values.data(), rope_for_length(M, scratch), observer);
}

void LlamaModel::forward(const int32_t* tokens, int64_t M, KvCache& cache, int64_t first_logit_row,
                         float* logits) const {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, V = c.vocab_size;
  const int64_t past = cache.length_;
  check_context_room(past, M, cache.capacity_);

  std::vector<float> x(static_cast<size_t>(M * H));
  embed(tokens, M, x.data());
  cpu::RopeTable scratch;
  const cpu::RopeTable& rope = rope_for_length(past + M, scratch);
  for (int64_t l = 0; l < num_layers(); ++l)
    run_layer(l, x.data(), M, past, cache.keys(l), cache.values(l), rope, nullptr);
  cache.length_ = past + M;

  // Only the rows that need logits go through the final norm and lm_head (V is large).
  const int64_t logit_rows = M - first_logit_row;
  if (logit_rows <= 0) return;
  const float* tail = x.data() + first_logit_row * H;
  std::vector<float> normed(static_cast<size_t>(logit_rows * H));
  cpu::rms_norm(tail, final_norm_.data(), logit_rows, H, c.rms_norm_eps, normed.data());
  if (lm_head_) lm_head_->forward(normed.data(), logit_rows, logits);
  else cpu::linear_forward(normed.data(), embed_tokens_.data(), nullptr, logit_rows, V, H, logits);
}

std::vector<std::string> LlamaModel::describe_layers() const {
  // Consecutive layers whose projection is described the same way share one line.
  struct Part {
    const char* name;
    std::function<std::string(const DecoderLayer&)> describe;
  };
  const Part parts[] = {
      {"q/k/v", [](const DecoderLayer& l) { return l.qkv->describe() + (l.qkv_fused ? " fused qkv" : " (separate q, k, v)"); }},
      {"o", [](const DecoderLayer& l) { return l.o->describe(); }},
      {"gate/up", [](const DecoderLayer& l) { return l.gate_up->describe() + (l.gate_up_fused ? " fused gate_up" : " (separate gate, up)"); }},
      {"down", [](const DecoderLayer& l) { return l.down->describe(); }}};
  std::vector<std::string> lines;
  for (const Part& part : parts) {
    size_t begin = 0;
    for (size_t l = 1; l <= layers_.size(); ++l) {
      const std::string text = part.describe(layers_[begin]);
      if (l < layers_.size() && part.describe(layers_[l]) == text) continue;
      const std::string range = l - 1 == begin ? "layer " + std::to_string(begin)
                                               : "layers " + std::to_string(begin) + "-" + std::to_string(l - 1);
      lines.push_back(range + " " + part.name + ": " + text);
      begin = l;
    }
  }
  lines.push_back(std::string("lm_head: ") + (lm_head_ ? lm_head_->describe() : "tied to embed_tokens (fp32)"));
  return lines;
}

}  // namespace runllm
