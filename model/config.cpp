// config.json -> ModelConfig, validated. Keys and defaults follow FORMATS.md §1 and
// FORMATS-REFERENCE.md §1.3-1.5 (transformers' Llama/Mistral/Qwen2 configurations).
#include "model/config.h"

#include <cfloat>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/json_parse.h"
#include "runtime/vocab_limit.h"

namespace runllm {

namespace {

using nlohmann::json;

struct ArchitectureTraits {
  const char* name;
  const char* model_type;
  bool qkv_bias_always;       // Qwen2 hard-codes bias=True on q/k/v, with no config key
  int64_t default_kv_heads;   // absent num_key_value_heads; 0 = num_attention_heads
  bool bias_keys;             // attention_bias / mlp_bias mean something (Llama); Mistral and Qwen2
                              // hard-code their biases and transformers ignores both keys there
};

// Mistral's class default for num_key_value_heads is 8, not the head count (FORMATS-REFERENCE.md §1.5).
constexpr ArchitectureTraits kArchitectures[] = {
    {"LlamaForCausalLM", "llama", false, 0, true},
    {"MistralForCausalLM", "mistral", false, 8, false},
    {"Qwen2ForCausalLM", "qwen2", true, 0, false},
};

constexpr const char* kRopeTypes[] = {"default", "linear", "dynamic", "llama3", "yarn"};

// Upper bounds far above any real model: a value past them is a corrupt or hostile file.
constexpr int64_t kMaxHiddenSize = 65536;
constexpr int64_t kMaxIntermediateSize = int64_t{1} << 20;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 1024;
constexpr int64_t kMaxHeadDim = 1024;
constexpr int64_t kMaxPositions = int64_t{1} << 24;
constexpr int64_t kDefaultMaxPositions = 2048;

// Reads keys of one JSON object, naming the source (and the enclosing key) in every error.
class KeyReader {
 public:
  KeyReader(const json& object, std::string where) : object_(object), where_(std::move(where)) {}

  // Optional keys may also be null, which transformers treats like absent.
  bool present(const char* key) const { return object_.contains(key) && !object_.at(key).is_null(); }
  bool has(const char* key) const { return object_.contains(key); }
  const json& at(const char* key) const { return object_.at(key); }

  int64_t positive_int(const char* key, int64_t max_value) const {
    if (!object_.contains(key)) throw Error(where_ + ": missing required key \"" + key + "\"");
    const json& value = object_.at(key);
    if (!value.is_number_integer())
      throw Error(where_ + ": \"" + key + "\" must be a positive integer, got " + value.dump());
    if (value.is_number_unsigned() ? value.get<uint64_t>() > static_cast<uint64_t>(max_value)
                                   : value.get<int64_t>() > max_value)
      throw Error(where_ + ": \"" + key + "\" = " + value.dump() + " is absurdly large (limit " +
                  std::to_string(max_value) + ")");
    const int64_t number = value.get<int64_t>();
    if (number <= 0) throw Error(where_ + ": \"" + key + "\" must be a positive integer, got " + value.dump());
    return number;
  }
  int64_t positive_int_or(const char* key, int64_t max_value, int64_t fallback) const {
    return present(key) ? positive_int(key, max_value) : fallback;
  }

  float positive_number(const char* key) const {
    if (!object_.contains(key)) throw Error(where_ + ": missing required key \"" + key + "\"");
    const json& value = object_.at(key);
    // Stored as float: a value past its range would silently become infinity.
    if (!value.is_number() || !(value.get<double>() > 0.0) || !(value.get<double>() <= FLT_MAX))
      throw Error(where_ + ": \"" + key + "\" must be a positive number within float range, got " + value.dump());
    return static_cast<float>(value.get<double>());
  }
  float positive_number_or(const char* key, float fallback) const {
    return present(key) ? positive_number(key) : fallback;
  }

  bool boolean_or(const char* key, bool fallback) const {
    if (!present(key)) return fallback;
    const json& value = object_.at(key);
    if (!value.is_boolean()) throw Error(where_ + ": \"" + key + "\" must be true or false, got " + value.dump());
    return value.get<bool>();
  }

