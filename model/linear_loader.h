// The single place that decides each projection's implementation: from the checkpoint's format
// (QuantConfig), the tensors present and the user's options (--awq-kernel, --quantize, --fake-quant),
// and whether siblings fuse (q/k/v "from_qkv", gate/up) or stay separate.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "model/config.h"
#include "model/llama_model.h"
#include "model/quant_config.h"

namespace runllm {

class Checkpoint;

enum class AwqKernel { Native, Exllama };  // Exllama: AWQ converted to the GPTQ layout at load

// Quantization applied at load to the linears a checkpoint stores dense (every one except lm_head).
enum class LoadQuantization { None, AwqRtn, GptqRtn, W8A8, FakeW8A8 };

struct LinearOptions {
  AwqKernel awq_kernel = AwqKernel::Native;
  LoadQuantization quantize = LoadQuantization::None;
  int bits = 4;              // GptqRtn: 2, 3, 4 or 8
  int64_t group_size = 128;  // AwqRtn / GptqRtn; -1 = one group of K
};

class CheckpointLinearSource : public LinearSource {
 public:
  CheckpointLinearSource(const Checkpoint& checkpoint, const ModelConfig& config, const QuantConfig& quant,
                         const LinearOptions& options);
  DecoderLayer load_layer(int64_t layer) override;
  std::unique_ptr<Linear> load_lm_head() override;

 private:
  // One linear MODULE ("model.layers.0.self_attn.q_proj") of shape [N, K] as the checkpoint stores it,
  // then quantized at load when asked.
  std::unique_ptr<Linear> load_module(const std::string& module, int64_t N, int64_t K, bool with_bias,
                                      bool quantize_at_load);
  // Loads the modules and fuses them when their implementations allow; `fused` says which happened.
  std::unique_ptr<Linear> load_siblings(const std::vector<std::string>& modules, const std::vector<int64_t>& rows,
                                        int64_t K, bool with_bias, bool& fused);

  const Checkpoint& checkpoint_;
  const ModelConfig& config_;
  const QuantConfig& quant_;
  LinearOptions options_;
};

// Parses "--quantize" values: "awq-rtn", "gptq-rtn", "gptq-rtn:3", "w8a8"; throws naming the value.
LinearOptions parse_load_quantization(const std::string& value, LinearOptions options);

}  // namespace runllm
