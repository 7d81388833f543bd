// RMSNorm and rotary position embedding (CUDA twins of kernels/cpu/norm_rope.h). T is the activation
// type, __half or __nv_bfloat16: fp32 math inside, T in and out. Host launch functions: device
// pointers, asynchronous on `stream`.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

// y[m, :] = x[m, :] / sqrt(mean(x[m, :]^2) + eps) * weight for M rows of H; y == x is allowed.
template <typename T>
void rms_norm(const T* x, const T* weight, int64_t M, int64_t H, float eps, T* y, cudaStream_t stream);

// The residual connection fused with the next norm: x[m, :] += residual[m, :] (rounded to T and
// stored, as the unfused add would), then y[m, :] = rms_norm(x[m, :]). y must not alias residual.
template <typename T>
void add_rms_norm(T* x, const T* residual, const T* weight, int64_t M, int64_t H, float eps, T* y,
                  cudaStream_t stream);

// Rotates num_heads heads of head_dim in place, HF "rotate_half" layout (element i pairs with
// i + head_dim/2), in M rows of stride row_stride starting at column column_offset (so q and k of
// a fused qkv buffer are rotated in place). Row m is at position positions[m] (device int32).
// inv_freq: device fp32 [head_dim / 2], from cpu::rope_inverse_frequencies (default, linear, llama3).
template <typename T>
struct RopeArgs {
  T* x = nullptr;
  int64_t M = 0;
  int64_t row_stride = 0;
  int64_t column_offset = 0;
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  const int32_t* positions = nullptr;
  const float* inv_freq = nullptr;
};
template <typename T>
void apply_rope(const RopeArgs<T>& args, cudaStream_t stream);

}  // namespace runllm::cuda