  std::string string(const char* key) const {
    const json& value = object_.at(key);
    if (!value.is_string()) throw Error(where_ + ": \"" + key + "\" must be a string, got " + value.dump());
    return value.get<std::string>();
  }

  int64_t token_id(const json& value, const char* key) const {
    if (!value.is_number_unsigned())
      throw Error(where_ + ": \"" + key + "\" must be a non-negative integer token id, got " + value.dump());
    if (value.get<uint64_t>() >= static_cast<uint64_t>(kMaxVocabSize))
      throw Error(where_ + ": \"" + key + "\" " + value.dump() + " is absurdly large (limit " +
                  std::to_string(kMaxVocabSize - 1) + ")");
    return static_cast<int64_t>(value.get<uint64_t>());
  }

  const std::string& where() const { return where_; }

 private:
  const json& object_;
  std::string where_;
};

std::string supported_architectures() {
  std::string list;
  for (const auto& traits : kArchitectures) list += std::string(list.empty() ? "" : ", ") + traits.name;
  return list;
}

// `architectures` is a list of class names; configs without it still carry `model_type`.
const ArchitectureTraits& read_architecture(const KeyReader& config) {
  std::vector<std::string> candidates;
  if (config.present("architectures")) {
    const json& names = config.at("architectures");
    if (!names.is_array() || names.empty())
      throw Error(config.where() + ": \"architectures\" must be a non-empty list of class names, got " + names.dump());
    for (const json& name : names) {
      if (!name.is_string()) throw Error(config.where() + ": \"architectures\" entries must be strings, got " + name.dump());
      candidates.push_back(name.get<std::string>());
    }
    for (const std::string& candidate : candidates)
      for (const auto& traits : kArchitectures)
        if (candidate == traits.name) return traits;
    throw Error(config.where() + ": unsupported architecture " + names.dump() + " (supported: " +
                supported_architectures() + ")");
  }
  if (config.present("model_type")) {
    const std::string model_type = config.string("model_type");
    for (const auto& traits : kArchitectures)
      if (model_type == traits.model_type) return traits;
    throw Error(config.where() + ": unsupported architecture (model_type \"" + model_type + "\"; supported: " +
                supported_architectures() + ")");
  }
  throw Error(config.where() + ": missing \"architectures\" (supported: " + supported_architectures() + ")");
}

// Scaling keys shared by the legacy `rope_scaling` dict and transformers-5 `rope_parameters`
// (FORMATS-REFERENCE.md §1.4); `type` is the old spelling of `rope_type`. `rope_parameters` may hold
// only rope_theta (plain rope), while a legacy `rope_scaling` dict must say its type. Defaults follow
// transformers 5.x (modeling_rope_utils.py, standardize_rope_params): llama3 and yarn take
// `original_max_position_embeddings` from the dict, else from a top-level key of that name, else
// max_position_embeddings.
RopeScaling read_rope_scaling(const KeyReader& rope, bool type_required, const KeyReader& config,
                              int64_t max_position_embeddings) {
  RopeScaling scaling;
  if (rope.present("rope_type")) {
    scaling.type = rope.string("rope_type");
  } else if (rope.present("type")) {
    scaling.type = rope.string("type");
  } else if (type_required) {
    throw Error(rope.where() + ": missing \"rope_type\"");
  }
  bool known = false;
  std::string supported;
  for (const char* type : kRopeTypes) {
    known = known || scaling.type == type;
    supported += std::string(supported.empty() ? "" : ", ") + type;
  }
  if (!known) throw Error(rope.where() + ": unsupported rope type \"" + scaling.type + "\" (supported: " + supported + ")");
  // Only part of each head rotated (Phi, GPT-NeoX style) is not implemented.
  if (rope.present("partial_rotary_factor") && rope.positive_number("partial_rotary_factor") != 1.0f)
    throw Error(rope.where() + ": \"partial_rotary_factor\" " + rope.at("partial_rotary_factor").dump() +
                " is not supported (expected 1)");
  if (scaling.type == "default") return scaling;

  scaling.factor = rope.positive_number("factor");
  if (scaling.type == "llama3" || scaling.type == "yarn") {
    // transformers 5 gives a top-level original_max_position_embeddings priority (Phi-3 style).
    scaling.original_max_position_embeddings =
        config.present("original_max_position_embeddings")
            ? config.positive_int("original_max_position_embeddings", kMaxPositions)
            : rope.positive_int_or("original_max_position_embeddings", kMaxPositions, max_position_embeddings);
  }
  if (scaling.type == "llama3") {  // transformers requires both frequency factors for llama3
    scaling.low_freq_factor = rope.positive_number("low_freq_factor");
    scaling.high_freq_factor = rope.positive_number("high_freq_factor");
    if (!(scaling.high_freq_factor > scaling.low_freq_factor))
      throw Error(rope.where() + ": \"high_freq_factor\" must be greater than \"low_freq_factor\"");
  } else if (scaling.type == "yarn") {
    // transformers 5 uses the explicit factor (4.x derived it from max / original positions when
    // original_max_position_embeddings was given); beta_fast/beta_slow of 0 or null take their defaults.
    const auto zero_is_absent = [&](const char* key, float fallback) {
      if (rope.present(key) && rope.at(key).is_number() && rope.at(key).get<double>() == 0.0) return fallback;
      return rope.positive_number_or(key, fallback);
    };
    scaling.attention_factor = rope.positive_number_or("attention_factor", 0.0f);
    scaling.beta_fast = zero_is_absent("beta_fast", 32.0f);
    scaling.beta_slow = zero_is_absent("beta_slow", 1.0f);
    scaling.mscale = zero_is_absent("mscale", 0.0f);
    scaling.mscale_all_dim = zero_is_absent("mscale_all_dim", 0.0f);
    scaling.truncate = rope.boolean_or("truncate", true);
  }
  return scaling;
}

DType read_torch_dtype(const KeyReader& config) {
  // transformers 5 writes `dtype`; older versions `torch_dtype`. Absent: fp16 activations.
  const char* key = config.present("dtype") ? "dtype" : "torch_dtype";
  if (!config.present(key)) return DType::F16;
  const std::string name = config.string(key);
  if (name == "float16") return DType::F16;
  if (name == "bfloat16") return DType::BF16;
  if (name == "float32") return DType::F32;
  throw Error(config.where() + ": \"" + key + "\" must be float16, bfloat16 or float32, got \"" + name + "\"");
}

// The decoder run-llm implements is SwiGLU; refuse configs that say otherwise rather than computing
// something else.
void check_supported_variant(const KeyReader& config) {
  if (config.present("hidden_act") && config.string("hidden_act") != "silu")
    throw Error(config.where() + ": unsupported \"hidden_act\" \"" + config.string("hidden_act") + "\" (expected silu)");
}

void read_sizes(const KeyReader& config, const ArchitectureTraits& architecture, ModelConfig& model) {
  model.hidden_size = config.positive_int("hidden_size", kMaxHiddenSize);
  model.intermediate_size = config.positive_int("intermediate_size", kMaxIntermediateSize);
  model.num_hidden_layers = config.positive_int("num_hidden_layers", kMaxLayers);
  model.num_attention_heads = config.positive_int("num_attention_heads", kMaxHeads);
  model.vocab_size = config.positive_int("vocab_size", kMaxVocabSize);
  const int64_t default_kv_heads =
      architecture.default_kv_heads > 0 ? architecture.default_kv_heads : model.num_attention_heads;
  model.num_key_value_heads = config.positive_int_or("num_key_value_heads", kMaxHeads, default_kv_heads);
  model.max_position_embeddings =
      config.positive_int_or("max_position_embeddings", kMaxPositions, kDefaultMaxPositions);

  if (config.present("head_dim")) {
    model.head_dim = config.positive_int("head_dim", kMaxHeadDim);
  } else {
    if (model.hidden_size % model.num_attention_heads != 0)
      throw Error(config.where() + ": \"hidden_size\" " + std::to_string(model.hidden_size) +
                  " is not divisible by \"num_attention_heads\" " + std::to_string(model.num_attention_heads) +
                  " (and no \"head_dim\" is given)");
    model.head_dim = model.hidden_size / model.num_attention_heads;
    if (model.head_dim > kMaxHeadDim)
      throw Error(config.where() + ": head dimension " + std::to_string(model.head_dim) + " is absurdly large (limit " +
                  std::to_string(kMaxHeadDim) + ")");
  }
  if (model.head_dim % 2 != 0)  // rope rotates pairs (i, i + head_dim / 2)
    throw Error(config.where() + ": head dimension " + std::to_string(model.head_dim) + " must be even (rope rotates pairs)");
  if (model.num_attention_heads % model.num_key_value_heads != 0)
    throw Error(config.where() + ": \"num_attention_heads\" " + std::to_string(model.num_attention_heads) +
                " is not divisible by \"num_key_value_heads\" " + std::to_string(model.num_key_value_heads));
}

void read_rope(const KeyReader& config, ModelConfig& model) {
  model.rope_theta = config.positive_number_or("rope_theta", 10000.0f);
  if (config.present("rope_parameters")) {
    // transformers 5 moves rope_theta and the scaling keys into one dict.
    const json& parameters = config.at("rope_parameters");
    if (!parameters.is_object())
      throw Error(config.where() + ": \"rope_parameters\" must be an object, got " + parameters.dump());
    const KeyReader rope(parameters, config.where() + ": rope_parameters");
    // transformers 5 may nest one dict per layer type; these families have one rope for all layers.
    for (const char* layer_type : {"full_attention", "sliding_attention"})
      if (rope.has(layer_type))
        throw Error(rope.where() + ": rope parameters per layer type (\"" + layer_type + "\") are not supported");
    model.rope_theta = rope.positive_number_or("rope_theta", model.rope_theta);
    model.rope_scaling = read_rope_scaling(rope, false, config, model.max_position_embeddings);
  } else if (config.present("rope_scaling")) {
    const json& scaling = config.at("rope_scaling");
    if (!scaling.is_object())
      throw Error(config.where() + ": \"rope_scaling\" must be an object or null, got " + scaling.dump());
    model.rope_scaling = read_rope_scaling(KeyReader(scaling, config.where() + ": rope_scaling"), true, config,
                                           model.max_position_embeddings);
  }
  if (config.present("partial_rotary_factor") && config.positive_number("partial_rotary_factor") != 1.0f)
    throw Error(config.where() + ": \"partial_rotary_factor\" " + config.at("partial_rotary_factor").dump() +
                " is not supported (expected 1)");
}

// transformers 5.x: MistralConfig (sliding_window default 4096, every layer) and Qwen2Config
// (use_sliding_window, max_window_layers, layer_types). Llama has no sliding window: its
// configuration ignores the key, and so does run-llm.
void read_sliding_window(const KeyReader& config, const ArchitectureTraits& architecture, ModelConfig& model) {
  const std::string name = architecture.name;
  const size_t layers = static_cast<size_t>(model.num_hidden_layers);
  model.sliding_layers.assign(layers, false);
  if (name == "MistralForCausalLM") {
    if (config.has("sliding_window") && config.at("sliding_window").is_null()) return;
    model.sliding_window = config.positive_int_or("sliding_window", kMaxPositions, 4096);
    model.sliding_layers.assign(layers, true);
  } else if (name == "Qwen2ForCausalLM") {
    if (!config.boolean_or("use_sliding_window", false) || !config.present("sliding_window")) return;
    model.sliding_window = config.positive_int("sliding_window", kMaxPositions);
    if (config.present("layer_types")) {
      const json& types = config.at("layer_types");
      if (!types.is_array() || types.size() != layers)
        throw Error(config.where() + ": \"layer_types\" must be a list of " + std::to_string(layers) +
                    " entries, got " + types.dump().substr(0, 200));
      for (size_t i = 0; i < layers; ++i) {
        const std::string type = types[i].is_string() ? types[i].get<std::string>() : std::string();
        if (type == "sliding_attention") model.sliding_layers[i] = true;
        else if (type != "full_attention")
          throw Error(config.where() + ": \"layer_types\" entry " + types[i].dump().substr(0, 100) +
                      " is not supported (expected full_attention or sliding_attention)");
      }
    } else {
      int64_t first = 28;  // Qwen2Config's default max_window_layers
      if (config.present("max_window_layers")) {
        const json& value = config.at("max_window_layers");
        if (!value.is_number_integer() || value.get<int64_t>() < 0)
          throw Error(config.where() + ": \"max_window_layers\" must be a non-negative integer, got " + value.dump());
        first = value.get<int64_t>();
      }
      for (size_t i = 0; i < layers; ++i) model.sliding_layers[i] = static_cast<int64_t>(i) >= first;
    }
  }
}

void read_token_ids(const KeyReader& config, ModelConfig& model) {
  if (config.present("bos_token_id")) model.bos_token_id = config.token_id(config.at("bos_token_id"), "bos_token_id");
  if (!config.present("eos_token_id")) return;
  const json& eos = config.at("eos_token_id");
  if (eos.is_array()) {  // Llama-3 and others list several end tokens
    for (const json& id : eos) model.eos_token_ids.push_back(config.token_id(id, "eos_token_id"));
  } else {
    model.eos_token_ids.push_back(config.token_id(eos, "eos_token_id"));
  }
}

ModelConfig interpret_model_config(const json& document, const std::string& source_name) {
  if (!document.is_object()) throw Error(source_name + ": expected a JSON object");
  const KeyReader config(document, source_name);

  ModelConfig model;
  const ArchitectureTraits& architecture = read_architecture(config);
  model.architecture = architecture.name;
  check_supported_variant(config);
  read_sizes(config, architecture, model);
  model.rms_norm_eps = config.positive_number_or("rms_norm_eps", 1e-6f);
  read_rope(config, model);
  read_sliding_window(config, architecture, model);
  model.tie_word_embeddings = config.boolean_or("tie_word_embeddings", false);
  model.attention_bias =
      architecture.qkv_bias_always || (architecture.bias_keys && config.boolean_or("attention_bias", false));
  model.mlp_bias = architecture.bias_keys && config.boolean_or("mlp_bias", false);
  read_token_ids(config, model);
  model.torch_dtype = read_torch_dtype(config);
  // A null quantization_config means an unquantized checkpoint.
  model.has_quantization_config = config.present("quantization_config");
  return model;
}

}  // namespace

ModelConfig parse_model_config(const std::string& json_text, const std::string& source_name) {
  return interpret_model_config(parse_json(json_text, source_name), source_name);
}

ModelConfig load_model_config(const std::string& model_dir) {
  const std::string path = model_dir + "/config.json";
  return interpret_model_config(read_json_file(path, "a Hugging Face config.json"), path);
}

cpu::RopeParams rope_params_of(const ModelConfig& config) {
  cpu::RopeParams params;
  const RopeScaling& scaling = config.rope_scaling;
  params.head_dim = config.head_dim;
  params.theta = config.rope_theta;
  params.scaling_type = scaling.type;
  params.factor = scaling.factor;
  params.low_freq_factor = scaling.low_freq_factor;
  params.high_freq_factor = scaling.high_freq_factor;
  params.original_max_position_embeddings = scaling.original_max_position_embeddings;
  params.max_position_embeddings = config.max_position_embeddings;
  params.attention_factor = scaling.attention_factor;
  params.beta_fast = scaling.beta_fast;
  params.beta_slow = scaling.beta_slow;
  params.mscale = scaling.mscale;
  params.mscale_all_dim = scaling.mscale_all_dim;
  params.truncate = scaling.truncate;
  return params;
}

}  // namespace runllm
