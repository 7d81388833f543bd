// GGUF reader, dequantization and GGUF -> HF conversion. Files are built by a small GGUF writer in
// this test (independent of the reader), and quantized blocks are packed here from the ggml rules,
// element by element, so the decoder is checked against a second, independent statement of the layout.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <unistd.h>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/gguf_to_hf.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"

using namespace runllm;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

#ifdef RUNLLM_CATCH2_V3
using Catch::Matchers::ContainsSubstring;
#else
Catch::Matchers::StdString::ContainsMatcher ContainsSubstring(const std::string& text) {
  return HAS_SUBSTRING(text);
}
#endif

using Bytes = std::vector<uint8_t>;

template <typename T>
void put(Bytes& out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

void put_string(Bytes& out, const std::string& text) {
  put<uint64_t>(out, text.size());
  out.insert(out.end(), text.begin(), text.end());
}

// GGUF value type ids (gguf spec).
enum : uint32_t { U32 = 4, I32 = 5, F32V = 6, BOOL = 7, STRING = 8, ARRAY = 9 };

// Writes GGUF v3 files: header, KVs, tensor infos, padding to 32, tensor data (each aligned to 32).
struct GgufBuilder {
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;  // GGUF order, fastest first
    uint32_t type;
    Bytes data;
  };
  Bytes kvs;
  uint64_t kv_count = 0;
  std::vector<Tensor> tensors;

  void kv_raw(const std::string& key, uint32_t type, const Bytes& value) {
    put_string(kvs, key);
    put<uint32_t>(kvs, type);
    kvs.insert(kvs.end(), value.begin(), value.end());
    ++kv_count;
  }
  void kv_u32(const std::string& key, uint32_t v) { Bytes b; put(b, v); kv_raw(key, U32, b); }
  void kv_f32(const std::string& key, float v) { Bytes b; put(b, v); kv_raw(key, F32V, b); }
  void kv_bool(const std::string& key, bool v) { kv_raw(key, BOOL, {static_cast<uint8_t>(v)}); }
  void kv_string(const std::string& key, const std::string& v) { Bytes b; put_string(b, v); kv_raw(key, STRING, b); }
  void kv_strings(const std::string& key, const std::vector<std::string>& items) {
    Bytes b;
    put<uint32_t>(b, STRING);
    put<uint64_t>(b, items.size());
    for (const auto& item : items) put_string(b, item);
    kv_raw(key, ARRAY, b);
  }
  void kv_i32s(const std::string& key, const std::vector<int32_t>& items) {
    Bytes b;
    put<uint32_t>(b, I32);
    put<uint64_t>(b, items.size());
    for (int32_t item : items) put(b, item);
    kv_raw(key, ARRAY, b);
  }
  void tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, Bytes data) {
    tensors.push_back({name, std::move(dims), type, std::move(data)});
  }
  void tensor_f32(const std::string& name, std::vector<uint64_t> dims, const std::vector<float>& values) {
    Bytes b;
    for (float v : values) put(b, v);
    tensor(name, std::move(dims), 0, std::move(b));
  }

  Bytes build() const {
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
};

// One scratch directory per test process, removed when the process exits.
fs::path temp_dir() {
  struct ScratchDir {
    fs::path path = fs::temp_directory_path() / ("runllm_test_gguf_" + std::to_string(::getpid()));
    ~ScratchDir() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  };
  static const ScratchDir scratch;
  fs::create_directories(scratch.path);
  return scratch.path;
}

