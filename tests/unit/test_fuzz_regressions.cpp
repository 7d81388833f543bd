// Hostile input (tests/fuzz/): every limit the parsers hold a malicious file to, and a plain
// regression test for each bug the fuzzers found (its input is also in tests/fuzz/regressions/).
// Each error must name the file and what was wrong.
#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"
#include "model/gguf.h"
#include "model/model_directory.h"
#include "model/quant_config.h"
#include "model/safetensors.h"
#include "runtime/error.h"
#include "runtime/json_parse.h"
#include "tests/byte_level_alphabet.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/gguf_test_writer.h"
#include "tests/unit/synthetic_model.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"

using namespace runllm;
using namespace runllm::test;
using nlohmann::json;

namespace {

std::string nested_arrays(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// ---- safetensors in memory: u64 header length, header, data ----

std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(static_cast<uint64_t>(header.size()) >> (8 * i));
  return bytes + header + data;
}

void require_safetensors_error(const std::string& bytes, std::initializer_list<const char*> words) {
  require_error([&] { SafetensorsFile::parse("hostile.safetensors", reinterpret_cast<const uint8_t*>(bytes.data()),
                                             bytes.size()); },
                words);
}

// ---- GGUF in memory: magic, version 3, tensor count, KV count, then `body` ----

Bytes gguf_bytes(uint64_t tensor_count, uint64_t kv_count, const Bytes& body) {
  Bytes bytes = {'G', 'G', 'U', 'F'};
  put<uint32_t>(bytes, 3);
  put<uint64_t>(bytes, tensor_count);
  put<uint64_t>(bytes, kv_count);
  bytes.insert(bytes.end(), body.begin(), body.end());
  return bytes;
}

void require_gguf_error(const Bytes& bytes, std::initializer_list<const char*> words) {
  require_error([&] { GgufFile::parse("hostile.gguf", bytes.data(), bytes.size()); }, words);
}

// One tensor info: name, dims, type, offset 0.
Bytes tensor_info(const std::string& name, const std::vector<uint64_t>& dims, uint32_t type) {
  Bytes info;
  put_string(info, name);
  put<uint32_t>(info, static_cast<uint32_t>(dims.size()));
  for (uint64_t dim : dims) put<uint64_t>(info, dim);
  put<uint32_t>(info, type);
  put<uint64_t>(info, 0);
  return info;
}

// ---- tokenizer.json: every byte as a token (GPT-2 byte alphabet), ByteLevel pre-tokenizer ----

json byte_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_char(b)] = b;
  return {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}}};
}

std::unique_ptr<BpeTokenizer> parse_tokenizer(const json& root) {
  return BpeTokenizer::parse(root.dump(), "hostile/tokenizer.json", TokenizerConfig{});
}

json tiny_config() {
  return {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 64}, {"intermediate_size", 128},
          {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"vocab_size", 258}};
}

json w8a8_quantization_config() {
  return json::parse(R"({"quant_method": "compressed-tensors", "format": "int-quantized",
    "config_groups": {"group_0": {"targets": ["Linear"],
      "weights": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "channel"},
      "input_activations": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "token", "dynamic": true}}}})");
}

std::string with_quantization(const json& quantization_config) {
  json config = tiny_config();
  config["quantization_config"] = quantization_config;
  return config.dump();
}

}  // namespace

// ---- JSON: nesting depth, file size, file kind ----------------------------------------------------

TEST_CASE("JSON nested deeper than 64 levels is refused before it is built", "[fuzz-limits]") {
  REQUIRE_NOTHROW(parse_json(nested_arrays(kMaxJsonDepth), "deep.json"));
  require_error([] { parse_json(nested_arrays(kMaxJsonDepth + 1), "deep.json"); },
                {"deep.json", "nested deeper than 64 levels"});
  // A million levels: neither the parser nor an error message may recurse that deep.
  const std::string deep = "{\"a\": " + nested_arrays(1'000'000) + "}";
  require_error([&] { parse_model_config(deep, "hostile/config.json"); }, {"hostile/config.json", "nested deeper"});
  require_error([&] { parse_quant_config(deep, "hostile/config.json"); }, {"hostile/config.json", "nested deeper"});
  require_error([&] { BpeTokenizer::parse(deep, "hostile/tokenizer.json", TokenizerConfig{}); },
                {"hostile/tokenizer.json", "nested deeper"});
  require_safetensors_error(safetensors_bytes(deep), {"hostile.safetensors", "header", "nested deeper"});
}

