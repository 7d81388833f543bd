// Group-wise quantized linears on the GPU, straight from the packed weights (GroupQuantLayout,
// kernels/group_quant_layout.h; CPU twin: kernels/cpu/group_quant.h). Two kernels:
//   group_quant_gemv       fused dequantize + multiply for few rows (decode): reads each packed
//                          weight once, fp32 accumulation, bias in the epilogue;
//   group_quant_dequantize the weight to a dense [N, K] matrix of the activation type, for many rows
//                          (prompt batches), where cuBLAS then does the multiply.
// T is __half or __nv_bfloat16.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/group_quant_layout.h"

namespace runllm::cuda {

template <typename T>
struct GroupQuantGemvArgs {
  GroupQuantLayout weight;  // device pointers
  const T* x = nullptr;     // [M, K]
  const T* bias = nullptr;  // [N] or null
  int64_t M = 0;
  T* y = nullptr;           // [M, N]
};

// True when group_quant_gemv runs this layout: uniform groups of a multiple of 32 columns, K a
// multiple of 32 (every chunk of 32 packed values lies in one group), 16-byte aligned rows for 4
// and 8 bits. Otherwise use group_quant_dequantize + cuBLAS, which runs every layout.
bool group_quant_gemv_supports(const GroupQuantLayout& weight);

// Any M (launched in tiles of up to 8 rows); meant for small M. Throws runllm::Error when
// !group_quant_gemv_supports(args.weight).
template <typename T>
void group_quant_gemv(const GroupQuantGemvArgs<T>& args, cudaStream_t stream);

// out [N, K] (row-major, the original input-column order) = the dequantized weight, rounded to T.
template <typename T>
void group_quant_dequantize(const GroupQuantLayout& weight, T* out, cudaStream_t stream);

}  // namespace runllm::cuda
