// Packing and unpacking of the on-disk quantized layouts (FORMATS.md §3-§5) to and from
// QuantizedMatrix, and the AWQ -> GPTQ conversion. Pure functions on host arrays; every unpack checks
// value ranges and every pack is the exact inverse of its unpack.
#pragma once
#include <cstdint>
#include <vector>

#include "layers/quantized_matrix.h"

namespace runllm {

// AutoAWQ "gemm" tensors (FORMATS.md §3): [in, out] orientation, 8 nibbles per int32 along N in the
// order [0, 2, 4, 6, 1, 3, 5, 7].
struct AwqTensors {
  int64_t N = 0, K = 0, group_size = 0;  // group_size as a real size (never -1)
  std::vector<int32_t> qweight;  // [K, N / 8]
  std::vector<int32_t> qzeros;   // [G, N / 8]
  std::vector<float> scales;     // [G, N] (fp16 on disk)
};

// GPTQ tensors (FORMATS.md §4): packed along K for qweight, along N for qzeros; 3-bit packs 32 values
// into 3 words.
enum class GptqZeros { V1, V2 };  // v1 stores zero - 1 (read back as (stored + 1) & mask), v2 the true zero
struct GptqTensors {
  int bits = 4;
  int64_t N = 0, K = 0, group_size = 0;
  std::vector<int32_t> qweight;  // [K * bits / 32, N]
  std::vector<int32_t> qzeros;   // [G, N * bits / 32]
  std::vector<float> scales;     // [G, N] (fp16 on disk)
  std::vector<int32_t> g_idx;    // [K]
};

QuantizedMatrix unpack_awq(const AwqTensors& tensors);
AwqTensors pack_awq(const QuantizedMatrix& matrix);  // requires bits 4 and no act-order

QuantizedMatrix unpack_gptq(const GptqTensors& tensors, GptqZeros convention);
// V1 throws when a true zero is 0 (it cannot be stored as zero - 1 without corrupting its word).
GptqTensors pack_gptq(const QuantizedMatrix& matrix, GptqZeros convention);
bool any_zero_is_zero(const QuantizedMatrix& matrix);

// AWQ gemm -> GPTQ 4-bit with true (v2) zeros, working on the packed words: undo the AWQ nibble order,
// repack the weights along K, the zeros along N in plain order; scales unchanged; g_idx = k / g.
// Exact for every zero, 0 included (unlike the "zeros - 1" conversion of lorax/TGI).
GptqTensors awq_to_gptq(const AwqTensors& awq);

}  // namespace runllm
