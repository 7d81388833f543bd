// quantization_config as AutoAWQ, AutoGPTQ/GPTQModel and llm-compressor write it (FORMATS.md §3, §4,
// §6): the real configs are read, and every unsupported layout or unknown key is refused by name.
#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

#include "model/quant_config.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using nlohmann::json;
using test::require_error;

namespace {

QuantConfig parse(const json& quantization_config) {
  const json config = {{"architectures", {"LlamaForCausalLM"}}, {"quantization_config", quantization_config}};
  return parse_quant_config(config.dump(), "test/config.json");
}

void require_refused(const json& quantization_config, std::initializer_list<const char*> words) {
  require_error([&] { parse(quantization_config); }, words);
}

// As AutoAWQ's to_transformers_dict writes it.
json awq_config() {
  return json::parse(R"({"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": true,
                         "version": "gemm", "modules_to_not_convert": null})");
}

// As AutoGPTQ 0.7 writes it into config.json through optimum/transformers.
json gptq_config() {
  return json::parse(R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": true, "sym": false,
                         "static_groups": false, "true_sequential": true, "damp_percent": 0.01,
                         "model_name_or_path": null, "model_file_base_name": null, "checkpoint_format": "gptq"})");
}

// llm-compressor's W8A8 preset (compressed-tensors 0.12).
json w8a8_config() {
  return json::parse(R"({"quant_method": "compressed-tensors", "version": "0.12.2", "format": "int-quantized",
    "quantization_status": "compressed", "global_compression_ratio": null, "kv_cache_scheme": null,
    "sparsity_config": {}, "transform_config": {}, "ignore": ["lm_head"],
    "config_groups": {"group_0": {"targets": ["Linear"], "output_activations": null, "format": "int-quantized",
      "weights": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "channel", "dynamic": false,
                  "group_size": null, "block_structure": null, "actorder": null, "observer": "minmax",
                  "observer_kwargs": {}},
      "input_activations": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "token",
                            "dynamic": true, "observer": null}}}})");
}

}  // namespace

TEST_CASE("no quantization_config, or null, is an fp16 checkpoint", "[quant-config]") {
  CHECK(parse_quant_config(R"({"hidden_size": 8})", "c").method == QuantMethod::None);
  CHECK(parse(nullptr).method == QuantMethod::None);
  CHECK_FALSE(parse(nullptr).quantizes("model.layers.0.mlp.down_proj"));
}

TEST_CASE("AutoAWQ gemm config", "[quant-config]") {
  QuantConfig config = parse(awq_config());
  CHECK(config.method == QuantMethod::Awq);
  CHECK(config.bits == 4);
  CHECK(config.group_size == 64);
  CHECK(config.describe() == "awq int4 g64");
  CHECK(config.quantizes("model.layers.0.self_attn.q_proj"));
  CHECK_FALSE(config.quantizes("lm_head"));

  json own_names = {{"quant_method", "awq"}, {"w_bit", 4}, {"q_group_size", -1}, {"zero_point", true},
                    {"version", "GEMM"}, {"modules_to_not_convert", {"mlp"}}};
  config = parse(own_names);  // AutoAWQ's own quant_config.json spelling
  CHECK(config.group_size == -1);
  CHECK(config.describe() == "awq int4 g=all");
  CHECK(config.quantizes("model.layers.0.self_attn.o_proj"));
  CHECK_FALSE(config.quantizes("model.layers.0.mlp.down_proj"));  // substring rule

  json exllama = awq_config();
  exllama["version"] = "exllama";  // a load-time kernel choice over the gemm layout
  CHECK(parse(exllama).method == QuantMethod::Awq);
}

TEST_CASE("AWQ configs run-llm cannot read are refused by name", "[quant-config]") {
  json bits = awq_config();
  bits["bits"] = 3;
  require_refused(bits, {"quantization_config", "AWQ bits 3"});
  json gemv = awq_config();
  gemv["version"] = "gemv";
  require_refused(gemv, {"version \"gemv\"", "supported: gemm"});
  json no_zero = awq_config();
  no_zero["zero_point"] = false;
  require_refused(no_zero, {"zero_point", "Marlin"});
  json unknown = awq_config();
  unknown["surprise"] = 1;
  require_refused(unknown, {"unknown key \"surprise\""});
  json group = awq_config();
  group["group_size"] = 0;
  require_refused(group, {"group_size", "got 0"});
  json llm_awq = awq_config();
  llm_awq["backend"] = "llm-awq";
  require_refused(llm_awq, {"llm-awq"});
}

