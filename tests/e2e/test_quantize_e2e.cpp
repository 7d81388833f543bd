// `run-llm quantize` on the converted default model (SmolLM2-135M: hidden 576, 9 heads, 3 kv heads,
// intermediate 1536) with a tiny calibration set: each method's checkpoint is checked tensor by tensor
// against its format (FORMATS.md §3, §4, §6) and then run as a user would. One quantized directory per
// method is made once and shared by every test case below.
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/safetensors.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;

namespace {

const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                       "special_tokens_map.json", "generation_config.json"};

std::string calibration_text() { return test::text_data("pride_and_prejudice.txt"); }

// The smallest calibration that still runs every code path: 4 windows of 64 tokens.
std::vector<std::string> tiny_calibration(const std::string& seed = "0") {
  return {"--calib", calibration_text(), "--calib-samples", "4", "--calib-len", "64", "--seed", seed};
}

struct Quantized {
  std::string dir;
  test::CommandResult result;
};

std::vector<std::string> method_arguments(const std::string& method) {
  if (method == "awq") return {"--method", "awq", "--group-size", "64"};
  if (method == "gptq") return {"--method", "gptq", "--group-size", "64", "--act-order"};
  if (method == "w8a8") return {"--method", "w8a8"};
  return {"--method", "rtn", "--bits", "8", "--group-size", "-1", "--sym"};  // rtn
}

// Quantizes the default model with `method` once per test run; later calls reuse the directory.
const Quantized& quantized(const std::string& method) {
  struct Cache : std::map<std::string, Quantized> {
    ~Cache() {  // the checkpoints are 100-170 MB each
      for (const auto& entry : *this) std::filesystem::remove_all(entry.second.dir);
    }
  };
  static Cache cache;
  auto found = cache.find(method);
  if (found != cache.end()) return found->second;
  Quantized entry;
  entry.dir = test::make_temp_dir("quantize-" + method);
  std::vector<std::string> arguments = {"quantize", "--model", test::model_dir(), "--out", entry.dir};
  for (const std::string& argument : method_arguments(method)) arguments.push_back(argument);
  if (method != "rtn")
    for (const std::string& argument : tiny_calibration()) arguments.push_back(argument);
  entry.result = test::run_llm(arguments);
  return cache.emplace(method, std::move(entry)).first->second;
}

const Quantized& require_quantized(const std::string& method) {
  const Quantized& q = quantized(method);
  INFO(q.result.err);
  REQUIRE(q.result.exit_code == 0);
  return q;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(test::read_file(path)); }

void check_tensor(const SafetensorsFile& file, const std::string& name, DType dtype, std::vector<int64_t> shape) {
  INFO(name);
  const TensorView* tensor = file.find(name);
  REQUIRE(tensor != nullptr);
  CHECK(dtype_name(tensor->dtype) == std::string(dtype_name(dtype)));
  CHECK(tensor->shape == shape);
}

std::vector<int32_t> read_i32(const SafetensorsFile& file, const std::string& name) {
  const TensorView* tensor = file.find(name);
  REQUIRE(tensor != nullptr);
  REQUIRE(tensor->dtype == DType::I32);
  std::vector<int32_t> values(static_cast<size_t>(tensor->numel()));
  std::memcpy(values.data(), tensor->data, tensor->nbytes);
  return values;
}

// config.json keeps the source's keys, says float16 and carries the quantization_config.
void check_config(const std::string& dir, const nlohmann::json& expected_quantization) {
  const nlohmann::json config = read_json(dir + "/config.json");
  const nlohmann::json source = read_json(test::model_dir() + "/config.json");
  CHECK(config["torch_dtype"] == "float16");
  CHECK(config["hidden_size"] == source["hidden_size"]);
  CHECK(config["num_hidden_layers"] == source["num_hidden_layers"]);
  CHECK(config["tie_word_embeddings"] == source["tie_word_embeddings"]);
  CHECK(config["quantization_config"] == expected_quantization);
}

