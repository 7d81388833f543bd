// A small GGUF v3 writer and scratch-file helpers shared by the GGUF reader tests
// (test_gguf_reader.cpp) and the GGUF -> HF conversion tests (test_gguf_convert.cpp). The writer is
// written here from the GGUF spec and shares no code with model/gguf.*, so the reader and the
// converter are checked against a second, independent statement of the format, not against themselves.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace runllm::test {

using Bytes = std::vector<uint8_t>;

// Appends the raw little-endian bytes of `value`.
template <typename T>
void put(Bytes& out, T value) {
  const auto* p = reinterpret_cast<const uint8_t*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}

void put_string(Bytes& out, const std::string& text);  // u64 length, then the bytes
void put_half(Bytes& out, float value);                // IEEE fp16

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

  void kv_raw(const std::string& key, uint32_t type, const Bytes& value);
  void kv_u32(const std::string& key, uint32_t v);
  void kv_f32(const std::string& key, float v);
  void kv_bool(const std::string& key, bool v);
  void kv_string(const std::string& key, const std::string& v);
  void kv_strings(const std::string& key, const std::vector<std::string>& items);
  void kv_i32s(const std::string& key, const std::vector<int32_t>& items);
  void kv_f32s(const std::string& key, const std::vector<float>& items);
  void tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, Bytes data);
  void tensor_f32(const std::string& name, std::vector<uint64_t> dims, const std::vector<float>& values);

  Bytes build() const;
};

// One scratch directory per test process (a make_temp_dir), removed when the process exits.
std::filesystem::path scratch_dir();
// Writes `bytes` to scratch_dir() / name (replacing any earlier file) and returns the path.
std::string write_scratch_file(const std::string& name, const Bytes& bytes);

// ---- a tiny llama GGUF: H 32, 4 heads of 8, 2 KV heads, I 64, 2 layers, 16 tokens ----------------

inline constexpr int kH = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kI = 64, kLayers = 2, kVocab = 16;

// Distinct values exactly representable in fp16, so the converted tensors compare exactly.
std::vector<float> pattern(size_t n, int seed);

struct TinyLlama {
  GgufBuilder builder;
  std::vector<float> hf_q0, hf_k0;  // layer 0 q/k weights in HF order
};

// A vocabulary in place of the 16-token gpt2 one (token_embd then has one row per token).
struct TinyVocabulary {
  std::string model = "llama";  // tokenizer.ggml.model
  std::vector<std::string> tokens;
  std::vector<float> scores;    // written when not empty
  std::vector<int32_t> types;   // written when not empty
  uint32_t bos = 1, eos = 2, unk = 0;
};

// `architecture` "qwen2" gives the Qwen2 variant (q/k/v biases, no q/k permutation, qwen2 pre-tokenizer).
TinyLlama tiny_llama(bool tied, const std::string& architecture = "llama", const std::string& tokenizer = "gpt2",
                     const TinyVocabulary* vocabulary = nullptr);

}  // namespace runllm::test
