// GGUF -> Hugging Face checkpoint directory. Everything is read and checked first (so a bad file
// leaves nothing half-written), then model.safetensors is streamed tensor by tensor (its header
// first, from the known shapes; one tensor in memory at a time) and the JSON and tokenizer files are
// written.
#include "model/gguf_to_hf.h"

#include <sentencepiece_processor.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "model/gguf.h"
#include "model/gguf_rope_freqs.h"
#include "model/safetensors.h"
#include "model/sentencepiece_model_writer.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr int64_t kMaxSize = int64_t{1} << 24;  // no real hidden size, layer or head count comes near

// ---- reading keys -------------------------------------------------------------------------------

// Typed key access whose errors name the file as well as the key.
class Keys {
 public:
  Keys(const GgufFile& file, const std::string& path) : file_(file), path_(path) {}

  bool has(const std::string& key) const { return file_.has(key); }
  const GgufValue& get(const std::string& key) const { return file_.get(key); }
  std::string where(const std::string& key) const { return path_ + ": " + key; }

  int64_t size(const std::string& key) const {
    const int64_t value = get(key).as_int(where(key));
    if (value <= 0 || value > kMaxSize)
      throw Error(where(key) + ": expected a size between 1 and " + std::to_string(kMaxSize) + ", got " +
                  std::to_string(value));
    return value;
  }
  int64_t size_or(const std::string& key, int64_t fallback) const { return has(key) ? size(key) : fallback; }
  double number_or(const std::string& key, double fallback) const {
    return has(key) ? get(key).as_float(where(key)) : fallback;
  }
  bool flag_or(const std::string& key, bool fallback) const { return has(key) ? get(key).as_bool(where(key)) : fallback; }
  std::string text_or(const std::string& key, const std::string& fallback) const {
    return has(key) ? get(key).as_string(where(key)) : fallback;
  }

 private:
  const GgufFile& file_;
  const std::string& path_;
};

// GGUF stores these as f32; print them as the shortest decimal that reads back as the same float
// (1e-05 rather than 9.999999747378752e-06), which is what the original config.json held.
double shortest_decimal(double value) {
  const float single = static_cast<float>(value);
  if (static_cast<double>(single) != value) return value;  // a genuine f64
  char text[32];
  for (int digits = 1; digits <= 9; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, single);
    if (std::strtof(text, nullptr) == single) break;
  }
  return std::strtod(text, nullptr);
}

// ---- model hyperparameters ----------------------------------------------------------------------

struct Hyperparameters {
  std::string arch;  // GGUF general.architecture: "llama" or "qwen2"
  int64_t hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t context_length = 0, vocab_size = 0;
  double rms_norm_eps = 0, rope_theta = 0;
  bool tied = false;
  bool permuted_qk = false;    // llama.cpp permuted attn_q/attn_k rows for this architecture
  bool attention_bias = false;  // q/k/v carry biases (Qwen2)
  std::optional<Llama3Rope> llama3_rope;  // from the rope_freqs.weight tensor
};

