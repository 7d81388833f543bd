// Causal GQA attention, fp16 or bf16 in/out, fp32 math. Scores are kept in the log2 domain (q is scaled by
// log2(e) / sqrt(head_dim) once) so the online softmax uses exp2f.
//
// Versions: this is v1, CUDA-core FMA with shared-memory tiles. Prefill: a block owns 16 query
// rows of one head (4 warps x 4 rows); 32 keys per tile, lane j scores key j, then each lane
// accumulates its head_dim / 32 output columns from V with the tile's probabilities broadcast by
// shuffles. Decode: a block owns one kv head, all of its group's query heads and a chunk of keys
// (split-K, "flash decoding"), a second kernel combines the chunks. A tensor-core (mma) prefill is
// the next version; decode is bound by reading K/V, which this one does once per kv head.
#include "kernels/cuda/attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kKeysPerTile = 32;

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// ---------------------------------------------------------------------------------------------
// Prefill
constexpr int kPrefillWarps = 4;
constexpr int kRowsPerWarp = 4;
constexpr int kRowsPerBlock = kPrefillWarps * kRowsPerWarp;

template <typename T, int D>
__global__ void __launch_bounds__(kPrefillWarps * 32) attention_prefill_kernel(AttentionArgs<T> args, float q_scale) {
  wait_for_previous_kernel();  // launched by launch_dependent
  constexpr int kCols = D / 32;  // output columns per lane: lane + 32 * c
  __shared__ float q_tile[kRowsPerBlock][D];
  __shared__ float k_tile[kKeysPerTile][D + 1];  // +1: lanes read different rows of one column
  __shared__ float v_tile[kKeysPerTile][D];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t head = blockIdx.y;
  const int64_t kv_head = head / (args.num_heads / args.num_kv_heads);
  const int64_t kv_stride = args.num_kv_heads * D;
  const int64_t out_stride = args.num_heads * D;
  const int64_t row0 = int64_t(blockIdx.x) * kRowsPerBlock;
  const int64_t rows_here = min64(kRowsPerBlock, args.M - row0);
  const int64_t key_end = args.past + row0 + rows_here;  // the block's last row sees keys < key_end

  for (int i = threadIdx.x; i < kRowsPerBlock * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    q_tile[r][d] = r < rows_here ? to_float(args.q[(row0 + r) * args.q_stride + head * D + d]) * q_scale : 0.0f;
  }

  float row_max[kRowsPerWarp], row_sum[kRowsPerWarp], acc[kRowsPerWarp][kCols];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    row_max[r] = -INFINITY;
    row_sum[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[r][c] = 0.0f;
  }

  for (int64_t tile = 0; tile < key_end; tile += kKeysPerTile) {
    __syncthreads();  // the previous tile is consumed (and q_tile written, the first time)
    for (int i = threadIdx.x; i < kKeysPerTile * D / 8; i += blockDim.x) {
      const int j = i / (D / 8), d8 = (i % (D / 8)) * 8;
      const int64_t key = tile + j;
      Vec8<T> kv[2] = {};
      if (key < key_end) {
        kv[0] = *reinterpret_cast<const Vec8<T>*>(args.k_cache + key * kv_stride + kv_head * D + d8);
        kv[1] = *reinterpret_cast<const Vec8<T>*>(args.v_cache + key * kv_stride + kv_head * D + d8);
      }
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 kf = to_float2(kv[0].h[e]), vf = to_float2(kv[1].h[e]);
        k_tile[j][d8 + 2 * e] = kf.x;
        k_tile[j][d8 + 2 * e + 1] = kf.y;
        v_tile[j][d8 + 2 * e] = vf.x;
        v_tile[j][d8 + 2 * e + 1] = vf.y;
      }
    }
    __syncthreads();

    // Scores of key (tile + lane) against the warp's rows; one K element serves all rows.
    float score[kRowsPerWarp] = {};
    const int wrow0 = warp * kRowsPerWarp;
#pragma unroll 8
    for (int d = 0; d < D; ++d) {
      const float k = k_tile[lane][d];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) score[r] += q_tile[wrow0 + r][d] * k;
    }
    const int64_t key = tile + lane;
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      if (wrow0 + r >= rows_here) continue;  // warp-uniform
      const int64_t visible_end = args.past + row0 + wrow0 + r + 1;  // causal: keys < visible_end
      const float s = key < visible_end ? score[r] : -INFINITY;
      const float new_max = fmaxf(row_max[r], warp_max(s));  // finite: key 0 is in the first tile
      const float correction = exp2f(row_max[r] - new_max);
      const float p = exp2f(s - new_max);
      row_sum[r] = row_sum[r] * correction + warp_sum(p);
      row_max[r] = new_max;
