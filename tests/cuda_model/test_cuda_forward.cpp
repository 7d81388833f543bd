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
#include "model/linear_loader.h"
#include "model/model_directory.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/quantized_writers.h"
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
      if (!d.gemv) options.thresholds.dense_gemv_max_rows = 0;
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

// Every quantized format runs its own GPU kernels (no dense fallback): checkpoints written in each
// on-disk layout, and fp16 weights quantized at load, against the CPU reference on the same
// quantized model. Prompt rows in batches of 5 (the fused small-M kernels) and of 512 (the
// large-M paths: dequantize + cuBLAS, the cuBLASLt int8 GEMM), then decode steps through the graph.
TEST_CASE("CUDA forward: quantized checkpoints run their own kernels and match the CPU reference", "[cuda]") {
  struct Quantized {
    std::string name;
    test::LinearWriter writer;
    nlohmann::json config;
    LinearOptions options;
    std::string kernel;  // what -v must name for the decode step of q/k/v
  };
  LinearOptions exllama;
  exllama.awq_kernel = AwqKernel::Exllama;
  LinearOptions fake;
  fake.quantize = LoadQuantization::FakeW8A8;
  const std::vector<Quantized> cases = {
      {"AWQ g64", test::awq_writer(64), test::awq_quantization_config(64), {}, "AWQ int4 g64: fused"},
      {"AWQ g64 ExLlama path", test::awq_writer(64), test::awq_quantization_config(64), exllama,
       "ExLlama path (AWQ) int4 g64: fused"},
      {"GPTQ 4-bit g32 act-order", test::gptq_writer(4, 32, GptqZeros::V2, 99),
       test::gptq_quantization_config(4, 32, true, GptqZeros::V2), {}, "act-order: fused"},
      {"GPTQ 3-bit g64", test::gptq_writer(3, 64, GptqZeros::V2), test::gptq_quantization_config(3, 64, false, GptqZeros::V2),
       {}, "GPTQ int3 g64: fused"},
      {"GPTQ 8-bit g=all", test::gptq_writer(8, -1, GptqZeros::V2),
       test::gptq_quantization_config(8, -1, false, GptqZeros::V2), {}, "GPTQ int8 g=all: fused"},
      {"GPTQ 2-bit g32", test::gptq_writer(2, 32, GptqZeros::V2), test::gptq_quantization_config(2, 32, false, GptqZeros::V2),
       {}, "GPTQ int2 g32: fused"},
      {"W8A8", test::w8a8_writer(), test::w8a8_quantization_config(), {}, "int8 GEMV"},
      {"fp16 --fake-quant w8a8", test::write_dense_linear, nullptr, fake, "int8 GEMV"},
  };
  test::SyntheticModelSpec spec = variants()[0].spec;
  for (const Quantized& q : cases) {
    spec.quantization_config = q.config;
    const std::string dir = test::make_temp_dir("cuda_quantized");
    test::write_synthetic_model(dir, spec, 21, q.writer);
    const ModelDirectory directory = open_model_directory(dir, false, q.options);
    const int64_t V = directory.config.vocab_size, M = 21;
    std::mt19937 random(8);
    std::vector<int32_t> tokens(M + 4);
    for (int32_t& t : tokens) t = static_cast<int32_t>(random() % V);
    CpuDecoderBackend cpu(*directory.model);
    cpu.reset(64);
    std::vector<float> reference(static_cast<size_t>(M * V));
    cpu.forward(tokens.data(), M, 0, reference.data());
    std::vector<std::vector<float>> decode_reference;
    for (int64_t step = 0; step < 4; ++step) {
      decode_reference.emplace_back(static_cast<size_t>(V));
      cpu.forward(&tokens[static_cast<size_t>(M + step)], 1, 0, decode_reference.back().data());
    }
    CudaContext context(0);
    for (const std::string dtype : kDtypes)
      for (const int64_t batch : {int64_t{5}, int64_t{512}}) {
        CudaModelOptions options;
        options.context_length = 64;
        options.max_batch = batch;
        options.dtype = dtype;
        auto gpu = CudaLlamaModel::upload(*directory.model, context, options);
        bool names_kernel = false;
        for (const std::string& line : gpu->weights().kernel_report(batch))
          names_kernel = names_kernel || (line.find("q/k/v") != std::string::npos &&
                                          line.find(q.kernel) != std::string::npos);
        CHECK(names_kernel);
        gpu->reset(64);
        std::vector<float> logits(reference.size(), NAN);
        gpu->forward(tokens.data(), M, 0, logits.data());
        double worst = max_relative_error(logits, reference);
        std::vector<float> step_logits(static_cast<size_t>(V));
        for (int64_t step = 0; step < 4; ++step) {
          std::fill(step_logits.begin(), step_logits.end(), NAN);
          gpu->run_for_sampling(&tokens[static_cast<size_t>(M + step)], 1);
          gpu->copy_last_logits(step_logits.data());
          worst = std::max(worst, max_relative_error(step_logits, decode_reference[static_cast<size_t>(step)]));
        }
        report(q.name + " prompt M=21 batch " + std::to_string(batch) + " + 4 decode steps", dtype, worst);
        CHECK(worst < bound_for(dtype));
      }
  }
}

// The families saved by transformers (tests/data/families, made by
// scripts/reference/make_family_references.py) on the GPU: the same logits as the CPU reference
// (which matches transformers to 1e-3), and what the GPU cannot apply yet refused by name.
TEST_CASE("CUDA forward: transformers-saved families match the CPU; unsupported rope and windows are refused",
          "[cuda]") {
  CudaContext context(0);
  CudaModelOptions options;
  options.context_length = 64;
  for (const char* family : {"llama2_spm", "llama31_llama3", "qwen2_bias", "mistral_window"}) {
    const ModelDirectory directory =
        open_model_directory(test::source_dir() + "/tests/data/families/" + family, false);
    // Within every sliding window (mistral_window: 8 positions), so the GPU's result is exact there.
    const int64_t V = directory.config.vocab_size, M = 8;
    std::vector<int32_t> tokens(M);
    for (int64_t m = 0; m < M; ++m) tokens[static_cast<size_t>(m)] = static_cast<int32_t>((7 * m + 3) % V);
    CpuDecoderBackend cpu(*directory.model);
    cpu.reset(M);
    std::vector<float> reference(static_cast<size_t>(M * V)), logits(reference.size(), NAN);
    cpu.forward(tokens.data(), M, 0, reference.data());
    auto gpu = CudaLlamaModel::upload(*directory.model, context, options);
    const std::string dtype = activation_dtype_name(gpu->weights().dtype);
    gpu->reset(M);
    gpu->forward(tokens.data(), M, 0, logits.data());
    const double error = max_relative_error(logits, reference);
    report(std::string(family) + " (transformers-saved) prompt M=8", dtype, error);
    CHECK(error < bound_for(dtype));
    if (std::string(family) == "mistral_window")
      test::require_error([&] { gpu->reset(9); }, {"sliding_window of 8", "--ctx 8", "--device cpu"});
  }
  const ModelDirectory yarn = open_model_directory(test::source_dir() + "/tests/data/families/llama_yarn", false);
  test::require_error([&] { CudaLlamaModel::upload(*yarn.model, context, options); },
                      {"rope type \"yarn\"", "--device cpu"});
}
