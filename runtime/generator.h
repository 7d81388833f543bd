// The generation loop: prefill the prompt as one batch, then decode one token at a time, streaming
// text through the detokenizer as tokens are made.
#pragma once
#include <atomic>
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
  // Checked before every token: when it becomes true generation stops with stop_reason "interrupted"
  // (interactive chat's Ctrl-C). Null: never.
  const std::atomic<bool>* interrupt = nullptr;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, stop token excluded
  std::string stop_reason;      // "eos", "max tokens", "context full", "interrupted"
  double prompt_seconds = 0.0;  // prefill time
  double decode_seconds = 0.0;  // time for the tokens after the first
};

// `on_text` receives complete UTF-8 text as soon as it is known. Throws runllm::Error when the prompt
// is empty or does not fit the context. The backend's cache is reset to the request's needs.
GenerationResult generate(DecoderBackend& backend, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const std::function<void(const std::string&)>& on_text);
// Continues a sequence the backend already holds: `cached_ids` are the ids in its cache (they give the
// detokenizer its context and the repeat penalty its history), request.prompt_ids the new ids, run as
// one batch after them. The cache is not reset; the new ids must fit with a position to spare.
GenerationResult continue_generation(DecoderBackend& backend, const Tokenizer& tokenizer,
                                     const std::vector<int32_t>& cached_ids, const GenerationRequest& request,
                                     const std::function<void(const std::string&)>& on_text);
// The CPU reference path (a CpuDecoderBackend over `model`).
GenerationResult generate(const LlamaModel& model, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const std::function<void(const std::string&)>& on_text);

}  // namespace runllm