Hyperparameters read_hyperparameters(const GgufFile& file, const Keys& keys, const std::string& path) {
  Hyperparameters p;
  p.arch = keys.get("general.architecture").as_string(keys.where("general.architecture"));
  if (p.arch != "llama" && p.arch != "qwen2")
    throw Error(path + ": GGUF architecture '" + p.arch + "' is not supported (supported: llama, qwen2)");
  p.permuted_qk = p.arch == "llama";
  p.attention_bias = p.arch == "qwen2";
  const std::string a = p.arch + ".";
  p.hidden = keys.size(a + "embedding_length");
  p.intermediate = keys.size(a + "feed_forward_length");
  p.layers = keys.size(a + "block_count");
  p.heads = keys.size(a + "attention.head_count");
  p.kv_heads = keys.size_or(a + "attention.head_count_kv", p.heads);
  if (p.heads % p.kv_heads != 0)
    throw Error(keys.where(a + "attention.head_count_kv") + ": " + std::to_string(p.kv_heads) +
                " KV heads do not divide " + std::to_string(p.heads) + " heads");
  p.head_dim = keys.size_or(a + "attention.key_length", keys.size_or(a + "rope.dimension_count", p.hidden / p.heads));
  if (keys.has(a + "rope.dimension_count") && keys.size(a + "rope.dimension_count") != p.head_dim)
    throw Error(keys.where(a + "rope.dimension_count") + ": partial rotary embeddings are not supported (head_dim " +
                std::to_string(p.head_dim) + ")");
  if (p.head_dim % 2 != 0) throw Error(path + ": head_dim " + std::to_string(p.head_dim) + " must be even for rope");
  p.context_length = keys.size(a + "context_length");
  p.rms_norm_eps = shortest_decimal(keys.get(a + "attention.layer_norm_rms_epsilon")
                                        .as_float(keys.where(a + "attention.layer_norm_rms_epsilon")));
  p.rope_theta = shortest_decimal(keys.number_or(a + "rope.freq_base", 10000.0));
  const std::string scaling = keys.text_or(a + "rope.scaling.type", "none");
  if (scaling != "none")
    throw Error(keys.where(a + "rope.scaling.type") + ": rope scaling '" + scaling + "' is not supported yet");
  p.llama3_rope = read_rope_freqs(file, p.arch, p.head_dim, p.rope_theta, path);
  p.tied = file.find_tensor("output.weight") == nullptr;
  const GgufTensorInfo* embedding = file.find_tensor("token_embd.weight");
  if (embedding == nullptr) throw Error(path + ": missing tensor token_embd.weight");
  const int64_t rows = static_cast<int64_t>(embedding->dims.back());
  p.vocab_size = keys.has(a + "vocab_size") ? keys.size(a + "vocab_size") : rows;
  if (p.vocab_size != rows)
    throw Error(keys.where(a + "vocab_size") + ": " + std::to_string(p.vocab_size) +
                " does not match the " + std::to_string(rows) + " rows of token_embd.weight");
  return p;
}

// ---- tensors ------------------------------------------------------------------------------------

struct TensorPlan {
  const GgufTensorInfo* source;
  std::string hf_name;
  std::vector<int64_t> shape;  // PyTorch order
  int64_t rotary_heads;        // > 0: undo llama.cpp's rotary row permutation with this head count
};