TEST_CASE("GPTQ configs: v1, v2, bits, act-order, lm_head", "[quant-config]") {
  QuantConfig config = parse(gptq_config());
  CHECK(config.method == QuantMethod::Gptq);
  CHECK(config.desc_act);
  CHECK_FALSE(config.sym);
  CHECK(config.zeros == GptqZeros::V1);
  CHECK(config.describe() == "gptq int4 g128 act-order (v1 zeros)");
  CHECK_FALSE(config.quantizes("lm_head"));

  for (int bits : {2, 3, 8}) {
    json other = gptq_config();
    other["bits"] = bits;
    CHECK(parse(other).bits == bits);
  }
  json v2 = gptq_config();
  v2.erase("checkpoint_format");
  v2["format"] = "gptq_v2";  // GPTQModel's canonical key
  CHECK(parse(v2).zeros == GptqZeros::V2);
  json lm_head = gptq_config();
  lm_head["lm_head"] = true;
  CHECK(parse(lm_head).quantizes("lm_head"));
  json absent = gptq_config();
  absent.erase("checkpoint_format");
  absent.erase("desc_act");
  CHECK(parse(absent).zeros == GptqZeros::V1);
  CHECK_FALSE(parse(absent).desc_act);
}

TEST_CASE("GPTQ configs run-llm cannot read are refused by name", "[quant-config]") {
  json bits = gptq_config();
  bits["bits"] = 5;
  require_refused(bits, {"GPTQ bits 5", "2, 3, 4, 8"});
  json marlin = gptq_config();
  marlin["checkpoint_format"] = "marlin";
  require_refused(marlin, {"checkpoint_format \"marlin\""});
  json legacy_marlin = gptq_config();
  legacy_marlin["is_marlin_format"] = true;
  require_refused(legacy_marlin, {"Marlin"});
  json dynamic = gptq_config();
  dynamic["dynamic"] = {{"-:.*down_proj", json::object()}};
  require_refused(dynamic, {"dynamic"});
  json pack = gptq_config();
  pack["pack_dtype"] = "int16";
  require_refused(pack, {"pack_dtype", "int16"});
  json missing_bits = gptq_config();
  missing_bits.erase("bits");
  require_refused(missing_bits, {"missing \"bits\""});
  json text_bits = gptq_config();
  text_bits["bits"] = "4";
  require_refused(text_bits, {"\"bits\" must be an integer"});
}

TEST_CASE("compressed-tensors W8A8: dynamic, static, per-tensor, ignore lists", "[quant-config]") {
  QuantConfig config = parse(w8a8_config());
  CHECK(config.method == QuantMethod::W8A8);
  CHECK(config.w8a8.per_channel_weights);
  CHECK_FALSE(config.w8a8.static_input);
  CHECK(config.describe() == "w8a8 int8 per-channel, dynamic per-token activations");
  CHECK_FALSE(config.quantizes("lm_head"));
  CHECK(config.quantizes("model.layers.0.mlp.gate_proj"));

  json static_tensor = w8a8_config();
  json& group = static_tensor["config_groups"]["group_0"];
  group["weights"]["strategy"] = "tensor";
  group["input_activations"]["strategy"] = "tensor";
  group["input_activations"]["dynamic"] = false;
  group.erase("format");  // format at the top level only
  static_tensor["ignore"] = {"lm_head", "re:.*down_proj$"};
  config = parse(static_tensor);
  CHECK_FALSE(config.w8a8.per_channel_weights);
  CHECK(config.w8a8.static_input);
  CHECK_FALSE(config.quantizes("model.layers.3.mlp.down_proj"));
  CHECK(config.quantizes("model.layers.3.mlp.up_proj"));
}

