// Writes the seed corpora of the fuzz targets: MODEL_CACHE is where scripts/fetch_model.sh keeps the
// default model, OUT gets one folder per target. Large model files contribute their headers only
// (a whole file would make every fuzz run slow): the safetensors header with a little data, the GGUF
// up to its tensor data, and small valid files rebuilt from their first entries. Hand-made seeds
// cover what the model does not use (quantization configs, shards, other pre-tokenizers, every
// tensor type). Usage: make_fuzz_seeds MODEL_CACHE OUT
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/gguf.h"
#include "runtime/file_io.h"
#include "tests/fuzz/sharded_checkpoint.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kModelName = "SmolLM2-135M-Instruct";

fs::path out_root;

void write_seed(const std::string& target, const std::string& name, const std::string& bytes) {
  const fs::path dir = out_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write seed " + (dir / name).string());
}

// The first `count` bytes of a file, or all of it when shorter.
std::string read_prefix(const fs::path& path, uint64_t count) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes(count, '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(count));
  bytes.resize(static_cast<size_t>(in.gcount()));
  return bytes;
}

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));  // little-endian host, as the formats
}

// Deterministic filler bytes for tensor data.
std::string pattern_bytes(size_t count, uint32_t seed) {
  std::string bytes(count, '\0');
  for (size_t i = 0; i < count; ++i) {
    seed = seed * 1664525u + 1013904223u;
    bytes[i] = static_cast<char>(seed >> 24);
  }
  return bytes;
}

// ---- safetensors ----------------------------------------------------------------------------------

struct StTensor {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
};

size_t dtype_bytes(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
  return 1;
}

// A valid file: tensors back to back in the order given, data from pattern_bytes.
std::string safetensors_file(const std::vector<StTensor>& tensors, const json& metadata) {
  json header = json::object();
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const StTensor& tensor : tensors) {
    uint64_t bytes = dtype_bytes(tensor.dtype);
    for (uint64_t dim : tensor.shape) bytes *= dim;
    header[tensor.name] = {{"dtype", tensor.dtype}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  const std::string text = header.dump();
  std::string file;
  put<uint64_t>(file, text.size());
  return file + text + pattern_bytes(offset, 7);
}

void safetensors_seeds(const fs::path& model_dir) {
  const fs::path path = model_dir / "model.safetensors";
  if (fs::exists(path)) {
    const std::string length_bytes = read_prefix(path, 8);
    uint64_t header_length = 0;
    if (length_bytes.size() == 8) std::memcpy(&header_length, length_bytes.data(), 8);
    // The cached model is ours, but a broken download should end in an error, not a huge read.
    if (header_length == 0 || header_length > 100'000'000)
      throw std::runtime_error(path.string() + ": not a safetensors file (header length " +
                               std::to_string(header_length) + ")");
    const std::string prefix = read_prefix(path, 8 + header_length + 64);
    write_seed("fuzz_safetensors", "model-header.safetensors", prefix);
    // The real names and dtypes, shapes cut to at most 2 per dimension, in a valid small file.
    const json header = json::parse(prefix.substr(8, header_length));
    std::vector<StTensor> tensors;
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__" || tensors.size() == 6) continue;
      StTensor tensor{name, entry["dtype"], {}};
      for (const json& dim : entry["shape"]) tensor.shape.push_back(std::min<uint64_t>(dim.get<uint64_t>(), 2));
      tensors.push_back(tensor);
    }
    write_seed("fuzz_safetensors", "model-small.safetensors",
               safetensors_file(tensors, header.value("__metadata__", json())));
  }
  std::vector<StTensor> every_dtype;
  for (const char* dtype : {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"})
    every_dtype.push_back({std::string("t.") + dtype, dtype, {2, 3}});
  every_dtype.push_back({"scalar", "F32", {}});
  every_dtype.push_back({"empty", "F16", {0, 4}});
  every_dtype.push_back({"rank4", "U8", {1, 2, 1, 2}});
  write_seed("fuzz_safetensors", "every-dtype.safetensors", safetensors_file(every_dtype, {{"format", "pt"}}));
  write_seed("fuzz_safetensors", "empty-header.safetensors", safetensors_file({}, json()));
}

// ---- sharded index --------------------------------------------------------------------------------

void index_seeds() {
  using runllm::fuzz::kFirstShard;
  using runllm::fuzz::kSecondShard;
  const json full = {{"metadata", {{"total_size", 26}}},
                     {"weight_map", {{"a", kFirstShard}, {"b", kFirstShard}, {"c", kSecondShard}}}};
  write_seed("fuzz_safetensors_index", "two-shards.json", full.dump(2));
  const json one = {{"weight_map", {{"c", kSecondShard}}}};
  write_seed("fuzz_safetensors_index", "one-shard.json", one.dump());
  const json wrong = {{"weight_map", {{"a", kSecondShard}, {"c", kSecondShard}}}};
  write_seed("fuzz_safetensors_index", "tensor-in-other-shard.json", wrong.dump());
}

// ---- config.json and quantization_config ----------------------------------------------------------

// The quantization_config examples of tests/unit/test_quant_config.cpp, as AutoAWQ, AutoGPTQ and
// llm-compressor write them.
const char* const kQuantizationConfigs[][2] = {
    {"awq", R"({"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": true, "version": "gemm",
               "modules_to_not_convert": null})"},
    {"gptq", R"({"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": true, "sym": false,
                "static_groups": false, "true_sequential": true, "damp_percent": 0.01, "model_name_or_path": null,
                "model_file_base_name": null, "checkpoint_format": "gptq"})"},
    {"w8a8", R"({"quant_method": "compressed-tensors", "version": "0.12.2", "format": "int-quantized",
    "quantization_status": "compressed", "global_compression_ratio": null, "kv_cache_scheme": null,
    "sparsity_config": {}, "transform_config": {}, "ignore": ["lm_head", "re:.*down_proj$"],
    "config_groups": {"group_0": {"targets": ["Linear"], "output_activations": null, "format": "int-quantized",
      "weights": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "channel", "dynamic": false,
                  "group_size": null, "block_structure": null, "actorder": null, "observer": "minmax",
                  "observer_kwargs": {}},
      "input_activations": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "token",
                            "dynamic": true, "observer": null}}}})"},
};

