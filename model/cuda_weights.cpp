#include "model/cuda_weights.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>

#include "kernels/cuda/random_fill.h"
#include "layers/dense_linear.h"
#include "layers/quantized_linear.h"
#include "model/llama_model.h"
#include "runtime/cuda_check.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {

namespace {

// Where every tensor goes in the one weight block. Run once on a counting arena (sizes only) and
// once on the real one; both passes take the same pieces in the same order.
// Elements are 2 bytes (fp16 or bf16), handed out as uint16_t.
struct WeightLayout {
  uint16_t* embed_tokens = nullptr;
  struct Layer {
    uint16_t *input_norm, *post_attention_norm, *qkv, *qkv_bias, *o, *o_bias, *gate_up, *gate_up_bias, *down,
        *down_bias;
  };
  std::vector<Layer> layers;
  uint16_t* final_norm = nullptr;
  uint16_t* lm_head = nullptr;  // null when tied
  uint16_t* lm_head_bias = nullptr;
};

WeightLayout plan(DeviceArena& arena, const ModelConfig& c, bool tied) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t qkv_rows = c.q_dim() + 2 * c.kv_dim();
  WeightLayout layout;
  layout.embed_tokens = arena.take<uint16_t>(V * H);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    WeightLayout::Layer w{};
    w.input_norm = arena.take<uint16_t>(H);
    w.post_attention_norm = arena.take<uint16_t>(H);
    w.qkv = arena.take<uint16_t>(qkv_rows * H);
    w.qkv_bias = arena.take<uint16_t>(qkv_rows);
    w.o = arena.take<uint16_t>(H * c.q_dim());
    w.o_bias = arena.take<uint16_t>(H);
    w.gate_up = arena.take<uint16_t>(2 * I * H);
    w.gate_up_bias = arena.take<uint16_t>(2 * I);
    w.down = arena.take<uint16_t>(H * I);
    w.down_bias = arena.take<uint16_t>(H);
    layout.layers.push_back(w);
  }
  layout.final_norm = arena.take<uint16_t>(H);
  if (!tied) {
    layout.lm_head = arena.take<uint16_t>(V * H);
    layout.lm_head_bias = arena.take<uint16_t>(V);
  }
  return layout;
}

size_t linear_bytes_of(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const int64_t per_layer = (c.q_dim() + 2 * c.kv_dim()) * H + H * c.q_dim() + 2 * I * H + H * I;
  return static_cast<size_t>(per_layer * c.num_hidden_layers + c.vocab_size * H) * sizeof(uint16_t);
}

// Dense fp32 weight [N, K] and bias ([N] or empty) of any Linear.
struct HostLinear {
  std::vector<float> weight;
  std::vector<float> bias;
  std::string how;
};

HostLinear dense_of(const Linear& linear) {
  if (const auto* dense = dynamic_cast<const DenseLinear*>(&linear))
    return {dense->weight(), dense->bias(), "dense"};
  if (const auto* quantized = dynamic_cast<const QuantizedLinear*>(&linear))
    return {quantized->dequantized_weight(), quantized->bias(),
            "dequantized at load (quantized GPU kernels are not built yet)"};
  // Any other implementation (W8A8, separate q/k/v): read W and b back through forward():
  // forward(0) = b and forward(e_k) - b = column k of W.
  const int64_t N = linear.out_features(), K = linear.in_features();
  HostLinear out;
  out.how = "weights read back through the CPU linear's forward (its GPU kernel is not built yet)";
  std::vector<float> zero(static_cast<size_t>(K), 0.0f);
  out.bias.resize(static_cast<size_t>(N));
  linear.forward(zero.data(), 1, out.bias.data());
  out.weight.resize(static_cast<size_t>(N * K));
  constexpr int64_t kRows = 256;
  std::vector<float> x, y;
  for (int64_t k0 = 0; k0 < K; k0 += kRows) {
    const int64_t rows = std::min(kRows, K - k0);
    x.assign(static_cast<size_t>(rows * K), 0.0f);
    for (int64_t r = 0; r < rows; ++r) x[static_cast<size_t>(r * K + k0 + r)] = 1.0f;
    y.resize(static_cast<size_t>(rows * N));
    linear.forward(x.data(), rows, y.data());
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t n = 0; n < N; ++n)
        out.weight[static_cast<size_t>(n * K + k0 + r)] = y[static_cast<size_t>(r * N + n)] - out.bias[n];
  }
  if (std::all_of(out.bias.begin(), out.bias.end(), [](float b) { return b == 0.0f; })) out.bias.clear();
  return out;
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

CudaLinear upload_linear(const Linear& linear, uint16_t* weight, uint16_t* bias, DType dtype, const std::string& what,
                         std::vector<std::string>& notes) {
  const HostLinear host = dense_of(linear);
  const int64_t N = linear.out_features(), K = linear.in_features();
  upload(weight, host.weight, N * K, dtype, what + " weight");
  if (!host.bias.empty()) upload(bias, host.bias, N, dtype, what + " bias");
  const std::string note = what.substr(what.rfind(' ') + 1) + ": " + host.how + ", " + activation_dtype_name(dtype);
  if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
  return {weight, host.bias.empty() ? nullptr : bias, N, K};
}