#pragma unroll
      for (int c = 0; c < kCols; ++c) acc[r][c] *= correction;
      const int tile_keys = static_cast<int>(min64(kKeysPerTile, visible_end - tile));
      for (int j = 0; j < tile_keys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[r][c] += pj * v_tile[j][lane + 32 * c];
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    if (row >= rows_here) continue;
    const float inv_sum = 1.0f / row_sum[r];
    T* out = args.out + (row0 + row) * out_stride + head * D;
#pragma unroll
    for (int c = 0; c < kCols; ++c) out[lane + 32 * c] = from_float<T>(acc[r][c] * inv_sum);
  }
}

// ---------------------------------------------------------------------------------------------
// Decode (M == 1), split along the keys.
constexpr int kDecodeWarps = 4;
constexpr int kMaxGroup = 8;    // query heads per kv head handled by one block
constexpr int kMaxSplits = 256; // chunks per head; the workspace is sized for this many

// Partial state of one (query head, chunk): D weighted sums, then the max and the sum of exps.
template <typename T, int D>
__global__ void __launch_bounds__(kDecodeWarps * 32) attention_decode_kernel(AttentionArgs<T> args, float q_scale,
                                                                             int64_t chunk, int splits,
                                                                             float* workspace) {
  wait_for_previous_kernel();  // launched by launch_dependent
  constexpr int kCols = D / 32;  // lane owns columns lane * kCols .. + kCols - 1 (contiguous loads)
  __shared__ float q_group[kMaxGroup][D];
  __shared__ float warp_max_s[kDecodeWarps][kMaxGroup], warp_sum_s[kDecodeWarps][kMaxGroup];
  __shared__ float warp_acc[kDecodeWarps][kMaxGroup][D];

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int split = blockIdx.x;
  const int64_t kv_head = blockIdx.y;
  const int group = static_cast<int>(args.num_heads / args.num_kv_heads);
  const int64_t kv_stride = args.num_kv_heads * D;
  // With device_past the grid is sized for the largest past; chunks beyond this step's keys see
  // none and write an empty state (max -inf), which the combine skips.
  const int64_t keys = (args.device_past ? *args.device_past : args.past) + 1;
  const int64_t key_begin = split * chunk;
  const int64_t key_end = min64(keys, key_begin + chunk);

  for (int i = threadIdx.x; i < group * D; i += blockDim.x)
    q_group[i / D][i % D] = to_float(args.q[(kv_head * group + i / D) * D + i % D]) * q_scale;
  __syncthreads();

  float row_max[kMaxGroup], row_sum[kMaxGroup], acc[kMaxGroup][kCols];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    row_max[g] = -INFINITY;
    row_sum[g] = 0.0f;
#pragma unroll
    for (int c = 0; c < kCols; ++c) acc[g][c] = 0.0f;
  }

  const T* k_base = args.k_cache + kv_head * D;
  const T* v_base = args.v_cache + kv_head * D;
  for (int64_t tile = key_begin + warp * kKeysPerTile; tile < key_end; tile += kDecodeWarps * kKeysPerTile) {
    const int64_t key = tile + lane;
    float score[kMaxGroup] = {};
    if (key < key_end) {
      const Vec8<T>* k_row = reinterpret_cast<const Vec8<T>*>(k_base + key * kv_stride);
#pragma unroll 4
      for (int d8 = 0; d8 < D / 8; ++d8) {
        float k[8];
        unpack8(k_row[d8], k);
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g >= group) break;
#pragma unroll
          for (int e = 0; e < 8; ++e) score[g] += q_group[g][d8 * 8 + e] * k[e];
        }
      }
    }
    const int tile_keys = static_cast<int>(min64(kKeysPerTile, key_end - tile));
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= group) break;
      const float s = key < key_end ? score[g] : -INFINITY;
      const float new_max = fmaxf(row_max[g], warp_max(s));  // finite: lane 0's key is in range
      const float correction = exp2f(row_max[g] - new_max);
      score[g] = exp2f(s - new_max);  // now the probability weight
      row_sum[g] = row_sum[g] * correction + warp_sum(score[g]);
      row_max[g] = new_max;
