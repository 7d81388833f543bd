// `run-llm --model DIR --chat -i`: a multi-turn conversation read from stdin, one line per user turn.
// The KV cache keeps the conversation between turns, so each turn prefills only its own tokens.
#pragma once
#include <cstdint>
#include <set>
#include <string>

#include "runtime/sampler.h"
#include "tokenizer/chat_template.h"

namespace runllm {
class DecoderBackend;
class Tokenizer;
}  // namespace runllm

namespace runllm::cli {

struct InteractiveChatSettings {
  ChatFormat format = ChatFormat::ChatML;
  std::string system_prompt;
  std::string bos_text;          // prepended by formats whose template writes BOS itself
  std::set<int32_t> stop_ids;    // end-of-sequence ids and the format's end-of-turn token
  int64_t max_new_tokens = 256;  // per answer
  int64_t context_length = 0;    // KV positions for the whole conversation
  SamplingParams sampling;       // turn k samples with seed + k - 1
  std::string first_message;     // --prompt, sent as the first turn when not empty
  bool verbose = false;
};

// Runs the conversation until /exit, end of input or Ctrl-C at the prompt; Ctrl-C during an answer
// stops that answer only. Returns the exit status.
int run_interactive_chat(DecoderBackend& backend, const Tokenizer& tokenizer, const InteractiveChatSettings& settings);

}  // namespace runllm::cli
