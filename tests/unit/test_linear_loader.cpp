// The per-layer choice of linear implementation (model/linear_loader): each format loads as its own
// layer, siblings fuse only when they can, biases are applied exactly once (fused or not), a tied
// lm_head is never looked up, and --awq-kernel exllama computes exactly what the native path does.
#include <map>
#include <random>
#include <string>
#include <vector>

#include "layers/rtn_quantize.h"
#include "model/model_directory.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/quantized_writers.h"
#include "tests/unit/synthetic_model.h"

using namespace runllm;
using test::SyntheticModelSpec;

namespace {

struct StoredLinear {
  std::vector<float> weight;  // [N, K] as the format dequantizes it
  std::vector<float> bias;
  int64_t N, K;
};

// Wraps `writer`, remembering what each module computes (its dequantized weight and bias).
test::LinearWriter recording(test::LinearWriter writer, std::map<std::string, StoredLinear>& stored,
                             int awq_group_size /* 0: stored dense */) {
  return [=, &stored](SafetensorsWriter& out, const std::string& module, const std::vector<float>& weight, int64_t N,
                      int64_t K, const std::vector<float>& bias) {
    writer(out, module, weight, N, K, bias);
    std::vector<float> effective =
        awq_group_size ? rtn_quantize(weight.data(), N, K, RtnOptions{4, awq_group_size, false}).dequantize() : weight;
    stored[module] = StoredLinear{effective, bias, N, K};
  };
}

std::vector<float> random_input(int64_t M, int64_t K, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(M * K));
  for (float& value : x) value = normal(rng);
  return x;
}

// y = x · Wᵀ + b for the parts side by side, in double.
std::vector<double> expected_output(const std::vector<float>& x, int64_t M, const std::vector<const StoredLinear*>& parts) {
  int64_t total = 0;
  for (const auto* part : parts) total += part->N;
  std::vector<double> y(static_cast<size_t>(M * total));
  int64_t column = 0;
  for (const auto* part : parts) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < part->N; ++n) {
        double sum = part->bias.empty() ? 0.0 : part->bias[n];
        for (int64_t k = 0; k < part->K; ++k) sum += double(x[m * part->K + k]) * part->weight[n * part->K + k];
        y[m * total + column + n] = sum;
      }
    column += part->N;
  }
  return y;
}

double max_relative_error(const std::vector<float>& actual, const std::vector<double>& expected) {
  double max_error = 0.0, max_value = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    max_error = std::max(max_error, std::abs(actual[i] - expected[i]));
    max_value = std::max(max_value, std::abs(expected[i]));
  }
  return max_error / max_value;
}

std::string write_model(const std::string& tag, const SyntheticModelSpec& spec, const test::LinearWriter& writer) {
  const std::string dir = test::make_temp_dir(tag);
  test::write_synthetic_model(dir, spec, 7, writer);
  return dir;
}

std::vector<float> logits_of(const ModelDirectory& directory, const std::vector<int32_t>& tokens) {
  KvCache cache(directory.config, 64);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(directory.config.vocab_size));
  directory.model->forward(tokens.data(), static_cast<int64_t>(tokens.size()), cache, 0, logits.data());
  return logits;
}

}  // namespace

