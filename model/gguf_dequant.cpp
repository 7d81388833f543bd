// GGUF tensor data -> fp32, following ggml's dequantize_row_* reference routines (ggml-quants.c).
// Block layouts (FORMATS.md §7); all multi-byte fields are little-endian, `d`/`m` are fp16.
#include <cstring>

#include "model/gguf.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {
namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t value;
  std::memcpy(&value, p, 2);
  return value;
}

float load_half(const uint8_t* p) { return half_to_float(load_u16(p)); }

// Q4_0 {f16 d; u8 qs[16]}: w = d * (q - 8); low nibbles of qs[j] are elements j, high nibbles j + 16.
void dequantize_q4_0(const uint8_t* block, float* out) {
  const float d = load_half(block);
  const uint8_t* qs = block + 2;
  for (int j = 0; j < 16; ++j) {
    out[j] = d * static_cast<float>((qs[j] & 0x0F) - 8);
    out[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

// Q4_1 {f16 d; f16 m; u8 qs[16]}: w = d * q + m, same nibble order as Q4_0.
void dequantize_q4_1(const uint8_t* block, float* out) {
  const float d = load_half(block);
  const float m = load_half(block + 2);
  const uint8_t* qs = block + 4;
  for (int j = 0; j < 16; ++j) {
    out[j] = d * static_cast<float>(qs[j] & 0x0F) + m;
    out[j + 16] = d * static_cast<float>(qs[j] >> 4) + m;
  }
}

// Q5_0 / Q5_1: qh is a little-endian u32 whose bit j is the fifth bit of element j (0..31).
uint32_t fifth_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return bits;
}

// Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: w = d * (q - 16).
void dequantize_q5_0(const uint8_t* block, float* out) {
  const float d = load_half(block);
  const uint32_t qh = fifth_bits(block + 2);
  const uint8_t* qs = block + 6;
  for (int j = 0; j < 16; ++j) {
    const int low = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
    const int high = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
    out[j] = d * static_cast<float>(low - 16);
    out[j + 16] = d * static_cast<float>(high - 16);
  }
}

// Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: w = d * q + m.
void dequantize_q5_1(const uint8_t* block, float* out) {
  const float d = load_half(block);
  const float m = load_half(block + 2);
  const uint32_t qh = fifth_bits(block + 4);
  const uint8_t* qs = block + 8;
  for (int j = 0; j < 16; ++j) {
    const int low = (qs[j] & 0x0F) | (((qh >> j) & 1) << 4);
    const int high = (qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4);
    out[j] = d * static_cast<float>(low) + m;
    out[j + 16] = d * static_cast<float>(high) + m;
  }
}

// Q8_0 {f16 d; i8 qs[32]}: w = d * q.
void dequantize_q8_0(const uint8_t* block, float* out) {
  const float d = load_half(block);
  const int8_t* qs = reinterpret_cast<const int8_t*>(block + 2);
  for (int j = 0; j < 32; ++j) out[j] = d * static_cast<float>(qs[j]);
}

// Q6_K super-block of 256 {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: w = d * scale * (q - 32), q of
// 6 bits. Each half of 128 elements uses 64 ql, 32 qh and 8 scales; within it element l + 32*g
// (g = 0..3, l = 0..31) takes the low (g = 0, 1) or high (g = 2, 3) nibble of ql[l + 32*(g & 1)], bits
// 2g..2g+1 of qh[l] as its top two bits, and scale[l / 16 + 2g] (dequantize_row_q6_K, whose
// (d * scale) * q evaluation order is kept so results match ggml bit for bit).
void dequantize_q6_k(const uint8_t* block, float* out) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  const float d = load_half(block + 208);
  for (int half = 0; half < 2; ++half) {
    for (int l = 0; l < 32; ++l) {
      const int sub = l / 16;
      const int q0 = ((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q1 = ((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(scales[sub]) * static_cast<float>(q0);
      out[l + 32] = d * static_cast<float>(scales[sub + 2]) * static_cast<float>(q1);
      out[l + 64] = d * static_cast<float>(scales[sub + 4]) * static_cast<float>(q2);
      out[l + 96] = d * static_cast<float>(scales[sub + 6]) * static_cast<float>(q3);
    }
    out += 128;
    ql += 64;
    qh += 32;
    scales += 8;
  }
}

struct BlockDecoder {
  GgmlType type;
  size_t block_elements;
  size_t block_bytes;
  void (*decode)(const uint8_t* block, float* out);
};

constexpr BlockDecoder kBlockDecoders[] = {
    {GgmlType::Q4_0, 32, 18, dequantize_q4_0}, {GgmlType::Q4_1, 32, 20, dequantize_q4_1},
    {GgmlType::Q5_0, 32, 22, dequantize_q5_0}, {GgmlType::Q5_1, 32, 24, dequantize_q5_1},
    {GgmlType::Q8_0, 32, 34, dequantize_q8_0}, {GgmlType::Q6_K, 256, 210, dequantize_q6_k},
};

uint64_t element_count(const GgufTensorInfo& tensor) {
  uint64_t numel = 1;
  for (uint64_t dim : tensor.dims) numel *= dim;  // the reader has ruled out overflow
  return numel;
}

void check_size(const GgufTensorInfo& tensor, uint64_t expected_bytes) {
  if (tensor.nbytes != expected_bytes)
    throw Error(tensor.name + ": GGUF tensor of type " + ggml_type_name(tensor.type) + " holds " +
                std::to_string(tensor.nbytes) + " bytes, expected " + std::to_string(expected_bytes));
}

}  // namespace

std::vector<float> gguf_dequantize(const GgufTensorInfo& tensor) {
  const uint64_t numel = element_count(tensor);
  std::vector<float> out;
  const auto type = static_cast<GgmlType>(tensor.type);
  if (type == GgmlType::F32) {
    check_size(tensor, numel * 4);
    out.resize(numel);
    std::memcpy(out.data(), tensor.data, numel * 4);
    return out;
  }
  if (type == GgmlType::F16 || type == GgmlType::BF16) {
    check_size(tensor, numel * 2);
    out.resize(numel);
    for (uint64_t i = 0; i < numel; ++i) {
      const uint16_t bits = load_u16(tensor.data + 2 * i);
      out[i] = type == GgmlType::F16 ? half_to_float(bits) : bf16_to_float(bits);
    }
    return out;
  }
  for (const BlockDecoder& decoder : kBlockDecoders) {
    if (decoder.type != type) continue;
    if (numel % decoder.block_elements != 0)
      throw Error(tensor.name + ": " + std::to_string(numel) + " elements is not a whole number of " +
                  ggml_type_name(tensor.type) + " blocks");
    const uint64_t blocks = numel / decoder.block_elements;
    check_size(tensor, blocks * decoder.block_bytes);
    out.resize(numel);
    for (uint64_t b = 0; b < blocks; ++b)
      decoder.decode(tensor.data + b * decoder.block_bytes, out.data() + b * decoder.block_elements);
    return out;
  }
  throw Error(tensor.name + ": GGUF tensor type " + ggml_type_name(tensor.type) +
              " is not supported (supported: " + gguf_supported_types() + ")");
}

bool gguf_type_supported(uint32_t type) {
  const auto t = static_cast<GgmlType>(type);
  if (t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16) return true;
  for (const BlockDecoder& decoder : kBlockDecoders)
    if (decoder.type == t) return true;
  return false;
}

std::string gguf_supported_types() { return "F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q6_K"; }

}  // namespace runllm
