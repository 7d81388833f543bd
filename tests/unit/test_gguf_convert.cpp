// GGUF -> HF conversion. Input files are built by the small GGUF writer in gguf_test_writer.h
// (independent of the reader), and the safetensors output is parsed here, so the converter is checked
// against independent statements of both formats.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "model/gguf_to_hf.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/gguf_test_writer.h"

using namespace runllm;
using namespace runllm::test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Parses a safetensors file here (header + F16 data) so this test does not depend on the reader.
struct SafetensorsContents {
  json header;
  Bytes data;
  std::vector<float> f16(const std::string& name) const {
    const auto& entry = header.at(name);
    const size_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    std::vector<float> out;
    for (size_t i = begin; i < end; i += 2) {
      uint16_t bits;
      std::memcpy(&bits, &data[i], 2);
      out.push_back(half_to_float(bits));
    }
    return out;
  }
};

SafetensorsContents read_safetensors(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  in.read(&header[0], static_cast<std::streamsize>(header_size));
  SafetensorsContents contents;
  contents.header = json::parse(header);
  contents.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return contents;
}

std::string convert_error(const GgufBuilder& builder) {
  const std::string path = write_scratch_file("model.gguf", builder.build());
  const std::string message = error_message(
      [&] { convert_gguf_to_hf(path, (scratch_dir() / "out_error").string(), [](const std::string&) {}); });
  return message.empty() ? "(converted without error)" : message;
}

}  // namespace

// ---- conversion ---------------------------------------------------------------------------------

TEST_CASE("convert_gguf_to_hf: tiny llama -> config, HF tensors, un-permuted q/k, tokenizer", "[gguf]") {
  for (bool tied : {true, false}) {
    TinyLlama model = tiny_llama(tied);
    const std::string path = write_scratch_file("tiny.gguf", model.builder.build());
    const fs::path out = scratch_dir() / (tied ? "hf_tied" : "hf_untied");
    std::vector<std::string> lines;
    std::vector<std::pair<int64_t, int64_t>> counts;  // what a progress bar is told
    convert_gguf_to_hf(
        path, out.string(), [&](const std::string& line) { lines.push_back(line); },
        [&](int64_t done, int64_t total) { counts.emplace_back(done, total); });
    const int64_t tensors = 1 + 9 * kLayers + 1 + (tied ? 0 : 1);
    REQUIRE(lines.size() == 2);  // the model's description and the summary; progress goes to the counts
    REQUIRE_THAT(lines.back(), HAS_SUBSTRING(std::to_string(tensors) + " tensors"));
    REQUIRE(counts.size() == static_cast<size_t>(tensors + 1));
    for (size_t i = 0; i < counts.size(); ++i) CHECK(counts[i] == std::make_pair(static_cast<int64_t>(i), tensors));

    const json config = read_json(out / "config.json");
    REQUIRE(config["architectures"] == json::array({"LlamaForCausalLM"}));
    REQUIRE(config["model_type"] == "llama");
    REQUIRE(config["hidden_size"] == kH);
    REQUIRE(config["intermediate_size"] == kI);
    REQUIRE(config["num_hidden_layers"] == kLayers);
    REQUIRE(config["num_attention_heads"] == kHeads);
    REQUIRE(config["num_key_value_heads"] == kKvHeads);
    REQUIRE(config["head_dim"] == kHeadDim);
    REQUIRE(config["rms_norm_eps"] == 1e-5);
    REQUIRE(config["rope_theta"] == 100000.0);
    REQUIRE(config["rope_scaling"].is_null());
    REQUIRE(config["max_position_embeddings"] == 2048);
    REQUIRE(config["vocab_size"] == kVocab);
    REQUIRE(config["tie_word_embeddings"] == tied);
    REQUIRE(config["bos_token_id"] == 1);
    REQUIRE(config["eos_token_id"] == 2);
    REQUIRE(config["torch_dtype"] == "float16");
    REQUIRE(config["hidden_act"] == "silu");

    const SafetensorsContents weights = read_safetensors(out / "model.safetensors");
    const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
        {"model.embed_tokens.weight", {kVocab, kH}},
        {"model.layers.1.input_layernorm.weight", {kH}},
        {"model.layers.1.self_attn.q_proj.weight", {kHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.k_proj.weight", {kKvHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.v_proj.weight", {kKvHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.o_proj.weight", {kH, kHeads * kHeadDim}},
        {"model.layers.1.post_attention_layernorm.weight", {kH}},
        {"model.layers.1.mlp.gate_proj.weight", {kI, kH}},
        {"model.layers.1.mlp.up_proj.weight", {kI, kH}},
        {"model.layers.1.mlp.down_proj.weight", {kH, kI}},
        {"model.norm.weight", {kH}},
    };
    for (const auto& [name, shape] : expected) {
      INFO(name);
      REQUIRE(weights.header.contains(name));
      REQUIRE(weights.header[name]["dtype"] == "F16");
      REQUIRE(weights.header[name]["shape"].get<std::vector<int64_t>>() == shape);
    }
    REQUIRE(weights.header.contains("lm_head.weight") == !tied);
    REQUIRE(weights.header.size() == 1 + 9 * kLayers + 1 + (tied ? 0 : 1) + 1);  // + __metadata__

    // llama.cpp's q/k permutation is undone exactly (k with the KV head count); v is untouched.
    REQUIRE(weights.f16("model.layers.0.self_attn.q_proj.weight") == model.hf_q0);
    REQUIRE(weights.f16("model.layers.0.self_attn.k_proj.weight") == model.hf_k0);
    REQUIRE(weights.f16("model.layers.0.self_attn.v_proj.weight") == pattern(kKvHeads * kHeadDim * kH, 40));
    REQUIRE(weights.f16("model.embed_tokens.weight") == pattern(kVocab * kH, 1));

    const json tokenizer = read_json(out / "tokenizer.json");
    REQUIRE(tokenizer["model"]["type"] == "BPE");
    REQUIRE(tokenizer["model"]["vocab"].size() == kVocab);
    REQUIRE(tokenizer["model"]["vocab"]["abc"] == 10);
    REQUIRE(tokenizer["model"]["merges"] == json::parse(R"([["a","b"],["ab","c"],["Ġ","a"]])"));
    REQUIRE(tokenizer["added_tokens"].size() == 4);
    REQUIRE(tokenizer["added_tokens"][1]["content"] == "<|im_start|>");
    REQUIRE(tokenizer["added_tokens"][1]["special"] == true);
    REQUIRE(tokenizer["added_tokens"][3]["content"] == "<think>");
    REQUIRE(tokenizer["added_tokens"][3]["special"] == false);
    REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][0]["type"] == "Digits");
    REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][1]["type"] == "ByteLevel");
    REQUIRE(tokenizer["decoder"]["type"] == "ByteLevel");

    const json tokenizer_config = read_json(out / "tokenizer_config.json");
    REQUIRE(tokenizer_config["add_bos_token"] == false);
    REQUIRE(tokenizer_config["bos_token"] == "<|im_start|>");
    REQUIRE(tokenizer_config["eos_token"] == "<|im_end|>");
    REQUIRE(tokenizer_config["pad_token"].is_null());
    REQUIRE(tokenizer_config["chat_template"] == "{{ messages }}");
    REQUIRE(tokenizer_config["model_max_length"] == 2048);
    const json generation = read_json(out / "generation_config.json");
    REQUIRE(generation["bos_token_id"] == 1);
    REQUIRE(generation["eos_token_id"] == 2);
  }
}

