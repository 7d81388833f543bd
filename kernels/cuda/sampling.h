// Token sampling on the GPU from one row of fp32 logits, matching runllm::Sampler (runtime/sampler.h)
// token for token: the same logits and the same uniform number u give the same id.
//
// Chain (the CPU sampler's order): top-k -> top-p -> min-p -> temperature -> draw with u. Ties
// rank by the lower id, as on the CPU. The repeat penalty is not applied here: the caller passes
// logits that already carry it (or runs with the penalty off).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace runllm::cuda {

struct GpuSamplingParams {
  float temperature = 0.8f;  // 0 = greedy (argmax, ties -> lowest id)
  int top_k = 40;            // must be in [1, kMaxGpuTopK] and < vocab size when temperature > 0
  float top_p = 0.95f;       // 1 = off
  float min_p = 0.05f;       // 0 = off
};

// The GPU sampler sorts at most this many candidates in shared memory (one block).
constexpr int kMaxGpuTopK = 1024;

// Writes the chosen id to *token (device int32). u is the uniform number in [0, 1) the CPU sampler
// would draw (Sampler::uniform01: top 53 bits of one mt19937_64 output, times 2^-53). A NaN or +inf
// logit, or all logits -inf, writes -1 (the CPU sampler throws for these): the caller checks.
// Throws runllm::Error for parameters outside the GPU's range (with temperature > 0: top_k 0, above
// kMaxGpuTopK, or not below vocab_size).
void sample_token(const float* logits, int64_t vocab_size, const GpuSamplingParams& params, double u,
                  int32_t* token, cudaStream_t stream);

}  // namespace runllm::cuda
