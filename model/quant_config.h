// config.json "quantization_config" -> QuantConfig: which format the checkpoint's linears are stored
// in and which modules are left unquantized (FORMATS.md §3, §4, §6). Keys real writers emit are
// accepted; a key nobody writes, an unsupported layout or an unsupported value is an error naming it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "layers/quant_packing.h"
#include "layers/w8a8_linear.h"

namespace runllm {

enum class QuantMethod { None, Awq, Gptq, W8A8 };

struct QuantConfig {
  QuantMethod method = QuantMethod::None;
  int bits = 16;
  int64_t group_size = -1;                   // -1 = one group of in_features
  // AWQ: modules whose name contains any of these strings stay fp16 (AutoAWQ's rule).
  std::vector<std::string> modules_to_not_convert;
  // GPTQ
  bool desc_act = false;
  bool sym = true;
  GptqZeros zeros = GptqZeros::V1;           // checkpoint_format "gptq" (v1) or "gptq_v2"
  bool lm_head_quantized = false;            // GPTQModel's "lm_head": true
  // W8A8 (compressed-tensors): modules named in `ignore` (exact or "re:" regex) stay dense.
  W8A8Format w8a8;
  std::vector<std::string> ignore;

  // Whether the linear `module` ("model.layers.0.self_attn.q_proj", "lm_head") is stored quantized.
  // Throws naming the pattern when a "re:" ignore entry exceeds its match limit on `module`.
  bool quantizes(const std::string& module) const;
  std::string describe() const;  // "awq int4 g128", "gptq int4 g128 act-order (v1 zeros)", "w8a8 int8"
};

// `quantization_config` absent or null -> method None. "re:" ignore patterns must compile (PCRE2).
QuantConfig parse_quant_config(const std::string& config_json_text, const std::string& source_name);
QuantConfig load_quant_config(const std::string& model_dir);  // DIR/config.json

const char* quant_method_name(QuantMethod method);  // "fp16", "awq", "gptq", "w8a8"

}  // namespace runllm
