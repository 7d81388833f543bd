// libFuzzer target: config.json, as ModelConfig and as quantization_config (QuantConfig, including
// matching its module lists and "re:" patterns against real module names).
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"
#include "model/quant_config.h"
#include "runtime/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    runllm::parse_model_config(text, "fuzz/config.json");
  } catch (const runllm::Error&) {
  }
  try {
    const runllm::QuantConfig config = runllm::parse_quant_config(text, "fuzz/config.json");
    config.describe();
    for (const char* module : {"model.layers.0.self_attn.q_proj", "model.layers.17.mlp.down_proj", "lm_head",
                               "model.layers.3.mlp.gate_proj"})
      config.quantizes(module);
  } catch (const runllm::Error&) {
  }
  return 0;
}
