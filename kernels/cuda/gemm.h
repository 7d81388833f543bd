// Dense fp16 GEMM through cuBLAS (CUDA twin of kernels/cpu/gemm.h): fp16 operands, fp32 accumulation.
#pragma once
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

// y[M, N] = x[M, K] · W[N, K]ᵀ, all row-major fp16 on the device (W as nn.Linear stores it).
// Runs on `stream` (set on the handle for this call); the handle is the caller's.
void linear_forward_fp16(cublasHandle_t handle, const __half* x, const __half* weight, int64_t M, int64_t N,
                         int64_t K, __half* y, cudaStream_t stream);

// As linear_forward_fp16 with an fp32 output y[M, N] (the lm_head: logits keep fp32 precision, so
// near-ties are not decided by fp16 rounding).
void linear_forward_fp16_to_fp32(cublasHandle_t handle, const __half* x, const __half* weight, int64_t M, int64_t N,
                                 int64_t K, float* y, cudaStream_t stream);

}  // namespace runllm::cuda