// The pointers of a planned layout, as the device structs hold them (biases left out where absent).
void fill_from_layout(CudaWeights& weights, const WeightLayout& layout, const ModelConfig& c, bool with_biases) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  weights.embed_tokens = layout.embed_tokens;
  for (const WeightLayout::Layer& w : layout.layers) {
    CudaDecoderLayer layer;
    layer.input_norm = w.input_norm;
    layer.post_attention_norm = w.post_attention_norm;
    layer.qkv = {w.qkv, with_biases ? w.qkv_bias : nullptr, c.q_dim() + 2 * c.kv_dim(), H};
    layer.o = {w.o, with_biases ? w.o_bias : nullptr, H, c.q_dim()};
    layer.gate_up = {w.gate_up, with_biases ? w.gate_up_bias : nullptr, 2 * I, H};
    layer.down = {w.down, with_biases ? w.down_bias : nullptr, H, I};
    weights.layers.push_back(layer);
  }
  weights.final_norm = layout.final_norm;
  weights.lm_head = {layout.lm_head ? layout.lm_head : layout.embed_tokens,
                     with_biases && layout.lm_head ? layout.lm_head_bias : nullptr, c.vocab_size, H};
  weights.linear_bytes = linear_bytes_of(c);
}

}  // namespace

const char* activation_dtype_name(DType dtype) { return dtype == DType::BF16 ? "bf16" : "fp16"; }

CudaWeights upload_weights(const LlamaModel& model, DType dtype) {
  const ModelConfig& c = model.config();
  const int64_t H = c.hidden_size, V = c.vocab_size;
  const bool tied = model.lm_head() == nullptr;
  DeviceArena sizing;
  plan(sizing, c, tied);
  CudaWeights weights;
  weights.dtype = dtype;
  weights.memory = DeviceMemory(sizing.used(), std::string("the ") + activation_dtype_name(dtype) + " weights");
  DeviceArena arena(weights.memory);
  const WeightLayout layout = plan(arena, c, tied);
  fill_from_layout(weights, layout, c, false);

  // Layer by layer: one layer's staging on the host at a time, nothing extra on the device.
  upload(layout.embed_tokens, model.embed_tokens(), V * H, dtype, "model.embed_tokens");
  for (int64_t l = 0; l < model.num_layers(); ++l) {
    const DecoderLayer& source = model.layer(l);
    const WeightLayout::Layer& w = layout.layers[static_cast<size_t>(l)];
    const std::string prefix = "model.layers." + std::to_string(l) + " ";
    CudaDecoderLayer& layer = weights.layers[static_cast<size_t>(l)];
    upload(w.input_norm, source.input_norm, H, dtype, prefix + "input_layernorm");
    upload(w.post_attention_norm, source.post_attention_norm, H, dtype, prefix + "post_attention_layernorm");
    layer.qkv = upload_linear(*source.qkv, w.qkv, w.qkv_bias, dtype, prefix + "q/k/v", weights.notes);
    layer.o = upload_linear(*source.o, w.o, w.o_bias, dtype, prefix + "o", weights.notes);
    layer.gate_up = upload_linear(*source.gate_up, w.gate_up, w.gate_up_bias, dtype, prefix + "gate/up", weights.notes);
    layer.down = upload_linear(*source.down, w.down, w.down_bias, dtype, prefix + "down", weights.notes);
  }
  upload(layout.final_norm, model.final_norm(), H, dtype, "model.norm");
  if (!tied)
    weights.lm_head = upload_linear(*model.lm_head(), layout.lm_head, layout.lm_head_bias, dtype, "lm_head", weights.notes);
  else
    weights.notes.push_back(std::string("lm_head: tied to embed_tokens, ") + activation_dtype_name(dtype) + ", fp32 logits");
  return weights;
}

namespace {

// Scales keep activations in fp16's range: weights ~U(-0.02, 0.02), norms ~U(-1, 1).
template <typename T>
void fill_random_weights(const CudaWeights& weights, const ModelConfig& c, const CudaContext& context,
                         uint64_t seed) {
  const cudaStream_t stream = context.stream();
  const int64_t elements = static_cast<int64_t>(weights.memory.bytes() / sizeof(T));
  cuda::fill_random(static_cast<T*>(weights.memory.get()), elements, seed, 0.02f, stream);
  const auto norm = [&](const void* p, uint64_t s) {
    cuda::fill_random(static_cast<T*>(const_cast<void*>(p)), c.hidden_size, s, 1.0f, stream);
  };
  for (const CudaDecoderLayer& layer : weights.layers) {
    norm(layer.input_norm, seed + 1);
    norm(layer.post_attention_norm, seed + 2);
  }
  norm(weights.final_norm, seed + 3);
}

}  // namespace

CudaWeights random_weights(const ModelConfig& c, DType dtype, const CudaContext& context, uint64_t seed) {
  DeviceArena sizing;
  plan(sizing, c, c.tie_word_embeddings);
  CudaWeights weights;
  weights.dtype = dtype;
  weights.memory = DeviceMemory(sizing.used(), std::string("the ") + activation_dtype_name(dtype) + " weights");
  DeviceArena arena(weights.memory);
  const WeightLayout layout = plan(arena, c, c.tie_word_embeddings);
  fill_from_layout(weights, layout, c, false);
  if (dtype == DType::BF16) fill_random_weights<__nv_bfloat16>(weights, c, context, seed);
  else fill_random_weights<__half>(weights, c, context, seed);
  context.synchronize();
  weights.notes.push_back(std::string("random ") + activation_dtype_name(dtype) +
                          " weights generated on the GPU (synthetic model, speed only)");
  return weights;
}

ModelConfig synthetic_config(const std::string& name) {
  if (name != "llama2-7b") throw Error("--synthetic: unknown model \"" + name + "\" (known: llama2-7b)");
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.hidden_size = 4096;
  c.intermediate_size = 11008;
  c.num_hidden_layers = 32;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 32;
  c.head_dim = 128;
  c.vocab_size = 32000;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.tie_word_embeddings = false;
  return c;
}

}  // namespace runllm
