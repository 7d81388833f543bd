#include "model/cuda_llama_model.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdio>

#include "kernels/cpu/norm_rope.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/sampling.h"
#include "model/decoder_checks.h"
#include "model/llama_model.h"
#include "runtime/cuda_check.h"
#include "runtime/error.h"

namespace runllm {

namespace {

// The GPU's rope kernel takes one frequency table for every length and no cos/sin factor: dynamic
// (per-length tables) and yarn (scaled cos/sin) run on the CPU only for now.
std::vector<float> rope_frequencies(const ModelConfig& c) {
  const cpu::RopeParams params = rope_params_of(c);
  if (params.scaling_type == "dynamic" || params.scaling_type == "yarn")
    throw Error("--device cuda: rope type \"" + params.scaling_type +
                "\" is not supported on the GPU yet (default, linear, llama3); use --device cpu");
  return cpu::rope_inverse_frequencies(params);
}

// The smallest sliding window of any layer, 0 when no layer has one.
int64_t smallest_sliding_window(const ModelConfig& c) {
  int64_t window = 0;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const int64_t w = c.layer_sliding_window(l);
    if (w > 0 && (window == 0 || w < window)) window = w;
  }
  return window;
}

}  // namespace

void CudaLlamaModel::check_supported(const ModelConfig& c) {
  if (c.head_dim != 64 && c.head_dim != 128)
    throw Error("--device cuda: head_dim " + std::to_string(c.head_dim) + " is not supported (64 or 128)");
  if (c.num_attention_heads / c.num_key_value_heads > 8)
    throw Error("--device cuda: more than 8 query heads per kv head is not supported");
  if (c.kv_dim() % 8 != 0 || c.hidden_size % 8 != 0)
    throw Error("--device cuda: hidden size and kv dimension must be multiples of 8");
  rope_frequencies(c);  // refuses the rope types the GPU cannot apply, before anything is uploaded
}

CudaLlamaModel::CudaLlamaModel(const ModelConfig& config, CudaContext& context, CudaWeights weights,
                               const CudaModelOptions& options)
    : config_(config),
      context_(context),
      weights_(std::move(weights)),
      dtype_(weights_.dtype),
      use_graph_(options.use_graph) {
  allocate_buffers(options);
  if (options.verbose) {
    std::fprintf(stderr, "cuda: %s\n", context_.device_name().c_str());
    for (const std::string& note : weights_.notes) std::fprintf(stderr, "cuda weights: %s\n", note.c_str());
    for (const std::string& line : weights_.kernel_report(max_batch_))
      std::fprintf(stderr, "cuda kernels: %s\n", line.c_str());
    const char* dtype = activation_dtype_name(dtype_);
    std::fprintf(stderr,
                 "cuda memory: weights %.1f MiB (uploaded layer by layer: device peak at load = the final "
                 "weights), activations %.1f MiB (batches of %lld rows) + linear workspace %.1f MiB, KV cache "
                 "%.1f MiB (%lld positions, %s), free after load %.1f MiB\n",
                 mebibytes(weights_.device_bytes()), mebibytes(activations_.bytes()),
                 static_cast<long long>(max_batch_), mebibytes(linear_workspace_.bytes()), mebibytes(kv_memory_.bytes()),
                 static_cast<long long>(kv_capacity_), dtype, mebibytes(context_.free_bytes()));
    std::fprintf(stderr,
                 "cuda: activations %s (fp32 accumulation, fp32 logits); decode %s\n", dtype,
                 use_graph_ ? "as a CUDA graph" : "without a graph");
  }
}

CudaLlamaModel::~CudaLlamaModel() {
  if (context_.stream()) cudaStreamSynchronize(context_.stream());
  if (graph_exec_) cudaGraphExecDestroy(graph_exec_);
  if (graph_) cudaGraphDestroy(graph_);
  if (host_staging_) cudaFreeHost(host_staging_);
}

std::unique_ptr<CudaLlamaModel> CudaLlamaModel::upload(const LlamaModel& model, CudaContext& context,
                                                       const CudaModelOptions& options) {
  check_supported(model.config());
  CudaWeights weights = upload_weights(model, options.dtype, options.thresholds);
  return std::unique_ptr<CudaLlamaModel>(new CudaLlamaModel(model.config(), context, std::move(weights), options));
}

std::unique_ptr<CudaLlamaModel> CudaLlamaModel::from_weights(const ModelConfig& config, CudaContext& context,
                                                             CudaWeights weights, const CudaModelOptions& options) {
  check_supported(config);
  return std::unique_ptr<CudaLlamaModel>(new CudaLlamaModel(config, context, std::move(weights), options));
}