std::string write_file(const std::string& name, const Bytes& bytes) {
  const fs::path path = temp_dir() / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

std::string open_error(const Bytes& bytes) {
  const std::string path = write_file("bad.gguf", bytes);
  try {
    GgufFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(opened without error)";
}

GgufTensorInfo raw_tensor(uint32_t type, uint64_t numel, const Bytes& data) {
  GgufTensorInfo info{};
  info.name = "t";
  info.dims = {numel};
  info.type = type;
  info.nbytes = data.size();
  info.data = data.data();
  return info;
}

void put_half(Bytes& out, float value) { put<uint16_t>(out, float_to_half(value)); }

// ---- a tiny llama GGUF: H 32, 4 heads of 8, 2 KV heads, I 64, 2 layers, 16 tokens ----------------

constexpr int kH = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kI = 64, kLayers = 2, kVocab = 16;

// Distinct values exactly representable in fp16, so the converted tensors compare exactly.
std::vector<float> pattern(size_t n, int seed) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>((static_cast<int>(i) * 7 + seed * 13) % 512 - 256) / 64.0f;
  return v;
}

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

struct TinyLlama {
  GgufBuilder builder;
  std::vector<float> hf_q0, hf_k0;  // layer 0 q/k weights in HF order
};

// `architecture` "qwen2" gives the Qwen2 variant (q/k/v biases, no q/k permutation, qwen2 pre-tokenizer).
TinyLlama tiny_llama(bool tied, const std::string& architecture = "llama", const std::string& tokenizer = "gpt2") {
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
  b.kv_string("tokenizer.ggml.model", tokenizer);
  b.kv_string("tokenizer.ggml.pre", qwen2 ? "qwen2" : "smollm");
  b.kv_strings("tokenizer.ggml.tokens", tiny_tokens());
  b.kv_i32s("tokenizer.ggml.token_type", {3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 1, 1});
  b.kv_strings("tokenizer.ggml.merges", {"a b", "ab c", "Ġ a"});
  b.kv_u32("tokenizer.ggml.bos_token_id", 1);
  b.kv_u32("tokenizer.ggml.eos_token_id", 2);
  b.kv_bool("tokenizer.ggml.add_bos_token", false);
  b.kv_string("tokenizer.chat_template", "{{ messages }}");

  // token_embd as F16 (GGUF dims [H, V]).
  Bytes embedding;
  for (float v : pattern(kVocab * kH, 1)) put_half(embedding, v);
  b.tensor("token_embd.weight", {kH, kVocab}, 1, embedding);
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
  if (!tied) b.tensor_f32("output.weight", {kH, kVocab}, pattern(kVocab * kH, 101));
  return m;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// Parses a safetensors file here (header + F16 data) so this test does not depend on the reader.
struct SafetensorsContents {
  json header;
  Bytes data;
  std::vector<float> f16(const std::string& name) const {
    const auto& entry = header.at(name);
    const size_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    std::vector<float> out;
    for (size_t i = begin; i < end; i += 2) {
      uint16_t bits;
      std::memcpy(&bits, &data[i], 2);
      out.push_back(half_to_float(bits));
    }
    return out;
  }
};

SafetensorsContents read_safetensors(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint64_t header_size = 0;
  in.read(reinterpret_cast<char*>(&header_size), 8);
  std::string header(header_size, '\0');
  in.read(&header[0], static_cast<std::streamsize>(header_size));
  SafetensorsContents contents;
  contents.header = json::parse(header);
  contents.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return contents;
}

std::string convert_error(const GgufBuilder& builder) {
  const std::string path = write_file("model.gguf", builder.build());
  try {
    convert_gguf_to_hf(path, (temp_dir() / "out_error").string(), [](const std::string&) {});
  } catch (const Error& e) {
    return e.what();
  }
  return "(converted without error)";
}

}  // namespace

// ---- dequantization -------------------------------------------------------------------------------

TEST_CASE("gguf_dequantize: F32, F16 and BF16 pass values through", "[gguf]") {
  Bytes f32, f16, bf16;
  const std::vector<float> values = {1.5f, -2.25f, 0.0f, 1024.0f};
  for (float v : values) put(f32, v), put_half(f16, v), put<uint16_t>(bf16, float_to_bf16(v));
  REQUIRE(gguf_dequantize(raw_tensor(0, 4, f32)) == values);
  REQUIRE(gguf_dequantize(raw_tensor(1, 4, f16)) == values);
  REQUIRE(gguf_dequantize(raw_tensor(30, 4, bf16)) == values);
}

TEST_CASE("gguf_dequantize: Q4_0, Q4_1 and Q8_0 blocks", "[gguf]") {
  // Two blocks each, so block strides are checked too.
  std::vector<int> q(64);
  for (int e = 0; e < 64; ++e) q[e] = (e * 5 + 3) % 16;
  Bytes q4_0, q4_1, q8_0;
  std::vector<float> want4_0, want4_1, want8_0;
  for (int blk = 0; blk < 2; ++blk) {
    const float d = blk == 0 ? 0.5f : -0.125f, m = blk == 0 ? -1.5f : 2.0f;
    put_half(q4_0, d);
    put_half(q4_1, d);
    put_half(q4_1, m);
    put_half(q8_0, d);
    // Q4_x: byte j holds element j in its low nibble and element j + 16 in its high nibble.
    for (int j = 0; j < 16; ++j) {
      const uint8_t byte = static_cast<uint8_t>(q[blk * 32 + j] | (q[blk * 32 + j + 16] << 4));
      q4_0.push_back(byte);
      q4_1.push_back(byte);
    }
    for (int e = 0; e < 32; ++e) {
      const int8_t q8 = static_cast<int8_t>((e * 37 + blk * 11) % 256 - 128);
      q8_0.push_back(static_cast<uint8_t>(q8));
      want8_0.push_back(d * q8);
      want4_0.push_back(d * (q[blk * 32 + e] - 8));
      want4_1.push_back(d * q[blk * 32 + e] + m);
    }
  }
  REQUIRE(gguf_dequantize(raw_tensor(2, 64, q4_0)) == want4_0);
  REQUIRE(gguf_dequantize(raw_tensor(3, 64, q4_1)) == want4_1);
  REQUIRE(gguf_dequantize(raw_tensor(8, 64, q8_0)) == want8_0);
}

TEST_CASE("gguf_dequantize: Q5_0 and Q5_1 take the fifth bit of element j from qh bit j", "[gguf]") {
  std::vector<int> q(32);
  for (int e = 0; e < 32; ++e) q[e] = (e * 11 + 7) % 32;
  const float d = 0.25f, m = -3.0f;
  uint32_t qh = 0;
  Bytes qs;
  for (int e = 0; e < 32; ++e) qh |= static_cast<uint32_t>(q[e] >> 4) << e;
  for (int j = 0; j < 16; ++j) qs.push_back(static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4)));
  Bytes q5_0, q5_1;
  put_half(q5_0, d);
  put(q5_0, qh);
  q5_0.insert(q5_0.end(), qs.begin(), qs.end());
  put_half(q5_1, d);
  put_half(q5_1, m);
  put(q5_1, qh);
  q5_1.insert(q5_1.end(), qs.begin(), qs.end());
  std::vector<float> want0, want1;
  for (int e = 0; e < 32; ++e) want0.push_back(d * (q[e] - 16)), want1.push_back(d * q[e] + m);
  REQUIRE(gguf_dequantize(raw_tensor(6, 32, q5_0)) == want0);
  REQUIRE(gguf_dequantize(raw_tensor(7, 32, q5_1)) == want1);
}

