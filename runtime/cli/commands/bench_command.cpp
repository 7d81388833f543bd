// `run-llm bench`: speed on the GPU at batch 1, reported against the memory-bandwidth floor measured
// in the same run. Prompt: one forward of --prompt-tokens random ids. Decode: --gen-tokens steps as
// generation runs them (CUDA graph replay, GPU greedy sampling, the token read back each step).
// Floor: every decoder linear and lm_head weight is read once per token, so a token cannot take
// less than weight bytes / device copy bandwidth (cudaMemcpy D2D of 1 GiB, bytes read + written).
// -v and the last lines name the kernel each kind of linear runs. `bench --kernels`
// (kernel_bench.cpp) times the linear kernels one by one.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "model/cuda_llama_model.h"
#include "model/model_directory.h"
#include "model/synthetic_checkpoint.h"
#include "runtime/cli/commands/commands.h"
#include "runtime/cli/commands/gpu_timing.h"
#include "runtime/cli/commands/kernel_bench.h"
#include "runtime/cuda_check.h"
#include "runtime/cuda_context.h"
#include "runtime/process_memory.h"
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
  bool kernels = false;
  std::string format = "fp16";
  std::string save_checkpoint;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int run_bench(const BenchOptions& o) {
  if (!o.save_checkpoint.empty()) {
    if (o.synthetic.empty()) throw Error("bench --save-checkpoint needs --synthetic NAME");
    const auto start = std::chrono::steady_clock::now();
    write_synthetic_checkpoint(o.synthetic, o.format, o.save_checkpoint);
    std::printf("wrote %s (%s, %s format, random weights) in %.1f s\n", o.save_checkpoint.c_str(), o.synthetic.c_str(),
                o.format.c_str(), seconds_since(start));
    return 0;
  }
  if (!cuda_device_available()) throw Error("bench: no CUDA GPU is available (bench measures the GPU path)");
  if (o.kernels) {
    if (!o.model_dir.empty() || !o.synthetic.empty()) throw Error("bench --kernels takes no --model or --synthetic");
    CudaContext context(0);
    return run_kernel_bench(context, o.dtype == "bf16" ? DType::BF16 : DType::F16);
  }
  if (o.model_dir.empty() == o.synthetic.empty()) throw Error("bench: give exactly one of --model DIR or --synthetic NAME");
  if (!o.model_dir.empty() && o.format != "fp16") throw Error("bench: --format applies to --synthetic models");
  CudaContext context(0);
  const double copy_bandwidth = device_copy_bandwidth(context);

  CudaModelOptions options;
  options.context_length = o.prompt_tokens + o.gen_tokens + 1;
  options.max_batch = o.prompt_tokens;
  options.use_graph = !o.no_graph;
  if (o.cublas_decode) options.thresholds.dense_gemv_max_rows = 0;
  options.format = parse_synthetic_format(o.format);
  options.dtype = o.dtype;
  options.verbose = o.verbose;
  std::unique_ptr<ModelDirectory> directory;
  std::string load_report;
  std::unique_ptr<CudaLlamaModel> model;
  std::string model_name;
  if (!o.synthetic.empty()) {
    const ModelConfig config = synthetic_config(o.synthetic);
    if (o.prompt_tokens + o.gen_tokens + 1 > config.max_position_embeddings)
      throw Error("bench: --prompt-tokens + --gen-tokens exceed the model's " +
                  std::to_string(config.max_position_embeddings) + " positions");
    model = CudaLlamaModel::random(config, context, options, 1234);
    model_name = "synthetic " + o.synthetic + " (random weights, " + o.format + " linears, " + o.dtype + " activations)";
  } else {
    // Streaming upload: each layer goes to the GPU as it loads, and the host drops it.
    const auto load_start = std::chrono::steady_clock::now();
    CudaWeightsBuilder builder(o.dtype, options.thresholds, true);
    directory = std::make_unique<ModelDirectory>(open_model_directory(o.model_dir, o.verbose, {}, &builder));
    CudaWeights weights = builder.finish(*directory->model);
    char line[320];
    std::snprintf(line, sizeof line,
                  "load: %.2f s; peak host memory %.1f MiB anonymous (RssAnon, sampled after each layer; the mapped "
                  "checkpoint's pages not counted), %.1f MiB resident at most (VmHWM); device weights %.1f MiB",
                  seconds_since(load_start), mebibytes(builder.peak_host_anonymous_bytes()),
                  mebibytes(peak_resident_bytes()), mebibytes(weights.device_bytes()));
    load_report = line;
    model = CudaLlamaModel::from_weights(directory->config, context, std::move(weights), options);
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
  if (!load_report.empty()) std::printf("%s\n", load_report.c_str());
  std::printf("weights read per decoded token (linears in their formats + lm_head): %.1f MB\n", weight_bytes / 1e6);
  std::printf("device copy bandwidth (cudaMemcpy D2D 1 GiB, read + write, median of 10): %.1f GB/s\n",
              copy_bandwidth / 1e9);
  std::printf("prompt: %lld tokens in %.2f ms: %.1f tokens/s (batch 1, best of 3)\n",
              static_cast<long long>(o.prompt_tokens), best.first * 1e3, o.prompt_tokens / best.first);
  std::printf("decode: %lld tokens, %.3f ms/token: %.1f tokens/s (%s, %s, greedy on the GPU, best of 3)\n",
              static_cast<long long>(o.gen_tokens), per_token * 1e3, 1.0 / per_token,
              o.no_graph ? "no graph" : "CUDA graph", o.cublas_decode ? "dense linears on cuBLAS" : "small-M kernels");
  std::printf("decode bandwidth: %.1f GB/s achieved = %.1f%% of the floor (%.3f ms/token at the copy bandwidth)\n",
              achieved / 1e9, 100.0 * floor_seconds / per_token, floor_seconds * 1e3);
  for (const std::string& line : model->weights().kernel_report(o.prompt_tokens)) std::printf("kernels: %s\n", line.c_str());
  return 0;
}

}  // namespace

Action register_bench(CLI::App& app) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* command = app.add_subcommand(
      "bench", "GPU speed at batch 1: prompt and decode tokens/s, decode bandwidth against the measured floor; "
               "--kernels: every linear kernel against cuBLAS fp16");
  command->add_option("-m,--model", options->model_dir, "checkpoint directory")->check(CLI::ExistingDirectory);
  command->add_option("--synthetic", options->synthetic,
                      "a model of known shapes with random weights: llama2-7b or llama3-8b");
  command->add_option("--format", options->format,
                      "the synthetic model's linears: fp16 (the --dtype), awq or gptq (int4 g128), gptq-actorder, w8a8")
      ->capture_default_str()
      ->check(CLI::IsMember({"fp16", "awq", "gptq", "gptq-actorder", "w8a8"}));
  command->add_option("--save-checkpoint", options->save_checkpoint,
                      "write the --synthetic model with random weights as a checkpoint directory (--format awq or "
                      "fp16) and exit: for load and memory checks of large models");
  command->add_flag("--kernels", options->kernels,
                    "time every quantized linear kernel on Llama-2-7B, Llama-3-8B and SmolLM2-135M layer shapes at "
                    "M = 1 .. 2048 against cuBLAS fp16 and the bandwidth floor");
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
                    "decode's one-row dense linears through cuBLAS instead of the GEMV kernel (for comparison)");
  command->add_flag("-v,--verbose", options->verbose, "print the memory report and the kernel of every linear");
  return [options]() { return run_bench(*options); };
}

}  // namespace runllm::cli