// Maps every GGUF tensor to its HF name and checks shape and type; any tensor left over is refused,
// since silently dropping weights would produce a model that runs but computes the wrong thing.
std::vector<TensorPlan> plan_tensors(const GgufFile& file, const Hyperparameters& p, const std::string& path) {
  std::vector<TensorPlan> plans;
  std::set<std::string> used;
  auto want = [&](const std::string& gguf_name, const std::string& hf_name, std::vector<int64_t> shape,
                  int64_t rotary_heads) {
    const GgufTensorInfo* info = file.find_tensor(gguf_name);
    if (info == nullptr) throw Error(path + ": missing tensor " + gguf_name);
    std::vector<int64_t> actual(info->dims.rbegin(), info->dims.rend());  // GGUF lists dims fastest first
    if (actual != shape)
      throw Error(path + ": " + gguf_name + ": expected shape " + shape_to_string(shape) + " (PyTorch order), got " +
                  shape_to_string(actual));
    if (!gguf_type_supported(info->type))
      throw Error(path + ": " + gguf_name + ": GGUF tensor type " + ggml_type_name(info->type) +
                  " is not supported (supported: " + gguf_supported_types() + ")");
    plans.push_back({info, hf_name, std::move(shape), rotary_heads});
    used.insert(gguf_name);
  };
  const int64_t H = p.hidden, I = p.intermediate, q_dim = p.heads * p.head_dim, kv_dim = p.kv_heads * p.head_dim;
  want("token_embd.weight", "model.embed_tokens.weight", {p.vocab_size, H}, 0);
  for (int64_t i = 0; i < p.layers; ++i) {
    const std::string g = "blk." + std::to_string(i) + ".";
    const std::string h = "model.layers." + std::to_string(i) + ".";
    want(g + "attn_norm.weight", h + "input_layernorm.weight", {H}, 0);
    want(g + "attn_q.weight", h + "self_attn.q_proj.weight", {q_dim, H}, p.permuted_qk ? p.heads : 0);
    want(g + "attn_k.weight", h + "self_attn.k_proj.weight", {kv_dim, H}, p.permuted_qk ? p.kv_heads : 0);
    want(g + "attn_v.weight", h + "self_attn.v_proj.weight", {kv_dim, H}, 0);
    if (p.attention_bias) {
      want(g + "attn_q.bias", h + "self_attn.q_proj.bias", {q_dim}, 0);
      want(g + "attn_k.bias", h + "self_attn.k_proj.bias", {kv_dim}, 0);
      want(g + "attn_v.bias", h + "self_attn.v_proj.bias", {kv_dim}, 0);
    }
    want(g + "attn_output.weight", h + "self_attn.o_proj.weight", {H, q_dim}, 0);
    want(g + "ffn_norm.weight", h + "post_attention_layernorm.weight", {H}, 0);
    want(g + "ffn_gate.weight", h + "mlp.gate_proj.weight", {I, H}, 0);
    want(g + "ffn_up.weight", h + "mlp.up_proj.weight", {I, H}, 0);
    want(g + "ffn_down.weight", h + "mlp.down_proj.weight", {H, I}, 0);
  }
  want("output_norm.weight", "model.norm.weight", {H}, 0);
  if (!p.tied) want("output.weight", "lm_head.weight", {p.vocab_size, H}, 0);
  if (p.llama3_rope) used.insert("rope_freqs.weight");  // it becomes config.json's rope_scaling
  for (const GgufTensorInfo& info : file.tensors())
    if (used.count(info.name) == 0)
      throw Error(path + ": unexpected tensor " + info.name + " (not part of a " + p.arch + " decoder with " +
                  std::to_string(p.layers) + " layers)");
  return plans;
}

// llama.cpp's convert_hf_to_gguf.py permute() did
//   w.reshape(n_head, 2, d / 2, cols).swapaxes(1, 2).reshape(rows, cols)      (d = rows / n_head)
// turning HF's half-split rotary rows (pair b, b + d/2) into interleaved rows (2b, 2b + 1). The inverse
// (transformers' reverse_permute_weights) is: HF row h*d + a*(d/2) + b = GGUF row h*d + 2b + a.
std::vector<float> unpermute_rotary_rows(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t n_head) {
  const int64_t d = rows / n_head, half = d / 2;
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < half; ++b) {
        const float* src = w.data() + (h * d + 2 * b + a) * cols;
        std::copy(src, src + cols, out.data() + (h * d + a * half + b) * cols);
      }
  return out;
}

// ---- tokenizer ----------------------------------------------------------------------------------

struct Vocabulary {
  bool sentencepiece = false;  // tokenizer.ggml.model "llama": written as tokenizer.model
  std::vector<std::string> tokens;
  std::vector<int64_t> types;  // llama.cpp token types (SentencePiece's): 1 normal, 2 unknown, 3 control,
                               // 4 user-defined, 5 unused, 6 byte
  std::vector<float> scores;   // SentencePiece piece scores
  bool add_space_prefix = true, remove_extra_whitespaces = false;  // SentencePiece normalizer
  std::vector<std::string> merges;
  std::optional<int64_t> bos, eos, unk, pad, eot;
  bool add_bos = false, add_eos = false;
  std::string pre;
};