TEST_CASE("gguf_dequantize: Q6_K super-blocks", "[gguf]") {
  // Element e of a super-block (6-bit q, scale scales[e / 16]) is stored, for half = e / 128,
  // g = (e % 128) / 32, l = e % 32: low 4 bits in ql[64*half + l + 32*(g & 1)] (low nibble for g < 2,
  // high nibble otherwise), top 2 bits in qh[32*half + l] at bit 2g.
  Bytes data;
  std::vector<float> want;
  for (int sb = 0; sb < 2; ++sb) {
    const float d = sb == 0 ? 0.125f : -0.5f;
    uint8_t ql[128] = {}, qh[64] = {};
    int8_t scales[16];
    for (int s = 0; s < 16; ++s) scales[s] = static_cast<int8_t>((s * 5 + sb) % 17 - 8);
    for (int e = 0; e < 256; ++e) {
      const int q = (e * 29 + sb * 3) % 64;
      const int half = e / 128, g = (e % 128) / 32, l = e % 32;
      ql[64 * half + l + 32 * (g & 1)] |= static_cast<uint8_t>((q & 15) << (g < 2 ? 0 : 4));
      qh[32 * half + l] |= static_cast<uint8_t>((q >> 4) << (2 * g));
      want.push_back(d * scales[e / 16] * (q - 32));
    }
    data.insert(data.end(), ql, ql + 128);
    data.insert(data.end(), qh, qh + 64);
    data.insert(data.end(), reinterpret_cast<uint8_t*>(scales), reinterpret_cast<uint8_t*>(scales) + 16);
    put_half(data, d);
  }
  REQUIRE(data.size() == 2 * 210);
  REQUIRE(gguf_dequantize(raw_tensor(14, 512, data)) == want);
}

