// Element types of tensors on disk and in memory, and the scalar conversions between them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace runllm {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType dtype);
// The safetensors spelling ("F16", "I32", ...).
const char* dtype_name(DType dtype);
// Parses a safetensors dtype string; throws runllm::Error naming the string if unknown.
DType dtype_from_name(const std::string& name);

float half_to_float(uint16_t bits);
uint16_t float_to_half(float value);  // round to nearest even, saturates to inf like IEEE
float bf16_to_float(uint16_t bits);
uint16_t float_to_bf16(float value);  // round to nearest even

}  // namespace runllm