// compressed-tensors 0.20 adds keys; absent, null or at their default they change nothing.
TEST_CASE("compressed-tensors 0.20 keys at their defaults are accepted", "[quant-config]") {
  json current = w8a8_config();
  current["version"] = "0.20.0";
  current["moe_sparsity_config"] = nullptr;
  current["global_compression_ratio"] = 1.92;
  current["kv_cache_scheme"] = nullptr;
  current["transform_config"] = nullptr;
  current["sparsity_config"] = nullptr;
  QuantConfig config = parse(current);
  CHECK(config.method == QuantMethod::W8A8);
  CHECK(config.w8a8.per_channel_weights);
  CHECK_FALSE(config.w8a8.static_input);

  current["moe_sparsity_config"] = json::object();
  current["transform_config"] = {{"config_groups", json::object()}};
  // llm-compressor records the measured sparsity of dense weights with format "dense".
  current["sparsity_config"] = {{"format", "dense"}, {"global_sparsity", 0.01}, {"targets", json::array()},
                                {"ignore", json::array()}, {"sparsity_structure", "unstructured"}};
  current["config_groups"]["group_0"].erase("output_activations");
  CHECK(parse(current).method == QuantMethod::W8A8);
  current.erase("moe_sparsity_config");
  current.erase("global_compression_ratio");
  current.erase("version");
  CHECK(parse(current).method == QuantMethod::W8A8);
}

TEST_CASE("compressed-tensors 0.20 keys that would change the math are refused by name", "[quant-config]") {
  json moe = w8a8_config();
  moe["moe_sparsity_config"] = {{"format", "sparse-24-bitmask"}};
  require_refused(moe, {"moe_sparsity_config"});
  json sparse = w8a8_config();
  sparse["sparsity_config"] = {{"format", "sparse-24-bitmask"}, {"sparsity_structure", "2:4"}};
  require_refused(sparse, {"sparsity_config", "sparse-24-bitmask"});
  json transform = w8a8_config();
  transform["transform_config"] = {{"config_groups", {{"u", {{"type", "hadamard"}}}}}};
  require_refused(transform, {"transform_config"});
  json outputs = w8a8_config();
  outputs["config_groups"]["group_0"]["output_activations"] = {{"num_bits", 8}, {"type", "int"}};
  require_refused(outputs, {"group_0", "output_activations"});
  json ratio = w8a8_config();
  ratio["global_compression_ratio"] = "high";
  require_refused(ratio, {"global_compression_ratio"});
  json group_key = w8a8_config();
  group_key["config_groups"]["group_0"]["block_rotation"] = true;
  require_refused(group_key, {"group_0", "unknown key \"block_rotation\""});
}

TEST_CASE("compressed-tensors configs run-llm cannot read are refused by name", "[quant-config]") {
  json packed = w8a8_config();
  packed["format"] = "pack-quantized";
  packed["config_groups"]["group_0"].erase("format");
  require_refused(packed, {"format \"pack-quantized\""});
  json asymmetric = w8a8_config();
  asymmetric["config_groups"]["group_0"]["input_activations"]["symmetric"] = false;
  require_refused(asymmetric, {"input_activations", "asymmetric"});
  json weight_only = w8a8_config();
  weight_only["config_groups"]["group_0"]["input_activations"] = nullptr;
  require_refused(weight_only, {"weight-only"});
  json four_bit = w8a8_config();
  four_bit["config_groups"]["group_0"]["weights"]["num_bits"] = 4;
  require_refused(four_bit, {"weights", "8-bit"});
  json kv = w8a8_config();
  kv["kv_cache_scheme"] = {{"num_bits", 8}};
  require_refused(kv, {"kv_cache_scheme"});
  json local = w8a8_config();
  local["config_groups"]["group_0"]["input_activations"]["dynamic"] = "local";
  require_refused(local, {"dynamic", "local"});
}

TEST_CASE("an unknown quant_method or a malformed section is refused", "[quant-config]") {
  require_refused({{"quant_method", "bitsandbytes"}}, {"unknown quant_method \"bitsandbytes\""});
  require_refused({{"bits", 4}}, {"missing \"quant_method\""});
  require_refused(json::array({1}), {"quantization_config", "expected an object"});
}
