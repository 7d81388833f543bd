// A tiny llama-style checkpoint directory written from random weights (config.json, a byte-level
// tokenizer.json, model.safetensors), with each linear stored the way a LinearWriter chooses: the
// fixture for loader, fusion and malformed-checkpoint tests that need no downloaded model.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"

namespace runllm::test {

struct SyntheticModelSpec {
  std::string architecture = "LlamaForCausalLM";
  int64_t hidden = 64, intermediate = 128, layers = 2, heads = 4, kv_heads = 2, vocab = 258;
  bool tie_word_embeddings = true;
  bool attention_bias = false;                        // Llama: q/k/v/o biases; Qwen2 always has q/k/v biases
  nlohmann::json quantization_config = nullptr;
};

// Stores one linear MODULE ("model.layers.0.self_attn.q_proj") with fp32 weight [N, K] (values
// exactly representable in fp16) and bias [N] (empty when the module has none).
using LinearWriter = std::function<void(SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight,
                                        int64_t N, int64_t K, const std::vector<float>& bias)>;

void write_dense_linear(SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight,
                        int64_t N, int64_t K, const std::vector<float>& bias);

// Writes DIR with weights drawn from `seed`; the same seed gives the same fp weights whatever the writer.
void write_synthetic_model(const std::string& dir, const SyntheticModelSpec& spec, uint64_t seed,
                           const LinearWriter& linear_writer = write_dense_linear);

// Helpers for writers that pack integer tensors.
void add_i32(SafetensorsWriter& writer, const std::string& name, std::vector<int64_t> shape,
             const std::vector<int32_t>& values);
void add_i8(SafetensorsWriter& writer, const std::string& name, std::vector<int64_t> shape,
            const std::vector<int8_t>& values);

}  // namespace runllm::test
