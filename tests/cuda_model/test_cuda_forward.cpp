// The whole decoder on the GPU (model/cuda_llama_model.h) against the CPU reference on small
// synthetic checkpoints with random weights: prompt logits (batched, in several batches), and the
// decode step replayed from the CUDA graph. Error measure as in tests/kernels: max|gpu - cpu| /
// max|cpu| over all logits of the step.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "model/cpu_decoder_backend.h"
#include "model/cuda_llama_model.h"
#include "model/model_directory.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/synthetic_model.h"

using namespace runllm;

namespace {

// fp16 activations through a few layers against fp32: measured ~1e-3; bound with margin. bf16 has
// 3 fewer mantissa bits (8x the rounding error), its bound 6x fp16's.
double bound_for(const std::string& dtype) { return dtype == "bf16" ? 6e-2 : 1e-2; }
const char* const kDtypes[] = {"fp16", "bf16"};

double max_relative_error(const std::vector<float>& out, const std::vector<float>& ref) {
  double worst = 0.0, scale = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;
    worst = std::max(worst, std::fabs(static_cast<double>(out[i]) - ref[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return worst / scale;
}

void report(const std::string& what, const std::string& dtype, double error) {
  std::printf("measured | cuda forward %s | %s | max-relative %.3g | bound %.0e\n", dtype.c_str(), what.c_str(), error,
              bound_for(dtype));
}

struct Variant {
  std::string name;
  test::SyntheticModelSpec spec;
};

std::vector<Variant> variants() {
  test::SyntheticModelSpec llama;
  llama.hidden = 256;  // head_dim 64: the GPU attention's smallest
  llama.intermediate = 512;
  llama.layers = 3;
  llama.heads = 4;
  llama.kv_heads = 2;
  test::SyntheticModelSpec qwen = llama;
  qwen.architecture = "Qwen2ForCausalLM";  // q/k/v biases
  qwen.tie_word_embeddings = false;
  qwen.heads = 2;
  qwen.kv_heads = 1;
  qwen.hidden = 256;  // head_dim 128
  return {{"llama tied head_dim 64", llama}, {"qwen2 untied biases head_dim 128", qwen}};
}

}  // namespace

TEST_CASE("CUDA forward: prompt logits match the CPU reference on synthetic models", "[cuda]") {
  for (const Variant& variant : variants()) {
    const std::string dir = test::make_temp_dir("cuda_forward");
    test::write_synthetic_model(dir, variant.spec, 11);
    const ModelDirectory directory = open_model_directory(dir, false);
    const int64_t V = directory.config.vocab_size, M = 37;
    std::mt19937 random(5);
    std::vector<int32_t> tokens(M);
    for (int32_t& t : tokens) t = static_cast<int32_t>(random() % V);

    CpuDecoderBackend cpu(*directory.model);
    cpu.reset(64);
    std::vector<float> reference(static_cast<size_t>(M * V));
    cpu.forward(tokens.data(), M, 0, reference.data());

    CudaContext context(0);
    for (const std::string dtype : kDtypes) {
      for (const int64_t batch : {int64_t{512}, int64_t{16}}) {  // one batch, then three
        CudaModelOptions options;
        options.context_length = 64;
        options.max_batch = batch;
        options.dtype = dtype;
        auto gpu = CudaLlamaModel::upload(*directory.model, context, options);
        gpu->reset(64);
        std::vector<float> logits(reference.size(), NAN);
        gpu->forward(tokens.data(), M, 0, logits.data());
        const double error = max_relative_error(logits, reference);
        report(variant.name + " prompt M=37 batch " + std::to_string(batch), dtype, error);
        CHECK(error < bound_for(dtype));
        CHECK(gpu->length() == M);
      }
    }
  }
}

TEST_CASE("CUDA forward: decode steps replayed from the CUDA graph match the CPU reference", "[cuda]") {
  for (const Variant& variant : variants()) {
    const std::string dir = test::make_temp_dir("cuda_decode");
    test::write_synthetic_model(dir, variant.spec, 12);
    const ModelDirectory directory = open_model_directory(dir, false);
    const int64_t V = directory.config.vocab_size, prompt = 20;
    std::mt19937 random(6);
    std::vector<int32_t> tokens(prompt + 8);
    for (int32_t& t : tokens) t = static_cast<int32_t>(random() % V);

    CpuDecoderBackend cpu(*directory.model);
    cpu.reset(100);
    CudaContext context(0);
    CudaModelOptions options;
    options.context_length = 300;  // the graph is sized for 300 positions; runs use fewer
    struct Decode {
      const char* dtype;
      bool graph, gemv;
    };
    for (const Decode d : {Decode{"fp16", true, true}, Decode{"fp16", false, true}, Decode{"fp16", true, false},
                           Decode{"bf16", true, true}, Decode{"bf16", false, false}}) {
      options.dtype = d.dtype;
      options.use_graph = d.graph;
      options.decode_gemv = d.gemv;
      auto gpu = CudaLlamaModel::upload(*directory.model, context, options);
      cpu.reset(100);
      gpu->reset(100);
      std::vector<float> reference(static_cast<size_t>(V)), logits(static_cast<size_t>(V));
      cpu.forward(tokens.data(), prompt, prompt - 1, reference.data());
      gpu->run_for_sampling(tokens.data(), prompt);
      gpu->copy_last_logits(logits.data());
      double worst = max_relative_error(logits, reference);
      for (int64_t step = 0; step < 8; ++step) {
        const int32_t token = tokens[static_cast<size_t>(prompt + step)];
        cpu.forward(&token, 1, 0, reference.data());
        std::fill(logits.begin(), logits.end(), NAN);
        gpu->run_for_sampling(&token, 1);
        gpu->copy_last_logits(logits.data());
        worst = std::max(worst, max_relative_error(logits, reference));
      }
      report(variant.name + " decode 8 steps" + (d.graph ? " graph" : " no graph") + (d.gemv ? " gemv" : " cuBLAS"),
             d.dtype, worst);
      CHECK(worst < bound_for(d.dtype));
      CHECK(gpu->length() == prompt + 8);

      // Greedy choice on the GPU equals the CPU sampler's on the same logits.
      SamplingParams greedy;
      greedy.temperature = 0.0f;
      Sampler sampler(greedy);
      gpu->copy_last_logits(logits.data());
      Sampler host_sampler(greedy);
      const int32_t expected = host_sampler.sample(logits.data(), V, {});
      CHECK(gpu->sample(sampler, greedy, {}) == expected);
    }
  }
}

TEST_CASE("CUDA forward: context overflow and too-large resets are clear errors", "[cuda]") {
  test::SyntheticModelSpec spec = variants()[0].spec;
  const std::string dir = test::make_temp_dir("cuda_errors");
  test::write_synthetic_model(dir, spec, 13);
  const ModelDirectory directory = open_model_directory(dir, false);
  CudaContext context(0);
  CudaModelOptions options;
  options.context_length = 8;
  auto gpu = CudaLlamaModel::upload(*directory.model, context, options);
  test::require_error([&] { gpu->reset(9); }, {"needs 9 positions", "holds 8"});
  gpu->reset(8);
  std::vector<int32_t> tokens(9, 1);
  test::require_error([&] { gpu->forward(tokens.data(), 9, 8, nullptr); }, {"context overflow"});
  test::require_error([&] { gpu->forward(std::vector<int32_t>{999}.data(), 1, 0, nullptr); }, {"outside the vocabulary"});
  options.dtype = "fp32";
  test::require_error([&] { CudaLlamaModel::upload(*directory.model, context, options); },
                      {"--dtype", "expected auto, fp16 or bf16", "fp32"});
}

TEST_CASE("CUDA forward: --dtype auto runs a bf16 checkpoint in bf16 and others in fp16", "[cuda]") {
  const std::string dir = test::make_temp_dir("cuda_dtype");
  test::write_synthetic_model(dir, variants()[0].spec, 14);
  const ModelDirectory directory = open_model_directory(dir, false);
  CudaContext context(0);
  CudaModelOptions options;
  options.context_length = 8;
  CHECK(CudaLlamaModel::upload(*directory.model, context, options)->weights().dtype == DType::F16);
  ModelConfig bf16_config = directory.config;
  bf16_config.torch_dtype = DType::BF16;
  CHECK(CudaLlamaModel::random(bf16_config, context, options, 1)->weights().dtype == DType::BF16);
  options.dtype = "fp16";
  CHECK(CudaLlamaModel::random(bf16_config, context, options, 1)->weights().dtype == DType::F16);
}
