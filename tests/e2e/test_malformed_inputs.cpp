// Every malformed input gets a clear one-line error and exit code 1 from the CLI: never a crash.
// A tiny synthetic model (the real tokenizer, random weights) is written valid first, then broken
// one way at a time.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "model/safetensors.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kHidden = 16, kIntermediate = 32, kVocab = 49152;

nlohmann::json tiny_config() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", kHidden}, {"intermediate_size", kIntermediate},
          {"num_hidden_layers", 1}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
          {"vocab_size", kVocab}, {"max_position_embeddings", 256}, {"rms_norm_eps", 1e-5},
          {"tie_word_embeddings", true}, {"torch_dtype", "float16"}, {"eos_token_id", 2}};
}

using TensorMap = std::map<std::string, std::vector<int64_t>>;

TensorMap tiny_tensors() {
  const std::string layer = "model.layers.0.";
  return {{"model.embed_tokens.weight", {kVocab, kHidden}},
          {layer + "input_layernorm.weight", {kHidden}},
          {layer + "post_attention_layernorm.weight", {kHidden}},
          {layer + "self_attn.q_proj.weight", {kHidden, kHidden}},
          {layer + "self_attn.k_proj.weight", {8, kHidden}},
          {layer + "self_attn.v_proj.weight", {8, kHidden}},
          {layer + "self_attn.o_proj.weight", {kHidden, kHidden}},
          {layer + "mlp.gate_proj.weight", {kIntermediate, kHidden}},
          {layer + "mlp.up_proj.weight", {kIntermediate, kHidden}},
          {layer + "mlp.down_proj.weight", {kHidden, kIntermediate}},
          {"model.norm.weight", {kHidden}}};
}

// Writes a complete tiny model directory; `edit` may change the config and tensor list first.
std::string write_tiny_model(const std::string& tag, const std::function<void(nlohmann::json&, TensorMap&)>& edit) {
  const std::string dir = test::make_temp_dir(tag);
  const std::string real = test::model_dir();
  fs::copy_file(real + "/tokenizer.json", dir + "/tokenizer.json");
  fs::copy_file(real + "/tokenizer_config.json", dir + "/tokenizer_config.json");
  nlohmann::json config = tiny_config();
  TensorMap tensors = tiny_tensors();
  if (edit) edit(config, tensors);
  test::write_file(dir + "/config.json", config.dump(1));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  SafetensorsWriter writer;
  for (const auto& [name, shape] : tensors) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    std::vector<float> values(static_cast<size_t>(numel));
    for (float& v : values) v = name.find("norm") != std::string::npos ? 1.0f : normal(rng);
    writer.add_f16(name, shape, values);
  }
  writer.write(dir + "/model.safetensors");
  return dir;
}

// Runs a short generation and returns its result.
test::CommandResult generate_with(const std::string& dir) {
  return test::run_llm({"--model", dir, "--prompt", "Hello", "-n", "2", "--temperature", "0"});
}

void require_clear_error(const test::CommandResult& result, const std::string& expected_words) {
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 1);
  CHECK(result.err.rfind("run-llm: error: ", 0) == 0);
  CHECK(result.err.find('\n') == result.err.size() - 1);  // exactly one line
  CHECK(result.err.find(expected_words) != std::string::npos);
}

// Runs generation on a broken model directory, expects a clear error, then removes the directory.
void require_refused(const std::string& dir, const std::string& expected_words) {
  require_clear_error(generate_with(dir), expected_words);
  fs::remove_all(dir);
}

// Rewrites the JSON header of a safetensors file in place (the data section is kept).
void edit_header(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
  std::string bytes = test::read_file(path);
  uint64_t header_size;
  std::memcpy(&header_size, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_size));
  edit(header);
  std::string text = header.dump();
  text.append(header_size > text.size() ? header_size - text.size() : 0, ' ');
  const uint64_t new_size = text.size();
  std::string rewritten(reinterpret_cast<const char*>(&new_size), 8);
  test::write_file(path, rewritten + text + bytes.substr(8 + header_size));
}

}  // namespace

TEST_CASE("the valid tiny model runs (baseline for the broken variants)", "[e2e][errors]") {
  const std::string dir = write_tiny_model("valid", nullptr);
  const auto result = generate_with(dir);
  fs::remove_all(dir);
  INFO(result.err);
  CHECK(result.exit_code == 0);
  CHECK(result.err.find("generation: 2 tokens") != std::string::npos);
}