Vocabulary read_vocabulary(const Keys& keys, const Hyperparameters& p, const std::string& path) {
  const std::string model = keys.text_or("tokenizer.ggml.model", "");
  if (model != "gpt2" && model != "llama")
    throw Error(path + ": tokenizer.ggml.model '" + model +
                "' is not supported (supported: gpt2 byte-level BPE, llama SentencePiece)");
  Vocabulary v;
  v.sentencepiece = model == "llama";
  for (const GgufValue& token : keys.get("tokenizer.ggml.tokens").as_array(keys.where("tokenizer.ggml.tokens")))
    v.tokens.push_back(token.as_string(keys.where("tokenizer.ggml.tokens")));
  if (v.tokens.empty() || static_cast<int64_t>(v.tokens.size()) > p.vocab_size)
    throw Error(keys.where("tokenizer.ggml.tokens") + ": " + std::to_string(v.tokens.size()) +
                " tokens, expected 1 to vocab_size " + std::to_string(p.vocab_size));
  if (keys.has("tokenizer.ggml.token_type")) {
    for (const GgufValue& type : keys.get("tokenizer.ggml.token_type").as_array(keys.where("tokenizer.ggml.token_type")))
      v.types.push_back(type.as_int(keys.where("tokenizer.ggml.token_type")));
    if (v.types.size() != v.tokens.size())
      throw Error(keys.where("tokenizer.ggml.token_type") + ": " + std::to_string(v.types.size()) +
                  " entries, expected one per token (" + std::to_string(v.tokens.size()) + ")");
  }
  if (v.sentencepiece) {
    if (keys.has("tokenizer.ggml.scores")) {
      for (const GgufValue& score : keys.get("tokenizer.ggml.scores").as_array(keys.where("tokenizer.ggml.scores")))
        v.scores.push_back(static_cast<float>(score.as_float(keys.where("tokenizer.ggml.scores"))));
      if (v.scores.size() != v.tokens.size())
        throw Error(keys.where("tokenizer.ggml.scores") + ": " + std::to_string(v.scores.size()) +
                    " entries, expected one per token (" + std::to_string(v.tokens.size()) + ")");
    }
    if (keys.has("tokenizer.ggml.precompiled_charsmap"))
      throw Error(keys.where("tokenizer.ggml.precompiled_charsmap") +
                  ": a SentencePiece normalization charsmap is not supported (identity normalization only)");
    v.add_space_prefix = keys.flag_or("tokenizer.ggml.add_space_prefix", true);
    v.remove_extra_whitespaces = keys.flag_or("tokenizer.ggml.remove_extra_whitespaces", false);
  } else {
    for (const GgufValue& merge : keys.get("tokenizer.ggml.merges").as_array(keys.where("tokenizer.ggml.merges")))
      v.merges.push_back(merge.as_string(keys.where("tokenizer.ggml.merges")));
  }
  auto token_id = [&](const std::string& key) -> std::optional<int64_t> {
    if (!keys.has(key)) return std::nullopt;
    const int64_t id = keys.get(key).as_int(keys.where(key));
    if (id < 0 || id >= static_cast<int64_t>(v.tokens.size()))
      throw Error(keys.where(key) + ": token id " + std::to_string(id) + " is outside the " +
                  std::to_string(v.tokens.size()) + "-token vocabulary");
    return id;
  };
  v.bos = token_id("tokenizer.ggml.bos_token_id");
  v.eos = token_id("tokenizer.ggml.eos_token_id");
  v.unk = token_id("tokenizer.ggml.unknown_token_id");
  v.pad = token_id("tokenizer.ggml.padding_token_id");
  v.eot = token_id("tokenizer.ggml.eot_token_id");
  // llama.cpp's defaults: BOS for SentencePiece vocabularies, none for gpt2 ones.
  v.add_bos = keys.flag_or("tokenizer.ggml.add_bos_token", v.sentencepiece);
  v.add_eos = keys.flag_or("tokenizer.ggml.add_eos_token", false);
  v.pre = keys.text_or("tokenizer.ggml.pre", "default");
  return v;
}

