// libFuzzer target: tokenizer.json through the byte-level BPE loader, then the encoder on a text.
// Input: the tokenizer.json text, a NUL byte, the text to encode (JSON text never holds a raw NUL).
#include <cstddef>
#include <cstdint>
#include <string>

#include "runtime/error.h"
#include "tokenizer/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t separator = input.find('\0');
  const std::string json_text = input.substr(0, separator);
  const std::string text = separator == std::string::npos ? std::string() : input.substr(separator + 1);
  std::unique_ptr<runllm::BpeTokenizer> tokenizer;
  try {
    tokenizer = runllm::BpeTokenizer::parse(json_text, "fuzz/tokenizer.json", runllm::TokenizerConfig{});
  } catch (const runllm::Error&) {
    return 0;
  }
  try {
    const std::vector<int32_t> ids = tokenizer->encode(text, true);
    for (int32_t id : ids) {
      tokenizer->token_bytes(id);  // every id the encoder makes must be in the vocabulary
      tokenizer->is_special(id);
    }
    const std::string decoded = tokenizer->decode(ids);
    if (runllm::find_invalid_utf8(decoded) >= 0) __builtin_trap();  // decode promises valid UTF-8
    runllm::StreamingDetokenizer stream(*tokenizer);
    for (int32_t id : ids) stream.push(id);
    stream.flush();
  } catch (const runllm::Error&) {
  }
  tokenizer->token_id(text);
  return 0;
}
