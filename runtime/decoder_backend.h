// The decoder as the generation loop and the perplexity tool see it, whatever runs it: the CPU
// reference (model/cpu_decoder_backend.h) or the GPU (model/cuda_llama_model.h). A backend owns
// its KV cache; every call runs tokens at the positions after those already cached.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "runtime/sampler.h"

namespace runllm {

class DecoderBackend {
 public:
  virtual ~DecoderBackend() = default;
  virtual const ModelConfig& config() const = 0;
  // For the end-of-run line: "cpu" or "cuda (NVIDIA H100 80GB HBM3)".
  virtual std::string device_name() const = 0;

  // Empties the cache and makes room for `capacity` positions (throws when that does not fit).
  virtual void reset(int64_t capacity) = 0;
  virtual int64_t length() const = 0;    // positions cached
  virtual int64_t capacity() const = 0;

  // Runs M tokens and writes fp32 logits of rows first_logit_row .. M - 1 to host memory
  // ([M - first_logit_row, V]). Throws when the cache would overflow or an id is out of range.
  virtual void forward(const int32_t* tokens, int64_t M, int64_t first_logit_row, float* logits) = 0;

  // Generation: run tokens (the prompt, or the token just chosen) and keep the last row's logits
  // for the next sample(). `sampler` is seeded from `params`; a backend either uses it on host
  // logits or reproduces its draws on the device, so both give the same tokens for the same logits.
  virtual void run_for_sampling(const int32_t* tokens, int64_t M) = 0;
  virtual int32_t sample(Sampler& sampler, const SamplingParams& params, const std::vector<int32_t>& history) = 0;
};

}  // namespace runllm
