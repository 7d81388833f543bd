// Random values generated on the device: weights of synthetic models for benchmarks (speed does not
// depend on the values, but zeros would hide work, so they are random and non-zero).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace runllm::cuda {

// data[i] = scale * u_i rounded to T (__half or __nv_bfloat16), u_i uniform in [-1, 1) from a
// counter-based hash of (seed, i).
template <typename T>
void fill_random(T* data, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

// The first bytes / 4 words of data set to random bits (packed quantized weights, int8 weights).
void fill_random_bits(void* data, size_t bytes, uint64_t seed, cudaStream_t stream);

}  // namespace runllm::cuda
