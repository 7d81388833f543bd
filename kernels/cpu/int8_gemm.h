// int8 quantization of activations and the exact int8 x int8 -> int32 GEMM of the CPU reference
// W8A8 path (FORMATS.md §6, FORMATS-REFERENCE.md §4.2).
#pragma once
#include <cstdint>

namespace runllm::cpu {

// Dynamic per-token symmetric int8, as vLLM's dynamic_scaled_int8_quant kernel computes it:
//   absmax_t = max_k |x[t, k]|, scales[t] = absmax_t / 127,
//   xq[t, k] = clamp(round_half_even(x[t, k] * (127 / absmax_t)), -127, 127).
// The multiply by the reciprocal (not a divide by scales[t]) is vLLM's formula; both are in fp32, so
// a reference that wants bit-equal xq must use the same one. A row of zeros gets scales[t] = 0 and
// xq = 0 (no NaN). A row holding a NaN or an infinity gets xq = 0 and scales[t] = NaN, so the
// output row of the GEMM becomes NaN instead of silently finite.
// x [M, K] row-major fp32; xq [M, K]; scales [M].
void quantize_per_token_int8(const float* x, int64_t M, int64_t K, int8_t* xq, float* scales);

// Static (per-tensor) symmetric int8 with a scale from the checkpoint (input_scale), as vLLM's
// static_scaled_int8_quant: xq = clamp(round_half_even(x / scale), -127, 127); infinities saturate.
// scales[t] = scale, or NaN for a row holding a NaN (its xq are 0), for the same reason as above.
void quantize_static_int8(const float* x, int64_t M, int64_t K, float scale, int8_t* xq, float* scales);

// acc[M, N] = a[M, K] · w[N, K]ᵀ with exact int32 accumulation (w in nn.Linear orientation).
// Computed with OpenBLAS sgemm on int8 values converted to fp32, over K-chunks of at most 1024:
// every partial sum of a chunk is an integer of magnitude <= 128 * 128 * 1024 = 2^24, which fp32
// holds exactly whatever order the BLAS adds in, so each chunk's result is exact; the chunks are
// summed in int32. Throws runllm::Error when K > 131072, past which int32 could overflow.
void int8_gemm_int32(const int8_t* a, const int8_t* w, int64_t M, int64_t N, int64_t K, int32_t* acc);

}  // namespace runllm::cpu
