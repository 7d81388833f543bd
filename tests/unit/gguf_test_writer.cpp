// The independent GGUF writer shared by the GGUF tests; see gguf_test_writer.h. Deliberately does
// not include model/gguf.h.
#include "tests/unit/gguf_test_writer.h"

#include <algorithm>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "runtime/dtype.h"
#include "tests/test_support.h"

namespace runllm::test {

namespace fs = std::filesystem;

void put_string(Bytes& out, const std::string& text) {
  put<uint64_t>(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

void put_half(Bytes& out, float value) { put<uint16_t>(out, float_to_half(value)); }

// ---- GgufBuilder ----------------------------------------------------------------------------------

void GgufBuilder::kv_raw(const std::string& key, uint32_t type, const Bytes& value) {
  put_string(kvs, key);
  put<uint32_t>(kvs, type);
  kvs.insert(kvs.end(), value.begin(), value.end());
  ++kv_count;
}
void GgufBuilder::kv_u32(const std::string& key, uint32_t v) { Bytes b; put(b, v); kv_raw(key, U32, b); }
void GgufBuilder::kv_f32(const std::string& key, float v) { Bytes b; put(b, v); kv_raw(key, F32V, b); }
void GgufBuilder::kv_bool(const std::string& key, bool v) { kv_raw(key, BOOL, {static_cast<uint8_t>(v)}); }
void GgufBuilder::kv_string(const std::string& key, const std::string& v) {
  Bytes b;
  put_string(b, v);
  kv_raw(key, STRING, b);
}
void GgufBuilder::kv_strings(const std::string& key, const std::vector<std::string>& items) {
  Bytes b;
  put<uint32_t>(b, STRING);
  put<uint64_t>(b, items.size());
  for (const auto& item : items) put_string(b, item);
  kv_raw(key, ARRAY, b);
}
void GgufBuilder::kv_i32s(const std::string& key, const std::vector<int32_t>& items) {
  Bytes b;
  put<uint32_t>(b, I32);
  put<uint64_t>(b, items.size());
  for (int32_t item : items) put(b, item);
  kv_raw(key, ARRAY, b);
}
void GgufBuilder::kv_f32s(const std::string& key, const std::vector<float>& items) {
  Bytes b;
  put<uint32_t>(b, F32V);
  put<uint64_t>(b, items.size());
  for (float item : items) put(b, item);
  kv_raw(key, ARRAY, b);
}
void GgufBuilder::tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, Bytes data) {
  tensors.push_back({name, std::move(dims), type, std::move(data)});
}
void GgufBuilder::tensor_f32(const std::string& name, std::vector<uint64_t> dims, const std::vector<float>& values) {
  Bytes b;
  for (float v : values) put(b, v);
  tensor(name, std::move(dims), 0, std::move(b));
}

Bytes GgufBuilder::build() const {
  Bytes out;
  out.insert(out.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors.size());
  put<uint64_t>(out, kv_count);
  out.insert(out.end(), kvs.begin(), kvs.end());
  uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put(out, d);
    put(out, t.type);
    put(out, offset);
    offset = (offset + t.data.size() + 31) / 32 * 32;
  }
  for (const Tensor& t : tensors) {
    out.resize((out.size() + 31) / 32 * 32, 0);
    out.insert(out.end(), t.data.begin(), t.data.end());
  }
  return out;
}

// ---- scratch files --------------------------------------------------------------------------------

fs::path scratch_dir() {
  struct ScratchDir {
    fs::path path = make_temp_dir("gguf-scratch");
    ~ScratchDir() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  };
  static const ScratchDir scratch;
  fs::create_directories(scratch.path);
  return scratch.path;
}

std::string write_scratch_file(const std::string& name, const Bytes& bytes) {
  const fs::path path = scratch_dir() / name;
  write_file(path.string(), std::string(bytes.begin(), bytes.end()));
  return path.string();
}

// ---- the tiny llama -------------------------------------------------------------------------------

namespace {

// llama.cpp convert_hf_to_gguf.py permute(): w.reshape(n_head, 2, d/2, cols).swapaxes(1, 2).reshape(rows, cols).
std::vector<float> llama_cpp_permute(const std::vector<float>& hf, int rows, int cols, int n_head) {
  const int d = rows / n_head;
  std::vector<float> out(hf.size());
  int dst_row = 0;
  for (int h = 0; h < n_head; ++h)        // after swapaxes the index order is [h][b][a]
    for (int b = 0; b < d / 2; ++b)
      for (int a = 0; a < 2; ++a, ++dst_row) {
        const int src_row = h * d + a * (d / 2) + b;  // reshape(n_head, 2, d/2): [h][a][b]
        std::copy(hf.begin() + src_row * cols, hf.begin() + (src_row + 1) * cols, out.begin() + dst_row * cols);
      }
  return out;
}

std::vector<std::string> tiny_tokens() {
  return {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "c", "1", "2", "Ġ", "ab", "abc", "Ġa", "Ċ", "<think>", "d", "e"};
}

}  // namespace

std::vector<float> pattern(size_t n, int seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>((static_cast<int>(i) * 7 + seed * 13) % 512 - 256) / 64.0f;
  return v;
}

TinyLlama tiny_llama(bool tied, const std::string& architecture, const std::string& tokenizer,
                     const TinyVocabulary* vocabulary) {
  TinyLlama m;
  GgufBuilder& b = m.builder;
  b.kv_string("general.architecture", architecture);
  const std::string a = architecture + ".";
  const bool qwen2 = architecture == "qwen2";
  b.kv_u32(a + "embedding_length", kH);
  b.kv_u32(a + "feed_forward_length", kI);
  b.kv_u32(a + "block_count", kLayers);
  b.kv_u32(a + "attention.head_count", kHeads);
  b.kv_u32(a + "attention.head_count_kv", kKvHeads);
  b.kv_u32(a + "rope.dimension_count", kHeadDim);
  b.kv_f32(a + "rope.freq_base", 100000.0f);
  b.kv_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
  b.kv_u32(a + "context_length", 2048);
  uint64_t vocab_rows = kVocab;
  if (vocabulary != nullptr) {
    vocab_rows = vocabulary->tokens.size();
    b.kv_string("tokenizer.ggml.model", vocabulary->model);
    b.kv_strings("tokenizer.ggml.tokens", vocabulary->tokens);
    if (!vocabulary->scores.empty()) b.kv_f32s("tokenizer.ggml.scores", vocabulary->scores);
    if (!vocabulary->types.empty()) b.kv_i32s("tokenizer.ggml.token_type", vocabulary->types);
    b.kv_u32("tokenizer.ggml.bos_token_id", vocabulary->bos);
    b.kv_u32("tokenizer.ggml.eos_token_id", vocabulary->eos);
    b.kv_u32("tokenizer.ggml.unknown_token_id", vocabulary->unk);
  } else {
    b.kv_string("tokenizer.ggml.model", tokenizer);
    b.kv_string("tokenizer.ggml.pre", qwen2 ? "qwen2" : "smollm");
    b.kv_strings("tokenizer.ggml.tokens", tiny_tokens());
    b.kv_i32s("tokenizer.ggml.token_type", {3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1});
    b.kv_strings("tokenizer.ggml.merges", {"a b", "ab c", "Ġ a"});
    b.kv_u32("tokenizer.ggml.bos_token_id", 1);
    b.kv_u32("tokenizer.ggml.eos_token_id", 2);
    b.kv_bool("tokenizer.ggml.add_bos_token", false);
    b.kv_string("tokenizer.chat_template", "{{ messages }}");
  }

  // token_embd as F16 (GGUF dims [H, V]).
  Bytes embedding;
  for (float v : pattern(vocab_rows * kH, 1)) put_half(embedding, v);
  b.tensor("token_embd.weight", {kH, vocab_rows}, 1, embedding);
  const int q_dim = kHeads * kHeadDim, kv_dim = kKvHeads * kHeadDim;
  for (int i = 0; i < kLayers; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const std::vector<float> hf_q = pattern(q_dim * kH, 10 + i), hf_k = pattern(kv_dim * kH, 20 + i);
    if (i == 0) m.hf_q0 = hf_q, m.hf_k0 = hf_k;
    b.tensor_f32(p + "attn_norm.weight", {kH}, pattern(kH, 30 + i));
    // llama.cpp permutes q/k rows for llama only; qwen2 keeps HF order and adds q/k/v biases.
    b.tensor_f32(p + "attn_q.weight", {kH, static_cast<uint64_t>(q_dim)},
                 qwen2 ? hf_q : llama_cpp_permute(hf_q, q_dim, kH, kHeads));
    b.tensor_f32(p + "attn_k.weight", {kH, static_cast<uint64_t>(kv_dim)},
                 qwen2 ? hf_k : llama_cpp_permute(hf_k, kv_dim, kH, kKvHeads));
    if (qwen2) {
      b.tensor_f32(p + "attn_q.bias", {static_cast<uint64_t>(q_dim)}, pattern(q_dim, 110 + i));
      b.tensor_f32(p + "attn_k.bias", {static_cast<uint64_t>(kv_dim)}, pattern(kv_dim, 120 + i));
      b.tensor_f32(p + "attn_v.bias", {static_cast<uint64_t>(kv_dim)}, pattern(kv_dim, 130 + i));
    }
    b.tensor_f32(p + "attn_v.weight", {kH, static_cast<uint64_t>(kv_dim)}, pattern(kv_dim * kH, 40 + i));
    b.tensor_f32(p + "attn_output.weight", {static_cast<uint64_t>(q_dim), kH}, pattern(kH * q_dim, 50 + i));
    b.tensor_f32(p + "ffn_norm.weight", {kH}, pattern(kH, 60 + i));
    b.tensor_f32(p + "ffn_gate.weight", {kH, kI}, pattern(kI * kH, 70 + i));
    b.tensor_f32(p + "ffn_up.weight", {kH, kI}, pattern(kI * kH, 80 + i));
    b.tensor_f32(p + "ffn_down.weight", {kI, kH}, pattern(kH * kI, 90 + i));
  }
  b.tensor_f32("output_norm.weight", {kH}, pattern(kH, 100));
  if (!tied) b.tensor_f32("output.weight", {kH, vocab_rows}, pattern(vocab_rows * kH, 101));
  return m;
}

}  // namespace runllm::test
