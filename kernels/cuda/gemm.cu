// Dense GEMM: cuBLAS is the reference speed for every other kernel, so it is called plainly.
#include "kernels/cuda/gemm.h"

#include <limits>
#include <string>

#include "runtime/cuda_check.h"

namespace runllm::cuda {

namespace {

template <typename T>
constexpr cudaDataType_t cuda_type();
template <>
constexpr cudaDataType_t cuda_type<__half>() {
  return CUDA_R_16F;
}
template <>
constexpr cudaDataType_t cuda_type<__nv_bfloat16>() {
  return CUDA_R_16BF;
}
template <>
constexpr cudaDataType_t cuda_type<float>() {
  return CUDA_R_32F;
}

}  // namespace

template <typename T, typename Out>
void linear_forward(cublasHandle_t handle, const T* x, const T* weight, int64_t M, int64_t N, int64_t K, Out* y,
                    cudaStream_t stream) {
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
                            static_cast<int>(K), &alpha, weight, cuda_type<T>(), static_cast<int>(K), x,
                            cuda_type<T>(), static_cast<int>(K), &beta, y, cuda_type<Out>(), static_cast<int>(N),
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

template void linear_forward<__half, __half>(cublasHandle_t, const __half*, const __half*, int64_t, int64_t, int64_t,
                                             __half*, cudaStream_t);
template void linear_forward<__half, float>(cublasHandle_t, const __half*, const __half*, int64_t, int64_t, int64_t,
                                            float*, cudaStream_t);
template void linear_forward<__nv_bfloat16, __nv_bfloat16>(cublasHandle_t, const __nv_bfloat16*, const __nv_bfloat16*,
                                                           int64_t, int64_t, int64_t, __nv_bfloat16*, cudaStream_t);
template void linear_forward<__nv_bfloat16, float>(cublasHandle_t, const __nv_bfloat16*, const __nv_bfloat16*,
                                                   int64_t, int64_t, int64_t, float*, cudaStream_t);

}  // namespace runllm::cuda
