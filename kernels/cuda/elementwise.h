// Small elementwise operations of the decoder on fp16 activations (CUDA twins of
// kernels/cpu/elementwise.h). Host launch functions: plain device pointers, asynchronous on `stream`,
// launch errors reported as runllm::Error. Math is fp32; results are rounded to fp16 once.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

// out[m, :] = table[ids[m], :] for m < M; table is [rows, H]. ids live on the device and are
// checked against rows by the caller (as for cpu::embedding_gather).
void embedding_gather(const __half* table, int64_t H, const int32_t* ids, int64_t M, __half* out,
                      cudaStream_t stream);

// out[m, i] = silu(gate_up[m, i]) * gate_up[m, I + i]; gate_up is [M, 2I] ([gate | up]), out [M, I].
void silu_mul(const __half* gate_up, int64_t M, int64_t I, __half* out, cudaStream_t stream);

// x[i] += delta[i] for i < n (the residual connection), fp32 sum rounded to fp16.
void add_in_place(__half* x, const __half* delta, int64_t n, cudaStream_t stream);

// y[m, n] += bias[n] for an [M, N] linear output (fp32 sum rounded to fp16), as the CPU linear adds b.
void add_bias_rows(__half* y, const __half* bias, int64_t M, int64_t N, cudaStream_t stream);

// out[i] = float(in[i]) for i < n: fp16 logits to the fp32 the sampler reads.
void half_to_float(const __half* in, int64_t n, float* out, cudaStream_t stream);

}  // namespace runllm::cuda
