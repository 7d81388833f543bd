#include "tests/unit/synthetic_model.h"

#include <cmath>
#include <cstring>
#include <random>

#include "runtime/dtype.h"
#include "tests/byte_level_alphabet.h"
#include "tests/test_support.h"

namespace runllm::test {

namespace {

using nlohmann::json;

std::vector<float> random_fp16_values(std::mt19937_64& rng, int64_t count, float scale) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& value : values) value = half_to_float(float_to_half(normal(rng)));
  return values;
}

// Byte-level BPE without merges: ids 0..255 are bytes, 256 = <s>, 257 = </s>.
json byte_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_char(b)] = b;
  const auto special = [](int id, const char* content) {
    return json{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  return {{"version", "1.0"}, {"added_tokens", {special(256, "<s>"), special(257, "</s>")}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"post_processor", nullptr}, {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", json::array()}}}};
}

}  // namespace

void add_i32(SafetensorsWriter& writer, const std::string& name, std::vector<int64_t> shape,
             const std::vector<int32_t>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  writer.add(name, DType::I32, std::move(shape), std::move(bytes));
}

void add_i8(SafetensorsWriter& writer, const std::string& name, std::vector<int64_t> shape,
            const std::vector<int8_t>& values) {
  std::vector<uint8_t> bytes(values.size());
  std::memcpy(bytes.data(), values.data(), bytes.size());
  writer.add(name, DType::I8, std::move(shape), std::move(bytes));
}

void write_dense_linear(SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight,
                        int64_t N, int64_t K, const std::vector<float>& bias) {
  writer.add_f16(module + ".weight", {N, K}, weight);
  if (!bias.empty()) writer.add_f16(module + ".bias", {N}, bias);
}

void write_synthetic_model(const std::string& dir, const SyntheticModelSpec& spec, uint64_t seed,
                           const LinearWriter& linear_writer) {
  const int64_t H = spec.hidden, I = spec.intermediate, head_dim = spec.hidden / spec.heads;
  const int64_t q_dim = spec.heads * head_dim, kv_dim = spec.kv_heads * head_dim;
  json config = {{"architectures", {spec.architecture}},
                 {"hidden_size", H},
                 {"intermediate_size", I},
                 {"num_hidden_layers", spec.layers},
                 {"num_attention_heads", spec.heads},
                 {"num_key_value_heads", spec.kv_heads},
                 {"vocab_size", spec.vocab},
                 {"max_position_embeddings", 256},
                 {"rms_norm_eps", 1e-5},
                 {"rope_theta", 10000.0},
                 {"tie_word_embeddings", spec.tie_word_embeddings},
                 {"attention_bias", spec.attention_bias},
                 {"bos_token_id", 256},
                 {"eos_token_id", 257},
                 {"torch_dtype", "float16"}};
  if (!spec.quantization_config.is_null()) config["quantization_config"] = spec.quantization_config;
  write_file(dir + "/config.json", config.dump(2));
  write_file(dir + "/tokenizer.json", byte_tokenizer().dump());

  std::mt19937_64 rng(seed);
  SafetensorsWriter writer;
  writer.add_f16("model.embed_tokens.weight", {spec.vocab, H}, random_fp16_values(rng, spec.vocab * H, 0.5f));
  const bool qkv_bias = spec.attention_bias || spec.architecture == "Qwen2ForCausalLM";
  const bool o_bias = spec.attention_bias && spec.architecture != "Qwen2ForCausalLM";
  const auto linear = [&](const std::string& module, int64_t N, int64_t K, bool bias) {
    const std::vector<float> weight = random_fp16_values(rng, N * K, 1.0f / std::sqrt(static_cast<float>(K)));
    const std::vector<float> bias_values = bias ? random_fp16_values(rng, N, 0.1f) : std::vector<float>();
    linear_writer(writer, module, weight, N, K, bias_values);
  };
  for (int64_t l = 0; l < spec.layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    std::vector<float> norm = random_fp16_values(rng, H, 0.1f);
    for (float& value : norm) value = half_to_float(float_to_half(1.0f + value));
    writer.add_f16(prefix + "input_layernorm.weight", {H}, norm);
    writer.add_f16(prefix + "post_attention_layernorm.weight", {H}, norm);
    linear(prefix + "self_attn.q_proj", q_dim, H, qkv_bias);
    linear(prefix + "self_attn.k_proj", kv_dim, H, qkv_bias);
    linear(prefix + "self_attn.v_proj", kv_dim, H, qkv_bias);
    linear(prefix + "self_attn.o_proj", H, q_dim, o_bias);
    linear(prefix + "mlp.gate_proj", I, H, false);
    linear(prefix + "mlp.up_proj", I, H, false);
    linear(prefix + "mlp.down_proj", H, I, false);
  }
  std::vector<float> final_norm(static_cast<size_t>(H), 1.0f);
  writer.add_f16("model.norm.weight", {H}, final_norm);
  // lm_head is stored dense whatever the format (no reference quantizer quantizes it).
  if (!spec.tie_word_embeddings)
    write_dense_linear(writer, "lm_head", random_fp16_values(rng, spec.vocab * H, 0.2f), spec.vocab, H, {});
  writer.write(dir + "/model.safetensors");
}

}  // namespace runllm::test
