// W8A8 on the GPU (CUDA twins: kernels/cpu/int8_gemm.h and W8A8Linear's epilogue):
//   quantize_rows_int8   per-token dynamic (or static per-tensor) symmetric int8 activations, with
//                        the CPU reference's exact formulas, so xq and the scales are bit-equal;
//   int8_gemv            few rows: int8 x int8 dot products (dp4a) with exact int32 accumulation
//                        and the scale epilogue, one launch;
//   int8_gemm_int32      many rows: cuBLASLt's int8 tensor-core GEMM into int32;
//   int8_epilogue        y = (acc · w_scale[n]) · a_scale[t] (+ bias[n]) in fp32, rounded once to T.
// T is __half or __nv_bfloat16.
#pragma once
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

// static_scale > 0: xq = clamp(round_half_even(x / static_scale), -127, 127), scales[t] = static_scale;
// otherwise dynamic: scales[t] = max|x[t]| / 127, xq = clamp(round_half_even(x · (127 / max|x[t]|)), -127, 127).
// A row holding NaN/inf gets xq = 0 and scale NaN (as the CPU reference). x [M, K], xq [M, K], scales [M].
template <typename T>
void quantize_rows_int8(const T* x, int64_t M, int64_t K, float static_scale, int8_t* xq, float* scales,
                        cudaStream_t stream);

template <typename T>
struct Int8LinearArgs {
  const int8_t* xq = nullptr;       // [M, K]
  const float* a_scale = nullptr;   // [M]
  const int8_t* weight = nullptr;   // [N, K]
  const float* w_scale = nullptr;   // [N]
  const float* bias = nullptr;      // [N] or null (fp32: the CPU reference's epilogue adds it in fp32)
  int64_t M = 0, N = 0, K = 0;
  T* y = nullptr;                   // [M, N]
};

// K % 16 == 0 and 16-byte aligned rows.
bool int8_gemv_supports(int64_t K, const void* xq, const void* weight);
template <typename T>
void int8_gemv(const Int8LinearArgs<T>& args, cudaStream_t stream);  // any M, meant for small M

// acc [M, N] int32 = xq [M, K] · weight [N, K]ᵀ on the tensor cores (K % 4 == 0). `workspace` is
// cuBLASLt's scratch (fixed, so CUDA graphs can capture the call).
void int8_gemm_int32(cublasLtHandle_t handle, const int8_t* xq, const int8_t* weight, int64_t M, int64_t N, int64_t K,
                     int32_t* acc, void* workspace, size_t workspace_bytes, cudaStream_t stream);

template <typename T>
void int8_epilogue(const int32_t* acc, const Int8LinearArgs<T>& args, cudaStream_t stream);

}  // namespace runllm::cuda
