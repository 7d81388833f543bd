#include "model/quantize/checkpoint_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "layers/dense_linear.h"
#include "layers/quantized_linear.h"
#include "layers/separate_linears.h"
#include "layers/w8a8_linear.h"
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

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

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

// Calls visit(module, part, begin, end) for each module: `part` is the linear holding its rows
// [begin, end) (the fused linear, or the module's own part of a SeparateLinears).
template <typename Visit>
void for_each_module(const Linear* linear, const std::vector<ModuleRows>& modules, Visit visit) {
  if (const auto* separate = dynamic_cast<const SeparateLinears*>(linear)) {
    if (separate->parts().size() != modules.size())
      throw Error(modules[0].name + ": expected " + std::to_string(modules.size()) + " separate parts, got " +
                  std::to_string(separate->parts().size()));
    for (size_t i = 0; i < modules.size(); ++i)
      visit(modules[i], *separate->parts()[i], int64_t{0}, modules[i].end - modules[i].begin);
    return;
  }
  for (const ModuleRows& module : modules) visit(module, *linear, module.begin, module.end);
}

std::vector<float> slice_vector(const std::vector<float>& values, int64_t begin, int64_t end) {
  if (values.empty()) return {};
  return std::vector<float>(values.begin() + begin, values.begin() + end);
}

template <typename T>
const T& require_type(const Linear& linear, const std::string& module, const char* expected) {
  const auto* typed = dynamic_cast<const T*>(&linear);
  if (typed == nullptr)
    throw Error(module + ": expected a " + expected + " to write, got " + linear.describe());
  return *typed;
}

void add_i32(SafetensorsWriter& writer, const std::string& name, std::vector<int64_t> shape,
             const std::vector<int32_t>& values) {
  writer.add(name, DType::I32, std::move(shape), to_bytes(values));
}

void add_module(SafetensorsWriter& writer, const ModuleRows& module, const Linear& part, int64_t begin, int64_t end,
                const CheckpointWriteOptions& options) {
  const std::string& p = module.name;
  std::vector<float> bias;
  switch (options.format) {
    case CheckpointFormat::Awq: {
      const auto& awq = require_type<AwqLinear>(part, p, "AwqLinear");
      const AwqTensors t = pack_awq(slice_rows(awq.matrix(), begin, end));
      add_i32(writer, p + ".qweight", {t.K, t.N / 8}, t.qweight);
      add_i32(writer, p + ".qzeros", {static_cast<int64_t>(t.scales.size()) / t.N, t.N / 8}, t.qzeros);
      writer.add_f16(p + ".scales", {static_cast<int64_t>(t.scales.size()) / t.N, t.N}, t.scales);
      bias = slice_vector(awq.bias(), begin, end);
      break;
    }
    case CheckpointFormat::Gptq: {
      const auto& gptq = require_type<GptqLinear>(part, p, "GptqLinear");
      const GptqTensors t = pack_gptq(slice_rows(gptq.matrix(), begin, end), options.gptq_zeros);
      const int64_t G = static_cast<int64_t>(t.scales.size()) / t.N;
      add_i32(writer, p + ".qweight", {static_cast<int64_t>(t.qweight.size()) / t.N, t.N}, t.qweight);
      add_i32(writer, p + ".qzeros", {G, static_cast<int64_t>(t.qzeros.size()) / G}, t.qzeros);
      writer.add_f16(p + ".scales", {G, t.N}, t.scales);
      add_i32(writer, p + ".g_idx", {t.K}, t.g_idx);
      bias = slice_vector(gptq.bias(), begin, end);
      break;
    }
    case CheckpointFormat::W8A8: {
      const auto& w8a8 = require_type<W8A8Linear>(part, p, "W8A8Linear");
      const int64_t K = w8a8.in_features();
      const std::vector<int8_t> rows(w8a8.weight().begin() + begin * K, w8a8.weight().begin() + end * K);
      writer.add(p + ".weight", DType::I8, {end - begin, K}, to_bytes(rows));
      writer.add_f16(p + ".weight_scale", {end - begin, 1}, slice_vector(w8a8.weight_scale(), begin, end));
      bias = slice_vector(w8a8.bias(), begin, end);
      break;
    }
  }
  if (!bias.empty()) writer.add_f16(p + ".bias", {end - begin}, bias);
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

QuantizedMatrix slice_rows(const QuantizedMatrix& matrix, int64_t begin, int64_t end) {
  if (begin < 0 || end > matrix.N || begin >= end)
    throw Error("slice_rows: rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") outside [0, " +
                std::to_string(matrix.N) + ")");
  QuantizedMatrix part;
  part.bits = matrix.bits;
  part.N = end - begin;
  part.K = matrix.K;
  part.group_size = matrix.group_size;
  part.g_idx = matrix.g_idx;
  part.q.assign(matrix.q.begin() + begin * matrix.K, matrix.q.begin() + end * matrix.K);
  const int64_t G = matrix.groups();
  part.zeros.resize(static_cast<size_t>(G * part.N));
  part.scales.resize(static_cast<size_t>(G * part.N));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < part.N; ++n) {
      part.zeros[static_cast<size_t>(g * part.N + n)] = matrix.zeros[static_cast<size_t>(g * matrix.N + begin + n)];
      part.scales[static_cast<size_t>(g * part.N + n)] = matrix.scales[static_cast<size_t>(g * matrix.N + begin + n)];
    }
  return part;
}

std::string first_module_with_zero_zero(const LlamaModel& model) {
  std::string found;
  for (int64_t l = 0; l < model.num_layers() && found.empty(); ++l)
    for (const auto& [linear, modules] : layer_modules(model, l))
      for_each_module(linear, modules, [&](const ModuleRows& module, const Linear& part, int64_t begin, int64_t end) {
        const auto* quantized = dynamic_cast<const QuantizedLinear*>(&part);
        if (found.empty() && quantized != nullptr && any_zero_is_zero(slice_rows(quantized->matrix(), begin, end)))
          found = module.name;
      });
  return found;
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
      for_each_module(linear, modules, [&](const ModuleRows& module, const Linear& part, int64_t begin, int64_t end) {
        add_module(writer, module, part, begin, end, options);
      });
  }
  writer.add_f16("model.norm.weight", {c.hidden_size}, model.final_norm());
  if (const Linear* lm_head = model.lm_head()) {
    const auto& dense = require_type<DenseLinear>(*lm_head, "lm_head", "DenseLinear (lm_head stays unquantized)");
    writer.add_f16("lm_head.weight", {c.vocab_size, c.hidden_size}, dense.weight());
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
