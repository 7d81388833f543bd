// config.json parsing: real configs (SmolLM2, Llama-3.1, Qwen2.5, Mistral; transformers 4 and 5
// spellings, FORMATS.md §1) and one check per invalid case, each asserting the key is named.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::require_error;
using nlohmann::json;

namespace {

ModelConfig parse(const json& config) { return parse_model_config(config.dump(), "test/config.json"); }


void require_parse_error(const json& config, std::initializer_list<const char*> words) {
  require_error([&] { parse(config); }, words);
}

// HuggingFaceTB/SmolLM2-135M-Instruct config.json (FORMATS-REFERENCE.md §6.3), nanotron leftovers included.
json smollm2_config() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 576,
    "initializer_range": 0.041666666666666664, "intermediate_size": 1536, "is_llama_config": true,
    "max_position_embeddings": 8192, "mlp_bias": false, "model_type": "llama", "num_attention_heads": 9,
    "num_hidden_layers": 30, "num_key_value_heads": 3, "pad_token_id": 2, "pretraining_tp": 1,
    "rms_norm_eps": 1e-05, "rope_interleaved": false, "rope_scaling": null, "rope_theta": 100000,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "transformers_version": "4.42.3",
    "use_cache": true, "vocab_size": 49152})");
}

// The keys a config cannot do without.
json minimal_llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64},  {"intermediate_size", 128},
          {"num_hidden_layers", 2},                {"num_attention_heads", 4}, {"vocab_size", 100}};
}

}  // namespace

TEST_CASE("SmolLM2-135M config", "[config]") {
  const ModelConfig config = parse(smollm2_config());
  CHECK(config.architecture == "LlamaForCausalLM");
  CHECK(config.hidden_size == 576);
  CHECK(config.intermediate_size == 1536);
  CHECK(config.num_hidden_layers == 30);
  CHECK(config.num_attention_heads == 9);
  CHECK(config.num_key_value_heads == 3);
  CHECK(config.head_dim == 64);
  CHECK(config.q_dim() == 576);
  CHECK(config.kv_dim() == 192);
  CHECK(config.vocab_size == 49152);
  CHECK(config.max_position_embeddings == 8192);
  CHECK(config.rms_norm_eps == 1e-5f);
  CHECK(config.rope_theta == 100000.0f);
  CHECK(config.rope_scaling.type == "default");
  CHECK(config.tie_word_embeddings);
  CHECK_FALSE(config.attention_bias);
  CHECK(config.bos_token_id == 1);
  CHECK(config.eos_token_ids == std::vector<int64_t>{2});
  CHECK(config.torch_dtype == DType::BF16);
  CHECK_FALSE(config.has_quantization_config);
}

TEST_CASE("absent optional keys take the transformers defaults", "[config]") {
  const ModelConfig config = parse(minimal_llama_config());
  CHECK(config.num_key_value_heads == 4);
  CHECK(config.head_dim == 16);
  CHECK(config.rope_theta == 10000.0f);
  CHECK(config.rms_norm_eps == 1e-6f);
  CHECK(config.max_position_embeddings == 2048);
  CHECK_FALSE(config.tie_word_embeddings);
  CHECK_FALSE(config.attention_bias);
  CHECK(config.bos_token_id == -1);
  CHECK(config.eos_token_ids.empty());
  CHECK(config.torch_dtype == DType::F16);
  CHECK(config.rope_scaling.type == "default");
}

TEST_CASE("Llama-3.1 config with llama3 rope scaling and a list of eos ids", "[config]") {
  json raw = json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
    "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 131072,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16", "vocab_size": 128256})");
  ModelConfig config = parse(raw);
  CHECK(config.head_dim == 128);
  CHECK(config.kv_dim() == 1024);
  CHECK(config.rope_theta == 500000.0f);
  CHECK(config.rope_scaling.type == "llama3");
  CHECK(config.rope_scaling.factor == 8.0f);
  CHECK(config.rope_scaling.low_freq_factor == 1.0f);
  CHECK(config.rope_scaling.high_freq_factor == 4.0f);
  CHECK(config.rope_scaling.original_max_position_embeddings == 8192);
  CHECK(config.bos_token_id == 128000);
  CHECK(config.eos_token_ids == std::vector<int64_t>{128001, 128008, 128009});

  // Older saves spell the key "type".
  raw["rope_scaling"].erase("rope_type");
  raw["rope_scaling"]["type"] = "llama3";
  config = parse(raw);
  CHECK(config.rope_scaling.type == "llama3");
  CHECK(config.rope_scaling.factor == 8.0f);
}

