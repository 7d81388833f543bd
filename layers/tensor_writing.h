// Helpers of the formats' Linear::write_rows: tensors from host arrays into a TensorSink.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "layers/linear.h"
#include "runtime/tensor_view.h"

namespace runllm {

template <typename T>
std::vector<uint8_t> to_bytes(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// values[begin, end), or empty for an empty vector (a linear without bias).
std::vector<float> slice_values(const std::vector<float>& values, int64_t begin, int64_t end);

// Throws "NAME: expected a FORMAT linear to write, got DESCRIPTION" unless `actual` is `wanted`.
void require_written_format(const Linear& linear, const std::string& name, WrittenFormat actual, WrittenFormat wanted);

// NAME.bias as fp16 when the linear has one.
void write_bias_rows(TensorSink& out, const std::string& name, const std::vector<float>& bias, int64_t begin, int64_t end);

}  // namespace runllm
