#include "runtime/generator.h"

#include <chrono>

#include "model/llama_model.h"
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
  const int64_t prompt_length = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt_length == 0) throw Error("the prompt is empty after tokenization; give some text with --prompt");
  if (prompt_length >= request.context_length)
    throw Error("the prompt is " + std::to_string(prompt_length) + " tokens, which does not fit the context of " +
                std::to_string(request.context_length) + " tokens (use --ctx to raise it, up to the model's " +
                std::to_string(model.config().max_position_embeddings) + ")");

  const int64_t vocab = model.config().vocab_size;
  // Only as many positions as this request can use are allocated.
  const int64_t capacity = std::min(request.context_length, prompt_length + request.max_new_tokens);
  KvCache cache(model.config(), capacity);
  Sampler sampler(request.sampling);
  StreamingDetokenizer detokenizer(tokenizer);
  detokenizer.set_context(request.prompt_ids);
  std::vector<float> logits(static_cast<size_t>(vocab));
  std::vector<int32_t> history = request.prompt_ids;
  GenerationResult result;
  result.stop_reason = "max tokens";

  const auto prefill_start = std::chrono::steady_clock::now();
  model.forward(request.prompt_ids.data(), prompt_length, cache, prompt_length - 1, logits.data());
  result.prompt_seconds = seconds_since(prefill_start);

  const auto decode_start = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < request.max_new_tokens; ++step) {
    const int32_t token = sampler.sample(logits.data(), vocab, history);
    if (request.stop_ids.count(token) != 0) {
      result.stop_reason = "eos";
      break;
    }
    result.tokens.push_back(token);
    history.push_back(token);
    const std::string text = detokenizer.push(token);
    if (!text.empty()) on_text(text);
    if (step + 1 == request.max_new_tokens) break;
    if (cache.length() >= cache.capacity()) {
      result.stop_reason = "context full";
      break;
    }
    model.forward(&token, 1, cache, 0, logits.data());
  }
  const std::string rest = detokenizer.flush();
  if (!rest.empty()) on_text(rest);
  result.decode_seconds = seconds_since(decode_start);
  return result;
}

}  // namespace runllm
