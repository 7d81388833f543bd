// `run-llm bench`: speed on the GPU at batch 1, reported against the memory-bandwidth floor measured
// in the same run. Prompt: one forward of --prompt-tokens random ids. Decode: --gen-tokens steps as
// generation runs them (CUDA graph replay, GPU greedy sampling, the token read back each step).
// Floor: every decoder linear and lm_head weight is read once per token, so a token cannot take
// less than weight bytes / device copy bandwidth (cudaMemcpy D2D of 1 GiB, bytes read + written).
// Linears: each kind of the model's linears at M = 1, the GEMV kernel against cuBLAS on the same
// weights, both against the copy bandwidth.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/random_fill.h"
#include "model/cuda_llama_model.h"
#include "model/model_directory.h"
#include "runtime/cli/commands/commands.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_context.h"
#include "runtime/error.h"

namespace runllm::cli {

namespace {

struct BenchOptions {
  std::string model_dir;
  std::string synthetic;
  int64_t prompt_tokens = 512;
  int64_t gen_tokens = 256;
  std::string dtype = "fp16";
  bool no_graph = false;
  bool cublas_decode = false;
  bool verbose = false;
};

// Bytes read plus bytes written per second by one large device-to-device copy (median of 10).
double device_copy_bandwidth(const CudaContext& context) {
  constexpr size_t kBytes = size_t{1} << 30;
  DeviceMemory source(kBytes, "the bandwidth probe"), destination(kBytes, "the bandwidth probe");
  CUDA_CHECK(cudaMemsetAsync(source.get(), 1, kBytes, context.stream()));
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int i = 0; i < 12; ++i) {
    CUDA_CHECK(cudaEventRecord(start, context.stream()));
    CUDA_CHECK(cudaMemcpyAsync(destination.get(), source.get(), kBytes, cudaMemcpyDeviceToDevice, context.stream()));
    CUDA_CHECK(cudaEventRecord(stop, context.stream()));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (i >= 2) times.push_back(ms);  // the first copies warm up
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  const double ms = times[times.size() / 2];
  return 2.0 * static_cast<double>(kBytes) / (ms * 1e-3);
}

// Median time in seconds of `passes` runs of `body(i)` for i over `count` items, timed with events.
template <typename Body>
double median_pass_seconds(const CudaContext& context, int passes, int count, Body body) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int pass = 0; pass < passes + 2; ++pass) {
    CUDA_CHECK(cudaEventRecord(start, context.stream()));
    for (int i = 0; i < count; ++i) body(i);
    CUDA_CHECK(cudaEventRecord(stop, context.stream()));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (pass >= 2) times.push_back(ms);  // two warm-up passes
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2] * 1e-3;
}

