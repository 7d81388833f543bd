// Dense GEMM through cuBLAS (CUDA twin of kernels/cpu/gemm.h): operands of the activation type T
// (__half or __nv_bfloat16), fp32 accumulation.
#pragma once
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

// y[M, N] = x[M, K] · W[N, K]ᵀ, all row-major on the device (W as nn.Linear stores it). Out is T,
// or float for the lm_head (logits keep fp32 precision, so near-ties are not decided by rounding
// to T). Runs on `stream` (set on the handle for this call); the handle is the caller's.
template <typename T, typename Out>
void linear_forward(cublasHandle_t handle, const T* x, const T* weight, int64_t M, int64_t N, int64_t K, Out* y,
                    cudaStream_t stream);

}  // namespace runllm::cuda
