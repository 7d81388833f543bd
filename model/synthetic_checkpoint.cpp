#include "model/synthetic_checkpoint.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/cuda_weights.h"
#include "model/safetensors.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tokenizer/bpe_tokenizer.h"

namespace runllm {

namespace {

using json = nlohmann::json;
constexpr int64_t kGroupSize = 128;

// splitmix64 words: fast enough for gigabytes, and the same bytes for the same seed.
std::vector<uint8_t> random_bytes(size_t count, uint64_t seed) {
  std::vector<uint8_t> bytes(count);
  uint64_t state = seed;
  for (size_t i = 0; i < count; i += 8) {
    uint64_t x = (state += 0x9E3779B97F4A7C15ull);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    std::memcpy(bytes.data() + i, &x, std::min<size_t>(8, count - i));
  }
  return bytes;
}

// fp16 values uniform in [low, high).
std::vector<uint8_t> random_half_bytes(size_t count, float low, float high, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> value(low, high);
  std::vector<uint8_t> bytes(count * 2);
  for (size_t i = 0; i < count; ++i) {
    const uint16_t bits = float_to_half(value(rng));
    std::memcpy(bytes.data() + 2 * i, &bits, 2);
  }
  return bytes;
}

// Byte-level BPE without merges: ids 0..255 are bytes, 256 = <s>, 257 = </s>.
json byte_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[to_byte_level(std::string(1, static_cast<char>(b)))] = b;
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

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw Error("cannot write " + path);
}

}  // namespace

void write_synthetic_checkpoint(const std::string& model_name, const std::string& format, const std::string& dir) {
  if (format != "awq" && format != "fp16")
    throw Error("--save-checkpoint: format \"" + format + "\" is not written (awq or fp16)");
  const ModelConfig c = synthetic_config(model_name);
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  json config = {{"architectures", {c.architecture}},
                 {"hidden_size", H},
                 {"intermediate_size", I},
                 {"num_hidden_layers", c.num_hidden_layers},
                 {"num_attention_heads", c.num_attention_heads},
                 {"num_key_value_heads", c.num_key_value_heads},
                 {"head_dim", c.head_dim},
                 {"vocab_size", V},
                 {"max_position_embeddings", c.max_position_embeddings},
                 {"rms_norm_eps", c.rms_norm_eps},
                 {"rope_theta", c.rope_theta},
                 {"tie_word_embeddings", false},
                 {"bos_token_id", 256},
                 {"eos_token_id", 257},
                 {"torch_dtype", "float16"}};
  if (format == "awq")
    config["quantization_config"] = {{"quant_method", "awq"}, {"bits", 4}, {"group_size", kGroupSize},
                                     {"zero_point", true}, {"version", "gemm"}};
  std::filesystem::create_directories(dir);
  write_text(dir + "/config.json", config.dump(2));
  write_text(dir + "/tokenizer.json", byte_tokenizer().dump());

  SafetensorsWriter writer;
  uint64_t seed = 1;
  const auto dense = [&](const std::string& name, int64_t N, int64_t K, float scale) {
    writer.add(name, DType::F16, {N, K}, random_half_bytes(static_cast<size_t>(N * K), -scale, scale, seed++));
  };
  const auto linear = [&](const std::string& module, int64_t N, int64_t K) {
    if (format == "fp16") return dense(module + ".weight", N, K, 0.02f);
    // AutoAWQ gemm (FORMATS.md §3): qweight [K, N/8], qzeros [G, N/8] int32, scales [G, N] fp16.
    const int64_t G = K / kGroupSize;
    writer.add(module + ".qweight", DType::I32, {K, N / 8}, random_bytes(static_cast<size_t>(K * N / 8) * 4, seed++));
    writer.add(module + ".qzeros", DType::I32, {G, N / 8}, random_bytes(static_cast<size_t>(G * N / 8) * 4, seed++));
    writer.add(module + ".scales", DType::F16, {G, N}, random_half_bytes(static_cast<size_t>(G * N), 1e-3f, 4e-3f, seed++));
  };
  dense("model.embed_tokens.weight", V, H, 0.02f);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    writer.add(prefix + "input_layernorm.weight", DType::F16, {H}, random_half_bytes(H, 0.5f, 1.5f, seed++));
    writer.add(prefix + "post_attention_layernorm.weight", DType::F16, {H}, random_half_bytes(H, 0.5f, 1.5f, seed++));
    linear(prefix + "self_attn.q_proj", c.q_dim(), H);
    linear(prefix + "self_attn.k_proj", c.kv_dim(), H);
    linear(prefix + "self_attn.v_proj", c.kv_dim(), H);
    linear(prefix + "self_attn.o_proj", H, c.q_dim());
    linear(prefix + "mlp.gate_proj", I, H);
    linear(prefix + "mlp.up_proj", I, H);
    linear(prefix + "mlp.down_proj", H, I);
  }
  writer.add("model.norm.weight", DType::F16, {H}, random_half_bytes(H, 0.5f, 1.5f, seed++));
  dense("lm_head.weight", V, H, 0.02f);
  writer.write(dir + "/model.safetensors");
}

}  // namespace runllm
