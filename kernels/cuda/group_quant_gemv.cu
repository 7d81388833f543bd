// Fused dequantize + GEMV for group-wise quantized weights (2, 3, 4, 8 bits), few activation rows.
//
// One warp per output row; each lane takes chunks of 32 packed values (exactly `bits` words, one
// 16-byte load for 4 bits), which lie in one group. Converting an integer to float is the slow part
// of a naive kernel (I2F runs at a quarter of the FMA rate), so each value is placed in the mantissa
// of 1.0f instead: f = 1 + q / 2^bits exactly, one shift and one LOP3. With the chunk's sums
// Σ f·x and Σ x the group's contribution is
//     Σ (q - z)·x = 2^bits·Σ f·x - (2^bits + z)·Σ x,
// where both terms have the magnitude of the result (no cancellation to speak of in fp32). The
// scale multiplies once per chunk. Act-order weights gather their activation columns through perm.
// M rows of activations share every weight load (MT = 1, 2, 4, 8 accumulators per lane).
#include <string>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/group_quant.h"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;  // one output row each
constexpr int kMaxTileRows = 8;    // activation rows per launch

template <int BITS>
__device__ __forceinline__ void load_chunk(const uint32_t* row, int64_t chunk, uint32_t (&words)[BITS]) {
  const uint32_t* p = row + chunk * BITS;
  if constexpr (BITS == 4) {
    const uint4 v = __ldcs(reinterpret_cast<const uint4*>(p));
    words[0] = v.x, words[1] = v.y, words[2] = v.z, words[3] = v.w;
  } else if constexpr (BITS == 8) {
    const uint4 a = __ldcs(reinterpret_cast<const uint4*>(p));
    const uint4 b = __ldcs(reinterpret_cast<const uint4*>(p) + 1);
    words[0] = a.x, words[1] = a.y, words[2] = a.z, words[3] = a.w;
    words[4] = b.x, words[5] = b.y, words[6] = b.z, words[7] = b.w;
  } else if constexpr (BITS == 2) {
    const uint2 v = __ldcs(reinterpret_cast<const uint2*>(p));
    words[0] = v.x, words[1] = v.y;
  } else {
#pragma unroll
    for (int i = 0; i < BITS; ++i) words[i] = __ldcs(p + i);
  }
}

// f[i] = 1 + q_i / 2^BITS for the 32 values of a chunk (value i at stream bits BITS*i).
template <int BITS>
__device__ __forceinline__ void unpack_chunk(const uint32_t (&words)[BITS], float (&f)[32]) {
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    constexpr uint32_t kMask = (1u << BITS) - 1u;
    const int bit = BITS * i, word = bit / 32, shift = bit % 32;
    uint32_t q;
    if (shift + BITS <= 32) q = (words[word] >> shift) & kMask;
    else q = __funnelshift_r(words[word], words[word + 1], shift) & kMask;
    f[i] = __uint_as_float(0x3F800000u | (q << (23 - BITS)));
  }
}

template <typename T>
__device__ __forceinline__ void load_x_chunk(const T* x_row, const int32_t* perm, int64_t column0, float (&x)[32]) {
  if (perm) {
#pragma unroll
    for (int i = 0; i < 32; ++i) x[i] = to_float(x_row[__ldg(perm + column0 + i)]);
  } else {
    const Vec8<T>* v = reinterpret_cast<const Vec8<T>*>(x_row + column0);
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      float part[8];
      unpack8(v[u], part);
#pragma unroll
      for (int e = 0; e < 8; ++e) x[8 * u + e] = part[e];
    }
  }
}

template <typename T, int BITS, int MT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) group_quant_gemv_kernel(GroupQuantGemvArgs<T> args) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const GroupQuantLayout& w = args.weight;
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (n >= w.N) return;  // the whole warp leaves; no block-wide barrier follows
  const int64_t K = w.K, chunks = K / 32, chunks_per_group = w.group_size / 32;
  const uint32_t* row = w.words + n * w.words_per_row;
  const __half* scales = reinterpret_cast<const __half*>(w.scales) + n * w.groups;
  const uint8_t* zeros = w.zeros + n * w.groups;
  constexpr float kLevels = float(1 << BITS);
  float acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0.0f;
  for (int64_t c = lane; c < chunks; c += 32) {
    uint32_t words[BITS];
    load_chunk<BITS>(row, c, words);
    const int64_t g = c / chunks_per_group;
    const float scale = __half2float(scales[g]);
    const float shifted_zero = kLevels + float(zeros[g]);
    float f[32];
    unpack_chunk<BITS>(words, f);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m >= args.M) break;
      float x[32];
      load_x_chunk(args.x + m * K, w.perm, c * 32, x);
      float fx = 0.0f, xs = 0.0f;