TEST_CASE("gguf_dequantize: unsupported types name the tensor and the supported list", "[gguf]") {
  Bytes q4_k(144, 0);
  GgufTensorInfo info = raw_tensor(12, 256, q4_k);
  info.name = "blk.0.attn_q.weight";
  REQUIRE_THROWS_WITH(gguf_dequantize(info), "blk.0.attn_q.weight: GGUF tensor type Q4_K is not supported "
                                             "(supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q6_K)");
  REQUIRE(ggml_type_name(12) == "Q4_K");
  REQUIRE(ggml_type_name(99) == "type 99");
}

// ---- reader -------------------------------------------------------------------------------------

TEST_CASE("GgufFile reads keys, arrays and tensor infos", "[gguf]") {
  const Bytes file = tiny_llama(false).builder.build();
  auto gguf = GgufFile::open(write_file("tiny.gguf", file));
  REQUIRE(gguf->get("general.architecture").as_string("k") == "llama");
  REQUIRE(gguf->get("llama.block_count").as_int("k") == kLayers);
  REQUIRE(gguf->get("llama.rope.freq_base").as_float("k") == 100000.0);
  REQUIRE(gguf->get("tokenizer.ggml.tokens").as_array("k").size() == kVocab);
  REQUIRE_THROWS_WITH(gguf->get("llama.block_count").as_string("llama.block_count"),
                      "llama.block_count: expected a string GGUF value, got unsigned integer");
  REQUIRE_THROWS_WITH(gguf->get("nope"), ContainsSubstring("missing GGUF key nope"));
  const GgufTensorInfo* q = gguf->find_tensor("blk.1.attn_q.weight");
  REQUIRE(q != nullptr);
  REQUIRE(q->dims == std::vector<uint64_t>{kH, kHeads * kHeadDim});
  REQUIRE(q->nbytes == 4u * kH * kHeads * kHeadDim);
  REQUIRE(gguf->tensors().size() == 1 + 9 * kLayers + 2);
}

// A small file with every kind of field (scalars, strings, arrays, nested arrays, two tensors), so
// cutting or corrupting it at every byte stays fast.
static Bytes small_gguf() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.block_count", 2);
  b.kv_f32("llama.rope.freq_base", 10000.0f);
  b.kv_strings("tokenizer.ggml.tokens", {"a", "bc", "<|x|>"});
  b.kv_i32s("tokenizer.ggml.token_type", {1, 1, 3});
  Bytes nested;
  put<uint32_t>(nested, ARRAY);
  put<uint64_t>(nested, 2);
  for (int i = 0; i < 2; ++i) {
    put<uint32_t>(nested, U32);
    put<uint64_t>(nested, 1);
    put<uint32_t>(nested, 7);
  }
  b.kv_raw("nested", ARRAY, nested);
  b.tensor_f32("a.weight", {4, 2}, pattern(8, 1));
  b.tensor("b.weight", {32}, 8, Bytes(34, 1));
  return b.build();
}

TEST_CASE("GgufFile: every truncation of a valid file is refused with an error", "[gguf]") {
  const Bytes file = small_gguf();
  REQUIRE(GgufFile::open(write_file("small.gguf", file))->get("nested").as_array("nested").size() == 2);
  for (size_t cut = 0; cut < file.size(); ++cut) {
    const std::string message = open_error(Bytes(file.begin(), file.begin() + cut));
    INFO("cut at " << cut << ": " << message);
    REQUIRE((message.find("truncated GGUF") != std::string::npos || message.find("past the end") != std::string::npos ||
             message.find("cannot fit") != std::string::npos));
  }
  REQUIRE_THAT(open_error(Bytes(file.begin(), file.begin() + 6)),
               ContainsSubstring("truncated GGUF (while reading version)"));
}

TEST_CASE("GgufFile: corrupt bytes never crash", "[gguf]") {
  const Bytes file = small_gguf();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    Bytes corrupt = file;
    const size_t at = rng() % file.size();
    corrupt[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
    open_error(corrupt);  // either opens or throws runllm::Error; anything else fails the test
  }
}

