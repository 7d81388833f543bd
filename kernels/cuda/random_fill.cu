#include "kernels/cuda/random_fill.h"

#include <algorithm>

#include "kernels/cuda/activation_types.cuh"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

// splitmix64: a counter-based generator, so each element is independent of the launch shape.
__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <typename T>
__global__ void fill_random_kernel(T* data, int64_t n, uint64_t seed, float scale) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t bits = splitmix64(seed ^ (static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ull));
    const float u = static_cast<float>(bits >> 40) * (1.0f / 8388608.0f) - 1.0f;  // 24 bits -> [-1, 1)
    data[i] = from_float<T>(scale * u);
  }
}

__global__ void fill_random_bits_kernel(uint32_t* data, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    data[i] = static_cast<uint32_t>(splitmix64(seed ^ (static_cast<uint64_t>(i) * 0xD1B54A32D192ED03ull)) >> 32);
}

}  // namespace

void fill_random_bits(void* data, size_t bytes, uint64_t seed, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(bytes / 4);
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65536);
  fill_random_bits_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(static_cast<uint32_t*>(data), n, seed);
  CUDA_CHECK_LAUNCH(fill_random_bits_kernel);
}

template <typename T>
void fill_random(T* data, int64_t n, uint64_t seed, float scale, cudaStream_t stream) {
  if (n <= 0) return;
  const int64_t blocks = std::min<int64_t>((n + 255) / 256, 65536);
  fill_random_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(data, n, seed, scale);
  CUDA_CHECK_LAUNCH(fill_random_kernel);
}

template void fill_random<__half>(__half*, int64_t, uint64_t, float, cudaStream_t);
template void fill_random<__nv_bfloat16>(__nv_bfloat16*, int64_t, uint64_t, float, cudaStream_t);

}  // namespace runllm::cuda