#pragma unroll
      for (int i = 0; i < 32; ++i) {
        fx = fmaf(f[i], x[i], fx);
        xs += x[i];
      }
      acc[m] = fmaf(scale, fmaf(kLevels, fx, -shifted_zero * xs), acc[m]);
    }
  }
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    if (m >= args.M) break;
    float sum = acc[m];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) {
      if (args.bias) sum += to_float(args.bias[n]);
      args.y[m * w.N + n] = from_float<T>(sum);
    }
  }
}

template <typename T, int BITS>
void launch_tile(const GroupQuantGemvArgs<T>& args, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>((args.weight.N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  const dim3 block(kWarpsPerBlock * 32);
  if (args.M == 1) launch_dependent(group_quant_gemv_kernel<T, BITS, 1>, blocks, block, stream, args);
  else if (args.M == 2) launch_dependent(group_quant_gemv_kernel<T, BITS, 2>, blocks, block, stream, args);
  else if (args.M <= 4) launch_dependent(group_quant_gemv_kernel<T, BITS, 4>, blocks, block, stream, args);
  else launch_dependent(group_quant_gemv_kernel<T, BITS, 8>, blocks, block, stream, args);
  CUDA_CHECK_LAUNCH(group_quant_gemv_kernel);
}

}  // namespace

bool group_quant_gemv_supports(const GroupQuantLayout& w) {
  const bool bits_ok = w.bits == 2 || w.bits == 3 || w.bits == 4 || w.bits == 8;
  const size_t alignment = w.bits == 4 || w.bits == 8 ? 16 : w.bits == 2 ? 8 : 4;
  return bits_ok && w.uniform_groups && w.K > 0 && w.K % 32 == 0 && w.group_size > 0 && w.group_size % 32 == 0 &&
         reinterpret_cast<uintptr_t>(w.words) % alignment == 0;
}

template <typename T>
void group_quant_gemv(const GroupQuantGemvArgs<T>& args, cudaStream_t stream) {
  if (args.M <= 0 || args.weight.N <= 0) return;
  if (!group_quant_gemv_supports(args.weight))
    throw Error("cuda::group_quant_gemv: needs uniform groups of a multiple of 32 columns and K % 32 == 0, got K=" +
                std::to_string(args.weight.K) + " group size " + std::to_string(args.weight.group_size));
  if (args.weight.N > int64_t(0x7fffffff) * kWarpsPerBlock) throw Error("cuda::group_quant_gemv: N too large");
  if (!args.weight.perm && reinterpret_cast<uintptr_t>(args.x) % 16 != 0)
    throw Error("cuda::group_quant_gemv: x must be 16-byte aligned");
  for (int64_t m0 = 0; m0 < args.M; m0 += kMaxTileRows) {
    GroupQuantGemvArgs<T> tile = args;
    tile.M = std::min<int64_t>(kMaxTileRows, args.M - m0);
    tile.x = args.x + m0 * args.weight.K;
    tile.y = args.y + m0 * args.weight.N;
    switch (args.weight.bits) {
      case 2: launch_tile<T, 2>(tile, stream); break;
      case 3: launch_tile<T, 3>(tile, stream); break;
      case 4: launch_tile<T, 4>(tile, stream); break;
      default: launch_tile<T, 8>(tile, stream); break;
    }
  }
}

template void group_quant_gemv<__half>(const GroupQuantGemvArgs<__half>&, cudaStream_t);
template void group_quant_gemv<__nv_bfloat16>(const GroupQuantGemvArgs<__nv_bfloat16>&, cudaStream_t);

}  // namespace runllm::cuda
