// libFuzzer target: the streaming detokenizer (and the UTF-8 checks under it) over token ids that
// split characters anywhere, with a fixed byte-level BPE vocabulary holding every byte, whole and
// partial multi-byte characters, special tokens, an unused id and ids past the end.
//
// Input: byte 0 picks how many of the ids are preceding context (low 3 bits); then little-endian
// u16 ids, taken modulo kIdRange. Checked beyond "no crash": every piece streamed is valid UTF-8,
// and without context the pieces plus flush equal decode() of the accepted ids, as tokenizer.h
// promises. The raw input also goes through find_invalid_utf8 / to_valid_utf8.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "tests/byte_level_alphabet.h"
#include "tokenizer/bpe_tokenizer.h"

namespace {

constexpr int32_t kIdRange = 272;  // ids 264 (unused) and 266..271 are not in the vocabulary

std::string byte_level(const std::string& raw) {
  std::string text;
  for (unsigned char byte : raw) text += runllm::test::byte_level_char(byte);
  return text;
}

std::unique_ptr<runllm::BpeTokenizer> make_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[runllm::test::byte_level_char(b)] = b;
  const char* multi_byte[] = {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\xA4\x96", "\xF0\x9F", "\xA4\x96", " the"};
  int id = 256;
  for (const char* raw : multi_byte) vocab[byte_level(raw)] = id++;
  nlohmann::json added = nlohmann::json::array();
  added.push_back({{"id", 262}, {"content", "<|im_start|>"}, {"special", true}});
  added.push_back({{"id", 263}, {"content", "<|im_end|>"}, {"special", true}});
  added.push_back({{"id", 265}, {"content", "\xE6\x97\xA5"}, {"special", false}});
  const nlohmann::json root = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
      {"added_tokens", added},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"decoder", {{"type", "ByteLevel"}}}};
  return runllm::BpeTokenizer::parse(root.dump(), "fuzz/detokenizer-tokenizer.json", runllm::TokenizerConfig{});
}

const runllm::BpeTokenizer& tokenizer() {
  static const std::unique_ptr<runllm::BpeTokenizer> instance = make_tokenizer();
  return *instance;
}

void require_valid_utf8(const std::string& text) {
  if (runllm::find_invalid_utf8(text) >= 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string raw(reinterpret_cast<const char*>(data), size);
  const std::string repaired = runllm::to_valid_utf8(raw);
  require_valid_utf8(repaired);
  if (runllm::find_invalid_utf8(raw) < 0 && repaired != raw) __builtin_trap();
  if (size == 0) return 0;

  const size_t context_count = data[0] & 7;
  std::vector<int32_t> ids;
  for (size_t i = 1; i + 1 < size; i += 2) ids.push_back((data[i] | (data[i + 1] << 8)) % kIdRange);
  const size_t split = std::min(context_count, ids.size());

  runllm::StreamingDetokenizer stream(tokenizer());
  std::vector<int32_t> context;
  for (size_t i = 0; i < split; ++i)
    if (ids[i] < tokenizer().vocab_size() && ids[i] != 264) context.push_back(ids[i]);
  stream.set_context(context);
  std::string streamed;
  std::vector<int32_t> accepted;
  for (size_t i = split; i < ids.size(); ++i) {
    try {
      const std::string piece = stream.push(ids[i]);
      require_valid_utf8(piece);
      streamed += piece;
      accepted.push_back(ids[i]);
    } catch (const runllm::Error&) {  // an id outside the vocabulary, refused before any state changes
    }
  }
  const std::string tail = stream.flush();
  require_valid_utf8(tail);
  streamed += tail;
  if (context.empty() && streamed != tokenizer().decode(accepted)) __builtin_trap();
  return 0;
}
