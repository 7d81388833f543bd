// The one GPU layout of every group-wise quantized weight (AWQ, GPTQ 2/3/4/8-bit, act-order, the
// ExLlama path): whatever the checkpoint's packing, the loader repacks it once into this layout
// (layers/group_quant_repack.h), and both the CUDA kernels (kernels/cuda/group_quant_*.cu) and their
// CPU twin (kernels/cpu/group_quant.h) read it. Plain pointers, host or device.
//
// Rows are output channels, as nn.Linear stores W [N, K], so a decode GEMV reads each row as one
// contiguous stream. Within a row, the input columns are in "packed order" j = 0 .. K-1: column j of
// the packed row is input column perm[j] (act-order: the columns sorted by group, ExLlama's method,
// so that groups are contiguous; identity without act-order). The K values of a row form one
// little-endian bit stream, value j at stream bits [bits*j, bits*j + bits), stream bit b in bit b % 32
// of word b / 32 — the GPTQ convention, with the 3-bit values straddling words the same way. Rows are
// padded to a multiple of 32 values (padding values are 0 and never read), so a row is
// `words_per_row = padded_K * bits / 32` words and every chunk of 32 values is exactly `bits` words.
//
//   W[n, perm[j]] = (q[n, j] - zeros[n, group_of[j]]) * scales[n, group_of[j]]
#pragma once
#include <cstdint>

namespace runllm {

struct GroupQuantLayout {
  int bits = 4;                      // 2, 3, 4 or 8
  int64_t N = 0;                     // output channels (rows)
  int64_t K = 0;                     // input columns
  int64_t padded_K = 0;              // K rounded up to a multiple of 32
  int64_t words_per_row = 0;         // padded_K * bits / 32
  int64_t groups = 0;                // G
  // The group of packed column j is j / group_size for every j: what the fused GEMV needs (with
  // group_size % 32 == 0 and K % 32 == 0). False when sorting the columns by group left groups of
  // unequal size; then only the dequantizing path (which reads group_of) runs.
  bool uniform_groups = true;
  int64_t group_size = 0;            // columns per group (uniform_groups)
  const uint32_t* words = nullptr;   // [N, words_per_row]
  const uint16_t* scales = nullptr;  // [N, G] fp16 bits (every format's scales are fp16 values)
  const uint8_t* zeros = nullptr;    // [N, G] true zeros in [0, 2^bits)
  const int32_t* perm = nullptr;     // [K] input column of packed column j; null = identity
  const int32_t* group_of = nullptr; // [K] group of packed column j
};

}  // namespace runllm
