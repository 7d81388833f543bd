// config.json -> ModelConfig: the architecture and sizes of a llama-style decoder
// (Llama, Mistral, Qwen2). FORMATS.md §1 lists every key; transformers 5 `rope_parameters` and
// `dtype` are read as well as the older top-level `rope_theta` / `rope_scaling` / `torch_dtype`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/norm_rope.h"
#include "runtime/dtype.h"

namespace runllm {

// transformers 5.x modeling_rope_utils.py is the reference for every type's formula.
struct RopeScaling {
  std::string type = "default";  // "default" | "linear" | "dynamic" | "llama3" | "yarn"
  float factor = 1.0f;
  float low_freq_factor = 1.0f;              // llama3
  float high_freq_factor = 4.0f;             // llama3
  int64_t original_max_position_embeddings = 8192;  // llama3, yarn (absent: max_position_embeddings)
  float attention_factor = 0.0f;  // yarn: cos/sin multiplier; 0 = derived from factor (and mscale)
  float beta_fast = 32.0f;        // yarn
  float beta_slow = 1.0f;         // yarn
  float mscale = 0.0f;            // yarn, 0 = absent
  float mscale_all_dim = 0.0f;    // yarn, 0 = absent
  bool truncate = true;           // yarn
};

struct ModelConfig {
  std::string architecture;          // "LlamaForCausalLM" | "MistralForCausalLM" | "Qwen2ForCausalLM"
  int64_t hidden_size = 0;           // H
  int64_t intermediate_size = 0;     // I
  int64_t num_hidden_layers = 0;     // L
  int64_t num_attention_heads = 0;   // nh
  int64_t num_key_value_heads = 0;   // nkv (absent = nh)
  int64_t head_dim = 0;              // absent = H / nh
  int64_t vocab_size = 0;            // V
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool attention_bias = false;       // Qwen2 always has q/k/v biases
  bool mlp_bias = false;             // Llama's mlp_bias: gate_proj/up_proj/down_proj biases
  // Sliding-window attention: a query at position p sees keys at p - sliding_window + 1 .. p, in the
  // layers marked in sliding_layers ([L]); 0 = every layer attends to the whole context. Mistral:
  // `sliding_window` (absent = 4096, null = none) on every layer. Qwen2: `sliding_window` only with
  // `use_sliding_window`, on the layers `layer_types` marks "sliding_attention" (absent: layers from
  // `max_window_layers` on). Applied by the CPU forward (kernels/cpu/attention); NOT YET by the GPU
  // path (model/cuda_llama_model.cpp), which must refuse a model with a window shorter than its
  // context until its attention kernel masks keys before position - sliding_window + 1.
  int64_t sliding_window = 0;
  std::vector<bool> sliding_layers;
  int64_t bos_token_id = -1;         // -1 = none
  std::vector<int64_t> eos_token_ids;
  DType torch_dtype = DType::F16;    // the checkpoint's activation dtype
  bool has_quantization_config = false;

  int64_t q_dim() const { return num_attention_heads * head_dim; }
  int64_t kv_dim() const { return num_key_value_heads * head_dim; }
  // The window of layer `layer` (0 = full causal attention).
  int64_t layer_sliding_window(int64_t layer) const {
    return sliding_window > 0 && sliding_layers.at(static_cast<size_t>(layer)) ? sliding_window : 0;
  }
};

// Parses and validates; throws runllm::Error naming the file and key: missing required size,
// non-positive or absurd sizes (e.g. > 1<<20 hidden), heads not dividing, kv heads not dividing
// heads, unknown architecture, unknown rope type, wrong JSON types, numbers past float range, token
// ids of 4,000,000 or more, JSON nested deeper than 64 levels (runtime/json_parse.h).
ModelConfig parse_model_config(const std::string& json_text, const std::string& source_name);
ModelConfig load_model_config(const std::string& model_dir);  // reads DIR/config.json

// The rotary embedding's parameters of `config` (theta, scaling type and its keys), as the CPU and
// GPU forwards both build their tables from them.
cpu::RopeParams rope_params_of(const ModelConfig& config);

}  // namespace runllm