#pragma unroll
      for (int c = 0; c < kCols; ++c) acc[g][c] *= correction;
    }
    for (int j = 0; j < tile_keys; ++j) {
      const T* v_row = v_base + (tile + j) * kv_stride + lane * kCols;
      float v[kCols];
      if constexpr (kCols == 4) {
        const uint2 raw = *reinterpret_cast<const uint2*>(v_row);
        const float2 a = to_float2(*reinterpret_cast<const Pair<T>*>(&raw.x));
        const float2 b = to_float2(*reinterpret_cast<const Pair<T>*>(&raw.y));
        v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
      } else {
        const float2 a = to_float2(*reinterpret_cast<const Pair<T>*>(v_row));
        v[0] = a.x, v[1] = a.y;
      }
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g >= group) break;
        const float pj = __shfl_sync(0xffffffffu, score[g], j);
#pragma unroll
        for (int c = 0; c < kCols; ++c) acc[g][c] += pj * v[c];
      }
    }
  }

  // Merge the warps' states, then write this chunk's partial state per query head.
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= group) break;
    if (lane == 0) {
      warp_max_s[warp][g] = row_max[g];
      warp_sum_s[warp][g] = row_sum[g];
    }
#pragma unroll
    for (int c = 0; c < kCols; ++c) warp_acc[warp][g][lane * kCols + c] = acc[g][c];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < group * (D + 2); i += blockDim.x) {
    const int g = i / (D + 2), d = i % (D + 2);
    float block_max = -INFINITY;
    for (int w = 0; w < kDecodeWarps; ++w) block_max = fmaxf(block_max, warp_max_s[w][g]);
    float value = 0.0f;
    if (d == D) {
      value = block_max;
    } else {
      for (int w = 0; w < kDecodeWarps; ++w) {
        if (warp_max_s[w][g] == -INFINITY) continue;  // a warp that saw no keys of this chunk
        const float weight = exp2f(warp_max_s[w][g] - block_max);
        value += weight * (d < D ? warp_acc[w][g][d] : warp_sum_s[w][g]);
      }
    }
    const int64_t head = kv_head * group + g;
    workspace[(head * splits + split) * (D + 2) + d] = value;
  }
}

template <typename T, int D>
__global__ void attention_decode_combine_kernel(const float* workspace, int splits, T* out) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int64_t head = blockIdx.x;
  const float* partial = workspace + head * splits * (D + 2);
  float global_max = -INFINITY;
  for (int s = 0; s < splits; ++s) global_max = fmaxf(global_max, partial[s * (D + 2) + D]);
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float numerator = 0.0f, denominator = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* p = partial + s * (D + 2);
      if (p[D] == -INFINITY) continue;
      const float weight = exp2f(p[D] - global_max);
      numerator += weight * p[d];
      denominator += weight * p[D + 1];
    }
    out[head * D + d] = from_float<T>(numerator / denominator);
  }
}

template <typename T>
__global__ void kv_cache_append_kernel(KvAppendArgs<T> args) {
  wait_for_previous_kernel();  // launched by launch_dependent
  const int64_t per_row = args.kv_dim / 8;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < args.M * per_row;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = i / per_row, c = i % per_row;
    const int64_t past = args.device_past ? *args.device_past : args.past;
    const T* row = args.qkv + m * args.qkv_stride;
    reinterpret_cast<Vec8<T>*>(args.k_cache + (past + m) * args.kv_dim)[c] =
        reinterpret_cast<const Vec8<T>*>(row + args.k_column)[c];
    reinterpret_cast<Vec8<T>*>(args.v_cache + (past + m) * args.kv_dim)[c] =
        reinterpret_cast<const Vec8<T>*>(row + args.v_column)[c];
  }
}

template <typename T>
void check_shape(const AttentionArgs<T>& args, const char* who) {
  const bool ok = (args.head_dim == 64 || args.head_dim == 128) && args.num_kv_heads > 0 &&
                  args.num_heads % args.num_kv_heads == 0 && args.past >= 0 && args.M >= 0;
  if (!ok)
    throw Error(std::string(who) + ": expected head_dim 64 or 128 and num_heads a multiple of num_kv_heads, got " +
                "head_dim " + std::to_string(args.head_dim) + ", " + std::to_string(args.num_heads) + " heads, " +
                std::to_string(args.num_kv_heads) + " kv heads");
}

float q_scale_for(int64_t head_dim) { return kLog2e / std::sqrt(static_cast<float>(head_dim)); }

}  // namespace

template <typename T>
void attention_prefill(const AttentionArgs<T>& args, cudaStream_t stream) {
  check_shape(args, "cuda::attention_prefill");
  if (args.M == 0) return;
  const dim3 grid(static_cast<unsigned>((args.M + kRowsPerBlock - 1) / kRowsPerBlock),
                  static_cast<unsigned>(args.num_heads));
  if (args.head_dim == 64)
    launch_dependent(attention_prefill_kernel<T, 64>, grid, kPrefillWarps * 32, stream, args, q_scale_for(64));
  else
    launch_dependent(attention_prefill_kernel<T, 128>, grid, kPrefillWarps * 32, stream, args, q_scale_for(128));
  CUDA_CHECK_LAUNCH(attention_prefill_kernel);
}

