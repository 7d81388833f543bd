// GPU sampler: one block of 1024 threads per row of logits (decode samples one row at a time).
//
// Each logit becomes a 64-bit key: an order-preserving encoding of the float in the high half and
// (2^32 - 1 - id) in the low half, so a larger key is exactly "higher logit, then lower id", the
// CPU sampler's ranks_before, and all keys are distinct. Greedy is a max-reduction over keys. For
// sampling, a radix select (8 passes of 8 bits over the row, histograms in shared memory) finds
// the k-th largest key; the k keys at or above it are bitonic-sorted in shared memory; the filters
// and the draw then run over that sorted prefix in double precision, in the CPU's order of
// summation (weights in parallel, running sums on one thread), so the same u picks the same token.
#include "kernels/cuda/sampling.h"

#include <cmath>
#include <string>

#include "runtime/cuda_check.h"

namespace runllm::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

__device__ __forceinline__ unsigned long long logit_key(float logit, int64_t id) {
  if (logit == 0.0f) logit = 0.0f;  // -0 == +0 on the CPU: one encoding for both
  unsigned bits = __float_as_uint(logit);
  bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (static_cast<unsigned long long>(bits) << 32) | (0xFFFFFFFFull - static_cast<unsigned long long>(id));
}

__device__ __forceinline__ int32_t key_id(unsigned long long key) {
  return static_cast<int32_t>(0xFFFFFFFFull - (key & 0xFFFFFFFFull));
}

__device__ __forceinline__ bool invalid_logit(float logit) { return isnan(logit) || logit == INFINITY; }

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* logits, int64_t vocab_size, int32_t* token) {
  __shared__ unsigned long long warp_best[kThreads / 32];
  unsigned long long best = 0;
  bool bad = false, any_finite = false;
  for (int64_t i = threadIdx.x; i < vocab_size; i += kThreads) {
    const float logit = logits[i];
    bad |= invalid_logit(logit);
    any_finite |= logit != -INFINITY;
    best = max(best, logit_key(logit, i));
  }
  bad = __syncthreads_or(bad);
  any_finite = __syncthreads_or(any_finite);
  for (int offset = 16; offset > 0; offset /= 2) best = max(best, __shfl_xor_sync(0xffffffffu, best, offset));
  if (threadIdx.x % 32 == 0) warp_best[threadIdx.x / 32] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) best = max(best, warp_best[w]);
    *token = (bad || !any_finite) ? -1 : key_id(best);
  }
}

__device__ __forceinline__ float key_logit(unsigned long long key) {
  unsigned bits = static_cast<unsigned>(key >> 32);
  bits = (bits & 0x80000000u) ? (bits & 0x7FFFFFFFu) : ~bits;
  return __uint_as_float(bits);
}

