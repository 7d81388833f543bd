// Interprets quantization_config as AutoAWQ, AutoGPTQ/GPTQModel and llm-compressor write it
// (FORMATS-REFERENCE.md §2.1, §3.1, §4.1).
#include "model/quant_config.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <set>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/json_parse.h"

namespace runllm {

namespace {

using nlohmann::json;

// Keys each writer is known to emit that do not change how the weights are read.
const std::set<std::string> kAwqKeys = {"quant_method", "bits", "w_bit", "group_size", "q_group_size", "zero_point",
                                        "version", "modules_to_not_convert", "backend", "do_fuse",
                                        "fuse_max_seq_len", "exllama_config", "modules_to_fuse"};
const std::set<std::string> kGptqKeys = {
    "quant_method", "bits", "group_size", "desc_act", "sym", "static_groups", "true_sequential", "damp_percent",
    "damp_auto_increment", "checkpoint_format", "format", "is_marlin_format", "model_name_or_path",
    "model_file_base_name", "pack_dtype", "lm_head", "dynamic", "meta", "quantizer", "use_exllama",
    "exllama_config", "max_input_length", "cache_block_outputs", "use_cuda_fp16", "tokenizer", "dataset",
    "batch_size", "pad_token_id", "disable_exllama", "module_name_preceding_first_block", "block_name_to_quantize",
    "modules_in_block_to_quantize", "backend", "mse", "v2", "v2_alpha", "act_group_aware", "hyb_act",
    "true_sequential", "use_marlin", "modules_to_not_convert"};
// compressed-tensors up to 0.20 (QuantizationConfig, plus what ModelCompressor adds when it saves):
// "version" and "global_compression_ratio" are informational; kv_cache_scheme, sparsity_config,
// moe_sparsity_config and transform_config are read below and refused by name unless absent, null or
// empty (parse_compressed_tensors).
const std::set<std::string> kCompressedTensorsKeys = {
    "quant_method", "version", "format", "quantization_status", "config_groups", "ignore", "kv_cache_scheme",
    "global_compression_ratio", "sparsity_config", "moe_sparsity_config", "transform_config"};
// One entry of config_groups (compressed-tensors QuantizationScheme).
const std::set<std::string> kCompressedTensorsGroupKeys = {"targets", "weights", "input_activations",
                                                           "output_activations", "format"};

// compressed-tensors matches "re:" ignore entries with Python's re.match (anchored at the start
// only). PCRE2 runs them with a match limit, so a pattern from the file cannot backtrack for hours.
constexpr uint32_t kIgnoreMatchLimit = 100'000;

using CompiledPattern = std::unique_ptr<pcre2_code, decltype(&pcre2_code_free)>;

CompiledPattern compile_ignore_pattern(const std::string& pattern, const std::string& where) {
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  CompiledPattern code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF,
                                     &error_code, &error_offset, nullptr),
                       pcre2_code_free);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error_code, message, sizeof(message));
    throw Error(where + ": ignore pattern \"re:" + pattern + "\" does not compile at offset " +
                std::to_string(error_offset) + ": " + reinterpret_cast<const char*>(message));
  }
  return code;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