void check_tokenizer_files(const std::string& dir) {
  for (const char* name : kTokenizerFiles) {
    INFO(name);
    const bool in_source = std::filesystem::exists(test::model_dir() + "/" + name);
    CHECK(std::filesystem::exists(dir + "/" + name) == in_source);
    if (in_source) CHECK(test::read_file(dir + "/" + name) == test::read_file(test::model_dir() + "/" + name));
  }
}

// The quantized checkpoint loads, names the expected implementation with --verbose and generates.
void check_generates(const std::string& dir, const std::string& expected_layer) {
  const auto result = test::run_llm({"--model", dir, "--prompt", "The capital of France is", "-n", "8",
                                     "--temperature", "0", "--verbose"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.find(expected_layer) != std::string::npos);
  CHECK(!result.out.empty());
}

// Embeddings and norms written as fp16; lm_head absent because the default model ties it.
void check_common_tensors(const SafetensorsFile& file) {
  check_tensor(file, "model.embed_tokens.weight", DType::F16, {49152, 576});
  check_tensor(file, "model.norm.weight", DType::F16, {576});
  check_tensor(file, "model.layers.29.input_layernorm.weight", DType::F16, {576});
  check_tensor(file, "model.layers.29.post_attention_layernorm.weight", DType::F16, {576});
  CHECK(file.find("lm_head.weight") == nullptr);
}

test::CommandResult quantize_with(const std::vector<std::string>& extra, const std::string& model) {
  std::vector<std::string> arguments = {"quantize", "--model", model, "--out", test::make_temp_dir("quantize-refused")};
  arguments.insert(arguments.end(), extra.begin(), extra.end());
  return test::run_llm(arguments);
}

}  // namespace

TEST_CASE("quantize --method awq writes an AutoAWQ gemm checkpoint that generates", "[e2e][quantize]") {
  const Quantized& q = require_quantized("awq");
  CHECK(q.result.err.find("layer 30/30") != std::string::npos);
  CHECK(q.result.err.find("o not scaled (GQA)") != std::string::npos);  // 3 kv heads: v rows != o columns
  check_config(q.dir, {{"quant_method", "awq"}, {"bits", 4}, {"group_size", 64}, {"zero_point", true},
                       {"version", "gemm"}, {"modules_to_not_convert", nullptr}});
  check_tokenizer_files(q.dir);
  const auto file = SafetensorsFile::open(q.dir + "/model.safetensors");
  check_common_tensors(*file);
  const std::string a = "model.layers.0.self_attn.", m = "model.layers.0.mlp.";
  check_tensor(*file, a + "q_proj.qweight", DType::I32, {576, 72});  // [K, N / 8]
  check_tensor(*file, a + "q_proj.qzeros", DType::I32, {9, 72});     // [K / 64, N / 8]
  check_tensor(*file, a + "q_proj.scales", DType::F16, {9, 576});
  check_tensor(*file, a + "k_proj.qweight", DType::I32, {576, 24});
  check_tensor(*file, a + "v_proj.qweight", DType::I32, {576, 24});
  check_tensor(*file, a + "o_proj.qweight", DType::I32, {576, 72});
  check_tensor(*file, m + "gate_proj.qweight", DType::I32, {576, 192});
  check_tensor(*file, m + "up_proj.scales", DType::F16, {9, 1536});
  check_tensor(*file, m + "down_proj.qweight", DType::I32, {1536, 72});
  check_tensor(*file, m + "down_proj.qzeros", DType::I32, {24, 72});
  CHECK(file->find(a + "q_proj.g_idx") == nullptr);
  CHECK(file->find(a + "q_proj.weight") == nullptr);
  check_generates(q.dir, "AwqLinear int4 g64");
}

