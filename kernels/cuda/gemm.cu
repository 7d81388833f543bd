// Dense GEMM: cuBLAS is the reference speed for every quantized kernel, so it is called plainly.
#include "kernels/cuda/gemm.h"

#include <limits>
#include <string>

#include "runtime/cuda_check.h"

namespace runllm::cuda {

namespace {

void gemm_fp16_inputs(cublasHandle_t handle, const __half* x, const __half* weight, int64_t M, int64_t N, int64_t K,
                      void* y, cudaDataType_t y_type, cudaStream_t stream) {
  if (M <= 0 || N <= 0) return;
  constexpr int64_t kMax = std::numeric_limits<int>::max();
  if (M > kMax || N > kMax || K > kMax)
    throw Error("cuda::linear_forward: dimensions exceed int range: M=" + std::to_string(M) +
                " N=" + std::to_string(N) + " K=" + std::to_string(K));
  const float alpha = 1.0f, beta = 0.0f;
  CUBLAS_CHECK(cublasSetStream(handle, stream));
  // cuBLAS is column-major: row-major y[M, N] is column-major yᵀ[N, M] = W[N, K] · xᵀ[K, M], where
  // row-major W[N, K] is column-major Wᵀ (so op T) and row-major x[M, K] is column-major xᵀ (op N).
  CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
                            static_cast<int>(K), &alpha, weight, CUDA_R_16F, static_cast<int>(K), x, CUDA_R_16F,
                            static_cast<int>(K), &beta, y, y_type, static_cast<int>(N), CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
}

}  // namespace

void linear_forward_fp16(cublasHandle_t handle, const __half* x, const __half* weight, int64_t M, int64_t N,
                         int64_t K, __half* y, cudaStream_t stream) {
  gemm_fp16_inputs(handle, x, weight, M, N, K, y, CUDA_R_16F, stream);
}

void linear_forward_fp16_to_fp32(cublasHandle_t handle, const __half* x, const __half* weight, int64_t M, int64_t N,
                                 int64_t K, float* y, cudaStream_t stream) {
  gemm_fp16_inputs(handle, x, weight, M, N, K, y, CUDA_R_32F, stream);
}

}  // namespace runllm::cuda
