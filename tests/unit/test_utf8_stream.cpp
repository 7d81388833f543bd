// UTF-8 validation, lossy repair and the streaming detokenizer, on a tokenizer whose tokens are
// single bytes (id = byte value), so multi-byte characters always arrive split across tokens.
#include <string>
#include <vector>

#include "runtime/error.h"
#include "tests/catch.h"
#include "tokenizer/tokenizer.h"

using namespace runllm;

namespace {

class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(const std::string& text, bool) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string token_bytes(int32_t id) const override {
    if (id < 0 || id > 255) throw Error("byte tokenizer: id out of range");
    return std::string(1, static_cast<char>(id));
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string bytes;
    for (int32_t id : ids) bytes += token_bytes(id);
    return to_valid_utf8(bytes);
  }
  int64_t vocab_size() const override { return 256; }
  std::optional<int32_t> bos_id() const override { return std::nullopt; }
  std::optional<int32_t> token_id(const std::string&) const override { return std::nullopt; }
  bool is_special(int32_t) const override { return false; }
  bool adds_bos_by_default() const override { return false; }
};

const std::string kReplacement = "\xEF\xBF\xBD";  // U+FFFD

std::vector<std::string> push_each_byte(StreamingDetokenizer& stream, const std::string& bytes) {
  std::vector<std::string> outputs;
  for (unsigned char c : bytes) outputs.push_back(stream.push(c));
  return outputs;
}

}  // namespace

TEST_CASE("find_invalid_utf8 reports the first ill-formed sequence", "[tokenizer]") {
  CHECK(find_invalid_utf8("") == -1);
  CHECK(find_invalid_utf8("plain ASCII") == -1);
  CHECK(find_invalid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == -1);
  CHECK(find_invalid_utf8(std::string("a\0b", 3)) == -1);    // NUL is a character
  CHECK(find_invalid_utf8("ab\xFF") == 2);                   // never a UTF-8 byte
  CHECK(find_invalid_utf8("ab\x80") == 2);                   // lone continuation
  CHECK(find_invalid_utf8("a\xC0\x80") == 1);                // overlong NUL
  CHECK(find_invalid_utf8("a\xE0\x9F\xBF") == 1);            // overlong 3-byte
  CHECK(find_invalid_utf8("\xED\xA0\x80") == 0);             // surrogate U+D800
  CHECK(find_invalid_utf8("xx\xF4\x90\x80\x80") == 2);       // above U+10FFFF
  CHECK(find_invalid_utf8("xyz\xE2\x82") == 3);              // truncated at the end
  CHECK(find_invalid_utf8("\xE2\x82(") == 0);                // truncated in the middle
}

TEST_CASE("to_valid_utf8 replaces each maximal ill-formed subpart with one U+FFFD", "[tokenizer]") {
  // Expected values are what Python's bytes.decode("utf-8", "replace") gives.
  CHECK(to_valid_utf8("ok \xF0\x9F\x98\x80") == "ok \xF0\x9F\x98\x80");
  CHECK(to_valid_utf8("\xF0\x9F\x98" "A") == kReplacement + "A");
  CHECK(to_valid_utf8("\xE0\x80") == kReplacement + kReplacement);
  CHECK(to_valid_utf8("\xED\xA0\x80") == kReplacement + kReplacement + kReplacement);
  CHECK(to_valid_utf8("a\xFF" "b") == "a" + kReplacement + "b");
  CHECK(to_valid_utf8("\xE2\x82") == kReplacement);
}

TEST_CASE("Streaming detokenizer holds a split character until it completes", "[tokenizer]") {
  ByteTokenizer tokenizer;
  StreamingDetokenizer stream(tokenizer);
  const std::vector<std::string> outputs = push_each_byte(stream, "a\xF0\x9F\x91\x8D" "b\xC3\xA9");
  CHECK(outputs == std::vector<std::string>{"a", "", "", "", "\xF0\x9F\x91\x8D", "b", "", "\xC3\xA9"});
  CHECK(stream.flush().empty());
}

TEST_CASE("Streaming detokenizer turns invalid bytes into U+FFFD and matches decode", "[tokenizer]") {
  ByteTokenizer tokenizer;
  const std::vector<std::string> inputs = {
      "\xFF" "a",                        // invalid at once
      "\xE2\x82" "A",                    // incomplete, then broken by an ASCII byte
      "x\xF0\x9F\x98",                   // incomplete at the end: flushed as U+FFFD
      "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9",  // ZWJ sequence
      "\xC0\x80\xED\xA0\x80 ok",
  };
  for (const std::string& input : inputs) {
    StreamingDetokenizer stream(tokenizer);
    std::string streamed;
    for (const std::string& piece : push_each_byte(stream, input)) {
      CHECK(find_invalid_utf8(piece) == -1);
      streamed += piece;
    }
    streamed += stream.flush();
    CHECK(streamed == tokenizer.decode(tokenizer.encode(input, false)));
  }
  StreamingDetokenizer stream(tokenizer);
  CHECK(stream.push(0xFF) == kReplacement);
  CHECK(stream.push(0xE2).empty());
  CHECK(stream.flush() == kReplacement);
  CHECK_THROWS_AS(stream.push(300), Error);
}