void config_seeds(const fs::path& model_dir) {
  json base = {{"architectures", {"LlamaForCausalLM"}}, {"hidden_size", 576}, {"intermediate_size", 1536},
               {"num_hidden_layers", 30}, {"num_attention_heads", 9}, {"num_key_value_heads", 3},
               {"vocab_size", 49152}, {"rms_norm_eps", 1e-5}, {"bos_token_id", 1}, {"eos_token_id", 2}};
  const fs::path path = model_dir / "config.json";
  if (fs::exists(path)) {
    const std::string text = runllm::read_whole_file(path.string());
    write_seed("fuzz_config", "model-config.json", text);
    base = json::parse(text);
  }
  for (const auto& [name, quantization] : kQuantizationConfigs) {
    json config = base;
    config["quantization_config"] = json::parse(quantization);
    write_seed("fuzz_config", std::string("quantized-") + name + ".json", config.dump(2));
  }
  json llama3 = base;
  llama3["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                            {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  llama3["eos_token_id"] = {128001, 128008, 128009};
  write_seed("fuzz_config", "rope-llama3.json", llama3.dump());
  json transformers5 = base;
  transformers5.erase("rope_theta");
  transformers5["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 500000.0}};
  transformers5["dtype"] = "bfloat16";
  write_seed("fuzz_config", "rope-parameters.json", transformers5.dump());
  json qwen2 = base;
  qwen2["architectures"] = {"Qwen2ForCausalLM"};
  qwen2["head_dim"] = nullptr;
  qwen2["hidden_size"] = 576;
  qwen2["num_attention_heads"] = 9;
  write_seed("fuzz_config", "qwen2.json", qwen2.dump());
  qwen2["use_sliding_window"] = true;
  qwen2["sliding_window"] = 4096;
  qwen2["max_window_layers"] = 21;
  qwen2["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768},
                           {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", 1.0}, {"mscale_all_dim", 1.0}};
  write_seed("fuzz_config", "qwen2-window-yarn.json", qwen2.dump());
  json mistral = base;
  mistral["architectures"] = {"MistralForCausalLM"};
  mistral["sliding_window"] = 4096;
  mistral["rope_parameters"] = {{"rope_type", "dynamic"}, {"factor", 2.0}, {"rope_theta", 10000.0}};
  write_seed("fuzz_config", "mistral-window-dynamic.json", mistral.dump());
}

// ---- GGUF -----------------------------------------------------------------------------------------

// GGUF value type ids (gguf spec).
enum : uint32_t { kU8, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };

void put_string(std::string& out, const std::string& text) {
  put<uint64_t>(out, text.size());
  out += text;
}

struct GgufTensor {
  std::string name;
  std::vector<uint64_t> dims;
  uint32_t type;
  std::string data;
};

// A GGUF v3 file: `kvs` holds `kv_count` encoded KVs; tensor data aligned to `alignment`, which
// must match the file's general.alignment (32 when absent).
std::string gguf_file(const std::string& kvs, uint64_t kv_count, const std::vector<GgufTensor>& tensors,
                      uint64_t alignment = 32) {
  const auto pad = [alignment](uint64_t size) { return (size + alignment - 1) / alignment * alignment; };
  std::string file = "GGUF";
  put<uint32_t>(file, 3);
  put<uint64_t>(file, tensors.size());
  put<uint64_t>(file, kv_count);
  file += kvs;
  uint64_t offset = 0;
  for (const GgufTensor& tensor : tensors) {
    put_string(file, tensor.name);
    put<uint32_t>(file, static_cast<uint32_t>(tensor.dims.size()));
    for (uint64_t dim : tensor.dims) put<uint64_t>(file, dim);
    put<uint32_t>(file, tensor.type);
    put<uint64_t>(file, offset);
    offset += pad(tensor.data.size());
  }
  file.resize(pad(file.size()), '\0');
  for (const GgufTensor& tensor : tensors) {
    file += tensor.data;
    file.resize(pad(file.size()), '\0');
  }
  return file;
}

uint32_t value_type(const runllm::GgufValue& value) {
  switch (value.value.index()) {
    case 0: return std::get<uint64_t>(value.value) > UINT32_MAX ? kU64 : kU32;
    case 1: return std::get<int64_t>(value.value) < INT32_MIN || std::get<int64_t>(value.value) > INT32_MAX ? kI64 : kI32;
    case 2: return kF32;
    case 3: return kBool;
    case 4: return kString;
    default: return kArray;
  }
}

// Re-encodes a value the reader returned, arrays cut to their first `max_items` items.
void put_value(std::string& out, const runllm::GgufValue& value, size_t max_items) {
  switch (value_type(value)) {
    case kU64: put<uint64_t>(out, std::get<uint64_t>(value.value)); break;
    case kU32: put<uint32_t>(out, static_cast<uint32_t>(std::get<uint64_t>(value.value))); break;
    case kI64: put<int64_t>(out, std::get<int64_t>(value.value)); break;
    case kI32: put<int32_t>(out, static_cast<int32_t>(std::get<int64_t>(value.value))); break;
    case kF32: put<float>(out, static_cast<float>(std::get<double>(value.value))); break;
    case kBool: put<uint8_t>(out, std::get<bool>(value.value)); break;
    case kString: put_string(out, std::get<std::string>(value.value)); break;
    default: {
      const auto& items = std::get<runllm::GgufValue::Array>(value.value);
      const size_t count = std::min(items.size(), max_items);
      put<uint32_t>(out, items.empty() ? kU8 : value_type(items[0]));
      put<uint64_t>(out, count);
      for (size_t i = 0; i < count; ++i) put_value(out, items[i], max_items);
    }
  }
}

void put_kv(std::string& kvs, const std::string& key, uint32_t type, const std::string& value) {
  put_string(kvs, key);
  put<uint32_t>(kvs, type);
  kvs += value;
}

void gguf_seeds(const fs::path& cache) {
  const fs::path path = cache / (std::string(kModelName) + ".Q4_1.gguf");
  if (fs::exists(path)) {
    const std::string bytes = runllm::read_whole_file(path.string());
    const auto file = runllm::GgufFile::parse(path.string(), reinterpret_cast<const uint8_t*>(bytes.data()),
                                              bytes.size());
    // Everything before the first tensor's data: the header, KVs and tensor infos.
    const runllm::GgufTensorInfo& first = file->tensors().at(0);
    const size_t data_start = static_cast<size_t>(first.data - reinterpret_cast<const uint8_t*>(bytes.data())) -
                              static_cast<size_t>(first.offset);
    write_seed("fuzz_gguf", "model-header.gguf", bytes.substr(0, data_start));
    // The real KVs with arrays cut short, and one row of the first tensor of each type.
    std::string kvs;
    for (const auto& [key, value] : file->kv()) {
      put_string(kvs, key);
      put<uint32_t>(kvs, value_type(value));
      put_value(kvs, value, 16);
    }
    std::vector<GgufTensor> tensors;
    std::vector<uint32_t> types_seen;
    for (const runllm::GgufTensorInfo& info : file->tensors()) {
      if (std::find(types_seen.begin(), types_seen.end(), info.type) != types_seen.end()) continue;
      types_seen.push_back(info.type);
      uint64_t rows = 1;
      for (size_t d = 1; d < info.dims.size(); ++d) rows *= info.dims[d];
      tensors.push_back({info.name, {info.dims[0]}, info.type,
                         std::string(reinterpret_cast<const char*>(info.data), info.nbytes / rows)});
    }
    write_seed("fuzz_gguf", "model-small.gguf", gguf_file(kvs, file->kv().size(), tensors));
  }

  // Every KV value type, a nested array, and one block of every tensor type the dequantizer reads.
  std::string kvs;
  uint64_t kv_count = 0;
  const auto kv = [&](const std::string& key, uint32_t type, const std::string& value) {
    put_kv(kvs, key, type, value);
    ++kv_count;
  };
  std::string value;
  kv("general.architecture", kString, (put_string(value, "llama"), value));
  kv("t.u8", kU8, std::string(1, '\x07'));
  kv("t.i8", kI8, std::string(1, '\xF9'));
  kv("t.u16", kU16, std::string("\x34\x12", 2));
  kv("t.i16", kI16, std::string("\xFE\xFF", 2));
  kv("t.u32", kU32, std::string("\x00\x01\x00\x00", 4));
  kv("t.i32", kI32, std::string("\xFF\xFF\xFF\xFF", 4));
  kv("t.f32", kF32, std::string("\x00\x00\x80\x3F", 4));
  kv("t.bool", kBool, std::string(1, '\x01'));
  kv("t.u64", kU64, std::string("\x01\x00\x00\x00\x00\x00\x00\x80", 8));
  kv("t.i64", kI64, std::string("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 8));
  kv("t.f64", kF64, std::string("\x00\x00\x00\x00\x00\x00\xF0\x3F", 8));
  value.clear();
  put<uint32_t>(value, kArray);
  put<uint64_t>(value, 2);
  for (int i = 0; i < 2; ++i) {
    put<uint32_t>(value, kString);
    put<uint64_t>(value, 2);
    put_string(value, "ab");
    put_string(value, "c");
  }
  kv("t.nested", kArray, value);
  struct Block { uint32_t type; uint64_t elements; uint64_t bytes; };
  const Block blocks[] = {{0, 1, 4}, {1, 1, 2}, {30, 1, 2}, {2, 32, 18}, {3, 32, 20}, {6, 32, 22},
                          {7, 32, 24}, {8, 32, 34}, {14, 256, 210}, {12, 256, 144}};
  std::vector<GgufTensor> tensors;
  for (const Block& block : blocks)
    tensors.push_back({"blk." + std::to_string(block.type), {block.elements * 2, 2}, block.type,
                       pattern_bytes(block.bytes * 4, block.type)});
  write_seed("fuzz_gguf", "every-type.gguf", gguf_file(kvs, kv_count, tensors));
  value.clear();
  put<uint32_t>(value, 64);
  kv("general.alignment", kU32, value);
  write_seed("fuzz_gguf", "every-type-align64.gguf", gguf_file(kvs, kv_count, tensors, 64));
}

// ---- tokenizer.json -------------------------------------------------------------------------------

const char* const kTexts[] = {
    "Hello, world! How are you doing today?",
    "<|im_start|>user\nWhat is 12345 + 678?<|im_end|>\n<|im_start|>assistant\n",
    "H\xC3\xA9llo w\xC3\xB6rld \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\xA4\x96 na\xC3\xAFve caf\xC3\xA9",
    "   leading spaces\t\ttabs\n\n\nnewlines   ",
    "don't I'll we've they're it's HELLO\xE2\x80\x8Bzero-width",
};

// The real tokenizer cut to its first ids (all single bytes among them) and the merges among those.
json small_tokenizer(const json& full, int64_t max_id) {
  json tokenizer = full;
  json vocab = json::object();
  for (const auto& [token, id] : full["model"]["vocab"].items())
    if (id.get<int64_t>() < max_id) vocab[token] = id;
  json merges = json::array();
  for (const json& merge : full["model"]["merges"]) {
    const std::string left = merge.is_array() ? merge[0].get<std::string>() : "";
    const std::string right = merge.is_array() ? merge[1].get<std::string>() : "";
    if (vocab.contains(left) && vocab.contains(right) && vocab.contains(left + right)) merges.push_back(merge);
  }
  tokenizer["model"]["vocab"] = vocab;
  tokenizer["model"]["merges"] = merges;
  return tokenizer;
}

void tokenizer_seeds(const fs::path& model_dir) {
  const fs::path path = model_dir / "tokenizer.json";
  if (!fs::exists(path)) return;
  const json small = small_tokenizer(json::parse(runllm::read_whole_file(path.string())), 1200);
  std::vector<std::pair<std::string, json>> variants = {{"smollm2", small}};
  json llama3 = small;
  llama3["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})");
  llama3["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]})");
  variants.push_back({"split-regex-bos", llama3});
  json qwen2 = small;
  qwen2["normalizer"] = {{"type", "NFC"}};
  qwen2["pre_tokenizer"] = json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithNext", "invert": false},
      {"type": "Split", "pattern": {"Regex": "\\p{N}"}, "behavior": "Contiguous", "invert": true},
      {"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}]})");
  variants.push_back({"nfc-split-string", qwen2});
  json options = small;
  options["model"]["ignore_merges"] = true;
  options["model"]["unk_token"] = "<|endoftext|>";
  options["model"]["fuse_unk"] = true;
  json merge_strings = json::array();
  for (const json& merge : small["model"]["merges"]) merge_strings.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
  options["model"]["merges"] = merge_strings;
  options["added_tokens"].push_back({{"id", 3}, {"content", "<think>"}, {"special", false}, {"lstrip", true},
                                     {"rstrip", true}, {"single_word", true}});
  variants.push_back({"options", options});

  size_t text_index = 0;
  for (const auto& [name, tokenizer] : variants) {
    const std::string text = kTexts[text_index++ % (sizeof(kTexts) / sizeof(kTexts[0]))];
    write_seed("fuzz_bpe_tokenizer", name + ".json", tokenizer.dump() + std::string(1, '\0') + text);
  }
  for (size_t i = 1; i < sizeof(kTexts) / sizeof(kTexts[0]); ++i)
    write_seed("fuzz_bpe_tokenizer", "smollm2-text" + std::to_string(i) + ".json",
               small.dump() + std::string(1, '\0') + kTexts[i]);
}

// ---- streaming detokenizer ------------------------------------------------------------------------

// Byte 0: context length (low 3 bits); then u16 ids (fuzz_utf8_detokenizer.cpp's vocabulary: bytes
// 0-255, whole and partial multi-byte characters 256-260, " the" 261, special tokens 262-263, 日 265;
// ids are taken modulo 272, so 264 and 266-271 are the ones missing from the vocabulary).
void detokenizer_seeds() {
  const std::vector<std::vector<uint16_t>> streams = {
      {72, 105, 256, 257, 258, 33},        // "Hi", é, €, 🤖, "!"
      {259, 260, 259, 260, 0xF0, 0x9F},    // 🤖 in halves, then a character cut off at the end
      {0xE2, 0x82, 0xAC, 0xC3, 0x28, 262}, // € byte by byte, an invalid pair, a special token
      {263, 264, 265, 270, 261, 0xFF},     // missing ids (264, 270) around 日, " the", an invalid byte
  };
  for (size_t i = 0; i < streams.size(); ++i) {
    for (uint8_t context : {0, 2}) {
      std::string bytes(1, static_cast<char>(context));
      for (uint16_t id : streams[i]) put<uint16_t>(bytes, id);
      write_seed("fuzz_utf8_detokenizer", "stream" + std::to_string(i) + "-context" + std::to_string(context), bytes);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: make_fuzz_seeds MODEL_CACHE OUT\n";
    return 2;
  }
  const fs::path cache = argv[1];
  out_root = argv[2];
  const fs::path model_dir = cache / (std::string(kModelName) + "-f16");
  if (!fs::exists(model_dir / "model.safetensors"))
    std::cerr << "make_fuzz_seeds: " << model_dir.string()
              << " is missing (scripts/fetch_model.sh): only hand-made seeds are written\n";
  try {
    safetensors_seeds(model_dir);
    index_seeds();
    config_seeds(model_dir);
    gguf_seeds(cache);
    tokenizer_seeds(model_dir);
    detokenizer_seeds();
  } catch (const std::exception& error) {
    std::cerr << "make_fuzz_seeds: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
