#include "model/cuda_weights.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <map>

#include "kernels/cuda/random_fill.h"
#include "layers/dense_device_linear.h"
#include "layers/group_quant_device_linear.h"
#include "layers/w8a8_device_linear.h"
#include "model/cuda_llama_model.h"
#include "model/llama_model.h"
#include "runtime/cuda_check.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "runtime/process_memory.h"

namespace runllm {

namespace {

// Embeddings and norms in one block. Run once on a counting arena (sizes only) and once on the
// real one; both passes take the same pieces in the same order. Elements are 2 bytes (fp16 or bf16).
struct NormLayout {
  uint16_t* embed_tokens = nullptr;
  std::vector<std::pair<uint16_t*, uint16_t*>> layer_norms;  // input, post-attention
  uint16_t* final_norm = nullptr;
};

NormLayout plan(DeviceArena& arena, const ModelConfig& c) {
  NormLayout layout;
  layout.embed_tokens = arena.take<uint16_t>(c.vocab_size * c.hidden_size);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l)
    layout.layer_norms.emplace_back(arena.take<uint16_t>(c.hidden_size), arena.take<uint16_t>(c.hidden_size));
  layout.final_norm = arena.take<uint16_t>(c.hidden_size);
  return layout;
}

CudaWeights allocate_norms(const ModelConfig& c, DType dtype, NormLayout& layout) {
  DeviceArena sizing;
  plan(sizing, c);
  CudaWeights weights;
  weights.dtype = dtype;
  weights.memory = DeviceMemory(sizing.used(), std::string("the ") + activation_dtype_name(dtype) + " embeddings");
  DeviceArena arena(weights.memory);
  layout = plan(arena, c);
  weights.embed_tokens = layout.embed_tokens;
  weights.final_norm = layout.final_norm;
  weights.layers.resize(static_cast<size_t>(c.num_hidden_layers));
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    weights.layers[l].input_norm = layout.layer_norms[l].first;
    weights.layers[l].post_attention_norm = layout.layer_norms[l].second;
  }
  return weights;
}

