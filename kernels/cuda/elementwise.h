// Small elementwise operations of the decoder (CUDA twins of kernels/cpu/elementwise.h). T is the
// activation type, __half or __nv_bfloat16. Host launch functions: plain device pointers,
// asynchronous on `stream`, launch errors reported as runllm::Error. Math is fp32; results are
// rounded to T once.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

// out[m, :] = table[ids[m], :] for m < M; table is [rows, H]. ids live on the device and are
// checked against rows by the caller (as for cpu::embedding_gather).
template <typename T>
void embedding_gather(const T* table, int64_t H, const int32_t* ids, int64_t M, T* out, cudaStream_t stream);

// out[m, i] = silu(gate_up[m, i]) * gate_up[m, I + i]; gate_up is [M, 2I] ([gate | up]), out [M, I].
template <typename T>
void silu_mul(const T* gate_up, int64_t M, int64_t I, T* out, cudaStream_t stream);

// x[i] += delta[i] for i < n (the residual connection), fp32 sum rounded to T.
template <typename T>
void add_in_place(T* x, const T* delta, int64_t n, cudaStream_t stream);

// y[m, n] += bias[n] for an [M, N] linear output (fp32 sum rounded to T), as the CPU linear adds b.
template <typename T>
void add_bias_rows(T* y, const T* bias, int64_t M, int64_t N, cudaStream_t stream);

}  // namespace runllm::cuda
