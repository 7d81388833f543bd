// The decoder's weights on the GPU: embeddings and norms in the activation type (fp16 or bf16) in
// one device allocation, and every linear as the device side of its own format (DeviceLinear:
// dense, AWQ, GPTQ, the ExLlama path, W8A8, each in the layout its kernels read). Uploaded once from
// a loaded LlamaModel, layer by layer, or made up on the device for benchmarks (random weights of
// Llama shapes, in any format). Norm and embedding pointers are untyped: 2-byte elements of dtype.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "layers/device_linear.h"
#include "model/config.h"
#include "model/llama_model.h"
#include "runtime/dtype.h"
#include "runtime/cuda_context.h"

namespace runllm {

class LlamaModel;

struct CudaDecoderLayer {
  const void* input_norm = nullptr;             // [H]
  const void* post_attention_norm = nullptr;    // [H]
  std::unique_ptr<DeviceLinear> qkv;            // [q_dim + 2 * kv_dim, H], rows q | k | v
  std::unique_ptr<DeviceLinear> o;              // [H, q_dim]
  std::unique_ptr<DeviceLinear> gate_up;        // [2 * I, H], rows gate | up
  std::unique_ptr<DeviceLinear> down;           // [H, I]
};

struct CudaWeights {
  DType dtype = DType::F16;             // F16 or BF16: the activation type
  DeviceMemory memory;                  // embed_tokens and the norms
  const void* embed_tokens = nullptr;   // [V, H]
  std::vector<CudaDecoderLayer> layers; // [L]
  const void* final_norm = nullptr;     // [H]
  std::unique_ptr<DeviceLinear> lm_head;  // [V, H]; a view of embed_tokens when tied
  bool lm_head_tied = false;
  std::vector<std::string> notes;       // for --verbose: where the weights came from

  // Bytes of the decoder linears and lm_head (read once per decoded token).
  size_t linear_bytes() const;
  // Device bytes of all weights (embeddings, norms, linears in their own layouts).
  size_t device_bytes() const;
  // Scratch the linears need for M rows (the largest of any one of them).
  size_t workspace_bytes(int64_t M) const;
  // For --verbose: per group of layers, the kernel each projection runs for decode and prompt rows.
  std::vector<std::string> kernel_report(int64_t prompt_rows) const;
};

// What the synthetic benchmark models' linears are made of (--format).
enum class SyntheticFormat { Dense, Awq, Gptq, GptqActOrder, W8A8 };
SyntheticFormat parse_synthetic_format(const std::string& name);  // dense|fp16|awq|gptq|gptq-actorder|w8a8

// "fp16" or "bf16", as --dtype spells the activation types.
const char* activation_dtype_name(DType dtype);

// The activation type for --dtype `option` (auto: bf16 for a bf16 checkpoint, whose range fp16 may
// overflow, else fp16). Throws naming the flag for other values.
DType activation_dtype_for(const ModelConfig& config, const std::string& option);

// Builds the device weights layer by layer as the model loads (a LayerSink passed to
// LlamaModel::load): each linear goes to the device through its own format (Linear::to_device), and
// with `release_host_linears` the host model drops it right after, so the host never holds more
// than one layer's weights. Embeddings and norms are rounded to the activation type.
class CudaWeightsBuilder : public LayerSink {
 public:
  CudaWeightsBuilder(std::string dtype_option, const KernelThresholds& thresholds, bool release_host_linears);
  void begin(const ModelConfig& config) override;
  void take_layer(int64_t index, const DecoderLayer& layer) override;
  bool releases_linears() const override { return release_; }
  // Embeddings, the final norm and lm_head from the loaded model: the weights are then complete.
  CudaWeights finish(const LlamaModel& model);
  // Peak of RssAnon sampled after every layer (and at finish): the host memory the load needed.
  size_t peak_host_anonymous_bytes() const { return peak_anonymous_; }

 private:
  void sample_host_memory();
  std::string dtype_option_;
  KernelThresholds thresholds_;
  bool release_;
  DeviceLinearOptions options_;
  CudaWeights weights_;
  std::vector<std::pair<void*, void*>> layer_norms_;  // input, post-attention
  size_t peak_anonymous_ = 0;
};

// A loaded model's weights, uploaded without releasing anything on the host.
CudaWeights upload_weights(const LlamaModel& model, const std::string& dtype_option,
                           const KernelThresholds& thresholds);

// Random weights of the given shapes and format, generated on the device: for speed only. The
// group-wise formats use 4 bits and groups of 128.
CudaWeights random_weights(const ModelConfig& config, DType dtype, SyntheticFormat format,
                           const KernelThresholds& thresholds, const CudaContext& context, uint64_t seed);

// ModelConfig of the synthetic benchmark models: "llama2-7b" (hidden 4096, 32 layers, 32 heads,
// intermediate 11008, vocab 32000), "llama3-8b" (hidden 4096, 32 layers, 32 heads, 8 KV heads,
// intermediate 14336, vocab 128256). Throws runllm::Error for other names.
ModelConfig synthetic_config(const std::string& name);

}  // namespace runllm