// Each kind of linear at M = 1 over all layers' weights (so L2 holds none of them between uses):
// the GEMV kernel and cuBLAS on the same weights and input row.
template <typename T>
void compare_decode_linears(const CudaLlamaModel& model, const CudaContext& context, double copy_bandwidth) {
  const CudaWeights& w = model.weights();
  struct Kind {
    const char* name;
    std::vector<CudaLinear> linears;
  };
  std::vector<Kind> kinds = {{"q/k/v", {}}, {"o", {}}, {"gate/up", {}}, {"down", {}}, {"lm_head", {w.lm_head}}};
  for (const CudaDecoderLayer& layer : w.layers) {
    kinds[0].linears.push_back(layer.qkv);
    kinds[1].linears.push_back(layer.o);
    kinds[2].linears.push_back(layer.gate_up);
    kinds[3].linears.push_back(layer.down);
  }
  int64_t max_n = 0, max_k = 0;
  for (const Kind& kind : kinds)
    for (const CudaLinear& l : kind.linears) max_n = std::max(max_n, l.N), max_k = std::max(max_k, l.K);
  DeviceMemory x_memory(static_cast<size_t>(max_k) * sizeof(T), "the bench input row");
  DeviceMemory y_memory(static_cast<size_t>(max_n) * sizeof(float), "the bench output row");
  T* x = static_cast<T*>(x_memory.get());
  cuda::fill_random(x, max_k, 99, 1.0f, context.stream());
  std::printf("linears at M = 1 (%s; median of 20 passes over every layer's weights):\n",
              activation_dtype_name(w.dtype));
  for (const Kind& kind : kinds) {
    const CudaLinear& first = kind.linears.front();
    if (!cuda::gemv_supports(first.K, x, first.weight)) continue;
    const int count = static_cast<int>(kind.linears.size());
    const double bytes = static_cast<double>(first.N * first.K * 2) * count;
    const auto run = [&](bool gemv) {
      return median_pass_seconds(context, 20, count, [&](int i) {
        const CudaLinear& l = kind.linears[static_cast<size_t>(i)];
        if (gemv) {
          cuda::GemvArgs<T, T> args;
          args.x = x;
          args.weight = static_cast<const T*>(l.weight);
          args.N = l.N;
          args.K = l.K;
          args.y = static_cast<T*>(y_memory.get());
          cuda::gemv(args, context.stream());
        } else {
          cuda::linear_forward(context.cublas(), x, static_cast<const T*>(l.weight), 1, l.N, l.K,
                               static_cast<T*>(y_memory.get()), context.stream());
        }
      });
    };
    const double gemv_seconds = run(true), cublas_seconds = run(false);
    std::printf("  %-8s [%6lld x %6lld] x %-3d gemv %8.1f us/layer %7.1f GB/s %5.1f%% | cuBLAS %8.1f us/layer %7.1f GB/s "
                "%5.1f%% | gemv/cuBLAS time %.3f\n",
                kind.name, static_cast<long long>(first.N), static_cast<long long>(first.K), count,
                gemv_seconds / count * 1e6, bytes / gemv_seconds / 1e9, 100.0 * bytes / gemv_seconds / copy_bandwidth,
                cublas_seconds / count * 1e6, bytes / cublas_seconds / 1e9,
                100.0 * bytes / cublas_seconds / copy_bandwidth, gemv_seconds / cublas_seconds);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_bench(const BenchOptions& o) {
  if (o.model_dir.empty() == o.synthetic.empty()) throw Error("bench: give exactly one of --model DIR or --synthetic NAME");
  if (!cuda_device_available()) throw Error("bench: no CUDA GPU is available (bench measures the GPU path)");
  CudaContext context(0);
  const double copy_bandwidth = device_copy_bandwidth(context);

  CudaModelOptions options;
  options.context_length = o.prompt_tokens + o.gen_tokens + 1;
  options.max_batch = o.prompt_tokens;
  options.use_graph = !o.no_graph;
  options.decode_gemv = !o.cublas_decode;
  options.dtype = o.dtype;
  options.verbose = o.verbose;
  std::unique_ptr<ModelDirectory> directory;
  std::unique_ptr<CudaLlamaModel> model;
  std::string model_name;
  if (!o.synthetic.empty()) {
    const ModelConfig config = synthetic_config(o.synthetic);
    if (o.prompt_tokens + o.gen_tokens + 1 > config.max_position_embeddings)
      throw Error("bench: --prompt-tokens + --gen-tokens exceed the model's " +
                  std::to_string(config.max_position_embeddings) + " positions");
    model = CudaLlamaModel::random(config, context, options, 1234);
    model_name = "synthetic " + o.synthetic + " (random " + o.dtype + " weights)";
  } else {
    directory = std::make_unique<ModelDirectory>(open_model_directory(o.model_dir, o.verbose));
    model = CudaLlamaModel::upload(*directory->model, context, options);
    model_name = o.model_dir;
  }
  const ModelConfig& c = model->config();
  std::mt19937_64 random(7);
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  for (int32_t& id : prompt) id = static_cast<int32_t>(random() % static_cast<uint64_t>(c.vocab_size));
  SamplingParams greedy;
  greedy.temperature = 0.0f;

  // One decode pass: the prompt, then gen_tokens greedy steps; returns (prompt s, decode s).
  auto pass = [&](int64_t steps) {
    Sampler sampler(greedy);
    std::vector<int32_t> history = prompt;
    model->reset(o.prompt_tokens + steps + 1);
    const auto prompt_start = std::chrono::steady_clock::now();
    model->run_for_sampling(prompt.data(), o.prompt_tokens);
    int32_t token = model->sample(sampler, greedy, history);
    const double prompt_seconds = seconds_since(prompt_start);
    const auto decode_start = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < steps; ++step) {
      model->run_for_sampling(&token, 1);
      token = model->sample(sampler, greedy, history);
    }
    return std::make_pair(prompt_seconds, seconds_since(decode_start));
  };
  pass(8);  // warm-up: cuBLAS heuristics, the graph's capture
  std::pair<double, double> best{1e30, 1e30};
  for (int repeat = 0; repeat < 3; ++repeat) {
    const auto timing = pass(o.gen_tokens);
    best.first = std::min(best.first, timing.first);
    best.second = std::min(best.second, timing.second);
  }
  const double weight_bytes = static_cast<double>(model->linear_bytes());
  const double per_token = best.second / static_cast<double>(o.gen_tokens);
  const double achieved = weight_bytes / per_token;
  const double floor_seconds = weight_bytes / copy_bandwidth;
  std::printf("gpu: %s\n", context.device_name().c_str());
  std::printf("model: %s: hidden %lld, %lld layers, %lld heads (%lld kv), intermediate %lld, vocab %lld\n",
              model_name.c_str(), static_cast<long long>(c.hidden_size), static_cast<long long>(c.num_hidden_layers),
              static_cast<long long>(c.num_attention_heads), static_cast<long long>(c.num_key_value_heads),
              static_cast<long long>(c.intermediate_size), static_cast<long long>(c.vocab_size));
  std::printf("weights read per decoded token (linears + lm_head, %s): %.1f MB\n",
              activation_dtype_name(model->weights().dtype), weight_bytes / 1e6);
  std::printf("device copy bandwidth (cudaMemcpy D2D 1 GiB, read + write, median of 10): %.1f GB/s\n",
              copy_bandwidth / 1e9);
  std::printf("prompt: %lld tokens in %.2f ms: %.1f tokens/s (batch 1, best of 3)\n",
              static_cast<long long>(o.prompt_tokens), best.first * 1e3, o.prompt_tokens / best.first);
  std::printf("decode: %lld tokens, %.3f ms/token: %.1f tokens/s (%s, %s, greedy on the GPU, best of 3)\n",
              static_cast<long long>(o.gen_tokens), per_token * 1e3, 1.0 / per_token,
              o.no_graph ? "no graph" : "CUDA graph", o.cublas_decode ? "cuBLAS linears" : "GEMV linears");
  std::printf("decode bandwidth: %.1f GB/s achieved = %.1f%% of the floor (%.3f ms/token at the copy bandwidth)\n",
              achieved / 1e9, 100.0 * floor_seconds / per_token, floor_seconds * 1e3);
  if (model->weights().dtype == DType::BF16) compare_decode_linears<__nv_bfloat16>(*model, context, copy_bandwidth);
  else compare_decode_linears<__half>(*model, context, copy_bandwidth);
  return 0;
}

}  // namespace

Action register_bench(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* command = app.add_subcommand(
      "bench", "GPU speed at batch 1: prompt and decode tokens/s, decode bandwidth against the measured floor");
  command->add_option("-m,--model", options->model_dir, "checkpoint directory")->check(CLI::ExistingDirectory);
  command->add_option("--synthetic", options->synthetic, "a model of known shapes with random weights: llama2-7b");
  command->add_option("--prompt-tokens", options->prompt_tokens, "prompt length")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  command->add_option("--gen-tokens", options->gen_tokens, "decode steps timed")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  command->add_option("--dtype", options->dtype, "weights and activations: fp16 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp16", "bf16"}));
  command->add_flag("--no-graph", options->no_graph, "decode by plain launches instead of the CUDA graph");
  command->add_flag("--cublas-decode", options->cublas_decode,
                    "decode's one-row linears through cuBLAS instead of the GEMV kernel (for comparison)");
  command->add_flag("-v,--verbose", options->verbose, "print the memory report");
  return [options]() { return run_bench(*options); };
}

}  // namespace runllm::cli