TEST_CASE("quantize --method gptq --act-order writes GPTQ with g_idx that generates", "[e2e][quantize]") {
  const Quantized& q = require_quantized("gptq");
  CHECK(q.result.err.find("layer 30/30") != std::string::npos);
  const nlohmann::json config = read_json(q.dir + "/config.json")["quantization_config"];
  // v1 unless some true zero is 0, which must then be said.
  const bool v2 = config["checkpoint_format"] == "gptq_v2";
  CHECK(v2 == (q.result.err.find("gptq_v2") != std::string::npos));
  check_config(q.dir, {{"quant_method", "gptq"}, {"bits", 4}, {"group_size", 64}, {"desc_act", true}, {"sym", false},
                       {"static_groups", false}, {"true_sequential", false}, {"damp_percent", 0.1},
                       {"checkpoint_format", v2 ? "gptq_v2" : "gptq"}});
  check_tokenizer_files(q.dir);
  const auto file = SafetensorsFile::open(q.dir + "/model.safetensors");
  check_common_tensors(*file);
  const std::string a = "model.layers.0.self_attn.", m = "model.layers.0.mlp.";
  check_tensor(*file, a + "q_proj.qweight", DType::I32, {72, 576});  // [K / 8, N]
  check_tensor(*file, a + "q_proj.qzeros", DType::I32, {9, 72});     // [G, N / 8]
  check_tensor(*file, a + "q_proj.scales", DType::F16, {9, 576});
  check_tensor(*file, a + "q_proj.g_idx", DType::I32, {576});
  check_tensor(*file, a + "k_proj.qweight", DType::I32, {72, 192});
  check_tensor(*file, a + "o_proj.g_idx", DType::I32, {576});
  check_tensor(*file, m + "down_proj.qweight", DType::I32, {192, 576});
  check_tensor(*file, m + "down_proj.g_idx", DType::I32, {1536});
  CHECK(file->find(a + "q_proj.weight") == nullptr);

  // Act-order: every group holds 64 inputs but not in order; q, k and v share one g_idx (one Hessian).
  const std::vector<int32_t> g_idx = read_i32(*file, a + "q_proj.g_idx");
  std::vector<int> members(9, 0);
  bool in_order = true;
  for (size_t k = 0; k < g_idx.size(); ++k) {
    REQUIRE(g_idx[k] >= 0);
    REQUIRE(g_idx[k] < 9);
    ++members[static_cast<size_t>(g_idx[k])];
    in_order = in_order && g_idx[k] == static_cast<int32_t>(k / 64);
  }
  CHECK(members == std::vector<int>(9, 64));
  CHECK(!in_order);
  CHECK(read_i32(*file, a + "k_proj.g_idx") == g_idx);
  CHECK(read_i32(*file, a + "v_proj.g_idx") == g_idx);
  check_generates(q.dir, "GptqLinear int4 g64 act-order");
}