std::unique_ptr<CudaLlamaModel> CudaLlamaModel::random(const ModelConfig& config, CudaContext& context,
                                                       const CudaModelOptions& options, uint64_t seed) {
  check_supported(config);
  CudaWeights weights =
      random_weights(config, activation_dtype_for(config, options.dtype), options.format, options.thresholds, context,
                     seed);
  return std::unique_ptr<CudaLlamaModel>(new CudaLlamaModel(config, context, std::move(weights), options));
}

void CudaLlamaModel::allocate_buffers(const CudaModelOptions& options) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t qkv_dim = c.q_dim() + 2 * c.kv_dim();
  max_batch_ = std::max<int64_t>(1, options.max_batch);
  if (options.context_length > 0) max_batch_ = std::min(max_batch_, options.context_length);
  const int64_t B = max_batch_;
  decode_workspace_bytes_ = cuda::attention_decode_workspace_bytes(c.num_attention_heads, c.head_dim);

  auto take_all = [&](DeviceArena& arena) {
    x_ = arena.take<uint16_t>(B * H);
    normed_ = arena.take<uint16_t>(B * H);
    qkv_ = arena.take<uint16_t>(B * qkv_dim);
    attention_ = arena.take<uint16_t>(B * c.q_dim());
    projected_ = arena.take<uint16_t>(B * H);
    gate_up_ = arena.take<uint16_t>(B * 2 * I);
    activated_ = arena.take<uint16_t>(B * I);
    logits_ = arena.take<float>(B * V);
    ids_ = arena.take<int32_t>(B);
    positions_ = arena.take<int32_t>(B);
    inv_freq_ = arena.take<float>(c.head_dim / 2);
    decode_workspace_ = arena.take<float>(static_cast<int64_t>(decode_workspace_bytes_ / sizeof(float)));
  };
  DeviceArena sizing;
  take_all(sizing);
  activations_ = DeviceMemory(sizing.used(), "activations (" + std::to_string(B) + " rows)");
  // Scratch of the quantized linears (dequantized weights, int8 activations): the largest need of
  // any one linear at any batch size up to B.
  size_t workspace = 0;
  for (int64_t m : {int64_t{1}, B}) workspace = std::max(workspace, weights_.workspace_bytes(m));
  for (int64_t m = 2; m < B; m *= 2) workspace = std::max(workspace, weights_.workspace_bytes(m));
  linear_workspace_ = DeviceMemory(std::max<size_t>(workspace, 256), "the quantized linears' workspace");
  DeviceArena arena(activations_);
  take_all(arena);
  const std::vector<float> inv_freq = rope_frequencies(c);
  CUDA_CHECK(cudaMemcpy(inv_freq_, inv_freq.data(), inv_freq.size() * sizeof(float), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&host_staging_), (2 * B + 1) * sizeof(int32_t),
                           cudaHostAllocDefault));

  // The KV cache: --ctx positions, or the model's maximum capped by what is free (keeping a margin
  // for cuBLAS and the CUDA graph).
  const size_t per_position = static_cast<size_t>(c.num_hidden_layers * 2 * c.kv_dim()) * sizeof(uint16_t);
  int64_t positions = options.context_length > 0 ? options.context_length : c.max_position_embeddings;
  if (options.context_length <= 0) {
    constexpr size_t kMargin = size_t{512} << 20;
    const size_t free = context_.free_bytes();
    const int64_t fit = free > kMargin ? static_cast<int64_t>((free - kMargin) / per_position) : 0;
    if (fit < positions) {
      if (options.verbose)
        std::fprintf(stderr, "cuda: KV cache capped at %lld positions by free memory (model max %lld)\n",
                     static_cast<long long>(fit), static_cast<long long>(positions));
      positions = fit;
    }
    if (positions < 1)
      throw Error("out of GPU memory for the KV cache: needed " + std::to_string(per_position >> 10) +
                  " KiB per position, free " + std::to_string(free >> 20) + " MiB");
  }
  kv_capacity_ = positions;
  kv_memory_ = DeviceMemory(per_position * static_cast<size_t>(positions),
                            "the KV cache (" + std::to_string(positions) + " positions; lower --ctx)");
  capacity_ = kv_capacity_;
}

void CudaLlamaModel::reset(int64_t capacity) {
  // The GPU attention applies no sliding window yet: exact only while every key is inside it.
  const int64_t window = smallest_sliding_window(config_);
  if (window > 0 && capacity > window)
    throw Error("--device cuda: this model's sliding_window of " + std::to_string(window) +
                " tokens is not applied by the GPU attention yet, and this run needs " + std::to_string(capacity) +
                " positions; use --ctx " + std::to_string(window) + " or less, or --device cpu");
  if (capacity > kv_capacity_)
    throw Error("this run needs " + std::to_string(capacity) + " positions but the GPU KV cache holds " +
                std::to_string(kv_capacity_) + " (raise --ctx, or free GPU memory)");
  capacity_ = capacity;
  length_ = 0;
  token_on_device_ = false;
}

