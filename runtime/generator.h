// The generation loop: prefill the prompt as one batch, then decode one token at a time, streaming
// text through the detokenizer as tokens are made.
#pragma once
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "runtime/sampler.h"

namespace runllm {

class DecoderBackend;
class LlamaModel;
class Tokenizer;

struct GenerationRequest {
  std::vector<int32_t> prompt_ids;
  int64_t max_new_tokens = 256;
  int64_t context_length = 0;  // KV cache capacity; the prompt must fit, generation stops at its end
  std::set<int32_t> stop_ids;  // any of these ends generation (not printed)
  SamplingParams sampling;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, stop token excluded
  std::string stop_reason;      // "eos", "max tokens", "context full"
  double prompt_seconds = 0.0;  // prefill time
  double decode_seconds = 0.0;  // time for the tokens after the first
};

// `on_text` receives complete UTF-8 text as soon as it is known. Throws runllm::Error when the prompt
// is empty or does not fit the context. The backend's cache is reset to the request's needs.
GenerationResult generate(DecoderBackend& backend, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const std::function<void(const std::string&)>& on_text);
// The CPU reference path (a CpuDecoderBackend over `model`).
GenerationResult generate(const LlamaModel& model, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const std::function<void(const std::string&)>& on_text);

}  // namespace runllm
