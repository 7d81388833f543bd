// GEMV for decode. Reading W is the whole cost (2 bytes per weight, each used once), so the kernel
// is built to keep HBM busy: one warp per output row, W read in 16-byte vectors with a streaming
// hint (read once, evict first, so x stays cached for the other warps), four vectors per lane in
// flight before the first is used, fp32 dot products reduced across the warp by shuffles. cuBLAS's
// M = 1 path is the comparison (run-llm bench prints both against the copy bandwidth).
#include "kernels/cuda/gemv.h"

#include <string>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;   // one output row each
constexpr int kVectorsInFlight = 4; // per lane per loop step

template <typename T>
__device__ __forceinline__ float dot8(const uint4& w_bits, const uint4& x_bits) {
  float w[8], x[8];
  unpack8(reinterpret_cast<const Vec8<T>&>(w_bits), w);
  unpack8(reinterpret_cast<const Vec8<T>&>(x_bits), x);
  float sum = 0.0f;
#pragma unroll
  for (int e = 0; e < 8; ++e) sum = fmaf(w[e], x[e], sum);
  return sum;
}

template <typename T, typename Out>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) gemv_kernel(GemvArgs<T, Out> args) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int lane = threadIdx.x % 32;
  const int64_t row = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (row >= args.N) return;  // the whole warp leaves; there is no block-wide barrier
  const int64_t vectors = args.K / 8;
  const uint4* w = reinterpret_cast<const uint4*>(args.weight + row * args.K);
  const uint4* x = reinterpret_cast<const uint4*>(args.x);
  float acc = 0.0f;
  int64_t v = lane;
  for (; v + 32 * (kVectorsInFlight - 1) < vectors; v += 32 * kVectorsInFlight) {
    uint4 wv[kVectorsInFlight], xv[kVectorsInFlight];
#pragma unroll
    for (int u = 0; u < kVectorsInFlight; ++u) {
      wv[u] = __ldcs(w + v + 32 * u);
      xv[u] = __ldg(x + v + 32 * u);
    }
#pragma unroll
    for (int u = 0; u < kVectorsInFlight; ++u) acc += dot8<T>(wv[u], xv[u]);
  }
  for (; v < vectors; v += 32) acc += dot8<T>(__ldcs(w + v), __ldg(x + v));
  for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  if (lane == 0) {
    if (args.bias) acc += to_float(args.bias[row]);
    args.y[row] = from_float<Out>(acc);
  }
}

}  // namespace

bool gemv_supports(int64_t K, const void* x, const void* weight) {
  return K > 0 && K % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(weight) % 16 == 0;
}

template <typename T, typename Out>
void gemv(const GemvArgs<T, Out>& args, cudaStream_t stream) {
  if (args.N <= 0) return;
  if (!gemv_supports(args.K, args.x, args.weight))
    throw Error("cuda::gemv: K must be a positive multiple of 8 and x, weight 16-byte aligned, got K=" +
                std::to_string(args.K));
  const int64_t blocks = (args.N + kWarpsPerBlock - 1) / kWarpsPerBlock;
  if (blocks > 0x7fffffff) throw Error("cuda::gemv: N=" + std::to_string(args.N) + " is too large");
  launch_dependent(gemv_kernel<T, Out>, static_cast<unsigned>(blocks), kWarpsPerBlock * 32, stream, args);
  CUDA_CHECK_LAUNCH(gemv_kernel);
}

template void gemv<__half, __half>(const GemvArgs<__half, __half>&, cudaStream_t);
template void gemv<__half, float>(const GemvArgs<__half, float>&, cudaStream_t);
template void gemv<__nv_bfloat16, __nv_bfloat16>(const GemvArgs<__nv_bfloat16, __nv_bfloat16>&, cudaStream_t);
template void gemv<__nv_bfloat16, float>(const GemvArgs<__nv_bfloat16, float>&, cudaStream_t);

}  // namespace runllm::cuda
