// The llama-style decoder on the GPU: weights, activations and KV cache in fp16 or bf16 (--dtype),
// fp32 accumulation, the KV cache allocated once, prompt rows in batches of up to max_batch, and one
// decode step captured once as a CUDA graph and replayed for every generated token (its position
// and token id are read from device memory, so nothing is re-captured and the host does not wait
// per layer).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/cuda_weights.h"
#include "runtime/cuda_context.h"
#include "runtime/decoder_backend.h"

namespace runllm {

class LlamaModel;

struct CudaModelOptions {
  int64_t context_length = 0;  // KV cache positions; 0 = the model's maximum, capped by free memory
  int64_t max_batch = 512;     // rows per forward batch (longer prompts run in several)
  std::string dtype = "auto";  // activations: auto (bf16 for a bf16 checkpoint, else fp16) | fp16 | bf16
  bool use_graph = true;       // decode through the captured CUDA graph
  // Up to which M each family's small-M kernel runs (the committed measurements by default;
  // --cublas-decode sets dense_gemv_max_rows to 0 for comparison).
  KernelThresholds thresholds = measured_kernel_thresholds();
  SyntheticFormat format = SyntheticFormat::Dense;  // random(): the linears' format
  bool verbose = false;        // memory and weight-path report on stderr
};

class CudaLlamaModel : public DecoderBackend {
 public:
  // Uploads `model`'s weights (in the activation type) and sizes activations and the KV cache. Throws runllm::Error
  // (out of memory: needed / free) when they do not fit.
  static std::unique_ptr<CudaLlamaModel> upload(const LlamaModel& model, CudaContext& context,
                                                const CudaModelOptions& options);
  // Weights already uploaded (CudaWeightsBuilder, streaming while the model loaded).
  static std::unique_ptr<CudaLlamaModel> from_weights(const ModelConfig& config, CudaContext& context,
                                                      CudaWeights weights, const CudaModelOptions& options);
  // Throws runllm::Error naming what of `config` the GPU path does not support (head_dim, GQA
  // ratio, rope types): called before any weight is uploaded.
  static void check_supported(const ModelConfig& config);
  // A model of `config`'s shapes with random weights (benchmarks).
  static std::unique_ptr<CudaLlamaModel> random(const ModelConfig& config, CudaContext& context,
                                                const CudaModelOptions& options, uint64_t seed);
  ~CudaLlamaModel() override;

  const ModelConfig& config() const override { return config_; }
  std::string device_name() const override { return "cuda (" + context_.device_name() + ")"; }
  void reset(int64_t capacity) override;
  int64_t length() const override { return length_; }
  int64_t capacity() const override { return capacity_; }
  void forward(const int32_t* tokens, int64_t M, int64_t first_logit_row, float* logits) override;
  void run_for_sampling(const int32_t* tokens, int64_t M) override;
  int32_t sample(Sampler& sampler, const SamplingParams& params, const std::vector<int32_t>& history) override;

  // Copies the logits the last run_for_sampling() left on the device ([V] fp32) to host memory.
  void copy_last_logits(float* host) const;
  int64_t allocated_capacity() const { return kv_capacity_; }
  size_t linear_bytes() const { return weights_.linear_bytes(); }  // weight bytes one decode step reads
  const CudaWeights& weights() const { return weights_; }
  // Decode of one token fed from the device (the last sampled id): for benchmarks, with no host sync.
  void decode_from_device_token();
  CudaContext& context() const { return context_; }

 private:
  CudaLlamaModel(const ModelConfig& config, CudaContext& context, CudaWeights weights,
                 const CudaModelOptions& options);
  void allocate_buffers(const CudaModelOptions& options);
  // Enqueues the forward of the M tokens whose ids and positions are in ids_/positions_, at cache
  // positions past ..; logits (fp32) of rows logit_row0 .. M - 1 go to logits_ from row 0.
  // graph_decode: M == 1 with past read from positions_[0] (the captured step). Dispatches on the
  // activation type to the typed versions (T = __half or __nv_bfloat16).
  void enqueue_forward(int64_t M, int64_t past, int64_t logit_row0, bool graph_decode);
  template <typename T>
  void enqueue_forward_typed(int64_t M, int64_t past, int64_t logit_row0, bool graph_decode);
  template <typename T>
  void enqueue_layer(int64_t l, int64_t M, int64_t past, bool graph_decode);
  void run_linear(const DeviceLinear& linear, const void* x, int64_t M, void* y, bool fp32_output = false) const;
  void decode_step(bool token_on_device);
  void stage_tokens(const int32_t* tokens, int64_t M, int64_t past);

  ModelConfig config_;
  CudaContext& context_;
  CudaWeights weights_;
  DType dtype_ = DType::F16;  // activations, weights and KV cache: F16 or BF16
  int64_t max_batch_ = 0;
  int64_t kv_capacity_ = 0;  // positions allocated
  int64_t capacity_ = 0;     // positions usable in this run (reset)
  int64_t length_ = 0;

  // Buffers of 2-byte elements of dtype_ are untyped here and typed in the enqueue functions.
  DeviceMemory kv_memory_;      // [L][2][kv_capacity, kv_dim] dtype_
  DeviceMemory linear_workspace_;  // scratch of the linears (DeviceLinear::workspace_bytes)
  DeviceMemory activations_;    // every buffer below
  void* x_ = nullptr;           // [B, H] the residual stream
  void* normed_ = nullptr;      // [B, H]
  void* qkv_ = nullptr;         // [B, q_dim + 2 * kv_dim]
  void* attention_ = nullptr;   // [B, q_dim]
  void* projected_ = nullptr;   // [B, H]
  void* gate_up_ = nullptr;     // [B, 2 * I]
  void* activated_ = nullptr;   // [B, I]
  float* logits_ = nullptr;     // [B, V]
  int32_t* ids_ = nullptr;      // [B] token ids; ids_[0] also receives the GPU sampler's choice
  int32_t* positions_ = nullptr;// [B]; positions_[0] is the decode step's `past`
  float* inv_freq_ = nullptr;   // [head_dim / 2]
  float* decode_workspace_ = nullptr;
  size_t decode_workspace_bytes_ = 0;
  int32_t* host_staging_ = nullptr;  // pinned [2 * B + 1]: ids, positions, the sampled token

  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t graph_exec_ = nullptr;
  bool use_graph_ = true;
  bool token_on_device_ = false;   // ids_[0] holds the token the last sample() returned
  int32_t token_on_device_value_ = -1;
};

}  // namespace runllm