class Reader {
 public:
  Reader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}
  const std::string& where() const { return where_; }
  bool present(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }
  const json& at(const char* key) const { return object_.at(key); }

  void check_keys(const std::set<std::string>& known, const char* writer) const {
    for (const auto& item : object_.items())
      if (!known.count(item.key()))
        throw Error(where_ + ": unknown key \"" + item.key() + "\" (not written by " + writer +
                    "; run-llm refuses keys it cannot interpret)");
  }
  int64_t integer(const char* key) const {
    const json& value = object_.at(key);
    if (!value.is_number_integer() || (value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX))
      throw Error(where_ + ": \"" + key + "\" must be an integer, got " + value.dump());
    return value.get<int64_t>();
  }
  bool boolean_or(const char* key, bool fallback) const {
    if (!present(key)) return fallback;
    const json& value = object_.at(key);
    if (!value.is_boolean()) throw Error(where_ + ": \"" + key + "\" must be true or false, got " + value.dump());
    return value.get<bool>();
  }
  std::string string_or(const char* key, const std::string& fallback) const {
    if (!present(key)) return fallback;
    const json& value = object_.at(key);
    if (!value.is_string()) throw Error(where_ + ": \"" + key + "\" must be a string, got " + value.dump());
    return value.get<std::string>();
  }
  std::vector<std::string> string_list(const char* key) const {
    std::vector<std::string> list;
    if (!present(key)) return list;
    const json& value = object_.at(key);
    if (!value.is_array()) throw Error(where_ + ": \"" + key + "\" must be a list of strings, got " + value.dump());
    for (const json& item : value) {
      if (!item.is_string()) throw Error(where_ + ": \"" + key + "\" entries must be strings, got " + item.dump());
      list.push_back(item.get<std::string>());
    }
    return list;
  }

 private:
  const json& object_;
  std::string where_;
};

// The first of `keys` present (AutoAWQ's own names are w_bit / q_group_size).
const char* first_present(const Reader& reader, std::initializer_list<const char*> keys) {
  for (const char* key : keys)
    if (reader.present(key)) return key;
  return nullptr;
}

int64_t read_group_size(const Reader& reader, std::initializer_list<const char*> keys) {
  const char* key = first_present(reader, keys);
  if (!key) throw Error(reader.where() + ": missing \"group_size\"");
  const int64_t group_size = reader.integer(key);
  if (group_size != -1 && (group_size <= 0 || group_size > (int64_t{1} << 20)))
    throw Error(reader.where() + ": \"" + key + "\" must be -1 (one group) or a positive size, got " +
                std::to_string(group_size));
  return group_size;
}

void parse_awq(const Reader& reader, QuantConfig& config) {
  reader.check_keys(kAwqKeys, "AutoAWQ or transformers");
  config.method = QuantMethod::Awq;
  const char* bits_key = first_present(reader, {"bits", "w_bit"});
  if (!bits_key) throw Error(reader.where() + ": missing \"bits\"");
  const int64_t bits = reader.integer(bits_key);
  if (bits != 4) throw Error(reader.where() + ": AWQ bits " + std::to_string(bits) + " is not supported (AWQ is 4-bit)");
  config.bits = 4;
  config.group_size = read_group_size(reader, {"group_size", "q_group_size"});
  if (!reader.boolean_or("zero_point", true))
    throw Error(reader.where() + ": AWQ \"zero_point\": false is only written in the Marlin layout, which run-llm "
                "does not read (supported: version gemm with zero points)");
  // "exllama" and "ipex" name load-time kernels over the gemm layout; gemv/gemv_fast/marlin are other layouts.
  const std::string version = lower(reader.string_or("version", "gemm"));
  if (version != "gemm" && version != "exllama" && version != "ipex")
    throw Error(reader.where() + ": AWQ version \"" + version + "\" is not supported (supported: gemm)");
  if (lower(reader.string_or("backend", "autoawq")) == "llm-awq")
    throw Error(reader.where() + ": AWQ backend \"llm-awq\" (int16 gemv_fast packing) is not supported");
  config.modules_to_not_convert = reader.string_list("modules_to_not_convert");
}

