#include "model/quantize/checkpoint_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "model/safetensors.h"
#include "runtime/error.h"
#include "runtime/json_parse.h"

namespace runllm {

namespace fs = std::filesystem;

namespace {

// Tokenizer and generation files copied unchanged, whichever the source has.
const char* const kCopiedFiles[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                    "chat_template.jinja", "special_tokens_map.json", "generation_config.json"};

// One on-disk module of a (possibly fused) linear: output rows [begin, end).
struct ModuleRows {
  std::string name;  // "model.layers.0.self_attn.q_proj"
  int64_t begin, end;
};

// The linears of each decoder layer with the modules they hold, in file order.
std::vector<std::pair<const Linear*, std::vector<ModuleRows>>> layer_modules(const LlamaModel& model, int64_t index) {
  const ModelConfig& c = model.config();
  const DecoderLayer& layer = model.layer(index);
  const std::string attention = "model.layers." + std::to_string(index) + ".self_attn.";
  const std::string mlp = "model.layers." + std::to_string(index) + ".mlp.";
  const int64_t q = c.q_dim(), kv = c.kv_dim(), I = c.intermediate_size;
  return {
      {layer.qkv.get(),
       {{attention + "q_proj", 0, q}, {attention + "k_proj", q, q + kv}, {attention + "v_proj", q + kv, q + 2 * kv}}},
      {layer.o.get(), {{attention + "o_proj", 0, c.hidden_size}}},
      {layer.gate_up.get(), {{mlp + "gate_proj", 0, I}, {mlp + "up_proj", I, 2 * I}}},
      {layer.down.get(), {{mlp + "down_proj", 0, c.hidden_size}}},
  };
}

std::string config_with_quantization(const std::string& source_dir, const nlohmann::ordered_json& quantization) {
  const std::string path = source_dir + "/config.json";
  // ordered_json keeps the source's key order; the caps of untrusted JSON are checked first.
  nlohmann::ordered_json config = nlohmann::ordered_json::parse(read_checked_json_text(path));
  if (!config.is_object()) throw Error(path + ": expected a JSON object");
  config["torch_dtype"] = "float16";
  if (config.contains("dtype")) config["dtype"] = "float16";  // transformers 5 spelling
  config["quantization_config"] = quantization;
  return config.dump(2) + "\n";
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing");
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw Error(path + ": write failed");
}

}  // namespace

std::string first_module_with_zero_zero(const LlamaModel& model) {
  for (int64_t l = 0; l < model.num_layers(); ++l)
    for (const auto& [linear, modules] : layer_modules(model, l))
      for (const ModuleRows& module : modules)
        if (linear->has_zero_point_of_zero(module.begin, module.end)) return module.name;
  return "";
}

CheckpointWriteResult write_quantized_checkpoint(const LlamaModel& model, const CheckpointWriteOptions& options) {
  const ModelConfig& c = model.config();
  std::error_code error;
  fs::create_directories(options.out_dir, error);
  if (error) throw Error(options.out_dir + ": cannot create the output directory: " + error.message());
  if (fs::equivalent(options.out_dir, options.source_dir, error))
    throw Error(options.out_dir + ": the output directory is the source checkpoint; choose another --out");
  if (fs::exists(options.out_dir + "/model.safetensors.index.json"))
    throw Error(options.out_dir + ": holds model.safetensors.index.json (a sharded checkpoint) that would shadow the "
                "written model.safetensors; choose an empty --out directory");

  SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  writer.add_f16("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, model.embed_tokens());
  for (int64_t l = 0; l < model.num_layers(); ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    writer.add_f16(prefix + "input_layernorm.weight", {c.hidden_size}, model.layer(l).input_norm);
    writer.add_f16(prefix + "post_attention_layernorm.weight", {c.hidden_size}, model.layer(l).post_attention_norm);
    for (const auto& [linear, modules] : layer_modules(model, l))
      for (const ModuleRows& module : modules)
        linear->write_rows(writer, module.name, module.begin, module.end, options.linears);
  }
  writer.add_f16("model.norm.weight", {c.hidden_size}, model.final_norm());
  if (const Linear* lm_head = model.lm_head()) {  // stays unquantized
    LinearWriteOptions dense;
    dense.format = WrittenFormat::Dense;
    lm_head->write_rows(writer, "lm_head", 0, c.vocab_size, dense);
  }

  CheckpointWriteResult result;
  write_text(options.out_dir + "/config.json", config_with_quantization(options.source_dir, options.quantization_config));
  result.files.push_back("config.json");
  for (const char* name : kCopiedFiles) {
    const std::string source = options.source_dir + "/" + name;
    if (!fs::exists(source)) continue;
    fs::copy_file(source, options.out_dir + "/" + name, fs::copy_options::overwrite_existing, error);
    if (error) throw Error(source + ": cannot copy to " + options.out_dir + ": " + error.message());
    result.files.push_back(name);
  }
  // Written under a temporary name and renamed, so an interrupted run never leaves a truncated file.
  const std::string weights = options.out_dir + "/model.safetensors";
  writer.write(weights + ".partial");
  fs::rename(weights + ".partial", weights, error);
  if (error) throw Error(weights + ": cannot rename the written file into place: " + error.message());
  result.files.push_back("model.safetensors");
  for (const std::string& name : result.files) result.bytes += fs::file_size(options.out_dir + "/" + name);
  return result;
}

}  // namespace runllm
