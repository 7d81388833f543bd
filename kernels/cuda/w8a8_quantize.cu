// Per-token int8 quantization of activations: one block per row, absmax by a block reduction, then
// the CPU reference's formulas in IEEE fp32 (a true division for 127 / absmax, the multiply and the
// round-half-even as separate correctly rounded steps), so xq is bit-equal to cpu::quantize_per_token_int8.
#include <cmath>
#include <string>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/w8a8.h"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int8_t to_int8(float v) {
  return static_cast<int8_t>(fminf(127.0f, fmaxf(-127.0f, rintf(v))));
}

template <typename T>
__global__ void __launch_bounds__(kThreads) quantize_rows_int8_kernel(const T* x, int64_t K, float static_scale,
                                                                      int8_t* xq, float* scales) {
  wait_for_previous_kernel();
  const int64_t t = blockIdx.x;
  const T* row = x + t * K;
  int8_t* out = xq + t * K;
  // absmax, with any NaN (dynamic: any NaN or inf) remembered; fmaxf would drop a NaN. A static
  // scale saturates infinities, as the reference does.
  const bool dynamic = !(static_scale > 0.0f);
  float absmax = 0.0f;
  int bad = 0;
  for (int64_t k = threadIdx.x; k < K; k += kThreads) {
    const float v = to_float(row[k]);
    if (dynamic ? !isfinite(v) : isnan(v)) bad = 1;
    absmax = fmaxf(absmax, fabsf(v));
  }
  __shared__ float partial_max[kThreads / 32];
  __shared__ int partial_bad[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) {
    absmax = fmaxf(absmax, __shfl_xor_sync(0xffffffffu, absmax, offset));
    bad |= __shfl_xor_sync(0xffffffffu, bad, offset);
  }
  if (threadIdx.x % 32 == 0) {
    partial_max[threadIdx.x / 32] = absmax;
    partial_bad[threadIdx.x / 32] = bad;
  }
  __syncthreads();
  absmax = 0.0f;
  bad = 0;
  for (int i = 0; i < kThreads / 32; ++i) {
    absmax = fmaxf(absmax, partial_max[i]);
    bad |= partial_bad[i];
  }
  if (bad) {
    for (int64_t k = threadIdx.x; k < K; k += kThreads) out[k] = 0;
    if (threadIdx.x == 0) scales[t] = __int_as_float(0x7fc00000);  // NaN: the output row becomes NaN
    return;
  }
  if (!dynamic) {
    for (int64_t k = threadIdx.x; k < K; k += kThreads) out[k] = to_int8(__fdiv_rn(to_float(row[k]), static_scale));
    if (threadIdx.x == 0) scales[t] = static_scale;
    return;
  }
  if (absmax == 0.0f) {
    for (int64_t k = threadIdx.x; k < K; k += kThreads) out[k] = 0;
    if (threadIdx.x == 0) scales[t] = 0.0f;
    return;
  }
  const float inverse = __fdiv_rn(127.0f, absmax);
  for (int64_t k = threadIdx.x; k < K; k += kThreads) out[k] = to_int8(__fmul_rn(to_float(row[k]), inverse));
  if (threadIdx.x == 0) scales[t] = __fdiv_rn(absmax, 127.0f);
}

}  // namespace

template <typename T>
void quantize_rows_int8(const T* x, int64_t M, int64_t K, float static_scale, int8_t* xq, float* scales,
                        cudaStream_t stream) {
  if (M <= 0) return;
  if (M > 0x7fffffff) throw Error("cuda::quantize_rows_int8: too many rows");
  launch_dependent(quantize_rows_int8_kernel<T>, static_cast<unsigned>(M), kThreads, stream, x, K, static_scale, xq,
                   scales);
  CUDA_CHECK_LAUNCH(quantize_rows_int8_kernel);
}

template void quantize_rows_int8<__half>(const __half*, int64_t, int64_t, float, int8_t*, float*, cudaStream_t);
template void quantize_rows_int8<__nv_bfloat16>(const __nv_bfloat16*, int64_t, int64_t, float, int8_t*, float*,
                                                cudaStream_t);

}  // namespace runllm::cuda