// tokenizer.model for a "llama" vocabulary. Without token types the unknown token is UNKNOWN, BOS and
// EOS are CONTROL and the rest NORMAL. llama.cpp's SentencePiece tokenizer merges by score as
// SentencePiece's BPE model does, so the model type is BPE; byte pieces (<0x00>...) turn on byte fallback.
SentencePieceVocabulary sentencepiece_vocabulary(const Vocabulary& v) {
  SentencePieceVocabulary result;
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    SentencePieceVocabulary::Piece piece;
    piece.text = v.tokens[id];
    piece.score = v.scores.empty() ? 0.0f : v.scores[id];
    if (!v.types.empty()) {
      piece.type = static_cast<int>(v.types[id]);
    } else {
      const auto is = [&](const std::optional<int64_t>& special) { return special && *special == static_cast<int64_t>(id); };
      piece.type = is(v.unk) ? 2 : (is(v.bos) || is(v.eos)) ? 3 : 1;
    }
    if (piece.type == 6) result.byte_fallback = true;
    result.pieces.push_back(std::move(piece));
  }
  result.model_type = 2;
  result.unk_id = v.unk ? static_cast<int32_t>(*v.unk) : 0;
  result.bos_id = v.bos ? static_cast<int32_t>(*v.bos) : -1;
  result.eos_id = v.eos ? static_cast<int32_t>(*v.eos) : -1;
  result.pad_id = v.pad ? static_cast<int32_t>(*v.pad) : -1;
  result.add_dummy_prefix = v.add_space_prefix;
  result.remove_extra_whitespaces = v.remove_extra_whitespaces;
  return result;
}

// Serializes the vocabulary and has libsentencepiece load it, so a vocabulary it would refuse (no
// unknown piece, a duplicate piece, a bad type) is an error before anything is written.
std::string build_sentencepiece_model(const Vocabulary& v, const std::string& path) {
  for (size_t id = 0; id < v.types.size(); ++id)
    if (v.types[id] < 1 || v.types[id] > 6)
      throw Error(path + ": tokenizer.ggml.token_type[" + std::to_string(id) + "] is " + std::to_string(v.types[id]) +
                  ", not a SentencePiece piece type (1-6)");
  const std::string model = serialize_sentencepiece_model(sentencepiece_vocabulary(v));
  sentencepiece::SentencePieceProcessor processor;
  const auto status = processor.LoadFromSerializedProto(model);
  if (!status.ok())
    throw Error(path + ": the SentencePiece vocabulary (tokenizer.ggml.model 'llama') does not make a valid "
                "tokenizer.model: " + status.ToString());
  return model;
}

json byte_level(bool add_prefix_space, bool trim_offsets, bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", trim_offsets},
          {"use_regex", use_regex}};
}

// Split regexes from the models' own tokenizer.json files (also in llama.cpp llama-vocab.cpp).
constexpr const char* kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// tokenizer.ggml.pre names llama.cpp's pre-tokenizer; these are the HF equivalents.
json pre_tokenizer_for(const std::string& pre, const std::string& path) {
  auto split_then_bytes = [](const char* regex) {
    const json split = {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
    return json{{"type", "Sequence"}, {"pretokenizers", {split, byte_level(false, true, false)}}};
  };
  static const std::set<std::string> kGpt2 = {"default", "gpt2", "mpt", "olmo", "jais"};
  // llama.cpp splits single digits first, then applies the GPT-2 regex.
  static const std::set<std::string> kDigits = {"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"};
  static const std::set<std::string> kLlama3 = {"llama3", "llama-v3", "llama-bpe", "smaug-bpe", "falcon3"};
  static const std::set<std::string> kQwen2 = {"qwen2", "deepseek-r1-qwen"};
  if (kGpt2.count(pre)) return byte_level(false, true, true);
  if (kDigits.count(pre))
    return {{"type", "Sequence"},
            {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level(false, true, true)}}};
  if (kLlama3.count(pre)) return split_then_bytes(kLlama3Split);
  if (kQwen2.count(pre)) return split_then_bytes(kQwen2Split);
  throw Error(path + ": tokenizer.ggml.pre '" + pre + "' is not supported (supported: default gpt2 mpt olmo jais "
              "smollm starcoder refact command-r codeshell exaone minerva llama3 llama-v3 llama-bpe smaug-bpe "
              "falcon3 qwen2 deepseek-r1-qwen)");
}