TEST_CASE("a JSON file over 128 MB or not a regular file is refused before it is read", "[fuzz-limits]") {
  const std::string dir = make_temp_dir("fuzz-json-files");
  const std::string config = dir + "/config.json";
  write_file(config, "{}");
  std::filesystem::resize_file(config, kMaxJsonFileBytes + 1);  // sparse: no disk space used
  require_error([&] { load_model_config(dir); }, {"config.json", "134217729 bytes", "limit for a JSON file"});
  require_error([&] { load_quant_config(dir); }, {"config.json", "134217729 bytes"});
  // The quantizer's order-keeping copy of config.json goes through the same checks.
  require_error([&] { read_checked_json_text(config); }, {"config.json", "134217729 bytes"});

  // A FIFO would block a plain read forever.
  std::filesystem::remove(config);
  REQUIRE(::mkfifo(config.c_str(), 0600) == 0);
  require_error([&] { load_model_config(dir); }, {"config.json", "not a regular file"});
  require_error([&] { read_checked_json_text(config); }, {"config.json", "not a regular file"});
  std::filesystem::remove(config);

  write_file(config, nested_arrays(kMaxJsonDepth + 1));
  require_error([&] { read_checked_json_text(config); }, {"config.json", "nested deeper than 64 levels"});
  write_file(config, "{\"a\": [1, 2}");
  require_error([&] { read_checked_json_text(config); }, {"config.json", "not valid JSON"});
  write_file(config, "{\"b\": 1, \"a\": 2}");
  CHECK(read_checked_json_text(config) == "{\"b\": 1, \"a\": 2}");
  std::filesystem::remove_all(dir);
}

// ---- safetensors ----------------------------------------------------------------------------------

TEST_CASE("safetensors: header length over 100 MB", "[fuzz-limits]") {
  std::string bytes = safetensors_bytes("{}");
  const uint64_t length = 100'000'001;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(length >> (8 * i));
  require_safetensors_error(bytes, {"hostile.safetensors", "header length 100000001", "100 MB"});
}

TEST_CASE("safetensors: more than 100,000 tensors in one file", "[fuzz-limits]") {
  std::string header = "{";
  for (int i = 0; i <= 100'000; ++i)
    header += (i ? "," : "") + std::string("\"t") + std::to_string(i) + R"(":{"dtype":"U8","shape":[0],"data_offsets":[0,0]})";
  header += ",\"__metadata__\":{}}";
  require_safetensors_error(safetensors_bytes(header), {"hostile.safetensors", "100001 tensors", "100000"});
}

TEST_CASE("safetensors: rank over 8 and element counts past int64", "[fuzz-limits]") {
  require_safetensors_error(
      safetensors_bytes(R"({"w":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}})", "x"),
      {"hostile.safetensors", "tensor w", "9 dimensions", "8"});
  // 3 * 2^62 fits in uint64 but not in int64 (TensorView::numel).
  require_safetensors_error(
      safetensors_bytes(R"({"w":{"dtype":"U8","shape":[4611686018427387904,3],"data_offsets":[0,0]}})"),
      {"hostile.safetensors", "tensor w", "too many elements"});
  require_safetensors_error(
      safetensors_bytes(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})"),
      {"tensor w", "too many elements"});
  // A zero dimension first must not let a later one past int64 through.
  require_safetensors_error(
      safetensors_bytes(R"({"w":{"dtype":"U8","shape":[0,9223372036854775808],"data_offsets":[0,0]}})"),
      {"tensor w", "too many elements"});
}

