// Writes a quantized model as a complete Hugging Face checkpoint directory (FORMATS.md §1): config.json
// (the source's, with "quantization_config" and "torch_dtype": "float16"), the source's tokenizer files,
// and model.safetensors holding embed_tokens, the (possibly rescaled) norms, lm_head when untied (fp16),
// and for every linear module the tensors of its format under the module's real name. Fused q/k/v and
// gate/up linears are split back into their modules by rows.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "layers/quant_packing.h"
#include "layers/quantized_matrix.h"
#include "model/llama_model.h"

namespace runllm {

struct CheckpointWriteOptions {
  std::string source_dir;                   // config.json and tokenizer files come from here
  std::string out_dir;                      // created when missing
  // The on-disk layout of every decoder linear (layers/linear.h: AWQ gemm, GPTQ v1/v2, W8A8); each
  // linear writes itself (Linear::write_rows) and refuses, naming the module, a format not its own.
  LinearWriteOptions linears;
  nlohmann::ordered_json quantization_config;  // written as config.json "quantization_config"
};

struct CheckpointWriteResult {
  std::vector<std::string> files;  // written or copied, relative to out_dir
  uint64_t bytes = 0;              // their total size
};

CheckpointWriteResult write_quantized_checkpoint(const LlamaModel& model, const CheckpointWriteOptions& options);

// The first module ("model.layers.3.mlp.down_proj") of a GPTQ-quantized model with a true zero of 0,
// which GPTQ v1 cannot store; "" when there is none.
std::string first_module_with_zero_zero(const LlamaModel& model);

}  // namespace runllm