// ByteLevel for offsets, plus a TemplateProcessing that adds BOS/EOS when the vocabulary asks for them
// (the layout of Llama-3's tokenizer.json).
json post_processor_for(const Vocabulary& v) {
  const json offsets = byte_level(true, false, true);
  if (!(v.add_bos && v.bos) && !(v.add_eos && v.eos)) return offsets;
  json single = json::array(), pair = json::array(), specials = json::object();
  auto special = [&](int64_t id, int type_id) {
    const std::string& text = v.tokens[id];
    specials[text] = {{"id", text}, {"ids", {id}}, {"tokens", {text}}};
    return json{{"SpecialToken", {{"id", text}, {"type_id", type_id}}}};
  };
  auto sequence = [](const char* id, int type_id) {
    return json{{"Sequence", {{"id", id}, {"type_id", type_id}}}};
  };
  for (int part = 0; part < 2; ++part) {
    json& items = part == 0 ? single : pair;
    for (int segment = 0; segment <= part; ++segment) {
      if (v.add_bos && v.bos) items.push_back(special(*v.bos, segment));
      items.push_back(sequence(segment == 0 ? "A" : "B", segment));
      if (v.add_eos && v.eos) items.push_back(special(*v.eos, segment));
    }
  }
  return {{"type", "Sequence"},
          {"processors",
           {offsets, {{"type", "TemplateProcessing"}, {"single", single}, {"pair", pair}, {"special_tokens", specials}}}}};
}

json build_tokenizer_json(const Vocabulary& v, const std::string& path) {
  json added = json::array();
  for (size_t id = 0; id < v.types.size(); ++id) {
    if (v.types[id] != 3 && v.types[id] != 4) continue;  // CONTROL and USER_DEFINED are matched whole
    const std::string& text = v.tokens[id];
    const bool chat_marker = text.size() >= 4 && text.compare(0, 2, "<|") == 0 && text.compare(text.size() - 2, 2, "|>") == 0;
    added.push_back({{"id", id}, {"content", text}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", v.types[id] == 3 || chat_marker}});
  }
  json vocab = json::object();
  for (size_t id = 0; id < v.tokens.size(); ++id) vocab.emplace(v.tokens[id], id);  // a duplicate keeps its first id
  json merges = json::array();
  for (size_t i = 0; i < v.merges.size(); ++i) {
    // Byte-level BPE spells a space as 'Ġ', so a merge "a b" holds exactly one real space.
    const std::string& merge = v.merges[i];
    const size_t space = merge.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == merge.size() || merge.find(' ', space + 1) != std::string::npos)
      throw Error(path + ": tokenizer.ggml.merges[" + std::to_string(i) + "] '" + merge + "' is not of the form \"a b\"");
    merges.push_back({merge.substr(0, space), merge.substr(space + 1)});
  }
  json model = {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
                {"ignore_merges", false}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}};
  return {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", std::move(added)},
          {"normalizer", nullptr}, {"pre_tokenizer", pre_tokenizer_for(v.pre, path)},
          {"post_processor", post_processor_for(v)},
          {"decoder", byte_level(true, true, true)}, {"model", std::move(model)}};
}

// ---- writing ------------------------------------------------------------------------------------

template <typename Json>
void write_json_file(const std::filesystem::path& path, const Json& document) {
  std::string text;
  try {
    text = document.dump(2);  // throws on invalid UTF-8 (e.g. a corrupt token string)
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": cannot encode as JSON: " + e.what());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path.string() + ": cannot open for writing");
  out << text << '\n';
  out.close();
  if (!out) throw Error(path.string() + ": write failed (disk full?)");
}

ordered_json id_or_null(const std::optional<int64_t>& id) { return id ? ordered_json(*id) : ordered_json(nullptr); }

ordered_json text_or_null(const Vocabulary& v, const std::optional<int64_t>& id) {
  return id ? ordered_json(v.tokens[*id]) : ordered_json(nullptr);
}

ordered_json rope_scaling(const Hyperparameters& p) {
  if (!p.llama3_rope) return nullptr;
  const Llama3Rope& r = *p.llama3_rope;
  return {{"rope_type", "llama3"}, {"factor", r.factor}, {"low_freq_factor", r.low_freq_factor},
          {"high_freq_factor", r.high_freq_factor}, {"original_max_position_embeddings", r.original_max_position_embeddings}};
}

