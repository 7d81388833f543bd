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
  std::unique_ptr<Linear> qkv;             // fused q/k/v: [q_dim + 2 * kv_dim, H]
  std::unique_ptr<Linear> o;               // [H, q_dim]
  std::unique_ptr<Linear> gate_up;         // fused gate/up: [2 * I, H]
  std::unique_ptr<Linear> down;            // [H, I]
};

class LlamaModel {
 public:
  // Reads every weight of DIR through `checkpoint`, checking names, dtypes and shapes against `config`.
  static std::unique_ptr<LlamaModel> load(const Checkpoint& checkpoint, const ModelConfig& config);

  const ModelConfig& config() const { return config_; }

  // Runs M tokens at positions cache.length() .. + M - 1 and appends their keys/values to the cache.
  // Writes logits for rows first_logit_row .. M - 1 into logits ([M - first_logit_row, V]).
  // Throws when the cache would overflow or a token id is outside the vocabulary.
  void forward(const int32_t* tokens, int64_t M, KvCache& cache, int64_t first_logit_row, float* logits) const;

  // One line per distinct layer implementation, for --verbose.
  std::vector<std::string> describe_layers() const;

 private:
  explicit LlamaModel(const ModelConfig& config) : config_(config) {}
  ModelConfig config_;
  std::vector<float> embed_tokens_;          // [V, H]
  std::vector<DecoderLayer> layers_;         // [L]
  std::vector<float> final_norm_;            // [H]
  std::unique_ptr<Linear> lm_head_;          // [V, H]; null when tied to embed_tokens_
  std::vector<float> rope_inv_freq_;         // [head_dim / 2]
};

}  // namespace runllm