TEST_CASE("GgufFile: malformed headers give precise errors", "[gguf]") {
  const Bytes valid = tiny_llama(true).builder.build();
  Bytes bad = valid;
  bad[0] = 'X';
  REQUIRE_THAT(open_error(bad), ContainsSubstring("not a GGUF file (bad magic"));
  bad = valid;
  bad[4] = 1;
  REQUIRE_THAT(open_error(bad), ContainsSubstring("unsupported GGUF version 1"));

  auto header = [](uint64_t tensors, uint64_t kvs) {
    Bytes b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, 3);
    put(b, tensors);
    put(b, kvs);
    return b;
  };
  REQUIRE_THAT(open_error(header(uint64_t{1} << 40, 0)), ContainsSubstring("absurd tensor count"));
  REQUIRE_THAT(open_error(header(0, uint64_t{1} << 40)), ContainsSubstring("absurd KV count"));
  REQUIRE_THAT(open_error(header(1000, 1000)), ContainsSubstring("cannot fit"));

  GgufBuilder b;
  b.kv_raw("x", 13, Bytes(8, 0));
  REQUIRE_THAT(open_error(b.build()), ContainsSubstring("unknown GGUF value type 13 (in KV 0 'x')"));
  GgufBuilder long_string;
  Bytes huge_length;
  put<uint64_t>(huge_length, uint64_t{1} << 50);
  long_string.kv_raw("s", STRING, huge_length);
  REQUIRE_THAT(open_error(long_string.build()), ContainsSubstring("string length 1125899906842624 runs past"));
  GgufBuilder long_array;
  Bytes array_header;
  put<uint32_t>(array_header, U32);
  put<uint64_t>(array_header, uint64_t{1} << 40);
  long_array.kv_raw("a", ARRAY, array_header);
  REQUIRE_THAT(open_error(long_array.build()), ContainsSubstring("cannot fit in the remaining"));
  GgufBuilder deep;
  Bytes nested;
  put<uint32_t>(nested, ARRAY);
  put<uint64_t>(nested, 1);
  put<uint32_t>(nested, ARRAY);
  put<uint64_t>(nested, 1);
  deep.kv_raw("n", ARRAY, nested);
  REQUIRE_THAT(open_error(deep.build()), ContainsSubstring("nested more than two levels"));
}

TEST_CASE("GgufFile: bad tensor infos name the tensor", "[gguf]") {
  GgufBuilder unknown;
  unknown.tensor("w", {32}, 99, Bytes(32, 0));
  REQUIRE_THAT(open_error(unknown.build()), ContainsSubstring("unknown ggml type id 99 (in tensor info 0 'w')"));
  GgufBuilder zero;
  zero.tensor("z", {0, 4}, 0, {});
  REQUIRE_THAT(open_error(zero.build()), ContainsSubstring("dimension 0 is 0"));
  GgufBuilder five;
  five.tensor("f", {1, 1, 1, 1, 1}, 0, Bytes(4, 0));
  REQUIRE_THAT(open_error(five.build()), ContainsSubstring("5 dimensions"));
  GgufBuilder overflow;
  overflow.tensor("o", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, {});
  REQUIRE_THAT(open_error(overflow.build()), ContainsSubstring("element count overflows"));
  GgufBuilder partial_block;
  partial_block.tensor("p", {48}, 2, Bytes(36, 0));
  REQUIRE_THAT(open_error(partial_block.build()), ContainsSubstring("not a multiple of the Q4_0 block size 32"));
  GgufBuilder past_end;
  past_end.tensor("big", {64}, 0, Bytes(4 * 32, 0));  // declares 256 bytes, holds 128
  REQUIRE_THAT(open_error(past_end.build()), ContainsSubstring("tensor big data [0, +256) runs past the end"));
}

// ---- conversion ---------------------------------------------------------------------------------

