// Dequantizes a GroupQuantLayout weight into a dense [N, K] matrix of the activation type (the
// prompt path: cuBLAS multiplies it afterwards). One thread per chunk of 32 packed values; each
// value goes back to its original input column perm[j]. Runs every layout, non-uniform groups too.
#include <string>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/group_quant.h"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

template <typename T>
__global__ void group_quant_dequantize_kernel(GroupQuantLayout w, T* out) {
  wait_for_previous_kernel();
  const int64_t chunks_per_row = w.padded_K / 32;
  const int64_t chunk = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (chunk >= w.N * chunks_per_row) return;
  const int64_t n = chunk / chunks_per_row, c = chunk % chunks_per_row;
  const uint32_t* words = w.words + n * w.words_per_row + c * w.bits;
  const __half* scales = reinterpret_cast<const __half*>(w.scales) + n * w.groups;
  const uint32_t mask = (1u << w.bits) - 1u;
  for (int i = 0; i < 32; ++i) {
    const int64_t j = c * 32 + i;
    if (j >= w.K) break;
    const int bit = w.bits * i, word = bit / 32, shift = bit % 32;
    uint32_t q = words[word] >> shift;
    if (shift + w.bits > 32) q |= words[word + 1] << (32 - shift);
    q &= mask;
    const int32_t g = w.group_of[j];
    const float value = (float(q) - float(w.zeros[n * w.groups + g])) * __half2float(scales[g]);
    const int64_t k = w.perm ? w.perm[j] : j;
    out[n * w.K + k] = from_float<T>(value);
  }
}

}  // namespace

template <typename T>
void group_quant_dequantize(const GroupQuantLayout& weight, T* out, cudaStream_t stream) {
  const int64_t chunks = weight.N * (weight.padded_K / 32);
  if (chunks <= 0) return;
  constexpr int kThreads = 256;
  const int64_t blocks = (chunks + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) throw Error("cuda::group_quant_dequantize: matrix too large");
  launch_dependent(group_quant_dequantize_kernel<T>, static_cast<unsigned>(blocks), kThreads, stream, weight, out);
  CUDA_CHECK_LAUNCH(group_quant_dequantize_kernel);
}

template void group_quant_dequantize<__half>(const GroupQuantLayout&, __half*, cudaStream_t);
template void group_quant_dequantize<__nv_bfloat16>(const GroupQuantLayout&, __nv_bfloat16*, cudaStream_t);

}  // namespace runllm::cuda