size_t attention_decode_workspace_bytes(int64_t num_heads, int64_t head_dim) {
  return static_cast<size_t>(num_heads) * kMaxSplits * static_cast<size_t>(head_dim + 2) * sizeof(float);
}

template <typename T>
void attention_decode(const AttentionArgs<T>& args, float* workspace, size_t workspace_bytes, cudaStream_t stream) {
  check_shape(args, "cuda::attention_decode");
  if (args.M != 1) throw Error("cuda::attention_decode: expected M == 1, got " + std::to_string(args.M));
  if (args.num_heads / args.num_kv_heads > kMaxGroup)
    throw Error("cuda::attention_decode: at most " + std::to_string(kMaxGroup) + " query heads per kv head, got " +
                std::to_string(args.num_heads / args.num_kv_heads));
  if (workspace_bytes < attention_decode_workspace_bytes(args.num_heads, args.head_dim))
    throw Error("cuda::attention_decode: workspace of " + std::to_string(workspace_bytes) + " bytes, need " +
                std::to_string(attention_decode_workspace_bytes(args.num_heads, args.head_dim)));
  // Enough chunks to give every SM about two blocks, none shorter than 4 tiles of keys.
  static const int sm_count = [] {
    int device = 0, count = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
    return count;
  }();
  const int64_t keys = args.past + 1;
  const int64_t wanted = std::max<int64_t>(1, (2 * sm_count + args.num_kv_heads - 1) / args.num_kv_heads);
  const int64_t by_length = (keys + 4 * kKeysPerTile - 1) / (4 * kKeysPerTile);
  int64_t splits = std::min<int64_t>({wanted, by_length, kMaxSplits});
  const int64_t chunk = (keys + splits - 1) / splits;
  splits = (keys + chunk - 1) / chunk;  // no empty chunk
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(args.num_kv_heads));
  const int s = static_cast<int>(splits);
  if (args.head_dim == 64) {
    launch_dependent(attention_decode_kernel<T, 64>, grid, kDecodeWarps * 32, stream, args, q_scale_for(64), chunk, s, workspace);
    CUDA_CHECK_LAUNCH(attention_decode_kernel);
    launch_dependent(attention_decode_combine_kernel<T, 64>, static_cast<unsigned>(args.num_heads), 64, stream, workspace, s,
                                                                                                 args.out);
  } else {
    launch_dependent(attention_decode_kernel<T, 128>, grid, kDecodeWarps * 32, stream, args, q_scale_for(128), chunk, s, workspace);
    CUDA_CHECK_LAUNCH(attention_decode_kernel);
    launch_dependent(attention_decode_combine_kernel<T, 128>, static_cast<unsigned>(args.num_heads), 128, stream, workspace, s,
                                                                                                   args.out);
  }
  CUDA_CHECK_LAUNCH(attention_decode_combine_kernel);
}

template <typename T>
void kv_cache_append(const KvAppendArgs<T>& args, cudaStream_t stream) {
  if (args.M <= 0) return;
  const bool aligned = args.kv_dim % 8 == 0 && args.qkv_stride % 8 == 0 && args.k_column % 8 == 0 &&
                       args.v_column % 8 == 0 && reinterpret_cast<uintptr_t>(args.qkv) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(args.k_cache) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(args.v_cache) % 16 == 0;
  if (!aligned) throw Error("cuda::kv_cache_append: kv_dim, qkv stride and columns must be multiples of 8 elements");
  const int64_t work = args.M * args.kv_dim / 8;
  launch_dependent(kv_cache_append_kernel<T>, static_cast<unsigned>(std::min<int64_t>((work + 255) / 256, 65535)), 256, stream, 
      args);
  CUDA_CHECK_LAUNCH(kv_cache_append_kernel);
}

#define RUNLLM_INSTANTIATE_ATTENTION(T)                                                      \
  template void attention_prefill<T>(const AttentionArgs<T>&, cudaStream_t);                 \
  template void attention_decode<T>(const AttentionArgs<T>&, float*, size_t, cudaStream_t);  \
  template void kv_cache_append<T>(const KvAppendArgs<T>&, cudaStream_t);
RUNLLM_INSTANTIATE_ATTENTION(__half)
RUNLLM_INSTANTIATE_ATTENTION(__nv_bfloat16)

}  // namespace runllm::cuda
