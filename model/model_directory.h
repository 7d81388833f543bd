// Everything `run-llm` opens from a checkpoint directory: config, weights, tokenizer and the
// generation settings, loaded once and checked against each other.
#pragma once
#include <memory>
#include <set>
#include <string>

#include "model/config.h"
#include "model/linear_loader.h"
#include "model/llama_model.h"
#include "model/quant_config.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

namespace runllm {

struct ModelDirectory {
  std::string path;
  ModelConfig config;
  QuantConfig quant;             // config.json quantization_config (method None for fp16 checkpoints)
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::set<int32_t> eos_ids;     // from config.json and generation_config.json (each may list several)
  std::string chat_template;     // chat_template.jinja or tokenizer_config.json "chat_template" (empty when absent)
  std::string chat_template_source;  // where it came from, or why there is none (load_chat_template)
};

// Throws runllm::Error naming the file at fault. `verbose` prints the per-layer choice to stderr.
// `linears` selects load-time options (--awq-kernel, --quantize, --fake-quant).
// `sink` (optional) receives each decoder layer as it is loaded (the GPU's streaming upload).
ModelDirectory open_model_directory(const std::string& dir, bool verbose, const LinearOptions& linears = {},
                                    LayerSink* sink = nullptr);

}  // namespace runllm
