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

// Which on-disk layout the model's linears are written in; every decoder linear must already be of the
// matching class (AwqLinear, GptqLinear, W8A8Linear), else the writer throws naming the module.
enum class CheckpointFormat {
  Awq,   // AutoAWQ gemm (§3): qweight, qzeros, scales
  Gptq,  // GPTQ (§4): qweight, qzeros, scales, g_idx; zeros as `gptq_zeros` says
  W8A8,  // compressed-tensors int-quantized (§6): weight I8 [N, K], weight_scale F16 [N, 1]
};

struct CheckpointWriteOptions {
  std::string source_dir;                   // config.json and tokenizer files come from here
  std::string out_dir;                      // created when missing
  CheckpointFormat format = CheckpointFormat::Awq;
  GptqZeros gptq_zeros = GptqZeros::V1;
  nlohmann::ordered_json quantization_config;  // written as config.json "quantization_config"
};

struct CheckpointWriteResult {
  std::vector<std::string> files;  // written or copied, relative to out_dir
  uint64_t bytes = 0;              // their total size
};

CheckpointWriteResult write_quantized_checkpoint(const LlamaModel& model, const CheckpointWriteOptions& options);

// Rows [begin, end) of a quantized matrix (one module of a fused linear): the zeros and scales columns of
// those outputs; integers per row; g_idx unchanged.
QuantizedMatrix slice_rows(const QuantizedMatrix& matrix, int64_t begin, int64_t end);

// The first module ("model.layers.3.mlp.down_proj") of a GPTQ-quantized model with a true zero of 0,
// which GPTQ v1 cannot store; "" when there is none.
std::string first_module_with_zero_zero(const LlamaModel& model);

}  // namespace runllm
