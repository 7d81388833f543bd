// Random fp16 values generated on the device: weights of synthetic models for benchmarks (speed
// does not depend on the values, but zeros would hide work, so they are random and non-zero).
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

// data[i] = scale * u_i, u_i uniform in [-1, 1) from a counter-based hash of (seed, i).
void fill_random_half(__half* data, int64_t n, uint64_t seed, float scale, cudaStream_t stream);

}  // namespace runllm::cuda
