// The linear of one activation row (decode, M == 1): y[N] = W[N, K] · x[K] (+ bias), the M == 1 case
// of cuda::linear_forward (CUDA twin: cpu::linear_forward). T is __half or __nv_bfloat16, the
// accumulation is fp32 and Out is T or float (the lm_head's logits).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

template <typename T, typename Out>
struct GemvArgs {
  const T* x = nullptr;       // [K]
  const T* weight = nullptr;  // [N, K] row-major (nn.Linear's layout)
  const T* bias = nullptr;    // [N], or null
  int64_t N = 0, K = 0;
  Out* y = nullptr;           // [N]; the bias is added in fp32 before the one rounding to Out
};

// True when gemv can run these operands: K a multiple of 8 and x, weight 16-byte aligned (its rows
// are read as 16-byte vectors). Otherwise use linear_forward.
bool gemv_supports(int64_t K, const void* x, const void* weight);

// Throws runllm::Error when !gemv_supports(...).
template <typename T, typename Out>
void gemv(const GemvArgs<T, Out>& args, cudaStream_t stream);

}  // namespace runllm::cuda
