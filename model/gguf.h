// GGUF v2/v3 reader (FORMATS.md §7), used as a conversion source only. The file is memory-mapped;
// every count, length and offset is validated against the file size before it is used.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace runllm {

class MappedFile;

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};
std::string ggml_type_name(uint32_t type);  // "Q4_1", or "type 42" for unknown ids

// A KV value: scalars, strings, or arrays of one of those.
struct GgufValue {
  using Array = std::vector<GgufValue>;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> value;
  // Typed accessors throw runllm::Error naming `key` on a type mismatch.
  int64_t as_int(const std::string& key) const;
  double as_float(const std::string& key) const;  // ints convert too
  bool as_bool(const std::string& key) const;
  const std::string& as_string(const std::string& key) const;
  const Array& as_array(const std::string& key) const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> dims;   // GGUF order: dims[0] is the fastest-varying (reverse of PyTorch)
  uint32_t type;                // GgmlType value
  uint64_t offset;              // relative to the data section
  uint64_t nbytes;              // from type block size and dims
  const uint8_t* data;          // into the mapping
};

class GgufFile {
 public:
  // Throws naming the file and what is wrong: bad magic, unsupported version, truncation (at which
  // field), counts or string lengths past the end, over 1,000,000 KVs or tensors, a key or tensor
  // name over 65,535 bytes, over 8,388,608 array elements in all, arrays nested more than two deep,
  // unknown KV type, tensor data past the end, tensor of an unknown type (by id).
  static std::unique_ptr<GgufFile> open(const std::string& path);
  // The same on a file already in memory (what open() runs on its mapping); `bytes` must outlive
  // the result, and `path` only names the file in errors.
  static std::unique_ptr<GgufFile> parse(const std::string& path, const uint8_t* bytes, uint64_t size);
  ~GgufFile();

  const std::map<std::string, GgufValue>& kv() const { return kv_; }
  bool has(const std::string& key) const { return kv_.count(key) != 0; }
  const GgufValue& get(const std::string& key) const;  // throws "FILE: missing GGUF key KEY"
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;

 private:
  GgufFile() = default;
  std::string path_;
  std::unique_ptr<MappedFile> mapping_;  // null for parse()
  std::map<std::string, GgufValue> kv_;
  std::vector<GgufTensorInfo> tensors_;
};

// Dequantizes a tensor's data to fp32 (numel values, GGUF element order). Supports F32, F16, BF16,
// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q6_K; any other type throws naming the type and the tensor.
std::vector<float> gguf_dequantize(const GgufTensorInfo& tensor);
bool gguf_type_supported(uint32_t type);  // whether gguf_dequantize accepts this ggml type
std::string gguf_supported_types();       // "F32 F16 BF16 Q4_0 ..." for error messages

}  // namespace runllm