TEST_CASE("convert_gguf_to_hf: qwen2 keeps q/k rows as stored and writes biases", "[gguf]") {
  TinyLlama model = tiny_llama(true, "qwen2");
  const std::string path = write_scratch_file("qwen2.gguf", model.builder.build());
  const fs::path out = scratch_dir() / "hf_qwen2";
  convert_gguf_to_hf(path, out.string(), [](const std::string&) {});
  const json config = read_json(out / "config.json");
  REQUIRE(config["architectures"] == json::array({"Qwen2ForCausalLM"}));
  REQUIRE(config["model_type"] == "qwen2");
  REQUIRE(config["attention_bias"] == true);
  const SafetensorsContents weights = read_safetensors(out / "model.safetensors");
  REQUIRE(weights.f16("model.layers.0.self_attn.q_proj.weight") == model.hf_q0);
  REQUIRE(weights.f16("model.layers.0.self_attn.k_proj.weight") == model.hf_k0);
  REQUIRE(weights.f16("model.layers.1.self_attn.k_proj.bias") == pattern(kKvHeads * kHeadDim, 121));
  REQUIRE(weights.header["model.layers.1.self_attn.q_proj.bias"]["shape"] == json::array({kHeads * kHeadDim}));
  const json tokenizer = read_json(out / "tokenizer.json");
  REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][0]["type"] == "Split");
  REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][1]["use_regex"] == false);
}

TEST_CASE("convert_gguf_to_hf: refuses what it cannot convert faithfully", "[gguf]") {
  REQUIRE_THAT(convert_error(tiny_llama(true, "gpt2").builder),
               HAS_SUBSTRING("GGUF architecture 'gpt2' is not supported (supported: llama, qwen2)"));
  REQUIRE_THAT(convert_error(tiny_llama(true, "llama", "llama").builder),
               HAS_SUBSTRING("tokenizer.ggml.model 'llama' (SentencePiece) cannot be converted yet"));
  GgufBuilder duplicate = tiny_llama(true).builder;
  duplicate.kv_u32("llama.block_count", 3);
  REQUIRE_THAT(convert_error(duplicate), HAS_SUBSTRING("duplicate key (in KV"));

  // A type the reader knows (IQ4_NL: 32-element blocks of 18 bytes) but the converter cannot dequantize.
  GgufBuilder iq4 = tiny_llama(true).builder;
  iq4.tensors[2].type = 20;
  iq4.tensors[2].data.assign(18 * (kH * kHeads * kHeadDim / 32), 0);
  REQUIRE_THAT(convert_error(iq4), HAS_SUBSTRING("blk.0.attn_q.weight: GGUF tensor type IQ4_NL is not supported"));

  GgufBuilder rope_freqs = tiny_llama(true).builder;
  rope_freqs.tensor_f32("rope_freqs.weight", {kHeadDim / 2}, std::vector<float>(kHeadDim / 2, 1.0f));
  REQUIRE_THAT(convert_error(rope_freqs), HAS_SUBSTRING("rope_freqs.weight (llama3 rope scaling"));

  GgufBuilder extra = tiny_llama(true).builder;
  extra.tensor_f32("blk.5.attn_norm.weight", {kH}, pattern(kH, 1));
  REQUIRE_THAT(convert_error(extra), HAS_SUBSTRING("unexpected tensor blk.5.attn_norm.weight"));

  GgufBuilder wrong_shape = tiny_llama(true).builder;
  wrong_shape.tensors[1].dims = {kH / 2};
  wrong_shape.tensors[1].data.resize(kH / 2 * 4);
  REQUIRE_THAT(convert_error(wrong_shape),
               HAS_SUBSTRING("blk.0.attn_norm.weight: expected shape [32] (PyTorch order), got [16]"));
}
