// Elementwise kernels: memory-bound, one pass over the data. Each has a 16-byte vector path (8
// halves per thread and access) taken when the row length and pointers allow it, and a scalar path
// for the rest; the vector path is what real shapes (hidden sizes divisible by 8) use.
#include "kernels/cuda/elementwise.h"

#include <algorithm>

#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr int kThreads = 256;

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

unsigned grid_for(int64_t work_items) {
  // Grid-stride loops below: enough blocks to fill an H100 many times over, capped for huge n.
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((work_items + kThreads - 1) / kThreads, 65535)));
}

// One 16-byte chunk of 8 halves.
struct alignas(16) Half8 {
  __half2 h[4];
};

__global__ void embedding_gather_kernel(const __half* table, int64_t H, const int32_t* ids, int64_t M,
                                        __half* out, bool vectorized) {
  const int64_t total = vectorized ? M * (H / 8) : M * H;
  const int64_t per_row = vectorized ? H / 8 : H;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = i / per_row, c = i % per_row;
    const int64_t src_row = ids[m];
    if (vectorized) {
      reinterpret_cast<Half8*>(out + m * H)[c] = reinterpret_cast<const Half8*>(table + src_row * H)[c];
    } else {
      out[m * H + c] = table[src_row * H + c];
    }
  }
}

__device__ __forceinline__ float silu(float g) { return g / (1.0f + expf(-g)); }

__global__ void silu_mul_kernel(const __half* gate_up, int64_t M, int64_t I, __half* out, bool vectorized) {
  const int64_t per_row = vectorized ? I / 8 : I;
  const int64_t total = M * per_row;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = i / per_row, c = i % per_row;
    const __half* gate = gate_up + m * 2 * I;
    const __half* up = gate + I;
    if (vectorized) {
      const Half8 g = reinterpret_cast<const Half8*>(gate)[c];
      const Half8 u = reinterpret_cast<const Half8*>(up)[c];
      Half8 r;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 gf = __half22float2(g.h[k]), uf = __half22float2(u.h[k]);
        r.h[k] = __floats2half2_rn(silu(gf.x) * uf.x, silu(gf.y) * uf.y);
      }
      reinterpret_cast<Half8*>(out + m * I)[c] = r;
    } else {
      out[m * I + c] = __float2half_rn(silu(__half2float(gate[c])) * __half2float(up[c]));
    }
  }
}

__global__ void add_in_place_kernel(__half* x, const __half* delta, int64_t n, bool vectorized) {
  const int64_t total = vectorized ? n / 8 : n;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    if (vectorized) {
      Half8 a = reinterpret_cast<Half8*>(x)[i];
      const Half8 b = reinterpret_cast<const Half8*>(delta)[i];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const float2 af = __half22float2(a.h[k]), bf = __half22float2(b.h[k]);
        a.h[k] = __floats2half2_rn(af.x + bf.x, af.y + bf.y);
      }
      reinterpret_cast<Half8*>(x)[i] = a;
    } else {
      x[i] = __float2half_rn(__half2float(x[i]) + __half2float(delta[i]));
    }
  }
}

__global__ void half_to_float_kernel(const __half* in, int64_t n, float* out) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __half2float(in[i]);
}

__global__ void add_bias_rows_kernel(__half* y, const __half* bias, int64_t M, int64_t N) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < M * N; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = __float2half_rn(__half2float(y[i]) + __half2float(bias[i % N]));
}

}  // namespace

void add_bias_rows(__half* y, const __half* bias, int64_t M, int64_t N, cudaStream_t stream) {
  if (M <= 0 || N <= 0) return;
  add_bias_rows_kernel<<<grid_for(M * N), kThreads, 0, stream>>>(y, bias, M, N);
  CUDA_CHECK_LAUNCH(add_bias_rows_kernel);
}

void embedding_gather(const __half* table, int64_t H, const int32_t* ids, int64_t M, __half* out,
                      cudaStream_t stream) {
  if (M <= 0 || H <= 0) return;
  const bool vectorized = H % 8 == 0 && aligned16(table) && aligned16(out);
  embedding_gather_kernel<<<grid_for(vectorized ? M * H / 8 : M * H), kThreads, 0, stream>>>(table, H, ids, M, out,
                                                                                            vectorized);
  CUDA_CHECK_LAUNCH(embedding_gather_kernel);
}

void silu_mul(const __half* gate_up, int64_t M, int64_t I, __half* out, cudaStream_t stream) {
  if (M <= 0 || I <= 0) return;
  const bool vectorized = I % 8 == 0 && aligned16(gate_up) && aligned16(out);
  silu_mul_kernel<<<grid_for(vectorized ? M * I / 8 : M * I), kThreads, 0, stream>>>(gate_up, M, I, out, vectorized);
  CUDA_CHECK_LAUNCH(silu_mul_kernel);
}

void add_in_place(__half* x, const __half* delta, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  const bool vectorized = n % 8 == 0 && aligned16(x) && aligned16(delta);
  add_in_place_kernel<<<grid_for(vectorized ? n / 8 : n), kThreads, 0, stream>>>(x, delta, n, vectorized);
  CUDA_CHECK_LAUNCH(add_in_place_kernel);
}

void half_to_float(const __half* in, int64_t n, float* out, cudaStream_t stream) {
  if (n <= 0) return;
  half_to_float_kernel<<<grid_for(n), kThreads, 0, stream>>>(in, n, out);
  CUDA_CHECK_LAUNCH(half_to_float_kernel);
}

}  // namespace runllm::cuda
