// DecoderBackend on the CPU reference path: LlamaModel::forward with an fp32 KvCache and the CPU
// Sampler, exactly the operations the CPU-only generator ran before backends existed.
#pragma once
#include <memory>
#include <vector>

#include "model/llama_model.h"
#include "runtime/decoder_backend.h"

namespace runllm {

class CpuDecoderBackend : public DecoderBackend {
 public:
  explicit CpuDecoderBackend(const LlamaModel& model) : model_(model) {}
  const ModelConfig& config() const override { return model_.config(); }
  std::string device_name() const override { return "cpu"; }
  void reset(int64_t capacity) override;
  int64_t length() const override { return cache_ ? cache_->length() : 0; }
  int64_t capacity() const override { return cache_ ? cache_->capacity() : 0; }
  void forward(const int32_t* tokens, int64_t M, int64_t first_logit_row, float* logits) override;
  void run_for_sampling(const int32_t* tokens, int64_t M) override;
  int32_t sample(Sampler& sampler, const SamplingParams& params, const std::vector<int32_t>& history) override;

 private:
  const LlamaModel& model_;
  std::unique_ptr<KvCache> cache_;
  std::vector<float> last_logits_;  // [V]
};

}  // namespace runllm
