#include "model/linear_loader.h"

#include "layers/dense_linear.h"
#include "layers/quantized_linear.h"
#include "layers/separate_linears.h"
#include "layers/w8a8_linear.h"
#include "model/safetensors.h"
#include "runtime/error.h"

namespace runllm {

CheckpointLinearSource::CheckpointLinearSource(const Checkpoint& checkpoint, const ModelConfig& config,
                                               const QuantConfig& quant, const LinearOptions& options)
    : checkpoint_(checkpoint), config_(config), quant_(quant), options_(options) {
  if (options.quantize != LoadQuantization::None && quant.method != QuantMethod::None)
    throw Error("--quantize/--fake-quant apply to fp16 checkpoints; this one is already quantized (" +
                quant.describe() + ")");
  if (options.awq_kernel == AwqKernel::Exllama && quant.method != QuantMethod::Awq &&
      options.quantize != LoadQuantization::AwqRtn)
    throw Error("--awq-kernel exllama applies to AWQ checkpoints; this one is " + quant.describe());
}

std::unique_ptr<Linear> CheckpointLinearSource::load_module(const std::string& module, int64_t N, int64_t K,
                                                            bool with_bias, bool quantize_at_load) {
  std::unique_ptr<Linear> linear;
  if (quant_.quantizes(module)) {
    if (!checkpoint_.has(module + (quant_.method == QuantMethod::W8A8 ? ".weight_scale" : ".qweight")))
      throw Error(module + ": quantization_config (" + quant_.describe() + ") says this linear is quantized, but " +
                  (quant_.method == QuantMethod::W8A8 ? module + ".weight_scale" : module + ".qweight") +
                  " is missing");
    switch (quant_.method) {
      case QuantMethod::Awq: {
        auto awq = AwqLinear::load(checkpoint_, module, N, K, quant_.group_size, with_bias);
        if (options_.awq_kernel == AwqKernel::Exllama) return GptqLinear::from_awq(*awq);
        return awq;
      }
      case QuantMethod::Gptq: {
        GptqFormat format;
        format.bits = quant_.bits;
        format.group_size = quant_.group_size;
        format.sym = quant_.sym;
        format.zeros = quant_.zeros;
        return GptqLinear::load(checkpoint_, module, N, K, format, quant_.desc_act, with_bias);
      }
      case QuantMethod::W8A8:
        return W8A8Linear::load(checkpoint_, module, N, K, quant_.w8a8, with_bias);
      case QuantMethod::None:
        break;
    }
  }
  auto dense = DenseLinear::load(checkpoint_, module, N, K, with_bias);
  if (!quantize_at_load) return dense;
  switch (options_.quantize) {
    case LoadQuantization::None:
      return dense;
    case LoadQuantization::AwqRtn: {
      auto awq = AwqLinear::from_dense(*dense, options_.group_size);
      if (options_.awq_kernel == AwqKernel::Exllama) return GptqLinear::from_awq(*awq);
      return awq;
    }
    case LoadQuantization::GptqRtn: {
      RtnOptions rtn;
      rtn.bits = options_.bits;
      rtn.group_size = options_.group_size;
      rtn.symmetric = false;
      return GptqLinear::from_dense(*dense, rtn);
    }
    case LoadQuantization::W8A8:
      return W8A8Linear::from_dense(*dense);
    case LoadQuantization::FakeW8A8:
      return FakeW8A8Linear::from_dense(*dense);
  }
  return dense;
}

std::unique_ptr<Linear> CheckpointLinearSource::load_siblings(const std::vector<std::string>& modules,
                                                              const std::vector<int64_t>& rows, int64_t K,
                                                              bool with_bias, bool& fused) {
  std::vector<std::unique_ptr<Linear>> parts;
  for (size_t i = 0; i < modules.size(); ++i) parts.push_back(load_module(modules[i], rows[i], K, with_bias, true));
  std::vector<const Linear*> plain;
  for (const auto& part : parts) plain.push_back(part.get());
  std::unique_ptr<Linear> joined = parts.front()->fuse_rows(plain);  // the format decides (from_qkv, gate_up)
  fused = joined != nullptr;
  if (joined) return joined;
  return std::make_unique<SeparateLinears>(std::move(parts));
}

DecoderLayer CheckpointLinearSource::load_layer(int64_t index) {
  const int64_t H = config_.hidden_size, I = config_.intermediate_size;
  const int64_t q_dim = config_.q_dim(), kv_dim = config_.kv_dim();
  const std::string prefix = "model.layers." + std::to_string(index) + ".";
  DecoderLayer layer;
  layer.input_norm = checkpoint_.read_f32(prefix + "input_layernorm.weight", {H});
  layer.post_attention_norm = checkpoint_.read_f32(prefix + "post_attention_layernorm.weight", {H});
  const std::string attn = prefix + "self_attn.";
  layer.qkv = load_siblings({attn + "q_proj", attn + "k_proj", attn + "v_proj"}, {q_dim, kv_dim, kv_dim}, H,
                            config_.attention_bias, layer.qkv_fused);
  // Llama's attention_bias covers o_proj too; Qwen2 has biases on q/k/v only.
  const bool o_bias = config_.attention_bias && config_.architecture != "Qwen2ForCausalLM";
  layer.o = load_module(attn + "o_proj", H, q_dim, o_bias, true);
  const std::string mlp = prefix + "mlp.";
  // Llama's mlp_bias covers gate/up/down; a fused gate/up concatenates the biases as q/k/v does.
  layer.gate_up =
      load_siblings({mlp + "gate_proj", mlp + "up_proj"}, {I, I}, H, config_.mlp_bias, layer.gate_up_fused);
  layer.down = load_module(mlp + "down_proj", H, I, config_.mlp_bias, true);
  return layer;
}

std::unique_ptr<Linear> CheckpointLinearSource::load_lm_head() {
  // A tied lm_head reuses the embedding; it is never looked up as a tensor of its own.
  if (config_.tie_word_embeddings) return nullptr;
  if (!checkpoint_.has("lm_head.weight") && !checkpoint_.has("lm_head.qweight"))
    throw Error("missing tensor lm_head.weight (config.json has tie_word_embeddings false)");
  // lm_head is never quantized at load (MLC-LLM and every reference quantizer keep it dense).
  return load_module("lm_head", config_.vocab_size, config_.hidden_size, false, false);
}

LinearOptions parse_load_quantization(const std::string& value, LinearOptions options) {
  const std::string method = value.substr(0, value.find(':'));
  const bool has_bits = value.find(':') != std::string::npos;
  if (method == "awq-rtn") options.quantize = LoadQuantization::AwqRtn;
  else if (method == "gptq-rtn") options.quantize = LoadQuantization::GptqRtn;
  else if (method == "w8a8") options.quantize = LoadQuantization::W8A8;
  else throw Error("--quantize: unknown method \"" + value + "\" (known: awq-rtn, gptq-rtn[:bits], w8a8)");
  if (has_bits) {
    if (options.quantize != LoadQuantization::GptqRtn)
      throw Error("--quantize " + value + ": only gptq-rtn takes a bit width");
    const std::string bits = value.substr(value.find(':') + 1);
    if (bits != "2" && bits != "3" && bits != "4" && bits != "8")
      throw Error("--quantize " + value + ": bits must be 2, 3, 4 or 8");
    options.bits = std::stoi(bits);
  } else {
    options.bits = options.quantize == LoadQuantization::W8A8 ? 8 : 4;
  }
  return options;
}

}  // namespace runllm