void parse_gptq(const Reader& reader, QuantConfig& config) {
  reader.check_keys(kGptqKeys, "AutoGPTQ, GPTQModel or transformers");
  config.method = QuantMethod::Gptq;
  if (!reader.present("bits")) throw Error(reader.where() + ": missing \"bits\"");
  const int64_t bits = reader.integer("bits");
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error(reader.where() + ": GPTQ bits " + std::to_string(bits) + " is not supported (supported: 2, 3, 4, 8)");
  config.bits = static_cast<int>(bits);
  config.group_size = read_group_size(reader, {"group_size"});
  config.desc_act = reader.boolean_or("desc_act", false);
  // Dequantization reads the stored zeros either way; sym only describes how they were chosen.
  config.sym = reader.boolean_or("sym", true);
  if (reader.boolean_or("is_marlin_format", false))
    throw Error(reader.where() + ": GPTQ Marlin-format checkpoints are not supported (supported: gptq, gptq_v2)");
  const std::string format = reader.string_or("checkpoint_format", reader.string_or("format", "gptq"));
  if (format == "gptq") config.zeros = GptqZeros::V1;
  else if (format == "gptq_v2") config.zeros = GptqZeros::V2;
  else throw Error(reader.where() + ": GPTQ checkpoint_format \"" + format + "\" is not supported (supported: gptq, gptq_v2)");
  if (reader.string_or("pack_dtype", "int32") != "int32")
    throw Error(reader.where() + ": GPTQ pack_dtype \"" + reader.string_or("pack_dtype", "") + "\" is not supported (int32 only)");
  if (reader.present("dynamic") && !(reader.at("dynamic").is_object() && reader.at("dynamic").empty()))
    throw Error(reader.where() + ": GPTQModel per-module \"dynamic\" overrides are not supported");
  config.lm_head_quantized = reader.boolean_or("lm_head", false);
  config.modules_to_not_convert = reader.string_list("modules_to_not_convert");
}

// One quantization scheme of compressed-tensors: only int8 weights with int8 per-token or static
// per-tensor activations (W8A8) is read.
void parse_w8a8_group(const Reader& group, QuantConfig& config) {
  group.check_keys(kCompressedTensorsGroupKeys, "compressed-tensors in a config group");
  const std::vector<std::string> targets = group.string_list("targets");
  if (targets != std::vector<std::string>{"Linear"})
    throw Error(group.where() + ": \"targets\" must be [\"Linear\"], got " +
                (group.present("targets") ? group.at("targets").dump() : "none"));
  if (!group.present("weights")) throw Error(group.where() + ": missing \"weights\"");
  const Reader weights(group.at("weights"), group.where() + ".weights");
  if (!weights.present("num_bits") || weights.integer("num_bits") != 8 || weights.string_or("type", "int") != "int")
    throw Error(weights.where() + ": only 8-bit int weights are supported, got " + group.at("weights").dump());
  if (!weights.boolean_or("symmetric", true))
    throw Error(weights.where() + ": asymmetric int8 weights are not supported");
  if (weights.boolean_or("dynamic", false)) throw Error(weights.where() + ": dynamic weight quantization is not supported");
  const std::string weight_strategy = weights.string_or("strategy", "tensor");
  if (weight_strategy != "channel" && weight_strategy != "tensor")
    throw Error(weights.where() + ": weight strategy \"" + weight_strategy + "\" is not supported (channel, tensor)");
  config.w8a8.per_channel_weights = weight_strategy == "channel";

  if (!group.present("input_activations"))
    throw Error(group.where() + ": weight-only int8 (no \"input_activations\") is not supported; W8A8 needs int8 inputs");
  const Reader inputs(group.at("input_activations"), group.where() + ".input_activations");
  if (!inputs.present("num_bits") || inputs.integer("num_bits") != 8 || inputs.string_or("type", "int") != "int")
    throw Error(inputs.where() + ": only 8-bit int activations are supported, got " + group.at("input_activations").dump());
  if (!inputs.boolean_or("symmetric", true))
    throw Error(inputs.where() + ": asymmetric activations (with zero points) are not supported");
  const std::string input_strategy = inputs.string_or("strategy", "tensor");
  const json dynamic_value = inputs.present("dynamic") ? inputs.at("dynamic") : json(false);
  if (!dynamic_value.is_boolean())
    throw Error(inputs.where() + ": \"dynamic\" " + dynamic_value.dump() + " is not supported (true or false)");
  const bool dynamic = dynamic_value.get<bool>();
  if (input_strategy == "token" && dynamic) config.w8a8.static_input = false;
  else if (input_strategy == "tensor" && !dynamic) config.w8a8.static_input = true;
  else
    throw Error(inputs.where() + ": activation strategy \"" + input_strategy + "\" with dynamic " +
                dynamic_value.dump() + " is not supported (token + dynamic, or tensor + static)");
  if (group.present("output_activations"))
    throw Error(group.where() + ": \"output_activations\" (output activation quantization) is not supported");
}