TEST_CASE("quantize --method w8a8 writes compressed-tensors int8 with smoothed norms", "[e2e][quantize]") {
  const Quantized& q = require_quantized("w8a8");
  CHECK(q.result.err.find("smoothquant") != std::string::npos);
  const nlohmann::json weights = {{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "channel"},
                                  {"dynamic", false}};
  const nlohmann::json inputs = {{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "token"},
                                 {"dynamic", true}};
  check_config(q.dir, {{"quant_method", "compressed-tensors"},
                       {"format", "int-quantized"},
                       {"config_groups",
                        {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", inputs}}}}},
                       {"ignore", {"lm_head"}},
                       {"quantization_status", "compressed"}});
  check_tokenizer_files(q.dir);
  const auto file = SafetensorsFile::open(q.dir + "/model.safetensors");
  check_common_tensors(*file);
  const std::string a = "model.layers.0.self_attn.", m = "model.layers.0.mlp.";
  check_tensor(*file, a + "q_proj.weight", DType::I8, {576, 576});
  check_tensor(*file, a + "q_proj.weight_scale", DType::F16, {576, 1});
  check_tensor(*file, a + "k_proj.weight", DType::I8, {192, 576});
  check_tensor(*file, a + "v_proj.weight_scale", DType::F16, {192, 1});
  check_tensor(*file, a + "o_proj.weight", DType::I8, {576, 576});
  check_tensor(*file, m + "gate_proj.weight", DType::I8, {1536, 576});
  check_tensor(*file, m + "down_proj.weight", DType::I8, {576, 1536});
  check_tensor(*file, m + "down_proj.weight_scale", DType::F16, {576, 1});

  // SmoothQuant folded 1/s into both norms of every layer.
  const auto source = SafetensorsFile::open(test::model_dir() + "/model.safetensors");
  for (const char* norm : {"model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight"}) {
    INFO(norm);
    const TensorView* before = source->find(norm);
    const TensorView* after = file->find(norm);
    REQUIRE(before != nullptr);
    REQUIRE(after != nullptr);
    REQUIRE(before->nbytes == after->nbytes);
    CHECK(std::memcmp(before->data, after->data, before->nbytes) != 0);
  }
  check_generates(q.dir, "W8A8Linear int8");
}

TEST_CASE("quantize --method rtn writes symmetric GPTQ without calibration", "[e2e][quantize]") {
  const Quantized& q = require_quantized("rtn");
  CHECK(q.result.err.find("calibration") == std::string::npos);
  check_config(q.dir, {{"quant_method", "gptq"}, {"bits", 8}, {"group_size", -1}, {"desc_act", false}, {"sym", true},
                       {"static_groups", false}, {"true_sequential", false}, {"damp_percent", 0.1},
                       {"checkpoint_format", "gptq"}});
  const auto file = SafetensorsFile::open(q.dir + "/model.safetensors");
  check_common_tensors(*file);
  check_tensor(*file, "model.layers.0.self_attn.q_proj.qweight", DType::I32, {144, 576});  // 4 rows per int32
  check_tensor(*file, "model.layers.0.self_attn.q_proj.qzeros", DType::I32, {1, 144});
  check_tensor(*file, "model.layers.0.mlp.down_proj.qweight", DType::I32, {384, 576});
  // Symmetric 8-bit v1 stores zero - 1 = 127 in every byte (FORMATS.md §4).
  for (int32_t word : read_i32(*file, "model.layers.0.self_attn.q_proj.qzeros")) REQUIRE(word == 0x7F7F7F7F);
  for (int32_t group : read_i32(*file, "model.layers.0.mlp.down_proj.g_idx")) REQUIRE(group == 0);
  check_generates(q.dir, "GptqLinear int8");
}

TEST_CASE("quantize is deterministic for a seed and follows the seed", "[e2e][quantize]") {
  const Quantized& first = require_quantized("w8a8");
  const auto run = [](const std::string& seed) {
    const std::string dir = test::make_temp_dir("quantize-seed");
    std::vector<std::string> arguments = {"quantize", "--model", test::model_dir(), "--out", dir, "--method", "w8a8"};
    for (const std::string& argument : tiny_calibration(seed)) arguments.push_back(argument);
    const auto result = test::run_llm(arguments);
    INFO(result.err);
    REQUIRE(result.exit_code == 0);
    return dir;
  };
  const std::string same = run("0"), other = run("1");
  const std::string bytes = test::read_file(first.dir + "/model.safetensors");
  CHECK(test::read_file(same + "/model.safetensors") == bytes);
  CHECK(test::read_file(other + "/model.safetensors") != bytes);
  std::filesystem::remove_all(same);
  std::filesystem::remove_all(other);
}

TEST_CASE("quantize refuses bad combinations with a clear message", "[e2e][quantize]") {
  const auto refused = [](const std::vector<std::string>& extra, const std::vector<std::string>& words,
                           const std::string& model = test::model_dir()) {
    const auto result = quantize_with(extra, model);
    INFO(result.err);
    CHECK(result.exit_code == 1);
    for (const std::string& word : words) CHECK(result.err.find(word) != std::string::npos);
  };
  const std::string text = calibration_text();
  SECTION("awq is 4-bit only") { refused({"--method", "awq", "--bits", "3", "--group-size", "64"}, {"--bits 3", "awq"}); }
  SECTION("w8a8 is 8-bit only") { refused({"--method", "w8a8", "--bits", "4"}, {"--bits 4", "w8a8"}); }
  SECTION("gptq bits") { refused({"--method", "gptq", "--bits", "5", "--group-size", "64"}, {"2, 3, 4 or 8"}); }
  SECTION("act-order is gptq only") { refused({"--method", "awq", "--act-order", "--group-size", "64"}, {"--act-order"}); }
  SECTION("group size 0") { refused({"--method", "gptq", "--group-size", "0"}, {"--group-size", "-1"}); }
  SECTION("group size that does not divide 576") {
    refused({"--method", "rtn", "--group-size", "128"}, {"--group-size 128", "576", "64"});
  }
  SECTION("unknown method") { refused({"--method", "fp8"}, {"fp8", "awq, gptq, w8a8, rtn"}); }
  SECTION("missing calibration file") {
    refused({"--method", "w8a8", "--calib", "/nonexistent/calib.txt"}, {"/nonexistent/calib.txt", "not found"});
  }
  SECTION("the evaluation text") {
    refused({"--method", "w8a8", "--calib", test::text_data("wiki.test.raw")}, {"evaluation text"});
  }
  SECTION("calibration windows longer than the text") {
    const std::string dir = test::make_temp_dir("quantize-short-text");
    const std::string short_text = dir + "/short.txt";
    test::write_file(short_text, "It is a truth universally acknowledged, that a single man in possession of a good "
                                 "fortune, must be in want of a wife.\n");
    refused({"--method", "w8a8", "--calib", short_text, "--calib-samples", "2", "--calib-len", "512"},
            {short_text, "--calib-len 512"});
    std::filesystem::remove_all(dir);
  }
  SECTION("calibration flags with rtn") {
    refused({"--method", "rtn", "--group-size", "64", "--calib", text}, {"--calib", "rtn"});
  }
  SECTION("an already quantized checkpoint") {
    refused({"--method", "rtn", "--group-size", "64"}, {"already quantized"}, require_quantized("rtn").dir);
  }
}

// --out is checked before any quantizing: a non-empty directory is refused without --force, and one
// that cannot be created fails at once, before the model loads or calibration starts.
TEST_CASE("quantize checks --out before quantizing and never overwrites without --force", "[e2e][quantize]") {
  const std::string dir = test::make_temp_dir("quantize-out");
  const std::string kept = dir + "/config.json";
  test::write_file(kept, "{\"mine\": true}");
  const std::vector<std::string> rtn = {"quantize", "--model", test::model_dir(), "--method", "rtn", "--group-size", "64"};
  std::vector<std::string> arguments = rtn;
  arguments.insert(arguments.end(), {"--out", dir});
  const auto refused = test::run_llm(arguments);
  INFO("stderr: " << refused.err);
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("--out " + dir + ": the directory is not empty") != std::string::npos);
  CHECK(refused.err.find("--force") != std::string::npos);
  CHECK(refused.err.find("layer 1/") == std::string::npos);
  CHECK(test::read_file(kept) == "{\"mine\": true}");

  // Under a regular file nothing can be created: refused before calibration (w8a8 calibrates first).
  const auto unwritable = test::run_llm({"quantize", "--model", test::model_dir(), "--method", "w8a8", "--out",
                                         kept + "/sub"});
  INFO("stderr: " << unwritable.err);
  CHECK(unwritable.exit_code == 1);
  CHECK(unwritable.err.find("--out " + kept + "/sub: cannot create the directory") != std::string::npos);
  CHECK(unwritable.err.find("calibration:") == std::string::npos);

  arguments.push_back("--force");
  const auto forced = test::run_llm(arguments);
  INFO("stderr: " << forced.err);
  CHECK(forced.exit_code == 0);
  CHECK(test::read_file(kept).find("quantization_config") != std::string::npos);
  std::filesystem::remove_all(dir);
}