ordered_json build_config(const Hyperparameters& p, const Vocabulary& v) {
  const bool qwen2 = p.arch == "qwen2";
  return {{"architectures", {qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
          {"model_type", p.arch},
          {"hidden_size", p.hidden},
          {"intermediate_size", p.intermediate},
          {"num_hidden_layers", p.layers},
          {"num_attention_heads", p.heads},
          {"num_key_value_heads", p.kv_heads},
          {"head_dim", p.head_dim},
          {"hidden_act", "silu"},
          {"rms_norm_eps", p.rms_norm_eps},
          {"rope_theta", p.rope_theta},
          {"rope_scaling", rope_scaling(p)},
          {"max_position_embeddings", p.context_length},
          {"vocab_size", p.vocab_size},
          {"tie_word_embeddings", p.tied},
          {"attention_bias", p.attention_bias},
          {"mlp_bias", false},
          {"bos_token_id", id_or_null(v.bos)},
          {"eos_token_id", id_or_null(v.eos)},
          {"torch_dtype", "float16"}};
}

ordered_json build_tokenizer_config(const Hyperparameters& p, const Vocabulary& v, const Keys& keys) {
  ordered_json config = {{"add_bos_token", v.add_bos},  {"add_eos_token", v.add_eos},
                         {"bos_token", text_or_null(v, v.bos)}, {"eos_token", text_or_null(v, v.eos)},
                         {"unk_token", text_or_null(v, v.unk)}, {"pad_token", text_or_null(v, v.pad)}};
  if (keys.has("tokenizer.chat_template"))
    config["chat_template"] = keys.get("tokenizer.chat_template").as_string(keys.where("tokenizer.chat_template"));
  config["model_max_length"] = p.context_length;
  config["clean_up_tokenization_spaces"] = false;
  config["tokenizer_class"] = v.sentencepiece ? "LlamaTokenizer" : "GPT2Tokenizer";
  return config;
}

ordered_json build_generation_config(const Vocabulary& v) {
  ordered_json config = ordered_json::object();
  if (v.bos) config["bos_token_id"] = *v.bos;
  // Instruct models end a turn with EOT (e.g. <|eot_id|>) as well as EOS; generation stops at either.
  if (v.eos && v.eot && *v.eot != *v.eos)
    config["eos_token_id"] = {*v.eos, *v.eot};
  else if (v.eos || v.eot)
    config["eos_token_id"] = v.eos ? *v.eos : *v.eot;
  return config;
}

}  // namespace

void convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir,
                        const std::function<void(const std::string&)>& progress,
                        const std::function<void(int64_t, int64_t)>& on_tensor) {
  const std::unique_ptr<GgufFile> file = GgufFile::open(gguf_path);
  const Keys keys(*file, gguf_path);
  const Hyperparameters params = read_hyperparameters(*file, keys, gguf_path);
  const std::vector<TensorPlan> plans = plan_tensors(*file, params, gguf_path);
  const Vocabulary vocabulary = read_vocabulary(keys, params, gguf_path);
  json tokenizer_json;
  std::string tokenizer_model;
  if (vocabulary.sentencepiece) {
    tokenizer_model = build_sentencepiece_model(vocabulary, gguf_path);
  } else {
    tokenizer_json = build_tokenizer_json(vocabulary, gguf_path);
    const size_t duplicates = vocabulary.tokens.size() - tokenizer_json["model"]["vocab"].size();
    if (duplicates > 0)
      progress("note: " + std::to_string(duplicates) + " duplicate token strings in tokenizer.ggml.tokens keep their first id");
  }
  progress("GGUF " + params.arch + ": " + std::to_string(params.layers) + " layers, hidden " +
           std::to_string(params.hidden) + ", " + std::to_string(params.heads) + " heads (" +
           std::to_string(params.kv_heads) + " KV), vocab " + std::to_string(params.vocab_size) +
           (params.tied ? ", tied embeddings" : "") + (params.llama3_rope ? ", llama3 rope scaling" : ""));

  const std::filesystem::path dir(out_dir);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) throw Error(out_dir + ": cannot create directory: " + error.message());

  // The header comes from the planned shapes; then one tensor at a time is dequantized, converted to
  // fp16 and written, so memory holds a single tensor (fp32 and fp16) whatever the model's size.
  std::map<std::string, StreamingSafetensorsWriter::Spec> specs;
  std::map<std::string, const TensorPlan*> by_name;
  for (const TensorPlan& plan : plans) {
    specs[plan.hf_name] = {DType::F16, plan.shape};
    by_name[plan.hf_name] = &plan;
  }
  StreamingSafetensorsWriter writer((dir / "model.safetensors").string(), specs, {{"format", "pt"}});
  const int64_t tensor_count = static_cast<int64_t>(plans.size());
  int64_t parameters = 0, done = 0;
  if (on_tensor) on_tensor(0, tensor_count);
  const long page = sysconf(_SC_PAGESIZE);
  std::vector<uint8_t> bytes;
  for (const std::string& name : writer.order()) {
    const TensorPlan& plan = *by_name.at(name);
    std::vector<float> values = gguf_dequantize(*plan.source);
    if (plan.rotary_heads > 0)
      values = unpermute_rotary_rows(values, plan.shape[0], plan.shape[1], plan.rotary_heads);
    parameters += static_cast<int64_t>(values.size());
    bytes.resize(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t half = float_to_half(values[i]);
      std::memcpy(&bytes[2 * i], &half, 2);  // little-endian host
    }
    writer.write(name, bytes.data(), bytes.size());
    // The source pages are read once: let the kernel drop them, so the mapping of a many-GB file does
    // not stay resident (a hint; the mapping is read-only and private, its pages come back if read).
    if (page > 0 && plan.source->nbytes > 0) {
      const uintptr_t begin = reinterpret_cast<uintptr_t>(plan.source->data);
      const uintptr_t first = (begin + static_cast<uintptr_t>(page) - 1) / static_cast<uintptr_t>(page) * static_cast<uintptr_t>(page);
      const uintptr_t end = (begin + plan.source->nbytes) / static_cast<uintptr_t>(page) * static_cast<uintptr_t>(page);
      if (end > first) madvise(reinterpret_cast<void*>(first), end - first, MADV_DONTNEED);
    }
    if (on_tensor) on_tensor(++done, tensor_count);
  }
  writer.finish();
  std::vector<uint8_t>().swap(bytes);

  write_json_file(dir / "config.json", build_config(params, vocabulary));
  if (vocabulary.sentencepiece) {
    const std::filesystem::path model_path = dir / "tokenizer.model";
    std::ofstream out(model_path, std::ios::binary | std::ios::trunc);
    out.write(tokenizer_model.data(), static_cast<std::streamsize>(tokenizer_model.size()));
    out.close();
    if (!out) throw Error(model_path.string() + ": write failed (disk full?)");
    std::filesystem::remove(dir / "tokenizer.json", error);  // a stale one would be read first
  } else {
    write_json_file(dir / "tokenizer.json", tokenizer_json);
  }
  write_json_file(dir / "tokenizer_config.json", build_tokenizer_config(params, vocabulary, keys));
  write_json_file(dir / "generation_config.json", build_generation_config(vocabulary));
  const std::string tokenizer_summary =
      vocabulary.sentencepiece
          ? std::to_string(vocabulary.tokens.size()) + " SentencePiece pieces (tokenizer.model)"
          : std::to_string(vocabulary.tokens.size()) + " tokens, " + std::to_string(vocabulary.merges.size()) +
                " merges (pre-tokenizer '" + vocabulary.pre + "')";
  progress("wrote " + out_dir + ": " + std::to_string(plans.size()) + " tensors (" + std::to_string(parameters) +
           " parameters, fp16), " + tokenizer_summary);
}

}  // namespace runllm
