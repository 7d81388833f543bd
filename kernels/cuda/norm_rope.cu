// RMSNorm: one block per row, fp32 sum of squares reduced through warp shuffles, 16-byte accesses
// (8 elements of fp16 or bf16) when H % 8 == 0 (all real hidden sizes). The row is read twice (sum, then scale); the second read
// hits L1/L2 since H <= 16k halves per row. RoPE: one thread per rotated pair.
#include "kernels/cuda/norm_rope.h"

#include <algorithm>
#include <string>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr int kNormThreads = 256;

__device__ float block_sum(float value) {
  __shared__ float partial[kNormThreads / 32];
  __shared__ float total;
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = value;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < kNormThreads / 32 ? partial[threadIdx.x] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (threadIdx.x == 0) total = v;
  }
  __syncthreads();
  return total;
}

// kFused: x += residual first (stored back rounded to T), then normalize the stored values.
template <typename T, bool kFused, bool kVectorized>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(T* x, const T* residual, const T* weight, int64_t H,
                                                                float eps, T* y) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int64_t row = blockIdx.x;
  T* xr = x + row * H;
  T* yr = y + row * H;
  float sum_squares = 0.0f;
  if constexpr (kVectorized) {
    const int64_t n8 = H / 8;
    for (int64_t c = threadIdx.x; c < n8; c += kNormThreads) {
      Vec8<T> v = reinterpret_cast<const Vec8<T>*>(xr)[c];
      if constexpr (kFused) {
        const Vec8<T> r = reinterpret_cast<const Vec8<T>*>(residual + row * H)[c];
#pragma unroll
        for (int k = 0; k < 4; ++k) v.h[k] = __hadd2(v.h[k], r.h[k]);  // exact sum rounded once, as in fp32
        reinterpret_cast<Vec8<T>*>(xr)[c] = v;
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = to_float2(v.h[k]);
        sum_squares += f.x * f.x + f.y * f.y;
      }
    }
  } else {
    for (int64_t c = threadIdx.x; c < H; c += kNormThreads) {
      T v = xr[c];
      if constexpr (kFused) {
        v = from_float<T>(to_float(v) + to_float(residual[row * H + c]));
        xr[c] = v;
      }
      const float f = to_float(v);
      sum_squares += f * f;
    }
  }
  const float inv_rms = rsqrtf(block_sum(sum_squares) / static_cast<float>(H) + eps);
  // Each thread re-reads only the elements it wrote itself: no barrier needed for the fused store.
  if constexpr (kVectorized) {
    const int64_t n8 = H / 8;
    for (int64_t c = threadIdx.x; c < n8; c += kNormThreads) {
      const Vec8<T> v = reinterpret_cast<const Vec8<T>*>(xr)[c];
      const Vec8<T> w = reinterpret_cast<const Vec8<T>*>(weight)[c];
      Vec8<T> out;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 f = to_float2(v.h[k]), wf = to_float2(w.h[k]);
        out.h[k] = pair_from_float<T>(wf.x * (f.x * inv_rms), wf.y * (f.y * inv_rms));
      }
      reinterpret_cast<Vec8<T>*>(yr)[c] = out;
    }
  } else {
    for (int64_t c = threadIdx.x; c < H; c += kNormThreads)
      yr[c] = from_float<T>(to_float(weight[c]) * (to_float(xr[c]) * inv_rms));
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T, bool kFused>
void launch_rms_norm(T* x, const T* residual, const T* weight, int64_t M, int64_t H, float eps, T* y,
                     cudaStream_t stream) {
  if (M <= 0 || H <= 0) return;
  const bool vectorized = H % 8 == 0 && aligned16(x) && aligned16(y) && aligned16(weight) &&
                          (!kFused || aligned16(residual));
  const dim3 grid(static_cast<unsigned>(M));
  if (vectorized)
    launch_dependent(rms_norm_kernel<T, kFused, true>, grid, kNormThreads, stream, x, residual, weight, H, eps, y);
  else
    launch_dependent(rms_norm_kernel<T, kFused, false>, grid, kNormThreads, stream, x, residual, weight, H, eps, y);
  CUDA_CHECK_LAUNCH(rms_norm_kernel);
}

template <typename T>
__global__ void rope_kernel(RopeArgs<T> args) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int64_t half = args.head_dim / 2;
  const int64_t per_row = args.num_heads * half;
  const int64_t total = args.M * per_row;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = t / per_row;
    const int64_t head = (t % per_row) / half;
    const int64_t i = t % half;
    // fp32 product as transformers computes it; sincosf is accurate (not the fast intrinsic) for
    // the large angles of long contexts.
    const float angle = static_cast<float>(args.positions[m]) * args.inv_freq[i];
    float sin_a, cos_a;
    sincosf(angle, &sin_a, &cos_a);
    T* v = args.x + m * args.row_stride + args.column_offset + head * args.head_dim;
    const float a = to_float(v[i]), b = to_float(v[i + half]);
    v[i] = from_float<T>(a * cos_a - b * sin_a);
    v[i + half] = from_float<T>(b * cos_a + a * sin_a);
  }
}

}  // namespace

template <typename T>
void rms_norm(const T* x, const T* weight, int64_t M, int64_t H, float eps, T* y, cudaStream_t stream) {
  // The unfused kernel never writes x; the cast only lets both variants share one kernel.
  launch_rms_norm<T, false>(const_cast<T*>(x), nullptr, weight, M, H, eps, y, stream);
}

template <typename T>
void add_rms_norm(T* x, const T* residual, const T* weight, int64_t M, int64_t H, float eps, T* y,
                  cudaStream_t stream) {
  launch_rms_norm<T, true>(x, residual, weight, M, H, eps, y, stream);
}

template <typename T>
void apply_rope(const RopeArgs<T>& args, cudaStream_t stream) {
  if (args.M <= 0 || args.num_heads <= 0) return;
  if (args.head_dim <= 0 || args.head_dim % 2 != 0)
    throw Error("cuda::apply_rope: head_dim must be even and positive, got " + std::to_string(args.head_dim));
  const int64_t total = args.M * args.num_heads * (args.head_dim / 2);
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>((total + 255) / 256, 65535));
  launch_dependent(rope_kernel<T>, blocks, 256, stream, args);
  CUDA_CHECK_LAUNCH(rope_kernel);
}

#define RUNLLM_INSTANTIATE_NORM_ROPE(T)                                                                 \
  template void rms_norm<T>(const T*, const T*, int64_t, int64_t, float, T*, cudaStream_t);             \
  template void add_rms_norm<T>(T*, const T*, const T*, int64_t, int64_t, float, T*, cudaStream_t);     \
  template void apply_rope<T>(const RopeArgs<T>&, cudaStream_t);
RUNLLM_INSTANTIATE_NORM_ROPE(__half)
RUNLLM_INSTANTIATE_NORM_ROPE(__nv_bfloat16)

}  // namespace runllm::cuda