TEST_CASE("linear and dynamic rope scaling", "[config]") {
  json raw = minimal_llama_config();
  raw["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  CHECK(parse(raw).rope_scaling.type == "linear");
  CHECK(parse(raw).rope_scaling.factor == 2.0f);
  raw["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 4}};
  CHECK(parse(raw).rope_scaling.type == "dynamic");
  CHECK(parse(raw).rope_scaling.factor == 4.0f);
}

TEST_CASE("transformers-5 config with rope_parameters and dtype", "[config]") {
  json raw = smollm2_config();
  raw.erase("rope_theta");
  raw.erase("rope_scaling");
  raw.erase("torch_dtype");
  raw["rope_parameters"] = {{"rope_theta", 100000}, {"rope_type", "default"}};
  raw["dtype"] = "float32";
  ModelConfig config = parse(raw);
  CHECK(config.rope_theta == 100000.0f);
  CHECK(config.rope_scaling.type == "default");
  CHECK(config.torch_dtype == DType::F32);

  raw["rope_parameters"] = {{"rope_type", "llama3"},     {"rope_theta", 500000.0},  {"factor", 32.0},
                            {"low_freq_factor", 1.0},    {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  config = parse(raw);
  CHECK(config.rope_theta == 500000.0f);
  CHECK(config.rope_scaling.type == "llama3");
  CHECK(config.rope_scaling.factor == 32.0f);

  // rope_parameters holding only rope_theta means plain rope.
  raw["rope_parameters"] = {{"rope_theta", 250000}};
  config = parse(raw);
  CHECK(config.rope_theta == 250000.0f);
  CHECK(config.rope_scaling.type == "default");
}

TEST_CASE("Qwen2 config always has q/k/v biases", "[config]") {
  const json raw = json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
    "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 21, "model_type": "qwen2",
    "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "use_cache": true, "use_sliding_window": false, "vocab_size": 151936})");
  const ModelConfig config = parse(raw);
  CHECK(config.architecture == "Qwen2ForCausalLM");
  CHECK(config.attention_bias);
  CHECK(config.head_dim == 64);
  CHECK(config.num_key_value_heads == 2);
  CHECK(config.rope_theta == 1000000.0f);
  CHECK(config.tie_word_embeddings);
  CHECK(config.eos_token_ids == std::vector<int64_t>{151645});
}

TEST_CASE("Mistral config, and Mistral's own default of 8 kv heads", "[config]") {
  json raw = json::parse(R"({
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
    "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "head_dim": null, "vocab_size": 32000})");
  ModelConfig config = parse(raw);
  CHECK(config.architecture == "MistralForCausalLM");
  CHECK(config.head_dim == 128);
  CHECK(config.num_key_value_heads == 8);
  CHECK_FALSE(config.attention_bias);
  CHECK(config.max_position_embeddings == 32768);

  raw.erase("num_key_value_heads");
  raw["num_attention_heads"] = 16;
  CHECK(parse(raw).num_key_value_heads == 8);
  raw["head_dim"] = 96;
  CHECK(parse(raw).head_dim == 96);
  CHECK(parse(raw).q_dim() == 1536);
}

TEST_CASE("sliding windows: Mistral on every layer, Qwen2 per layer", "[config]") {
  json raw = minimal_llama_config();
  raw["architectures"] = {"MistralForCausalLM"};
  raw["num_key_value_heads"] = 4;
  raw["sliding_window"] = 32;
  ModelConfig config = parse(raw);
  CHECK(config.layer_sliding_window(0) == 32);
  CHECK(config.layer_sliding_window(1) == 32);
  raw.erase("sliding_window");  // MistralConfig's default
  CHECK(parse(raw).sliding_window == 4096);
  raw["sliding_window"] = nullptr;
  CHECK(parse(raw).layer_sliding_window(1) == 0);
  raw["architectures"] = {"LlamaForCausalLM"};  // Llama has no window; transformers ignores the key
  raw["sliding_window"] = 32;
  CHECK(parse(raw).layer_sliding_window(1) == 0);

  raw["architectures"] = {"Qwen2ForCausalLM"};
  CHECK(parse(raw).layer_sliding_window(1) == 0);  // use_sliding_window absent = false
  raw["use_sliding_window"] = true;
  raw["max_window_layers"] = 1;
  config = parse(raw);
  CHECK(config.layer_sliding_window(0) == 0);
  CHECK(config.layer_sliding_window(1) == 32);
  raw["layer_types"] = {"sliding_attention", "full_attention"};  // layer_types wins over max_window_layers
  config = parse(raw);
  CHECK(config.layer_sliding_window(0) == 32);
  CHECK(config.layer_sliding_window(1) == 0);
  raw.erase("layer_types");
  raw["max_window_layers"] = 0;
  CHECK(parse(raw).layer_sliding_window(0) == 32);
  raw["max_window_layers"] = -1;
  require_parse_error(raw, {"\"max_window_layers\"", "non-negative integer"});
  raw["max_window_layers"] = 1;
  raw["layer_types"] = {"sliding_attention", "chunked_attention"};
  require_parse_error(raw, {"\"layer_types\"", "chunked_attention", "not supported"});
  raw["layer_types"] = {"full_attention"};
  require_parse_error(raw, {"\"layer_types\"", "list of 2"});
}

TEST_CASE("yarn rope keys and their transformers defaults", "[config]") {
  json raw = minimal_llama_config();
  raw["max_position_embeddings"] = 4096;
  raw["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 1000000.0}, {"factor", 4.0}};
  ModelConfig config = parse(raw);
  CHECK(config.rope_scaling.type == "yarn");
  CHECK(config.rope_scaling.original_max_position_embeddings == 4096);  // absent: max_position_embeddings
  CHECK(config.rope_scaling.beta_fast == 32.0f);
  CHECK(config.rope_scaling.beta_slow == 1.0f);
  CHECK(config.rope_scaling.attention_factor == 0.0f);
  CHECK(config.rope_scaling.truncate);
  raw["rope_parameters"].update({{"original_max_position_embeddings", 1024}, {"beta_fast", 16}, {"beta_slow", 0},
                                 {"mscale", 0.707}, {"mscale_all_dim", 0.707}, {"attention_factor", 1.2},
                                 {"truncate", false}});
  config = parse(raw);
  CHECK(config.rope_scaling.original_max_position_embeddings == 1024);
  CHECK(config.rope_scaling.beta_fast == 16.0f);
  CHECK(config.rope_scaling.beta_slow == 1.0f);  // 0 means the default, as in transformers
  CHECK(config.rope_scaling.attention_factor == 1.2f);
  CHECK(config.rope_scaling.mscale == 0.707f);
  CHECK_FALSE(config.rope_scaling.truncate);
  raw["original_max_position_embeddings"] = 2048;  // a top-level key wins (transformers 5)
  CHECK(parse(raw).rope_scaling.original_max_position_embeddings == 2048);
}

TEST_CASE("model_type stands in for a missing architectures list", "[config]") {
  json raw = minimal_llama_config();
  raw.erase("architectures");
  raw["model_type"] = "qwen2";
  CHECK(parse(raw).architecture == "Qwen2ForCausalLM");
  raw["model_type"] = "gpt2";
  require_parse_error(raw, {"model_type \"gpt2\"", "LlamaForCausalLM"});
  raw.erase("model_type");
  require_parse_error(raw, {"missing \"architectures\""});
}

TEST_CASE("quantization_config presence is recorded", "[config]") {
  json raw = minimal_llama_config();
  raw["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}};
  CHECK(parse(raw).has_quantization_config);
  raw["quantization_config"] = nullptr;
  CHECK_FALSE(parse(raw).has_quantization_config);
}

TEST_CASE("load_model_config reads DIR/config.json", "[config]") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("runllm-test-config-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream((dir / "config.json").string()) << smollm2_config().dump();
  CHECK(load_model_config(dir.string()).hidden_size == 576);
  std::filesystem::remove_all(dir);
  require_error([&] { load_model_config(dir.string()); }, {"config.json", "cannot open"});
}

TEST_CASE("invalid configs are rejected naming the key", "[config]") {
  require_error([] { parse_model_config("{\"hidden_size\": ", "bad/config.json"); }, {"bad/config.json", "not valid JSON"});
  require_error([] { parse_model_config("[1]", "bad/config.json"); }, {"bad/config.json", "JSON object"});

  SECTION("missing required sizes") {
    for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"}) {
      json raw = minimal_llama_config();
      raw.erase(key);
      require_parse_error(raw, {"test/config.json", "missing required key", key});
    }
  }
  SECTION("non-integer and non-positive sizes") {
    for (const json& bad : {json(64.5), json("64"), json(true), json(nullptr), json(0), json(-4)}) {
      json raw = minimal_llama_config();
      raw["hidden_size"] = bad;
      require_parse_error(raw, {"\"hidden_size\"", "positive integer"});
    }
    json raw = minimal_llama_config();
    raw["num_key_value_heads"] = 0;
    require_parse_error(raw, {"\"num_key_value_heads\"", "positive integer"});
  }
  SECTION("absurd sizes") {
    const std::pair<const char*, int64_t> cases[] = {
        {"hidden_size", 65537},          {"num_hidden_layers", 1025},
        {"vocab_size", 4'000'001},       {"num_attention_heads", 1025},
        {"intermediate_size", (1 << 20) + 1}, {"head_dim", 1025},
        {"max_position_embeddings", (1 << 24) + 1}, {"num_key_value_heads", 1025}};
    for (const auto& item : cases) {
      json raw = minimal_llama_config();
      raw[item.first] = item.second;
      require_parse_error(raw, {item.first, "absurdly large"});
    }
    json raw = minimal_llama_config();
    raw["vocab_size"] = UINT64_MAX;
    require_parse_error(raw, {"\"vocab_size\"", "absurdly large"});
    // hidden / heads with no head_dim key is checked against the same limit.
    raw = minimal_llama_config();
    raw["hidden_size"] = 4096;
    raw["num_attention_heads"] = 2;
    require_parse_error(raw, {"head dimension 2048", "absurdly large"});
  }
  SECTION("heads that do not divide") {
    json raw = minimal_llama_config();
    raw["hidden_size"] = 66;
    require_parse_error(raw, {"\"hidden_size\" 66", "not divisible by \"num_attention_heads\" 4", "head_dim"});
    raw["head_dim"] = 16;
    CHECK(parse(raw).head_dim == 16);  // explicit head_dim need not divide hidden_size
    raw["head_dim"] = 15;
    require_parse_error(raw, {"head dimension 15", "must be even"});
    raw = minimal_llama_config();
    raw["num_key_value_heads"] = 3;
    require_parse_error(raw, {"\"num_attention_heads\" 4", "not divisible by \"num_key_value_heads\" 3"});
  }
  SECTION("unknown architecture") {
    json raw = minimal_llama_config();
    raw["architectures"] = {"GPT2LMHeadModel"};
    require_parse_error(raw, {"GPT2LMHeadModel", "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"});
    raw["architectures"] = json::array();
    require_parse_error(raw, {"\"architectures\"", "non-empty list"});
    raw["architectures"] = "LlamaForCausalLM";
    require_parse_error(raw, {"\"architectures\"", "non-empty list"});
  }
  SECTION("unknown or incomplete rope settings") {
    json raw = minimal_llama_config();
    raw["rope_scaling"] = {{"rope_type", "su"}, {"factor", 4.0}};
    require_parse_error(raw, {"rope_scaling", "unsupported rope type \"su\"", "default, linear, dynamic, llama3, yarn"});
    raw["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"partial_rotary_factor", 0.5}};
    require_parse_error(raw, {"rope_scaling", "\"partial_rotary_factor\"", "not supported"});
    raw.erase("rope_scaling");
    raw["partial_rotary_factor"] = 0.25;
    require_parse_error(raw, {"\"partial_rotary_factor\"", "not supported"});
    raw.erase("partial_rotary_factor");
    raw["rope_scaling"] = {{"factor", 4.0}};
    require_parse_error(raw, {"rope_scaling", "missing \"rope_type\""});
    raw["rope_scaling"] = {{"rope_type", "linear"}};
    require_parse_error(raw, {"rope_scaling", "missing required key \"factor\""});
    raw["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 8192}};
    require_parse_error(raw, {"rope_scaling", "\"low_freq_factor\""});
    raw["rope_scaling"] = "llama3";
    require_parse_error(raw, {"\"rope_scaling\" must be an object"});
    raw.erase("rope_scaling");
    raw["rope_parameters"] = {{"rope_type", "longrope"}, {"rope_theta", 10000}};
    require_parse_error(raw, {"rope_parameters", "unsupported rope type \"longrope\""});
    raw["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", -1}};
    require_parse_error(raw, {"rope_parameters", "\"rope_theta\" must be a positive number"});
    raw.erase("rope_parameters");
    raw["rope_theta"] = "10000";
    require_parse_error(raw, {"\"rope_theta\" must be a positive number"});
  }
  SECTION("dtype") {
    json raw = minimal_llama_config();
    raw["torch_dtype"] = "float64";
    require_parse_error(raw, {"\"torch_dtype\"", "float16, bfloat16 or float32", "float64"});
    raw.erase("torch_dtype");
    raw["dtype"] = "int8";
    require_parse_error(raw, {"\"dtype\"", "int8"});
  }
  SECTION("ill-typed optional keys") {
    json raw = minimal_llama_config();
    raw["tie_word_embeddings"] = "yes";
    require_parse_error(raw, {"\"tie_word_embeddings\"", "true or false"});
    raw = minimal_llama_config();
    raw["rms_norm_eps"] = 0;
    require_parse_error(raw, {"\"rms_norm_eps\"", "positive number"});
    raw = minimal_llama_config();
    raw["eos_token_id"] = {2, -1};
    require_parse_error(raw, {"\"eos_token_id\"", "token id"});
    raw = minimal_llama_config();
    raw["bos_token_id"] = "1";
    require_parse_error(raw, {"\"bos_token_id\"", "token id"});
  }
  SECTION("model variants run-llm does not implement") {
    json raw = minimal_llama_config();
    raw["hidden_act"] = "gelu";
    require_parse_error(raw, {"\"hidden_act\"", "gelu", "silu"});
    raw = minimal_llama_config();
    raw["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 10000}}}};
    require_parse_error(raw, {"rope_parameters", "per layer type", "full_attention"});
    // Mistral and Qwen2 hard-code their biases: transformers ignores both keys there, and so does run-llm.
    raw = minimal_llama_config();
    raw["architectures"] = {"MistralForCausalLM"};
    raw["num_key_value_heads"] = 4;
    raw["mlp_bias"] = true;
    raw["attention_bias"] = true;
    CHECK_FALSE(parse(raw).attention_bias);
    CHECK_FALSE(parse(raw).mlp_bias);
  }
  SECTION("Llama's mlp_bias is read (gate/up/down biases)") {
    json raw = minimal_llama_config();
    CHECK_FALSE(parse(raw).mlp_bias);
    raw["mlp_bias"] = true;
    CHECK(parse(raw).mlp_bias);
    CHECK_FALSE(parse(raw).attention_bias);
  }
}
