// The decoder's weights on the GPU, in the activation type (fp16 or bf16), in one device allocation:
// uploaded once from a loaded LlamaModel (layer by layer, so the device never holds more than the
// final weights) or made up on the device for benchmarks (Llama-2-7B shapes with random values).
// Pointers are untyped: every tensor holds 2-byte elements of CudaWeights::dtype.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/config.h"
#include "runtime/dtype.h"
#include "runtime/cuda_context.h"

namespace runllm {

class LlamaModel;

// One linear on the device: y[M, N] = x[M, K] · Wᵀ (+ b).
struct CudaLinear {
  const void* weight = nullptr;  // [N, K] row-major
  const void* bias = nullptr;    // [N], null when the linear has none
  int64_t N = 0, K = 0;
};

struct CudaDecoderLayer {
  const void* input_norm = nullptr;             // [H]
  const void* post_attention_norm = nullptr;    // [H]
  CudaLinear qkv;                               // [q_dim + 2 * kv_dim, H], rows q | k | v
  CudaLinear o;                                 // [H, q_dim]
  CudaLinear gate_up;                           // [2 * I, H], rows gate | up
  CudaLinear down;                              // [H, I]
};

struct CudaWeights {
  DType dtype = DType::F16;             // F16 or BF16: the element type of every tensor below
  DeviceMemory memory;                  // every tensor below lives in this one block
  const void* embed_tokens = nullptr;   // [V, H]
  std::vector<CudaDecoderLayer> layers; // [L]
  const void* final_norm = nullptr;     // [H]
  CudaLinear lm_head;                   // [V, H]; weight == embed_tokens when tied
  size_t linear_bytes = 0;              // bytes of the decoder linears and lm_head (read once per decoded token)
  std::vector<std::string> notes;       // for --verbose: how each kind of linear got to the GPU
};

// "fp16" or "bf16", as --dtype spells the activation types.
const char* activation_dtype_name(DType dtype);

// Converts each layer's linears to dense `dtype` (F16 or BF16; quantized ones through their
// dequantized weights: the quantized GPU kernels are a later step) and copies them to the device
// one layer at a time.
CudaWeights upload_weights(const LlamaModel& model, DType dtype);

// Random weights of the given shapes, generated on the device (no host copy): for speed only.
CudaWeights random_weights(const ModelConfig& config, DType dtype, const CudaContext& context, uint64_t seed);

// ModelConfig of the synthetic benchmark models: "llama2-7b" (hidden 4096, 32 layers, 32 heads,
// intermediate 11008, vocab 32000). Throws runllm::Error for other names.
ModelConfig synthetic_config(const std::string& name);

}  // namespace runllm