TEST_CASE("convert_gguf_to_hf: tiny llama -> config, HF tensors, un-permuted q/k, tokenizer", "[gguf]") {
  for (bool tied : {true, false}) {
    TinyLlama model = tiny_llama(tied);
    const std::string path = write_file("tiny.gguf", model.builder.build());
    const fs::path out = temp_dir() / (tied ? "hf_tied" : "hf_untied");
    std::vector<std::string> lines;
    convert_gguf_to_hf(path, out.string(), [&](const std::string& line) { lines.push_back(line); });
    REQUIRE(lines.size() >= 2 + kLayers);
    REQUIRE_THAT(lines.back(), ContainsSubstring(std::to_string(1 + 9 * kLayers + 1 + (tied ? 0 : 1)) + " tensors"));

    const json config = read_json(out / "config.json");
    REQUIRE(config["architectures"] == json::array({"LlamaForCausalLM"}));
    REQUIRE(config["model_type"] == "llama");
    REQUIRE(config["hidden_size"] == kH);
    REQUIRE(config["intermediate_size"] == kI);
    REQUIRE(config["num_hidden_layers"] == kLayers);
    REQUIRE(config["num_attention_heads"] == kHeads);
    REQUIRE(config["num_key_value_heads"] == kKvHeads);
    REQUIRE(config["head_dim"] == kHeadDim);
    REQUIRE(config["rms_norm_eps"] == 1e-5);
    REQUIRE(config["rope_theta"] == 100000.0);
    REQUIRE(config["rope_scaling"].is_null());
    REQUIRE(config["max_position_embeddings"] == 2048);
    REQUIRE(config["vocab_size"] == kVocab);
    REQUIRE(config["tie_word_embeddings"] == tied);
    REQUIRE(config["bos_token_id"] == 1);
    REQUIRE(config["eos_token_id"] == 2);
    REQUIRE(config["torch_dtype"] == "float16");
    REQUIRE(config["hidden_act"] == "silu");

    const SafetensorsContents weights = read_safetensors(out / "model.safetensors");
    const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
        {"model.embed_tokens.weight", {kVocab, kH}},
        {"model.layers.1.input_layernorm.weight", {kH}},
        {"model.layers.1.self_attn.q_proj.weight", {kHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.k_proj.weight", {kKvHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.v_proj.weight", {kKvHeads * kHeadDim, kH}},
        {"model.layers.1.self_attn.o_proj.weight", {kH, kHeads * kHeadDim}},
        {"model.layers.1.post_attention_layernorm.weight", {kH}},
        {"model.layers.1.mlp.gate_proj.weight", {kI, kH}},
        {"model.layers.1.mlp.up_proj.weight", {kI, kH}},
        {"model.layers.1.mlp.down_proj.weight", {kH, kI}},
        {"model.norm.weight", {kH}},
    };
    for (const auto& [name, shape] : expected) {
      INFO(name);
      REQUIRE(weights.header.contains(name));
      REQUIRE(weights.header[name]["dtype"] == "F16");
      REQUIRE(weights.header[name]["shape"].get<std::vector<int64_t>>() == shape);
    }
    REQUIRE(weights.header.contains("lm_head.weight") == !tied);
    REQUIRE(weights.header.size() == 1 + 9 * kLayers + 1 + (tied ? 0 : 1) + 1);  // + __metadata__

    // llama.cpp's q/k permutation is undone exactly (k with the KV head count); v is untouched.
    REQUIRE(weights.f16("model.layers.0.self_attn.q_proj.weight") == model.hf_q0);
    REQUIRE(weights.f16("model.layers.0.self_attn.k_proj.weight") == model.hf_k0);
    REQUIRE(weights.f16("model.layers.0.self_attn.v_proj.weight") == pattern(kKvHeads * kHeadDim * kH, 40));
    REQUIRE(weights.f16("model.embed_tokens.weight") == pattern(kVocab * kH, 1));

    const json tokenizer = read_json(out / "tokenizer.json");
    REQUIRE(tokenizer["model"]["type"] == "BPE");
    REQUIRE(tokenizer["model"]["vocab"].size() == kVocab);
    REQUIRE(tokenizer["model"]["vocab"]["abc"] == 10);
    REQUIRE(tokenizer["model"]["merges"] == json::parse(R"([["a","b"],["ab","c"],["Ġ","a"]])"));
    REQUIRE(tokenizer["added_tokens"].size() == 4);
    REQUIRE(tokenizer["added_tokens"][1]["content"] == "<|im_start|>");
    REQUIRE(tokenizer["added_tokens"][1]["special"] == true);
    REQUIRE(tokenizer["added_tokens"][3]["content"] == "<think>");
    REQUIRE(tokenizer["added_tokens"][3]["special"] == false);
    REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][0]["type"] == "Digits");
    REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][1]["type"] == "ByteLevel");
    REQUIRE(tokenizer["decoder"]["type"] == "ByteLevel");

    const json tokenizer_config = read_json(out / "tokenizer_config.json");
    REQUIRE(tokenizer_config["add_bos_token"] == false);
    REQUIRE(tokenizer_config["bos_token"] == "<|im_start|>");
    REQUIRE(tokenizer_config["eos_token"] == "<|im_end|>");
    REQUIRE(tokenizer_config["pad_token"].is_null());
    REQUIRE(tokenizer_config["chat_template"] == "{{ messages }}");
    REQUIRE(tokenizer_config["model_max_length"] == 2048);
    const json generation = read_json(out / "generation_config.json");
    REQUIRE(generation["bos_token_id"] == 1);
    REQUIRE(generation["eos_token_id"] == 2);
  }
}