TEST_CASE("malformed safetensors files are refused", "[e2e][errors]") {
  SECTION("truncated file") {
    const std::string dir = write_tiny_model("truncated", nullptr);
    const std::string data = test::read_file(dir + "/model.safetensors");
    test::write_file(dir + "/model.safetensors", data.substr(0, data.size() - 100));
    require_refused(dir, "model.safetensors");
  }
  SECTION("header length past the end of the file") {
    const std::string dir = write_tiny_model("header", nullptr);
    std::string data = test::read_file(dir + "/model.safetensors");
    const uint64_t huge = data.size() + 1000;
    std::memcpy(data.data(), &huge, 8);
    test::write_file(dir + "/model.safetensors", data);
    require_refused(dir, "model.safetensors");
  }
  SECTION("overlapping tensor offsets") {
    const std::string dir = write_tiny_model("overlap", nullptr);
    edit_header(dir + "/model.safetensors", [](nlohmann::json& header) {
      auto& norm = header["model.norm.weight"]["data_offsets"];
      const uint64_t begin = header["model.embed_tokens.weight"]["data_offsets"][0].get<uint64_t>();
      norm = {begin, begin + 2 * kHidden};
    });
    require_refused(dir, "model.safetensors");
  }
  SECTION("offsets out of range") {
    const std::string dir = write_tiny_model("range", nullptr);
    edit_header(dir + "/model.safetensors", [](nlohmann::json& header) {
      header["model.norm.weight"]["data_offsets"] = {uint64_t{1} << 40, (uint64_t{1} << 40) + 2 * kHidden};
    });
    require_refused(dir, "model.safetensors");
  }
}

TEST_CASE("weights that disagree with config.json are refused naming the tensor", "[e2e][errors]") {
  SECTION("shape mismatch") {
    const std::string dir = write_tiny_model("shape", [](nlohmann::json&, TensorMap& tensors) {
      tensors["model.layers.0.self_attn.q_proj.weight"] = {kHidden, 8};
    });
    require_refused(dir, "model.layers.0.self_attn.q_proj.weight");
  }
  SECTION("dtype mismatch") {
    const std::string dir = write_tiny_model("dtype", nullptr);
    edit_header(dir + "/model.safetensors", [](nlohmann::json& header) {
      auto& entry = header["model.layers.0.mlp.down_proj.weight"];
      entry["dtype"] = "I16";  // same byte size as F16, so only the dtype is wrong
    });
    require_refused(dir, "model.layers.0.mlp.down_proj.weight");
  }
  SECTION("missing tensor") {
    const std::string dir = write_tiny_model("missing", [](nlohmann::json&, TensorMap& tensors) {
      tensors.erase("model.norm.weight");
    });
    require_refused(dir, "model.norm.weight");
  }
}

TEST_CASE("configs with missing or absurd sizes are refused naming the key", "[e2e][errors]") {
  SECTION("missing") {
    const std::string dir = write_tiny_model("nolayers", [](nlohmann::json& config, TensorMap&) {
      config.erase("num_hidden_layers");
    });
    require_refused(dir, "num_hidden_layers");
  }
  SECTION("negative") {
    const std::string dir = write_tiny_model("negative", [](nlohmann::json& config, TensorMap&) {
      config["hidden_size"] = -16;
    });
    require_refused(dir, "hidden_size");
  }
  SECTION("absurd") {
    const std::string dir = write_tiny_model("absurd", [](nlohmann::json& config, TensorMap&) {
      config["intermediate_size"] = int64_t{1} << 40;
    });
    require_refused(dir, "intermediate_size");
  }
}

namespace {
// A minimal GGUF v3 file with one tensor of the given ggml type id (FORMATS.md §7).
std::string tiny_gguf(uint32_t tensor_type) {
  std::string out = "GGUF";
  const auto put = [&out](const auto& value) { out.append(reinterpret_cast<const char*>(&value), sizeof value); };
  const auto put_string = [&](const std::string& s) { put(static_cast<uint64_t>(s.size())); out += s; };
  put(uint32_t{3});
  put(uint64_t{1});  // tensors
  put(uint64_t{1});  // KVs
  put_string("general.architecture");
  put(uint32_t{8});  // string
  put_string("llama");
  put_string("token_embd.weight");
  put(uint32_t{1});
  put(uint64_t{256});
  put(tensor_type);
  put(uint64_t{0});
  out.append((32 - out.size() % 32) % 32, '\0');
  out.append(256, '\0');
  return out;
}
}  // namespace

TEST_CASE("broken GGUF files are refused by convert", "[e2e][errors]") {
  const std::string dir = test::make_temp_dir("gguf");
  SECTION("truncated") {
    const std::string real = test::model_dir() + "/../SmolLM2-135M-Instruct.Q4_1.gguf";
    REQUIRE(fs::exists(real));
    std::ifstream in(real, std::ios::binary);
    std::string head(1 << 20, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    test::write_file(dir + "/truncated.gguf", head);
    require_clear_error(test::run_llm({"convert", dir + "/truncated.gguf", "--out", dir + "/out"}), "truncated.gguf");
  }
  SECTION("unknown tensor type") {
    test::write_file(dir + "/unknown.gguf", tiny_gguf(99));
    require_clear_error(test::run_llm({"convert", dir + "/unknown.gguf", "--out", dir + "/out"}), "99");
  }
  fs::remove_all(dir);
}
