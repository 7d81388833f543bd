// libFuzzer target: a GGUF file (header, KVs, nested arrays, tensor infos, block sizes), then every
// typed KV accessor and the dequantization of each small tensor.
#include <cstddef>
#include <cstdint>

#include "model/gguf.h"
#include "runtime/error.h"

namespace {

// Dequantizing a large tensor is correct but slow; the fuzzer gains nothing from it.
constexpr uint64_t kMaxDequantizedBytes = 1 << 16;

void read_every_way(const runllm::GgufValue& value, const std::string& key) {
  try { value.as_int(key); } catch (const runllm::Error&) {}
  try { value.as_float(key); } catch (const runllm::Error&) {}
  try { value.as_bool(key); } catch (const runllm::Error&) {}
  try { value.as_string(key); } catch (const runllm::Error&) {}
  try {
    for (const runllm::GgufValue& item : value.as_array(key)) read_every_way(item, key);  // depth <= 2
  } catch (const runllm::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = runllm::GgufFile::parse("fuzz.gguf", data, size);
    for (const auto& [key, value] : file->kv()) read_every_way(value, key);
    // find_tensor is a linear search: once, not per tensor, or thousands of tensors time out here.
    if (!file->tensors().empty() && file->find_tensor(file->tensors().back().name) == nullptr) __builtin_trap();
    for (const runllm::GgufTensorInfo& tensor : file->tensors()) {
      runllm::ggml_type_name(tensor.type);
      if (tensor.nbytes > kMaxDequantizedBytes) continue;
      try {
        runllm::gguf_dequantize(tensor);
      } catch (const runllm::Error&) {
      }
    }
  } catch (const runllm::Error&) {
  }
  return 0;
}