void parse_compressed_tensors(const Reader& reader, QuantConfig& config) {
  reader.check_keys(kCompressedTensorsKeys, "compressed-tensors / llm-compressor");
  config.method = QuantMethod::W8A8;
  config.bits = 8;
  const std::string status = reader.string_or("quantization_status", "compressed");
  if (status != "compressed" && status != "frozen")
    throw Error(reader.where() + ": quantization_status \"" + status + "\" is not supported (compressed)");
  // Keys that would change the math are accepted only absent, null or empty (at their default).
  if (reader.present("kv_cache_scheme")) throw Error(reader.where() + ": \"kv_cache_scheme\" (quantized KV cache) is not supported");
  if (reader.present("sparsity_config") && !reader.at("sparsity_config").empty()) {
    // "dense" stores every weight as is (llm-compressor writes it with the measured global_sparsity);
    // the sparse formats (sparse-24-bitmask, sparse-bitmask, ...) store them compressed.
    const Reader sparsity(reader.at("sparsity_config"), reader.where() + ".sparsity_config");
    if (!reader.at("sparsity_config").is_object() || sparsity.string_or("format", "") != "dense")
      throw Error(reader.where() + ": \"sparsity_config\" " + reader.at("sparsity_config").dump() +
                  " (sparse compressed-tensors weights) is not supported; only absent, null, {} or format \"dense\"");
  }
  if (reader.present("moe_sparsity_config") && !reader.at("moe_sparsity_config").empty())
    throw Error(reader.where() + ": \"moe_sparsity_config\" " + reader.at("moe_sparsity_config").dump() +
                " is not supported; only absent, null or {}");
  if (reader.present("transform_config")) {
    // Online rotations (SpinQuant / QuIP-style Hadamard transforms) change every linear's inputs.
    const json& transform = reader.at("transform_config");
    const bool no_groups = transform.is_object() &&
                           (!transform.contains("config_groups") || transform.at("config_groups").is_null() ||
                            transform.at("config_groups").empty());
    if (!transform.empty() && !no_groups)
      throw Error(reader.where() + ": \"transform_config\" (rotation transforms) is not supported; only absent, null or {}");
  }
  if (reader.present("global_compression_ratio") && !reader.at("global_compression_ratio").is_number())
    throw Error(reader.where() + ": \"global_compression_ratio\" must be a number or null, got " +
                reader.at("global_compression_ratio").dump());
  if (!reader.present("config_groups") || !reader.at("config_groups").is_object() || reader.at("config_groups").empty())
    throw Error(reader.where() + ": missing \"config_groups\"");
  if (reader.at("config_groups").size() != 1)
    throw Error(reader.where() + ": only one config group is supported, got " + std::to_string(reader.at("config_groups").size()));
  // The first (only) group; items() would hand out a proxy that dies with its full expression.
  const auto first_group = reader.at("config_groups").begin();
  const std::string name = first_group.key();
  const json& group_json = first_group.value();
  if (!group_json.is_object()) throw Error(reader.where() + ".config_groups." + name + ": expected an object");
  const Reader group(group_json, reader.where() + ".config_groups." + name);
  // `format` may sit at the top level, in the group, or both.
  const std::string format = group.string_or("format", reader.string_or("format", ""));
  if (format != "int-quantized" && format != "naive-quantized")
    throw Error(reader.where() + ": compressed-tensors format \"" + format +
                "\" is not supported (supported: int-quantized, naive-quantized)");
  parse_w8a8_group(group, config);
  config.ignore = reader.string_list("ignore");
  for (const std::string& entry : config.ignore)
    if (entry.rfind("re:", 0) == 0) compile_ignore_pattern(entry.substr(3), reader.where());
}

