#include "runtime/generator.h"

#include <chrono>

#include "model/cpu_decoder_backend.h"
#include "runtime/decoder_backend.h"
#include "runtime/error.h"
#include "tokenizer/tokenizer.h"

namespace runllm {

namespace {
double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

GenerationResult generate(const LlamaModel& model, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const std::function<void(const std::string&)>& on_text) {
  CpuDecoderBackend backend(model);
  return generate(backend, tokenizer, request, on_text);
}

GenerationResult generate(DecoderBackend& model, const Tokenizer& tokenizer, const GenerationRequest& request,
                          const std::function<void(const std::string&)>& on_text) {
  const int64_t prompt_length = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt_length == 0)
    throw Error("the prompt is empty after tokenization; give some text with --prompt or --prompt-file");
  if (prompt_length >= request.context_length)
    throw Error("the prompt is " + std::to_string(prompt_length) + " tokens, which does not fit the context of " +
                std::to_string(request.context_length) + " tokens (use --ctx to raise it, up to the model's " +
                std::to_string(model.config().max_position_embeddings) + ")");

  // Only as many positions as this request can use are allocated.
  const int64_t capacity = std::min(request.context_length, prompt_length + request.max_new_tokens);
  model.reset(capacity);
  return continue_generation(model, tokenizer, {}, request, on_text);
}

GenerationResult continue_generation(DecoderBackend& model, const Tokenizer& tokenizer,
                                     const std::vector<int32_t>& cached_ids, const GenerationRequest& request,
                                     const std::function<void(const std::string&)>& on_text) {
  const int64_t prompt_length = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt_length == 0) throw Error("continue_generation: no new tokens to run");
  if (model.length() != static_cast<int64_t>(cached_ids.size()))
    throw Error("continue_generation: the cache holds " + std::to_string(model.length()) + " positions, not the " +
                std::to_string(cached_ids.size()) + " ids given as its contents");
  if (model.length() + prompt_length >= model.capacity())
    throw Error(std::to_string(prompt_length) + " new tokens after " + std::to_string(model.length()) +
                " cached ones do not fit the context of " + std::to_string(model.capacity()) + " tokens");
  Sampler sampler(request.sampling);
  StreamingDetokenizer detokenizer(tokenizer);
  std::vector<int32_t> history = cached_ids;
  history.insert(history.end(), request.prompt_ids.begin(), request.prompt_ids.end());
  detokenizer.set_context(history);
  GenerationResult result;
  result.stop_reason = "max tokens";

  const auto prefill_start = std::chrono::steady_clock::now();
  model.run_for_sampling(request.prompt_ids.data(), prompt_length);
  result.prompt_seconds = seconds_since(prefill_start);

  // A GPU backend returns before its work is done: the first sample waits for it, so the prompt's
  // time ends, and the decode time starts, once the first token is known.
  auto decode_start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < request.max_new_tokens; ++step) {
    if (request.interrupt != nullptr && request.interrupt->load()) {
      result.stop_reason = "interrupted";
      break;
    }
    const int32_t token = model.sample(sampler, request.sampling, history);
    if (step == 0) {
      result.prompt_seconds = seconds_since(prefill_start);
      decode_start = std::chrono::steady_clock::now();
    }
    if (request.stop_ids.count(token) != 0) {
      result.stop_reason = "eos";
      break;
    }
    result.tokens.push_back(token);
    history.push_back(token);
    const std::string text = detokenizer.push(token);
    if (!text.empty()) on_text(text);
    if (step + 1 == request.max_new_tokens) break;
    if (model.length() >= model.capacity()) {
      result.stop_reason = "context full";
      break;
    }
    model.run_for_sampling(&token, 1);
  }
  const std::string rest = detokenizer.flush();
  if (!rest.empty()) on_text(rest);
  result.decode_seconds = seconds_since(decode_start);
  return result;
}

}  // namespace runllm