__global__ void __launch_bounds__(kThreads) top_k_sample_kernel(const float* logits, int64_t vocab_size,
                                                                GpuSamplingParams params, double u, int32_t* token) {
  __shared__ unsigned histogram[256];
  __shared__ unsigned long long prefix, prefix_mask;
  __shared__ unsigned remaining;
  __shared__ unsigned long long sorted[kMaxGpuTopK];
  __shared__ double weights[kMaxGpuTopK];
  __shared__ unsigned count;
  __shared__ int kept;

  const int k = static_cast<int>(min64(params.top_k, vocab_size));
  bool bad = false, any_finite = false;
  if (threadIdx.x == 0) {
    prefix = 0;
    prefix_mask = 0;
    remaining = static_cast<unsigned>(k);
    count = 0;
  }
  // Radix select of the k-th largest key, most significant digit first.
  for (int shift = 56; shift >= 0; shift -= 8) {
    if (threadIdx.x < 256) histogram[threadIdx.x] = 0;
    __syncthreads();
    const unsigned long long want = prefix, mask = prefix_mask;
    for (int64_t i = threadIdx.x; i < vocab_size; i += kThreads) {
      const float logit = logits[i];
      if (shift == 56) {
        bad |= invalid_logit(logit);
        any_finite |= logit != -INFINITY;
      }
      const unsigned long long key = logit_key(logit, i);
      if ((key & mask) == want) atomicAdd(&histogram[(key >> shift) & 0xFF], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      unsigned above = 0;
      int digit = 255;
      for (; digit > 0; --digit) {
        if (above + histogram[digit] >= remaining) break;
        above += histogram[digit];
      }
      remaining -= above;
      prefix |= static_cast<unsigned long long>(digit) << shift;
      prefix_mask |= 0xFFull << shift;
    }
    __syncthreads();
  }
  bad = __syncthreads_or(bad);
  any_finite = __syncthreads_or(any_finite);
  if (bad || !any_finite) {
    if (threadIdx.x == 0) *token = -1;
    return;
  }

  // The k keys >= the k-th largest (keys are distinct, so exactly k), then a descending sort.
  const unsigned long long threshold = prefix;
  for (int i = threadIdx.x; i < kMaxGpuTopK; i += kThreads) sorted[i] = 0;  // 0 ranks below every key
  __syncthreads();
  for (int64_t i = threadIdx.x; i < vocab_size; i += kThreads) {
    const unsigned long long key = logit_key(logits[i], i);
    if (key >= threshold) sorted[atomicAdd(&count, 1u)] = key;
  }
  __syncthreads();
  for (int size = 2; size <= kMaxGpuTopK; size *= 2) {
    for (int stride = size / 2; stride > 0; stride /= 2) {
      for (int i = threadIdx.x; i < kMaxGpuTopK; i += kThreads) {
        const int partner = i ^ stride;
        if (partner > i) {
          const bool descending = (i & size) == 0;
          const unsigned long long a = sorted[i], b = sorted[partner];
          if ((a < b) == descending) {
            sorted[i] = b;
            sorted[partner] = a;
          }
        }
      }
      __syncthreads();
    }
  }

  // sorted[0, k) is the top-k list, best first; the filters keep prefixes of it.
  const double max_logit = key_logit(sorted[0]);
  if (threadIdx.x == 0) kept = k;
  __syncthreads();
  if (params.top_p < 1.0f) {
    for (int i = threadIdx.x; i < k; i += kThreads) weights[i] = exp(static_cast<double>(key_logit(sorted[i])) - max_logit);
    __syncthreads();
    if (threadIdx.x == 0) {
      double total = 0;
      for (int i = 0; i < k; ++i) total += weights[i];
      const double target = static_cast<double>(params.top_p) * total;
      double cumulative = 0;
      for (int i = 0; i < k; ++i) {
        cumulative += weights[i];
        if (cumulative >= target) {
          kept = i + 1;
          break;
        }
      }
    }
    __syncthreads();
  }
  if (params.min_p > 0.0f) {
    // p >= min_p * p_max  <=>  logit >= max_logit + log(min_p), as the CPU sampler tests it.
    if (threadIdx.x == 0) {
      const double cutoff = max_logit + log(static_cast<double>(params.min_p));
      int n = 0;
      while (n < kept && static_cast<double>(key_logit(sorted[n])) >= cutoff) ++n;
      kept = n;
    }
    __syncthreads();
  }
  const int n = kept;
  const double inverse_temperature = 1.0 / static_cast<double>(params.temperature);
  for (int i = threadIdx.x; i < n; i += kThreads)
    weights[i] = exp((static_cast<double>(key_logit(sorted[i])) - max_logit) * inverse_temperature);
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    for (int i = 0; i < n; ++i) total += weights[i];
    const double target = u * total;
    double cumulative = 0;
    int32_t chosen = key_id(sorted[n - 1]);  // target rounded up to total
    for (int i = 0; i < n; ++i) {
      cumulative += weights[i];
      if (target < cumulative) {
        chosen = key_id(sorted[i]);
        break;
      }
    }
    *token = chosen;
  }
}

}  // namespace

void sample_token(const float* logits, int64_t vocab_size, const GpuSamplingParams& params, double u,
                  int32_t* token, cudaStream_t stream) {
  if (vocab_size <= 0 || vocab_size > 0x7FFFFFFF)
    throw Error("cuda::sample_token: vocab size must be in [1, 2^31), got " + std::to_string(vocab_size));
  if (!(params.temperature >= 0.0f) || !std::isfinite(params.temperature))
    throw Error("cuda::sample_token: temperature must be a finite number >= 0, got " +
                std::to_string(params.temperature));
  if (params.temperature == 0.0f) {
    argmax_kernel<<<1, kThreads, 0, stream>>>(logits, vocab_size, token);
    CUDA_CHECK_LAUNCH(argmax_kernel);
    return;
  }
  // top_k >= vocab_size is "off" on the CPU, which then draws in id order rather than best first.
  if (params.top_k < 1 || params.top_k > kMaxGpuTopK || params.top_k >= vocab_size)
    throw Error("cuda::sample_token: top_k must be in [1, " + std::to_string(kMaxGpuTopK) +
                "] and below the vocab size for GPU sampling, got " + std::to_string(params.top_k));
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f) || !(params.min_p >= 0.0f && params.min_p <= 1.0f))
    throw Error("cuda::sample_token: top_p must be in (0, 1] and min_p in [0, 1]");
  if (!(u >= 0.0 && u < 1.0)) throw Error("cuda::sample_token: u must be in [0, 1), got " + std::to_string(u));
  top_k_sample_kernel<<<1, kThreads, 0, stream>>>(logits, vocab_size, params, u, token);
  CUDA_CHECK_LAUNCH(top_k_sample_kernel);
}

}  // namespace runllm::cuda