TEST_CASE("sharded index: shard count cap, overlong and non-regular shard names", "[fuzz-limits]") {
  const std::string dir = make_temp_dir("fuzz-index");
  const std::string index = dir + "/model.safetensors.index.json";
  json many = {{"weight_map", json::object()}};
  for (int i = 0; i <= 10'000; ++i) many["weight_map"]["t" + std::to_string(i)] = "shard" + std::to_string(i);
  write_file(index, many.dump());
  require_error([&] { Checkpoint::open_dir(dir); },
                {"model.safetensors.index.json", "10001 shard files", "10000"});

  // A name longer than the file system allows is an error, not a std::filesystem exception.
  write_file(index, json{{"weight_map", {{"w", std::string(300, 'x')}}}}.dump());
  require_error([&] { Checkpoint::open_dir(dir); }, {"model.safetensors.index.json", "shard file", "does not exist"});

  REQUIRE(::mkfifo((dir + "/fifo.safetensors").c_str(), 0600) == 0);
  write_file(index, json{{"weight_map", {{"w", "fifo.safetensors"}}}}.dump());
  require_error([&] { Checkpoint::open_dir(dir); },
                {"shard file fifo.safetensors (named for tensor w)", "fifo.safetensors is not a regular file"});
  // Opened directly, the FIFO is refused too instead of waiting for a writer.
  require_error([&] { SafetensorsFile::open(dir + "/fifo.safetensors"); },
                {"fifo.safetensors", "not a regular file"});
  std::filesystem::remove_all(dir);
}

// ---- GGUF -----------------------------------------------------------------------------------------

TEST_CASE("GGUF: tensor and KV counts are capped and checked against the file size first", "[fuzz-limits]") {
  require_gguf_error(gguf_bytes(1'000'001, 0, {}), {"hostile.gguf", "absurd tensor count 1000001", "1000000"});
  require_gguf_error(gguf_bytes(0, 1'000'001, {}), {"hostile.gguf", "absurd KV count 1000001", "1000000"});
  require_gguf_error(gguf_bytes(1000, 1000, Bytes(64)),
                     {"hostile.gguf", "1000 KVs and 1000 tensor infos cannot fit in the remaining 64 bytes"});
}

TEST_CASE("GGUF: key and tensor name lengths are capped", "[fuzz-limits]") {
  Bytes long_key;
  put<uint64_t>(long_key, 65536);
  long_key.resize(long_key.size() + 64);
  require_gguf_error(gguf_bytes(0, 1, long_key), {"hostile.gguf", "string length 65536", "65535-byte limit", "KV 0"});
  Bytes long_name;
  put<uint64_t>(long_name, 1'000'000);
  long_name.resize(long_name.size() + 64);
  require_gguf_error(gguf_bytes(1, 0, long_name), {"string length 1000000", "65535-byte limit", "tensor info 0"});
  Bytes past_end;
  put_string(past_end, "k");
  put<uint32_t>(past_end, STRING);
  put<uint64_t>(past_end, 1000);
  past_end.resize(past_end.size() + 16);
  require_gguf_error(gguf_bytes(0, 1, past_end), {"string length 1000 runs past the end of the file", "KV 0 'k'"});
}

TEST_CASE("GGUF: array lengths are checked against the file and capped in all", "[fuzz-limits]") {
  const auto array_kv = [](uint32_t element_type, uint64_t count, size_t payload) {
    Bytes kv;
    put_string(kv, "tokens");
    put<uint32_t>(kv, ARRAY);
    put<uint32_t>(kv, element_type);
    put<uint64_t>(kv, count);
    kv.resize(kv.size() + payload);
    return kv;
  };
  require_gguf_error(gguf_bytes(0, 1, array_kv(STRING, 1000, 100)),
                     {"hostile.gguf", "array of 1000 string values cannot fit", "KV 0 'tokens'"});
  // Elements that fit in the file but would cost ~40 bytes each in memory (u8 = type 0).
  require_gguf_error(gguf_bytes(0, 1, array_kv(0, 8'388'609, 8'388'609)),
                     {"hostile.gguf", "array of 8388609 values", "limit of 8388608 array elements", "'tokens'"});
  // The cap is on all arrays together: 10 elements, then 8,388,599 more is one too many.
  Bytes two = array_kv(0, 10, 10);
  const Bytes second = array_kv(0, 8'388'599, 8'388'599);
  two.insert(two.end(), second.begin(), second.end());
  require_gguf_error(gguf_bytes(0, 2, two), {"array of 8388599 values", "8388608 array elements in all", "KV 1"});
}

TEST_CASE("GGUF: tensor dimensions, element counts and block sizes", "[fuzz-limits]") {
  require_gguf_error(gguf_bytes(1, 0, tensor_info("w", {2, 2, 2, 2, 2}, 0)),
                     {"hostile.gguf", "5 dimensions, expected 1 to 4", "tensor info 0 'w'"});
  require_gguf_error(gguf_bytes(1, 0, tensor_info("w", {1ull << 32, 1ull << 32}, 0)),
                     {"hostile.gguf", "element count overflows", "'w'"});
  require_gguf_error(gguf_bytes(1, 0, tensor_info("w", {48, 2}, 2)),
                     {"hostile.gguf", "row length 48 is not a multiple of the Q4_0 block size 32", "'w'"});
  Bytes no_data = gguf_bytes(1, 0, tensor_info("w", {32, 4}, 2));
  no_data.resize(96);  // up to the 32-aligned start of an empty data section
  require_gguf_error(no_data, {"hostile.gguf", "tensor w data [0, +72) runs past the end of the file"});
}

// ---- config.json and quantization_config ----------------------------------------------------------

TEST_CASE("config.json: floats past float range and token ids past the vocabulary cap", "[fuzz-limits]") {
  json config = tiny_config();
  config["rope_theta"] = 1e39;
  require_error([&] { parse_model_config(config.dump(), "hostile/config.json"); },
                {"hostile/config.json", "\"rope_theta\" must be a positive number within float range"});
  config = tiny_config();
  config["eos_token_id"] = {2, 4294967298};
  require_error([&] { parse_model_config(config.dump(), "hostile/config.json"); },
                {"hostile/config.json", "\"eos_token_id\" 4294967298 is absurdly large"});
}

TEST_CASE("generation_config.json: an eos id past int32 does not wrap into the vocabulary", "[fuzz-limits]") {
  const std::string dir = make_temp_dir("fuzz-generation-config");
  write_synthetic_model(dir, SyntheticModelSpec{}, 1);
  write_file(dir + "/generation_config.json", R"({"eos_token_id": 4294967298})");  // 2^32 + 2: wraps to 2
  require_error([&] { open_model_directory(dir, false); },
                {"generation_config.json", "eos_token_id 4294967298 is absurdly large (limit 3999999)"});
  write_file(dir + "/generation_config.json", R"({"eos_token_id": -1})");
  require_error([&] { open_model_directory(dir, false); },
                {"generation_config.json", "eos_token_id -1 must be a non-negative integer token id"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("quantization_config: integers past int are not truncated into supported values", "[fuzz-limits]") {
  json gptq = {{"quant_method", "gptq"}, {"bits", 4294967300ull}, {"group_size", 128}};  // 2^32 + 4
  require_error([&] { parse_quant_config(with_quantization(gptq), "hostile/config.json"); },
                {"hostile/config.json: quantization_config", "GPTQ bits 4294967300 is not supported"});
  json awq = {{"quant_method", "awq"}, {"bits", 18446744073709551615ull}, {"group_size", 128}};
  require_error([&] { parse_quant_config(with_quantization(awq), "hostile/config.json"); },
                {"quantization_config", "\"bits\" must be an integer"});
}

TEST_CASE("quantization_config: ignore patterns must compile and may not backtrack forever", "[fuzz-limits]") {
  json config = w8a8_quantization_config();
  config["ignore"] = {"lm_head", "re:(unclosed"};
  require_error([&] { parse_quant_config(with_quantization(config), "hostile/config.json"); },
                {"hostile/config.json: quantization_config", "ignore pattern \"re:(unclosed\" does not compile"});
  // std::regex took exponential time here; PCRE2's match limit ends it with an error.
  config["ignore"] = {"re:(.*)*(.*)*(.*)*(.*)*(?!)"};
  const QuantConfig quant = parse_quant_config(with_quantization(config), "hostile/config.json");
  require_error([&] { quant.quantizes("model.layers.17.mlp.down_proj"); },
                {"ignore pattern \"re:(.*)*(.*)*(.*)*(.*)*(?!)\"", "failed on module model.layers.17.mlp.down_proj"});
  config["ignore"] = {"re:.*down_proj$"};
  CHECK_FALSE(parse_quant_config(with_quantization(config), "c").quantizes("model.layers.17.mlp.down_proj"));
  CHECK(parse_quant_config(with_quantization(config), "c").quantizes("model.layers.17.mlp.up_proj"));
}

TEST_CASE("quantization_config: a compressed-tensors group without targets is an Error", "[fuzz-limits]") {
  json config = w8a8_quantization_config();
  config["config_groups"]["group_0"].erase("targets");
  require_error([&] { parse_quant_config(with_quantization(config), "hostile/config.json"); },
                {"quantization_config.config_groups.group_0", "\"targets\" must be [\"Linear\"], got none"});
}

// ---- tokenizer.json -------------------------------------------------------------------------------

TEST_CASE("tokenizer.json: token ids must be integers below 4,000,000", "[fuzz-limits]") {
  json root = byte_tokenizer();
  root["model"]["vocab"]["huge"] = 4'000'000;
  require_error([&] { parse_tokenizer(root); },
                {"hostile/tokenizer.json", "token 'huge' has id 4000000", "expected an integer from 0 to 3999999"});
  root = byte_tokenizer();
  root["model"]["vocab"]["fraction"] = 1e20;  // a float id was cast to int32 (undefined behaviour)
  require_error([&] { parse_tokenizer(root); }, {"token 'fraction' has id 1e+20"});
  root = byte_tokenizer();
  root["added_tokens"] = {{{"id", -1}, {"content", "<|x|>"}}};
  require_error([&] { parse_tokenizer(root); }, {"hostile/tokenizer.json", "token '<|x|>' has id -1"});
}

TEST_CASE("tokenizer.json: a Split pattern may not match half a character (\\C)", "[fuzz-limits]") {
  json root = byte_tokenizer();
  root["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers",
                            {{{"type", "Split"}, {"pattern", {{"Regex", "\\C"}}}, {"behavior", "Isolated"}},
                             {{"type", "ByteLevel"}, {"add_prefix_space", false}}}}};
  require_error([&] { parse_tokenizer(root); }, {"hostile/tokenizer.json", "cannot compile pre-tokenizer pattern"});
}

// ---- regressions found by the fuzzers -------------------------------------------------------------

// tests/fuzz/regressions/fuzz_config/config-groups-dangling-key.json: the group's name was read
// through a reference to a temporary that had already died (ASan: stack-use-after-scope).
TEST_CASE("fuzz regression: the compressed-tensors group name is read from a live iterator", "[fuzz-regression]") {
  json config = w8a8_quantization_config();
  config["config_groups"] = {{"my_group", config["config_groups"]["group_0"]}};
  config["config_groups"]["my_group"]["format"] = "float-quantized";
  config.erase("format");
  require_error([&] { parse_quant_config(with_quantization(config), "c/config.json"); },
                {"c/config.json: quantization_config", "\"float-quantized\" is not supported"});
  config["config_groups"]["my_group"] = 7;
  require_error([&] { parse_quant_config(with_quantization(config), "c/config.json"); },
                {"quantization_config.config_groups.my_group: expected an object"});
}

// tests/fuzz/regressions/fuzz_utf8_detokenizer/context-ends-mid-character: the context ended with
// the first two bytes of U+F082 (decoded alone: U+FFFD, which shares the lead byte 0xEF), and the
// byte-wise difference emitted the bare continuation bytes "\x82\x82".
TEST_CASE("fuzz regression: streaming after a context cut mid-character emits whole characters",
          "[fuzz-regression]") {
  const std::unique_ptr<BpeTokenizer> tokenizer = parse_tokenizer(byte_tokenizer());
  StreamingDetokenizer stream(*tokenizer);
  stream.set_context({0xEF, 0x82});
  const std::string piece = stream.push(0x82);
  CHECK(piece == "\xEF\x82\x82");
  CHECK(find_invalid_utf8(piece) == -1);
  CHECK(stream.push('a') == "a");
  CHECK(stream.flush().empty());
}
