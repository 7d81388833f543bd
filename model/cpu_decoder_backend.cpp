#include "model/cpu_decoder_backend.h"

#include "runtime/error.h"

namespace runllm {

void CpuDecoderBackend::reset(int64_t capacity) {
  if (cache_ && cache_->capacity() == capacity) {
    cache_->clear();
    return;
  }
  cache_.reset();
  cache_ = std::make_unique<KvCache>(model_.config(), capacity);
}

void CpuDecoderBackend::forward(const int32_t* tokens, int64_t M, int64_t first_logit_row, float* logits) {
  if (!cache_) throw Error("CpuDecoderBackend: reset() must size the cache first");
  model_.forward(tokens, M, *cache_, first_logit_row, logits);
}

void CpuDecoderBackend::run_for_sampling(const int32_t* tokens, int64_t M) {
  last_logits_.resize(static_cast<size_t>(model_.config().vocab_size));
  forward(tokens, M, M - 1, last_logits_.data());
}

int32_t CpuDecoderBackend::sample(Sampler& sampler, const SamplingParams&, const std::vector<int32_t>& history) {
  return sampler.sample(last_logits_.data(), model_.config().vocab_size, history);
}

}  // namespace runllm