QuantConfig interpret_quant_config(const json& document, const std::string& source_name) {
  QuantConfig config;
  if (!document.is_object() || !document.contains("quantization_config") || document.at("quantization_config").is_null())
    return config;
  const json& section = document.at("quantization_config");
  const std::string where = source_name + ": quantization_config";
  if (!section.is_object()) throw Error(where + ": expected an object, got " + section.dump());
  const Reader reader(section, where);
  if (!reader.present("quant_method")) throw Error(where + ": missing \"quant_method\"");
  const std::string method = lower(reader.string_or("quant_method", ""));
  if (method == "awq") parse_awq(reader, config);
  else if (method == "gptq") parse_gptq(reader, config);
  else if (method == "compressed-tensors") parse_compressed_tensors(reader, config);
  else
    throw Error(where + ": unknown quant_method \"" + method + "\" (supported: awq, gptq, compressed-tensors)");
  return config;
}

// Whether "re:PATTERN" matches the start of `module`. The pattern is compiled again per call (parsing
// only checked that it compiles): a load asks this a few hundred times, microseconds each.
bool ignore_pattern_matches(const std::string& entry, const std::string& module) {
  const CompiledPattern code = compile_ignore_pattern(entry.substr(3), "quantization_config");
  std::unique_ptr<pcre2_match_context, decltype(&pcre2_match_context_free)> context(
      pcre2_match_context_create(nullptr), pcre2_match_context_free);
  pcre2_set_match_limit(context.get(), kIgnoreMatchLimit);
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> data(
      pcre2_match_data_create_from_pattern(code.get(), nullptr), pcre2_match_data_free);
  const int rc = pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(module.data()), module.size(), 0,
                             PCRE2_ANCHORED, data.get(), context.get());
  if (rc >= 0) return true;
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  PCRE2_UCHAR message[256];
  pcre2_get_error_message(rc, message, sizeof(message));
  throw Error("quantization_config: ignore pattern \"" + entry + "\" failed on module " + module + ": " +
              reinterpret_cast<const char*>(message));
}

}  // namespace

bool QuantConfig::quantizes(const std::string& module) const {
  switch (method) {
    case QuantMethod::None:
      return false;
    case QuantMethod::Awq:
    case QuantMethod::Gptq:
      if (module == "lm_head") return method == QuantMethod::Gptq && lm_head_quantized;
      for (const std::string& excluded : modules_to_not_convert)
        if (module.find(excluded) != std::string::npos) return false;
      return true;
    case QuantMethod::W8A8:
      for (const std::string& entry : ignore) {
        if (entry.rfind("re:", 0) == 0) {
          if (ignore_pattern_matches(entry, module)) return false;
        } else if (entry == module) {
          return false;
        }
      }
      return true;
  }
  return false;
}

std::string QuantConfig::describe() const {
  const std::string group = group_size == -1 ? "g=all" : "g" + std::to_string(group_size);
  switch (method) {
    case QuantMethod::None: return "fp16 (not quantized)";
    case QuantMethod::Awq: return "awq int4 " + group;
    case QuantMethod::Gptq:
      return "gptq int" + std::to_string(bits) + " " + group + (desc_act ? " act-order" : "") +
             (zeros == GptqZeros::V1 ? " (v1 zeros)" : " (v2 zeros)");
    case QuantMethod::W8A8:
      return std::string("w8a8 int8 ") + (w8a8.per_channel_weights ? "per-channel" : "per-tensor") +
             (w8a8.static_input ? ", static input scale" : ", dynamic per-token activations");
  }
  return "";
}

const char* quant_method_name(QuantMethod method) {
  switch (method) {
    case QuantMethod::None: return "fp16";
    case QuantMethod::Awq: return "awq";
    case QuantMethod::Gptq: return "gptq";
    case QuantMethod::W8A8: return "w8a8";
  }
  return "?";
}

QuantConfig parse_quant_config(const std::string& config_json_text, const std::string& source_name) {
  return interpret_quant_config(parse_json(config_json_text, source_name), source_name);
}

QuantConfig load_quant_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  return interpret_quant_config(read_json_file(path, "a Hugging Face config.json"), path);
}

}  // namespace runllm
