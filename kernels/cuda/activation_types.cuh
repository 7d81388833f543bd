// Device-side helpers shared by the kernels that take either activation type, fp16 (__half) or
// bf16 (__nv_bfloat16): scalar and pair conversions to and from fp32 (round to nearest even), and
// the 16-byte vector of 8 elements that the memory-bound kernels load and store. Included by .cu
// files only.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace runllm::cuda {

template <typename T>
struct PairOf;
template <>
struct PairOf<__half> {
  using type = __half2;
};
template <>
struct PairOf<__nv_bfloat16> {
  using type = __nv_bfloat162;
};
template <typename T>
using Pair = typename PairOf<T>::type;

// 8 consecutive elements, one 16-byte access.
template <typename T>
struct alignas(16) Vec8 {
  Pair<T> h[4];
};

__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float2 to_float2(__half2 v) { return __half22float2(v); }
__device__ __forceinline__ float2 to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}

template <typename T>
__device__ __forceinline__ Pair<T> pair_from_float(float a, float b);
template <>
__device__ __forceinline__ __half2 pair_from_float<__half>(float a, float b) {
  return __floats2half2_rn(a, b);
}
template <>
__device__ __forceinline__ __nv_bfloat162 pair_from_float<__nv_bfloat16>(float a, float b) {
  return __floats2bfloat162_rn(a, b);
}

// The 8 elements of v as fp32.
template <typename T>
__device__ __forceinline__ void unpack8(const Vec8<T>& v, float (&out)[8]) {
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const float2 f = to_float2(v.h[e]);
    out[2 * e] = f.x;
    out[2 * e + 1] = f.y;
  }
}

}  // namespace runllm::cuda