TEST_CASE("convert_gguf_to_hf: qwen2 keeps q/k rows as stored and writes biases", "[gguf]") {
  TinyLlama model = tiny_llama(true, "qwen2");
  const std::string path = write_file("qwen2.gguf", model.builder.build());
  const fs::path out = temp_dir() / "hf_qwen2";
  convert_gguf_to_hf(path, out.string(), [](const std::string&) {});
  const json config = read_json(out / "config.json");
  REQUIRE(config["architectures"] == json::array({"Qwen2ForCausalLM"}));
  REQUIRE(config["model_type"] == "qwen2");
  REQUIRE(config["attention_bias"] == true);
  const SafetensorsContents weights = read_safetensors(out / "model.safetensors");
  REQUIRE(weights.f16("model.layers.0.self_attn.q_proj.weight") == model.hf_q0);
  REQUIRE(weights.f16("model.layers.0.self_attn.k_proj.weight") == model.hf_k0);
  REQUIRE(weights.f16("model.layers.1.self_attn.k_proj.bias") == pattern(kKvHeads * kHeadDim, 121));
  REQUIRE(weights.header["model.layers.1.self_attn.q_proj.bias"]["shape"] == json::array({kHeads * kHeadDim}));
  const json tokenizer = read_json(out / "tokenizer.json");
  REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][0]["type"] == "Split");
  REQUIRE(tokenizer["pre_tokenizer"]["pretokenizers"][1]["use_regex"] == false);
}

TEST_CASE("convert_gguf_to_hf: refuses what it cannot convert faithfully", "[gguf]") {
  REQUIRE_THAT(convert_error(tiny_llama(true, "gpt2").builder),
               ContainsSubstring("GGUF architecture 'gpt2' is not supported (supported: llama, qwen2)"));
  REQUIRE_THAT(convert_error(tiny_llama(true, "llama", "llama").builder),
               ContainsSubstring("tokenizer.ggml.model 'llama' (SentencePiece) cannot be converted yet"));
  GgufBuilder duplicate = tiny_llama(true).builder;
  duplicate.kv_u32("llama.block_count", 3);
  REQUIRE_THAT(convert_error(duplicate), ContainsSubstring("duplicate key (in KV"));

  // A type the reader knows (IQ4_NL: 32-element blocks of 18 bytes) but the converter cannot dequantize.
  GgufBuilder iq4 = tiny_llama(true).builder;
  iq4.tensors[2].type = 20;
  iq4.tensors[2].data.assign(18 * (kH * kHeads * kHeadDim / 32), 0);
  REQUIRE_THAT(convert_error(iq4), ContainsSubstring("blk.0.attn_q.weight: GGUF tensor type IQ4_NL is not supported"));

  GgufBuilder rope_freqs = tiny_llama(true).builder;
  rope_freqs.tensor_f32("rope_freqs.weight", {kHeadDim / 2}, std::vector<float>(kHeadDim / 2, 1.0f));
  REQUIRE_THAT(convert_error(rope_freqs), ContainsSubstring("rope_freqs.weight (llama3 rope scaling"));

  GgufBuilder extra = tiny_llama(true).builder;
  extra.tensor_f32("blk.5.attn_norm.weight", {kH}, pattern(kH, 1));
  REQUIRE_THAT(convert_error(extra), ContainsSubstring("unexpected tensor blk.5.attn_norm.weight"));

  GgufBuilder wrong_shape = tiny_llama(true).builder;
  wrong_shape.tensors[1].dims = {kH / 2};
  wrong_shape.tensors[1].data.resize(kH / 2 * 4);
  REQUIRE_THAT(convert_error(wrong_shape),
               ContainsSubstring("blk.0.attn_norm.weight: expected shape [32] (PyTorch order), got [16]"));
}
