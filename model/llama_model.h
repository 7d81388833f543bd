// The llama-style decoder (Llama, Mistral, Qwen2) on the CPU reference path: weights and forward.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/norm_rope.h"
#include "layers/linear.h"
#include "model/config.h"

namespace runllm {

class Checkpoint;

// Keys and values of every layer for up to `capacity` positions, fp32.
class KvCache {
 public:
  KvCache(const ModelConfig& config, int64_t capacity);
  int64_t capacity() const { return capacity_; }
  int64_t length() const { return length_; }  // positions filled so far
  void clear() { length_ = 0; }
  float* keys(int64_t layer) { return keys_.data() + layer * capacity_ * kv_dim_; }      // [capacity, kv_dim]
  float* values(int64_t layer) { return values_.data() + layer * capacity_ * kv_dim_; }  // [capacity, kv_dim]

 private:
  friend class LlamaModel;
  int64_t capacity_, kv_dim_, length_ = 0;
  std::vector<float> keys_, values_;  // [L, capacity, kv_dim]
};

struct DecoderLayer {
  std::vector<float> input_norm;           // [H]
  std::vector<float> post_attention_norm;  // [H]
  std::unique_ptr<Linear> qkv;             // q/k/v, output rows q | k | v: [q_dim + 2 * kv_dim, H]
  std::unique_ptr<Linear> o;               // [H, q_dim]
  std::unique_ptr<Linear> gate_up;         // gate/up, output rows gate | up: [2 * I, H]
  std::unique_ptr<Linear> down;            // [H, I]
  bool qkv_fused = true;                   // false: q, k, v run as separate linears (SeparateLinears)
  bool gate_up_fused = true;
};

// The four linear inputs of a decoder layer, in the order the forward reaches them.
enum class Projection { Qkv, O, GateUp, Down };

// Sees the input of every linear during a forward (calibration statistics for the quantizers).
class LinearInputObserver {
 public:
  virtual ~LinearInputObserver() = default;
  // x: [M, K], the exact input the projection's linear receives.
  virtual void observe(int64_t layer, Projection projection, const float* x, int64_t M, int64_t K) = 0;
};

// Where each projection's linear comes from: the loader (model/linear_loader.h) implements it.
class LinearSource {
 public:
  virtual ~LinearSource() = default;
  virtual DecoderLayer load_layer(int64_t layer) = 0;  // norms and the four linears
  virtual std::unique_ptr<Linear> load_lm_head() = 0;  // null when tied to embed_tokens
};

// Receives each decoder layer as soon as it is loaded: the GPU upload, which so never needs more
// than one layer's weights on the host. When releases_linears(), load() replaces the layer's
// linears by ReleasedLinear placeholders (shape and description only) right after take_layer().
class LayerSink {
 public:
  virtual ~LayerSink() = default;
  virtual void begin(const ModelConfig& config) = 0;
  virtual void take_layer(int64_t index, const DecoderLayer& layer) = 0;
  virtual bool releases_linears() const = 0;
};

class LlamaModel {
 public:
  // Reads every weight through `checkpoint` (embeddings, final norm) and `linears` (each decoder layer,
  // lm_head), checking names, dtypes and shapes against `config`.
  static std::unique_ptr<LlamaModel> load(const Checkpoint& checkpoint, const ModelConfig& config,
                                          LinearSource& linears, LayerSink* sink = nullptr);

  const ModelConfig& config() const { return config_; }

  // Runs M tokens at positions cache.length() .. + M - 1 and appends their keys/values to the cache.
  // Writes logits for rows first_logit_row .. M - 1 into logits ([M - first_logit_row, V]).
  // Throws when the cache would overflow or a token id is outside the vocabulary.
  void forward(const int32_t* tokens, int64_t M, KvCache& cache, int64_t first_logit_row, float* logits) const;

  // One decoder layer over one whole sequence that starts at position 0 (calibration): x [M, H] is
  // the layer's input and becomes its output. The observer, when given, sees every linear's input.
  void forward_layer_sequence(int64_t layer, float* x, int64_t M, LinearInputObserver* observer) const;
  void embed(const int32_t* tokens, int64_t M, float* x) const;  // x [M, H]; checks the ids

  int64_t num_layers() const { return static_cast<int64_t>(layers_.size()); }
  const DecoderLayer& layer(int64_t index) const { return layers_.at(static_cast<size_t>(index)); }
  DecoderLayer& mutable_layer(int64_t index) { return layers_.at(static_cast<size_t>(index)); }
  const std::vector<float>& embed_tokens() const { return embed_tokens_; }  // [V, H]
  const std::vector<float>& final_norm() const { return final_norm_; }      // [H]
  const Linear* lm_head() const { return lm_head_.get(); }                  // null when tied

  // One line per group of layers with the same implementation, for --verbose.
  std::vector<std::string> describe_layers() const;

 private:
  explicit LlamaModel(const ModelConfig& config) : config_(config) {}
  // x [M, H] at positions past .. past + M - 1; keys/values: this layer's cache rows [past + M, kv_dim].
  // `rope`: the table for this forward (rope_for_length).
  void run_layer(int64_t index, float* x, int64_t M, int64_t past, float* keys, float* values,
                 const cpu::RopeTable& rope, LinearInputObserver* observer) const;
  // The rope table for a forward whose highest position is seq_len - 1: rope_, or for dynamic NTK
  // a table computed into `scratch`.
  const cpu::RopeTable& rope_for_length(int64_t seq_len, cpu::RopeTable& scratch) const;
  ModelConfig config_;
  std::vector<float> embed_tokens_;          // [V, H]
  std::vector<DecoderLayer> layers_;         // [L]
  std::vector<float> final_norm_;            // [H]
  std::unique_ptr<Linear> lm_head_;          // [V, H]; null when tied to embed_tokens_
  cpu::RopeParams rope_params_;
  cpu::RopeTable rope_;                      // inv_freq [head_dim / 2] and the cos/sin factor
};

}  // namespace runllm
