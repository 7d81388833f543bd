// libFuzzer target: one safetensors file (header length, JSON header, offsets, data section).
#include <cstddef>
#include <cstdint>

#include "model/safetensors.h"
#include "runtime/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = runllm::SafetensorsFile::parse("fuzz.safetensors", data, size);
    // Touch the first and last byte of every accepted tensor: ASan checks they lie inside the input.
    uint8_t sum = 0;
    for (const std::string& name : file->names()) {
      const runllm::TensorView* view = file->find(name);
      for (int64_t extent : view->shape)
        if (extent < 0) __builtin_trap();  // the reader promises shapes that fit int64
      if (view->numel() < 0) __builtin_trap();
      if (view->nbytes > 0) sum ^= view->data[0] ^ view->data[view->nbytes - 1];
    }
    for (const auto& item : file->metadata()) sum ^= static_cast<uint8_t>(item.first.size() + item.second.size());
    asm volatile("" : : "r"(sum));  // keep the reads
  } catch (const runllm::Error&) {
  }
  return 0;
}