// Rounds host fp32 values to `dtype` (F16 or BF16, nearest even) and copies them to the device.
void upload(uint16_t* device, const std::vector<float>& host, int64_t expected, DType dtype, const std::string& what) {
  if (static_cast<int64_t>(host.size()) != expected)
    throw Error("upload of " + what + ": expected " + std::to_string(expected) + " values, got " +
                std::to_string(host.size()));
  std::vector<uint16_t> staging(host.size());
  if (dtype == DType::BF16)
    for (size_t i = 0; i < host.size(); ++i) staging[i] = float_to_bf16(host[i]);
  else
    for (size_t i = 0; i < host.size(); ++i) staging[i] = float_to_half(host[i]);
  CUDA_CHECK(cudaMemcpy(device, staging.data(), staging.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
}

DeviceLinearOptions linear_options(DType dtype, const KernelThresholds& thresholds) {
  DeviceLinearOptions options;
  options.dtype = dtype;
  options.thresholds = thresholds;
  return options;
}

}  // namespace

const char* activation_dtype_name(DType dtype) { return dtype == DType::BF16 ? "bf16" : "fp16"; }

size_t CudaWeights::linear_bytes() const {
  size_t bytes = lm_head ? lm_head->weight_bytes() : 0;
  for (const CudaDecoderLayer& layer : layers)
    bytes += layer.qkv->weight_bytes() + layer.o->weight_bytes() + layer.gate_up->weight_bytes() +
             layer.down->weight_bytes();
  return bytes;
}

size_t CudaWeights::device_bytes() const {
  // A tied lm_head reads embed_tokens, which `memory` already holds.
  size_t bytes = memory.bytes() + linear_bytes();
  if (lm_head && lm_head_tied) bytes -= lm_head->weight_bytes();
  return bytes;
}

size_t CudaWeights::workspace_bytes(int64_t M) const {
  size_t bytes = lm_head ? lm_head->workspace_bytes(M) : 0;
  for (const CudaDecoderLayer& layer : layers)
    for (const DeviceLinear* linear : {layer.qkv.get(), layer.o.get(), layer.gate_up.get(), layer.down.get()})
      bytes = std::max(bytes, linear->workspace_bytes(M));
  return bytes;
}

std::vector<std::string> CudaWeights::kernel_report(int64_t prompt_rows) const {
  // Consecutive layers with the same kernels collapse into one line ("layers 0-29 q/k/v: ...").
  std::vector<std::string> lines;
  const char* names[4] = {"q/k/v", "o", "gate/up", "down"};
  for (int p = 0; p < 4; ++p) {
    std::string previous;
    size_t first = 0;
    auto flush = [&](size_t last) {
      if (previous.empty()) return;
      lines.push_back("layers " + std::to_string(first) + "-" + std::to_string(last) + " " + names[p] + ": " +
                      previous);
    };
    for (size_t l = 0; l < layers.size(); ++l) {
      const CudaDecoderLayer& layer = layers[l];
      const DeviceLinear* linear = p == 0 ? layer.qkv.get() : p == 1 ? layer.o.get() : p == 2 ? layer.gate_up.get()
                                                                                             : layer.down.get();
      const std::string text = "decode " + linear->kernel(1) + "; prompt (" + std::to_string(prompt_rows) +
                               " rows) " + linear->kernel(prompt_rows);
      if (text != previous) {
        if (l > 0) flush(l - 1);
        previous = text;
        first = l;
      }
    }
    flush(layers.size() - 1);
  }
  if (lm_head)
    lines.push_back("lm_head: decode " + lm_head->kernel(1) + "; prompt " + lm_head->kernel(prompt_rows) +
                    ", fp32 logits");
  return lines;
}

SyntheticFormat parse_synthetic_format(const std::string& name) {
  if (name == "dense" || name == "fp16" || name == "bf16") return SyntheticFormat::Dense;
  if (name == "awq") return SyntheticFormat::Awq;
  if (name == "gptq") return SyntheticFormat::Gptq;
  if (name == "gptq-actorder") return SyntheticFormat::GptqActOrder;
  if (name == "w8a8") return SyntheticFormat::W8A8;
  throw Error("--format: unknown format \"" + name + "\" (known: fp16, awq, gptq, gptq-actorder, w8a8)");
}

DType activation_dtype_for(const ModelConfig& c, const std::string& option) {
  if (option == "fp16") return DType::F16;
  if (option == "bf16") return DType::BF16;
  if (option == "auto") return c.torch_dtype == DType::BF16 ? DType::BF16 : DType::F16;
  throw Error("--dtype: expected auto, fp16 or bf16, got \"" + option + "\"");
}

CudaWeightsBuilder::CudaWeightsBuilder(std::string dtype_option, const KernelThresholds& thresholds,
                                       bool release_host_linears)
    : dtype_option_(std::move(dtype_option)), thresholds_(thresholds), release_(release_host_linears) {}

void CudaWeightsBuilder::sample_host_memory() {
  peak_anonymous_ = std::max(peak_anonymous_, resident_anonymous_bytes());
}

void CudaWeightsBuilder::begin(const ModelConfig& c) {
  CudaLlamaModel::check_supported(c);  // before anything is uploaded
  const DType dtype = activation_dtype_for(c, dtype_option_);
  options_ = linear_options(dtype, thresholds_);
  NormLayout layout;
  weights_ = allocate_norms(c, dtype, layout);
  layer_norms_.clear();
  for (const auto& norms : layout.layer_norms) layer_norms_.emplace_back(norms.first, norms.second);
  sample_host_memory();
}

void CudaWeightsBuilder::take_layer(int64_t l, const DecoderLayer& source) {
  const int64_t H = source.input_norm.size();
  const std::string prefix = "model.layers." + std::to_string(l) + " ";
  CudaDecoderLayer& layer = weights_.layers.at(static_cast<size_t>(l));
  const auto& norms = layer_norms_.at(static_cast<size_t>(l));
  upload(static_cast<uint16_t*>(norms.first), source.input_norm, H, weights_.dtype, prefix + "input_layernorm");
  upload(static_cast<uint16_t*>(norms.second), source.post_attention_norm, H, weights_.dtype,
         prefix + "post_attention_layernorm");
  layer.qkv = source.qkv->to_device(options_);
  layer.o = source.o->to_device(options_);
  layer.gate_up = source.gate_up->to_device(options_);
  layer.down = source.down->to_device(options_);
  sample_host_memory();
}

CudaWeights CudaWeightsBuilder::finish(const LlamaModel& model) {
  const ModelConfig& c = model.config();
  const int64_t H = c.hidden_size, V = c.vocab_size;
  uint16_t* embed_tokens = static_cast<uint16_t*>(const_cast<void*>(weights_.embed_tokens));
  upload(embed_tokens, model.embed_tokens(), V * H, weights_.dtype, "model.embed_tokens");
  upload(static_cast<uint16_t*>(const_cast<void*>(weights_.final_norm)), model.final_norm(), H, weights_.dtype,
         "model.norm");
  if (model.lm_head()) {
    weights_.lm_head = model.lm_head()->to_device(options_);
  } else {
    weights_.lm_head = DenseDeviceLinear::borrowed(embed_tokens, V, H, options_);
    weights_.lm_head_tied = true;
    weights_.notes.push_back("lm_head: tied to embed_tokens");
  }
  weights_.notes.push_back(std::string("embeddings and norms ") + activation_dtype_name(weights_.dtype) +
                           "; every linear in its own format's device layout");
  sample_host_memory();
  return std::move(weights_);
}

CudaWeights upload_weights(const LlamaModel& model, const std::string& dtype_option,
                           const KernelThresholds& thresholds) {
  CudaWeightsBuilder builder(dtype_option, thresholds, false);
  builder.begin(model.config());
  for (int64_t l = 0; l < model.num_layers(); ++l) builder.take_layer(l, model.layer(l));
  return builder.finish(model);
}

namespace {

// Scales keep activations in fp16's range: weights ~U(-0.02, 0.02), norms ~U(-1, 1).
template <typename T>
void fill_random_norms(const CudaWeights& weights, const ModelConfig& c, cudaStream_t stream, uint64_t seed) {
  cuda::fill_random(static_cast<T*>(const_cast<void*>(weights.embed_tokens)), c.vocab_size * c.hidden_size, seed,
                    0.02f, stream);
  const auto norm = [&](const void* p, uint64_t s) {
    cuda::fill_random(static_cast<T*>(const_cast<void*>(p)), c.hidden_size, s, 1.0f, stream);
  };
  for (const CudaDecoderLayer& layer : weights.layers) {
    norm(layer.input_norm, seed + 1);
    norm(layer.post_attention_norm, seed + 2);
  }
  norm(weights.final_norm, seed + 3);
}

std::unique_ptr<DeviceLinear> random_linear(SyntheticFormat format, int64_t N, int64_t K,
                                            const DeviceLinearOptions& options, uint64_t seed, cudaStream_t stream) {
  constexpr int kBits = 4;
  constexpr int64_t kGroupSize = 128;
  switch (format) {
    case SyntheticFormat::Awq:
    case SyntheticFormat::Gptq:
      return GroupQuantDeviceLinear::random(kBits, kGroupSize, false, N, K, options, seed, stream);
    case SyntheticFormat::GptqActOrder:
      return GroupQuantDeviceLinear::random(kBits, kGroupSize, true, N, K, options, seed, stream);
    case SyntheticFormat::W8A8:
      return W8A8DeviceLinear::random(N, K, options, seed, stream);
    case SyntheticFormat::Dense:
      break;
  }
  return DenseDeviceLinear::random(N, K, options, seed, stream);
}

}  // namespace

CudaWeights random_weights(const ModelConfig& c, DType dtype, SyntheticFormat format,
                           const KernelThresholds& thresholds, const CudaContext& context, uint64_t seed) {
  NormLayout layout;
  CudaWeights weights = allocate_norms(c, dtype, layout);
  const cudaStream_t stream = context.stream();
  if (dtype == DType::BF16) fill_random_norms<__nv_bfloat16>(weights, c, stream, seed);
  else fill_random_norms<__half>(weights, c, stream, seed);
  const DeviceLinearOptions options = linear_options(dtype, thresholds);
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  uint64_t s = seed + 100;
  for (CudaDecoderLayer& layer : weights.layers) {
    layer.qkv = random_linear(format, c.q_dim() + 2 * c.kv_dim(), H, options, s++, stream);
    layer.o = random_linear(format, H, c.q_dim(), options, s++, stream);
    layer.gate_up = random_linear(format, 2 * I, H, options, s++, stream);
    layer.down = random_linear(format, H, I, options, s++, stream);
  }
  // lm_head stays dense, as every quantizer leaves it.
  weights.lm_head = c.tie_word_embeddings ? DenseDeviceLinear::borrowed(layout.embed_tokens, c.vocab_size, H, options)
                                          : DenseDeviceLinear::random(c.vocab_size, H, options, s, stream);
  weights.lm_head_tied = c.tie_word_embeddings;
  context.synchronize();
  weights.notes.push_back(std::string("random weights generated on the GPU (synthetic model, speed only), ") +
                          activation_dtype_name(dtype) + " activations");
  return weights;
}

ModelConfig synthetic_config(const std::string& name) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.hidden_size = 4096;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.head_dim = 128;
  c.rms_norm_eps = 1e-5f;
  c.tie_word_embeddings = false;
  if (name == "llama2-7b") {
    c.intermediate_size = 11008;
    c.num_key_value_heads = 32;
    c.vocab_size = 32000;
    c.max_position_embeddings = 4096;
    c.rope_theta = 10000.0f;
  } else if (name == "llama3-8b") {
    c.intermediate_size = 14336;
    c.num_key_value_heads = 8;
    c.vocab_size = 128256;
    c.max_position_embeddings = 8192;
    c.rope_theta = 500000.0f;
  } else {
    throw Error("--synthetic: unknown model \"" + name + "\" (known: llama2-7b, llama3-8b)");
  }
  return c;
}

}  // namespace runllm