TEST_CASE("each format gets its own linear, fused where the format allows", "[loader]") {
  struct Case {
    const char* name;
    nlohmann::json config;
    test::LinearWriter writer;
    std::vector<std::string> lines;
  };
  const std::vector<Case> cases = {
      {"fp16", nullptr, test::write_dense_linear,
       {"layers 0-1 q/k/v: DenseLinear fp32 fused qkv", "layers 0-1 o: DenseLinear fp32",
        "layers 0-1 gate/up: DenseLinear fp32 fused gate_up", "layers 0-1 down: DenseLinear fp32",
        "lm_head: tied to embed_tokens (fp32)"}},
      {"awq", test::awq_quantization_config(32), test::awq_writer(32),
       {"layers 0-1 q/k/v: AwqLinear int4 g32 fused qkv", "layers 0-1 o: AwqLinear int4 g32",
        "layers 0-1 gate/up: AwqLinear int4 g32 fused gate_up", "layers 0-1 down: AwqLinear int4 g32"}},
      {"gptq3", test::gptq_quantization_config(3, 32, false, GptqZeros::V1), test::gptq_writer(3, 32, GptqZeros::V1),
       {"layers 0-1 q/k/v: GptqLinear int3 g32 fused qkv", "layers 0-1 down: GptqLinear int3 g32"}},
      {"gptq-act-order", test::gptq_quantization_config(4, 32, true, GptqZeros::V2),
       test::gptq_writer(4, 32, GptqZeros::V2, 99),
       {"layers 0-1 q/k/v: GptqLinear int4 g32 act-order (separate q, k, v)",
        "layers 0-1 gate/up: GptqLinear int4 g32 act-order (separate gate, up)",
        "layers 0-1 down: GptqLinear int4 g32 act-order"}},
      {"w8a8", test::w8a8_quantization_config(), test::w8a8_writer(),
       {"layers 0-1 q/k/v: W8A8Linear int8 per-channel, dynamic per-token activations fused qkv",
        "layers 0-1 down: W8A8Linear int8 per-channel, dynamic per-token activations"}},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      SyntheticModelSpec spec;
      spec.quantization_config = c.config;
      const ModelDirectory directory = open_model_directory(write_model(c.name, spec, c.writer), false);
      const std::vector<std::string> lines = directory.model->describe_layers();
      for (const std::string& expected : c.lines) {
        INFO("expected line: " << expected);
        CHECK(std::find(lines.begin(), lines.end(), expected) != lines.end());
      }
      // Whatever the layout, the model runs and gives finite logits.
      for (float logit : logits_of(directory, {72, 105, 33})) REQUIRE(std::isfinite(logit));
    }
  }
}

TEST_CASE("Qwen2 q/k/v biases are applied exactly once, fused or separate", "[loader]") {
  SyntheticModelSpec spec;
  spec.architecture = "Qwen2ForCausalLM";
  spec.layers = 1;
  const int64_t M = 3, H = spec.hidden;
  const std::vector<float> x = random_input(M, H, 5);
  const std::vector<std::string> parts = {"model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj",
                                          "model.layers.0.self_attn.v_proj"};
  const auto check = [&](const char* tag, const nlohmann::json& config, test::LinearWriter writer, int awq_group,
                         bool expect_fused) {
    std::map<std::string, StoredLinear> stored;
    spec.quantization_config = config;
    const ModelDirectory directory = open_model_directory(write_model(tag, spec, recording(writer, stored, awq_group)), false);
    const DecoderLayer& layer = directory.model->layer(0);
    CHECK(layer.qkv_fused == expect_fused);
    std::vector<float> y(static_cast<size_t>(M * layer.qkv->out_features()));
    layer.qkv->forward(x.data(), M, y.data());
    REQUIRE(stored.at(parts[0]).bias.size() == static_cast<size_t>(stored.at(parts[0]).N));
    const double error = max_relative_error(y, expected_output(x, M, {&stored.at(parts[0]), &stored.at(parts[1]),
                                                                      &stored.at(parts[2])}));
    INFO(tag);
    CHECK(error < 1e-5);
  };
  SECTION("dense, fused") { check("qwen-dense", nullptr, test::write_dense_linear, 0, true); }
  SECTION("AWQ, fused from_qkv") { check("qwen-awq", test::awq_quantization_config(32), test::awq_writer(32), 32, true); }
  SECTION("W8A8 excluded parts stay dense and fuse") {
    nlohmann::json config = test::w8a8_quantization_config();
    config["ignore"] = {"lm_head", "re:.*_proj"};  // every linear ignored: all dense
    check("qwen-w8a8-ignored", config, test::write_dense_linear, 0, true);
  }
}

