// Tokenizer interface: byte-level BPE (tokenizer.json) and SentencePiece (tokenizer.model).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace runllm {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Encodes UTF-8 text. Added/special tokens written literally in the text ("<|im_start|>") are
  // matched first and become their ids, as HF tokenizers do. `add_bos` prepends BOS when the
  // tokenizer has one. Throws runllm::Error on invalid UTF-8 (naming the byte offset).
  virtual std::vector<int32_t> encode(const std::string& text, bool add_bos) const = 0;
  // The raw bytes one token stands for (may be a partial UTF-8 character); special tokens give
  // their text. Out-of-range ids throw.
  virtual std::string token_bytes(int32_t id) const = 0;
  // Decodes a whole sequence (for SentencePiece this handles the leading-space rule).
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;

  virtual int64_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  // The id of a token given by its text (special tokens like "<|im_end|>"), if the vocabulary has it.
  virtual std::optional<int32_t> token_id(const std::string& token_text) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // True when the tokenizer wants BOS at the start of a prompt (tokenizer_config add_bos_token).
  virtual bool adds_bos_by_default() const = 0;
};

// The BOS settings of DIR/tokenizer_config.json; keys the file lacks (or a missing file) stay empty.
struct TokenizerConfig {
  std::optional<std::string> bos_token;  // text of the BOS token
  std::optional<bool> add_bos_token;
};

// Loads DIR/tokenizer.json when it is byte-level BPE, else DIR/tokenizer.model (SentencePiece), with
// DIR/tokenizer_config.json for bos/add_bos_token. Throws naming the file on any problem.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

// Turns a stream of token ids into text without ever emitting half a UTF-8 character: bytes of an
// incomplete character are held back until the character completes. Invalid sequences are emitted
// as U+FFFD so output stays valid UTF-8. Text comes from decoding a short window of recent ids and
// emitting what the newest ids added, so tokenizer-specific decode rules (SentencePiece drops the
// first word's leading space) hold: pushes plus flush give exactly decode() of all the ids.
class StreamingDetokenizer {
 public:
  explicit StreamingDetokenizer(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  // Ids that precede the streamed ones (the prompt): they are never emitted, but the first pushed
  // token is decoded as their continuation (" Paris", not "Paris", after "The capital is").
  void set_context(const std::vector<int32_t>& preceding_ids);
  std::string push(int32_t id);  // text that became complete with this token (maybe empty)
  std::string flush();           // whatever is held back, invalid bytes as U+FFFD; ends the stream

 private:
  std::string emit_unread();

  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;     // window: already-emitted context ids, then unread ids
  size_t emitted_count_ = 0;     // how many of ids_ are already emitted
  std::string pending_;          // bytes of the unread ids (to see whether a character is incomplete)
};

// Validates UTF-8 (no overlongs, surrogates or code points above U+10FFFF); returns the byte offset
// where the first ill-formed sequence starts, or -1 when valid.
int64_t find_invalid_utf8(const std::string& text);
// Copies `bytes`, replacing each maximal ill-formed subsequence with U+FFFD (as Python's and Rust's
// lossy decoders do), so the result is valid UTF-8.
std::string to_valid_utf8(const std::string& bytes);

}  // namespace runllm
