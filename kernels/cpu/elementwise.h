// Small elementwise operations of the decoder, fp32 reference (CPU twins of kernels/cuda/elementwise).
#pragma once
#include <cstdint>

namespace runllm::cpu {

// out[m, i] = silu(gate_up[m, i]) * gate_up[m, I + i]; gate_up holds the fused [gate | up] rows of 2I.
void silu_mul(const float* gate_up, int64_t M, int64_t I, float* out);

// x[i] += delta[i] for n elements (the residual connection).
void add_in_place(float* x, const float* delta, int64_t n);

// out[m, :] = table[ids[m], :]; ids are checked against `rows` by the caller.
void embedding_gather(const float* table, int64_t H, const int32_t* ids, int64_t M, float* out);

}  // namespace runllm::cpu