void CudaLlamaModel::stage_tokens(const int32_t* tokens, int64_t M, int64_t past) {
  check_token_ids(tokens, M, config_.vocab_size);
  context_.synchronize();  // the pinned staging may still feed an earlier copy
  for (int64_t m = 0; m < M; ++m) {
    host_staging_[m] = tokens[m];
    host_staging_[max_batch_ + m] = static_cast<int32_t>(past + m);
  }
  const cudaStream_t stream = context_.stream();
  CUDA_CHECK(cudaMemcpyAsync(ids_, host_staging_, M * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaMemcpyAsync(positions_, host_staging_ + max_batch_, M * sizeof(int32_t), cudaMemcpyHostToDevice,
                             stream));
}

void CudaLlamaModel::forward(const int32_t* tokens, int64_t M, int64_t first_logit_row, float* logits) {
  check_context_room(length_, M, capacity_);
  const int64_t V = config_.vocab_size;
  token_on_device_ = false;
  for (int64_t r0 = 0; r0 < M; r0 += max_batch_) {
    const int64_t m = std::min(max_batch_, M - r0);
    const int64_t row0 = std::min(m, std::max<int64_t>(0, first_logit_row - r0));
    stage_tokens(tokens + r0, m, length_);
    enqueue_forward(m, length_, row0, false);
    length_ += m;
    if (logits && m > row0) {
      float* destination = logits + (r0 + row0 - first_logit_row) * V;
      CUDA_CHECK(cudaMemcpyAsync(destination, logits_, (m - row0) * V * sizeof(float), cudaMemcpyDeviceToHost,
                                 context_.stream()));
      context_.synchronize();
    }
  }
}

void CudaLlamaModel::run_for_sampling(const int32_t* tokens, int64_t M) {
  if (M != 1) {
    forward(tokens, M, M - 1, nullptr);
    return;
  }
  if (!(token_on_device_ && token_on_device_value_ == tokens[0])) {
    check_context_room(length_, 1, capacity_);
    check_token_ids(tokens, 1, config_.vocab_size);
    context_.synchronize();
    host_staging_[0] = tokens[0];
    CUDA_CHECK(cudaMemcpyAsync(ids_, host_staging_, sizeof(int32_t), cudaMemcpyHostToDevice, context_.stream()));
  }
  token_on_device_ = false;
  decode_step(true);
}

void CudaLlamaModel::copy_last_logits(float* host) const {
  CUDA_CHECK(cudaMemcpyAsync(host, logits_, config_.vocab_size * sizeof(float), cudaMemcpyDeviceToHost,
                             context_.stream()));
  context_.synchronize();
}

int32_t CudaLlamaModel::sample(Sampler& sampler, const SamplingParams& params, const std::vector<int32_t>& history) {
  const int64_t V = config_.vocab_size;
  const bool penalty_off = params.repeat_penalty == 1.0f || params.repeat_last_n == 0;
  const bool gpu_range = params.temperature == 0.0f ||
                         (params.top_k >= 1 && params.top_k <= cuda::kMaxGpuTopK && params.top_k < V);
  const cudaStream_t stream = context_.stream();
  if (penalty_off && gpu_range) {
    // Only the chosen id crosses to the host; u is the CPU sampler's own next draw.
    const double u = params.temperature > 0.0f ? sampler.draw_uniform01() : 0.0;
    cuda::GpuSamplingParams gpu;
    gpu.temperature = params.temperature;
    gpu.top_k = params.top_k;
    gpu.top_p = params.top_p;
    gpu.min_p = params.min_p;
    cuda::sample_token(logits_, V, gpu, u, ids_, stream);
    int32_t* chosen = host_staging_ + 2 * max_batch_;
    CUDA_CHECK(cudaMemcpyAsync(chosen, ids_, sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
    context_.synchronize();
    if (*chosen < 0) throw Error("the logits contain NaN or +inf, or are all -inf (GPU sampler)");
    token_on_device_ = true;
    token_on_device_value_ = *chosen;
    return *chosen;
  }
  // The repeat penalty, or top-k off / beyond the GPU sampler's range: the CPU sampler on fp32 logits.
  std::vector<float> host(static_cast<size_t>(V));
  CUDA_CHECK(cudaMemcpyAsync(host.data(), logits_, V * sizeof(float), cudaMemcpyDeviceToHost, stream));
  context_.synchronize();
  token_on_device_ = false;
  return sampler.sample(host.data(), V, history);
}

}  // namespace runllm