TEST_CASE("a tied lm_head is handled explicitly, an untied one must exist", "[loader]") {
  SyntheticModelSpec spec;
  const ModelDirectory tied = open_model_directory(write_model("tied", spec, test::write_dense_linear), false);
  CHECK(tied.model->lm_head() == nullptr);
  spec.tie_word_embeddings = false;
  spec.quantization_config = test::awq_quantization_config(32);
  const ModelDirectory untied = open_model_directory(write_model("untied", spec, test::awq_writer(32)), false);
  REQUIRE(untied.model->lm_head() != nullptr);
  CHECK(untied.model->lm_head()->describe() == "DenseLinear fp32");  // AWQ never quantizes lm_head

  // A config that says untied, with no lm_head tensor: an error naming it, not a silent tie.
  const std::string dir = write_model("missing-head", SyntheticModelSpec(), test::write_dense_linear);
  nlohmann::json config = nlohmann::json::parse(test::read_file(dir + "/config.json"));
  config["tie_word_embeddings"] = false;
  test::write_file(dir + "/config.json", config.dump());
  test::require_error([&] { open_model_directory(dir, false); }, {"lm_head.weight", "tie_word_embeddings"});
}

TEST_CASE("--awq-kernel exllama computes exactly what the native AWQ path does", "[loader]") {
  SyntheticModelSpec spec;
  spec.quantization_config = test::awq_quantization_config(32);
  const std::string dir = write_model("awq-exllama", spec, test::awq_writer(32));
  LinearOptions exllama;
  exllama.awq_kernel = AwqKernel::Exllama;
  const ModelDirectory native = open_model_directory(dir, false);
  const ModelDirectory converted = open_model_directory(dir, false, exllama);
  const std::vector<std::string> lines = converted.model->describe_layers();
  CHECK(lines.front() == "layers 0-1 q/k/v: GptqLinear int4 g32 (ExLlama path, from AWQ) fused qkv");
  const std::vector<int32_t> tokens = {72, 101, 108, 108, 111};
  CHECK(logits_of(native, tokens) == logits_of(converted, tokens));  // bit for bit
}

TEST_CASE("quantize at load replaces every linear except lm_head", "[loader]") {
  SyntheticModelSpec spec;
  spec.tie_word_embeddings = false;
  const std::string dir = write_model("load-quant", spec, test::write_dense_linear);
  const ModelDirectory dense = open_model_directory(dir, false);
  const std::vector<int32_t> tokens = {72, 101, 108, 108, 111};
  const std::vector<float> reference = logits_of(dense, tokens);
  struct Case {
    const char* flag;
    const char* first_line;
    double max_error;  // max |logit - fp| / max |fp|
  };
  for (const Case& c : {Case{"awq-rtn", "layers 0-1 q/k/v: AwqLinear int4 g32 fused qkv", 0.2},
                        Case{"gptq-rtn:8", "layers 0-1 q/k/v: GptqLinear int8 g32 fused qkv", 0.02},
                        Case{"gptq-rtn:3", "layers 0-1 q/k/v: GptqLinear int3 g32 fused qkv", 0.6},
                        Case{"w8a8", "layers 0-1 q/k/v: W8A8Linear int8 per-channel, dynamic per-token activations fused qkv", 0.05}}) {
    INFO(c.flag);
    LinearOptions options;
    options.group_size = 32;
    options = parse_load_quantization(c.flag, options);
    const ModelDirectory quantized = open_model_directory(dir, false, options);
    CHECK(quantized.model->describe_layers().front() == c.first_line);
    CHECK(quantized.model->describe_layers().back() == "lm_head: DenseLinear fp32");
    const std::vector<float> logits = logits_of(quantized, tokens);
    double max_error = 0.0, max_value = 0.0;
    for (size_t i = 0; i < logits.size(); ++i) {
      max_error = std::max<double>(max_error, std::abs(logits[i] - reference[i]));
      max_value = std::max<double>(max_value, std::abs(reference[i]));
    }
    CHECK(max_error / max_value < c.max_error);
    CHECK(max_error > 0.0);  // it really is quantized
  }
  test::require_error([] { parse_load_quantization("gptq-rtn:5", {}); }, {"--quantize", "bits"});
  test::require_error([] { parse_load_quantization("nf4", {}); }, {"unknown method \"nf4\""});
}
