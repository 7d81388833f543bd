#include "model/cuda_weights.h"

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
struct WeightLayout {
  __half* embed_tokens = nullptr;
  struct Layer {
    __half *input_norm, *post_attention_norm, *qkv, *qkv_bias, *o, *o_bias, *gate_up, *gate_up_bias, *down,
        *down_bias;
  };
  std::vector<Layer> layers;
  __half* final_norm = nullptr;
  __half* lm_head = nullptr;  // null when tied
  __half* lm_head_bias = nullptr;
};

WeightLayout plan(DeviceArena& arena, const ModelConfig& c, bool tied) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t qkv_rows = c.q_dim() + 2 * c.kv_dim();
  WeightLayout layout;
  layout.embed_tokens = arena.take<__half>(V * H);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    WeightLayout::Layer w{};
    w.input_norm = arena.take<__half>(H);
    w.post_attention_norm = arena.take<__half>(H);
    w.qkv = arena.take<__half>(qkv_rows * H);
    w.qkv_bias = arena.take<__half>(qkv_rows);
    w.o = arena.take<__half>(H * c.q_dim());
    w.o_bias = arena.take<__half>(H);
    w.gate_up = arena.take<__half>(2 * I * H);
    w.gate_up_bias = arena.take<__half>(2 * I);
    w.down = arena.take<__half>(H * I);
    w.down_bias = arena.take<__half>(H);
    layout.layers.push_back(w);
  }
  layout.final_norm = arena.take<__half>(H);
  if (!tied) {
    layout.lm_head = arena.take<__half>(V * H);
    layout.lm_head_bias = arena.take<__half>(V);
  }
  return layout;
}

size_t linear_bytes_of(const ModelConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const int64_t per_layer = (c.q_dim() + 2 * c.kv_dim()) * H + H * c.q_dim() + 2 * I * H + H * I;
  return static_cast<size_t>(per_layer * c.num_hidden_layers + c.vocab_size * H) * sizeof(__half);
}

// Dense fp32 weight [N, K] and bias ([N] or empty) of any Linear.
struct HostLinear {
  std::vector<float> weight;
  std::vector<float> bias;
  std::string how;
};

HostLinear dense_of(const Linear& linear) {
  if (const auto* dense = dynamic_cast<const DenseLinear*>(&linear))
    return {dense->weight(), dense->bias(), "dense fp16 (cuBLAS)"};
  if (const auto* quantized = dynamic_cast<const QuantizedLinear*>(&linear))
    return {quantized->dequantized_weight(), quantized->bias(),
            "dequantized to fp16 at load (cuBLAS; quantized GPU kernels are not built yet)"};
  // Any other implementation (W8A8, separate q/k/v): read W and b back through forward():
  // forward(0) = b and forward(e_k) - b = column k of W.
  const int64_t N = linear.out_features(), K = linear.in_features();
  HostLinear out;
  out.how = "weights read back through the CPU linear's forward, fp16 (cuBLAS; GPU kernel not built yet)";
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

void upload_half(__half* device, const std::vector<float>& host, int64_t expected, const std::string& what) {
  if (static_cast<int64_t>(host.size()) != expected)
    throw Error("upload of " + what + ": expected " + std::to_string(expected) + " values, got " +
                std::to_string(host.size()));
  std::vector<uint16_t> staging(host.size());
  for (size_t i = 0; i < host.size(); ++i) staging[i] = float_to_half(host[i]);
  CUDA_CHECK(cudaMemcpy(device, staging.data(), staging.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
}

CudaLinear upload_linear(const Linear& linear, __half* weight, __half* bias, const std::string& what,
                         std::vector<std::string>& notes) {
  const HostLinear host = dense_of(linear);
  const int64_t N = linear.out_features(), K = linear.in_features();
  upload_half(weight, host.weight, N * K, what + " weight");
  if (!host.bias.empty()) upload_half(bias, host.bias, N, what + " bias");
  const std::string note = what.substr(what.rfind(' ') + 1) + ": " + host.how;
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

CudaWeights upload_weights(const LlamaModel& model, const CudaContext&) {
  const ModelConfig& c = model.config();
  const int64_t H = c.hidden_size, V = c.vocab_size;
  const bool tied = model.lm_head() == nullptr;
  DeviceArena sizing;
  plan(sizing, c, tied);
  CudaWeights weights;
  weights.memory = DeviceMemory(sizing.used(), "the fp16 weights");
  DeviceArena arena(weights.memory);
  const WeightLayout layout = plan(arena, c, tied);
  fill_from_layout(weights, layout, c, false);

  // Layer by layer: one layer's fp16 staging on the host at a time, nothing extra on the device.
  upload_half(layout.embed_tokens, model.embed_tokens(), V * H, "model.embed_tokens");
  for (int64_t l = 0; l < model.num_layers(); ++l) {
    const DecoderLayer& source = model.layer(l);
    const WeightLayout::Layer& w = layout.layers[static_cast<size_t>(l)];
    const std::string prefix = "model.layers." + std::to_string(l) + " ";
    CudaDecoderLayer& layer = weights.layers[static_cast<size_t>(l)];
    upload_half(w.input_norm, source.input_norm, H, prefix + "input_layernorm");
    upload_half(w.post_attention_norm, source.post_attention_norm, H, prefix + "post_attention_layernorm");
    layer.qkv = upload_linear(*source.qkv, w.qkv, w.qkv_bias, prefix + "q/k/v", weights.notes);
    layer.o = upload_linear(*source.o, w.o, w.o_bias, prefix + "o", weights.notes);
    layer.gate_up = upload_linear(*source.gate_up, w.gate_up, w.gate_up_bias, prefix + "gate/up", weights.notes);
    layer.down = upload_linear(*source.down, w.down, w.down_bias, prefix + "down", weights.notes);
  }
  upload_half(layout.final_norm, model.final_norm(), H, "model.norm");
  if (!tied) weights.lm_head = upload_linear(*model.lm_head(), layout.lm_head, layout.lm_head_bias, "lm_head", weights.notes);
  else weights.notes.push_back("lm_head: tied to embed_tokens (fp16, cuBLAS, fp32 logits)");
  return weights;
}

CudaWeights random_weights(const ModelConfig& c, const CudaContext& context, uint64_t seed) {
  DeviceArena sizing;
  plan(sizing, c, c.tie_word_embeddings);
  CudaWeights weights;
  weights.memory = DeviceMemory(sizing.used(), "the fp16 weights");
  DeviceArena arena(weights.memory);
  const WeightLayout layout = plan(arena, c, c.tie_word_embeddings);
  fill_from_layout(weights, layout, c, false);
  // Scales keep activations in fp16's range: weights ~U(-0.02, 0.02), norms ~U(-1, 1).
  const int64_t halves = static_cast<int64_t>(sizing.used() / sizeof(__half));
  cuda::fill_random_half(static_cast<__half*>(weights.memory.get()), halves, seed, 0.02f, context.stream());
  for (const CudaDecoderLayer& layer : weights.layers) {
    cuda::fill_random_half(const_cast<__half*>(layer.input_norm), c.hidden_size, seed + 1, 1.0f, context.stream());
    cuda::fill_random_half(const_cast<__half*>(layer.post_attention_norm), c.hidden_size, seed + 2, 1.0f,
                           context.stream());
  }
  cuda::fill_random_half(const_cast<__half*>(weights.final_norm), c.hidden_size, seed + 3, 1.0f, context.stream());
  context.synchronize();
  weights.notes.push_back("random fp16 weights generated on the GPU (synthetic model, speed only)");
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
