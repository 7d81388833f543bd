// Elementwise kernels: memory-bound, one pass over the data. Each has a 16-byte vector path (8
// elements per thread and access) taken when the row length and pointers allow it, and a scalar
// path for the rest; the vector path is what real shapes (hidden sizes divisible by 8) use.
#include "kernels/cuda/elementwise.h"

#include <algorithm>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr int kThreads = 256;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

unsigned grid_for(int64_t work_items) {
  // Grid-stride loops below: enough blocks to fill an H100 many times over, capped for huge n.
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((work_items + kThreads - 1) / kThreads, 65535)));
}

template <typename T>
__global__ void embedding_gather_kernel(const T* table, int64_t H, const int32_t* ids, int64_t M, T* out,
                                        bool vectorized) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int64_t total = vectorized ? M * (H / 8) : M * H;
  const int64_t per_row = vectorized ? H / 8 : H;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = i / per_row, c = i % per_row;
    const int64_t src_row = ids[m];
    if (vectorized) {
      reinterpret_cast<Vec8<T>*>(out + m * H)[c] = reinterpret_cast<const Vec8<T>*>(table + src_row * H)[c];
    } else {
      out[m * H + c] = table[src_row * H + c];
    }
  }
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

template <typename T>
__global__ void silu_mul_kernel(const T* gate_up, int64_t M, int64_t I, T* out, bool vectorized) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int64_t per_row = vectorized ? I / 8 : I;
  const int64_t total = M * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = i / per_row, c = i % per_row;
    const T* gate = gate_up + m * 2 * I;
    const T* up = gate + I;
    if (vectorized) {
      const Vec8<T> g = reinterpret_cast<const Vec8<T>*>(gate)[c];
      const Vec8<T> u = reinterpret_cast<const Vec8<T>*>(up)[c];
      Vec8<T> r;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 gf = to_float2(g.h[k]), uf = to_float2(u.h[k]);
        r.h[k] = pair_from_float<T>(silu(gf.x) * uf.x, silu(gf.y) * uf.y);
      }
      reinterpret_cast<Vec8<T>*>(out + m * I)[c] = r;
    } else {
      out[m * I + c] = from_float<T>(silu(to_float(gate[c])) * to_float(up[c]));
    }
  }
}

template <typename T>
__global__ void add_in_place_kernel(T* x, const T* delta, int64_t n, bool vectorized) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int64_t total = vectorized ? n / 8 : n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    if (vectorized) {
      Vec8<T> a = reinterpret_cast<Vec8<T>*>(x)[i];
      const Vec8<T> b = reinterpret_cast<const Vec8<T>*>(delta)[i];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 af = to_float2(a.h[k]), bf = to_float2(b.h[k]);
        a.h[k] = pair_from_float<T>(af.x + bf.x, af.y + bf.y);
      }
      reinterpret_cast<Vec8<T>*>(x)[i] = a;
    } else {
      x[i] = from_float<T>(to_float(x[i]) + to_float(delta[i]));
    }
  }
}

template <typename T>
__global__ void add_bias_rows_kernel(T* y, const T* bias, int64_t M, int64_t N) {
  wait_for_previous_kernel();  // launched by launch_dependent
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = from_float<T>(to_float(y[i]) + to_float(bias[i % N]));
}

}  // namespace

template <typename T>
void add_bias_rows(T* y, const T* bias, int64_t M, int64_t N, cudaStream_t stream) {
  if (M <= 0 || N <= 0) return;
  launch_dependent(add_bias_rows_kernel<T>, grid_for(M * N), kThreads, stream, y, bias, M, N);
  CUDA_CHECK_LAUNCH(add_bias_rows_kernel);
}

template <typename T>
void embedding_gather(const T* table, int64_t H, const int32_t* ids, int64_t M, T* out, cudaStream_t stream) {
  if (M <= 0 || H <= 0) return;
  const bool vectorized = H % 8 == 0 && aligned16(table) && aligned16(out);
  launch_dependent(embedding_gather_kernel<T>, grid_for(vectorized ? M * H / 8 : M * H), kThreads, stream, table, H, ids, M, out,
                                                                                            vectorized);
  CUDA_CHECK_LAUNCH(embedding_gather_kernel);
}

template <typename T>
void silu_mul(const T* gate_up, int64_t M, int64_t I, T* out, cudaStream_t stream) {
  if (M <= 0 || I <= 0) return;
  const bool vectorized = I % 8 == 0 && aligned16(gate_up) && aligned16(out);
  launch_dependent(silu_mul_kernel<T>, grid_for(vectorized ? M * I / 8 : M * I), kThreads, stream, gate_up, M, I, out, vectorized);
  CUDA_CHECK_LAUNCH(silu_mul_kernel);
}

template <typename T>
void add_in_place(T* x, const T* delta, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  const bool vectorized = n % 8 == 0 && aligned16(x) && aligned16(delta);
  launch_dependent(add_in_place_kernel<T>, grid_for(vectorized ? n / 8 : n), kThreads, stream, x, delta, n, vectorized);
  CUDA_CHECK_LAUNCH(add_in_place_kernel);
}

#define RUNLLM_INSTANTIATE_ELEMENTWISE(T)                                                                \
  template void add_bias_rows<T>(T*, const T*, int64_t, int64_t, cudaStream_t);                          \
  template void embedding_gather<T>(const T*, int64_t, const int32_t*, int64_t, T*, cudaStream_t);       \
  template void silu_mul<T>(const T*, int64_t, int64_t, T*, cudaStream_t);                               \
  template void add_in_place<T>(T*, const T*, int64_t, cudaStream_t);
RUNLLM_INSTANTIATE_ELEMENTWISE(__half)
RUNLLM_INSTANTIATE_ELEMENTWISE(__nv_bfloat16)

}  // namespace runllm::cuda
