// load_tokenizer, UTF-8 validation and the streaming detokenizer.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/json_parse.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace runllm {

namespace {

TokenizerConfig read_tokenizer_config(const std::string& path) {
  TokenizerConfig config;
  const std::optional<nlohmann::json> file = read_optional_json_file(path);
  if (!file) return config;
  try {
    const nlohmann::json& root = *file;
    if (root.contains("bos_token")) {
      const nlohmann::json& bos = root["bos_token"];
      // Either "<s>" or an AddedToken object {"content": "<s>", ...} (older files).
      if (bos.is_string()) config.bos_token = bos.get<std::string>();
      else if (bos.is_object()) config.bos_token = bos.at("content").get<std::string>();
    }
    if (root.contains("add_bos_token") && root["add_bos_token"].is_boolean())
      config.add_bos_token = root["add_bos_token"].get<bool>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": " + e.what());
  }
  return config;
}

// One UTF-8 sequence starting at `begin`. `valid` when it is a complete, well-formed character;
// otherwise `length` is its maximal well-formed prefix (at least 1 byte), per Unicode's
// "maximal subpart" rule that lossy decoders follow when inserting U+FFFD.
struct Utf8Sequence {
  size_t length;
  bool valid;
  bool truncated;  // well-formed so far but cut off by the end of the text
};

Utf8Sequence scan_utf8(const std::string& text, size_t begin) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(begin);
  if (lead < 0x80) return {1, true, false};
  size_t expected;
  unsigned char second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) expected = 2;
  else if (lead >= 0xE0 && lead <= 0xEF) {
    expected = 3;
    if (lead == 0xE0) second_min = 0xA0;  // no overlong forms
    if (lead == 0xED) second_max = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    expected = 4;
    if (lead == 0xF0) second_min = 0x90;
    if (lead == 0xF4) second_max = 0x8F;  // nothing above U+10FFFF
  } else {
    return {1, false, false};
  }
  size_t length = 1;
  for (; length < expected; ++length) {
    if (begin + length >= text.size()) return {length, false, true};
    const unsigned char c = byte(begin + length);
    const bool ok = length == 1 ? (c >= second_min && c <= second_max) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return {length, false, false};
  }
  return {expected, true, false};
}

// True when `bytes` ends inside a character that more bytes could still complete.
bool ends_with_incomplete_utf8(const std::string& bytes) {
  const size_t first = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t i = first; i < bytes.size(); ++i) {
    const Utf8Sequence sequence = scan_utf8(bytes, i);
    if (sequence.truncated) return true;
  }
  return false;
}

// Where `text` (valid UTF-8) stops agreeing with `before`, moved back to the start of a character:
// two different characters may share their lead byte (U+FFFD for context cut mid-character, and the
// character that the next token completes), and text cut there would not be valid UTF-8.
size_t common_character_prefix_length(const std::string& before, const std::string& text) {
  size_t n = 0;
  while (n < before.size() && n < text.size() && before[n] == text[n]) ++n;
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

// How many ids of the prompt are kept as context for the first streamed token.
constexpr size_t kContextIds = 8;

}  // namespace

int64_t find_invalid_utf8(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {  // ASCII fast path
      ++i;
      continue;
    }
    const Utf8Sequence sequence = scan_utf8(text, i);
    if (!sequence.valid) return static_cast<int64_t>(i);
    i += sequence.length;
  }
  return -1;
}

std::string to_valid_utf8(const std::string& bytes) {
  if (find_invalid_utf8(bytes) < 0) return bytes;
  std::string out;
  out.reserve(bytes.size() + 8);
  for (size_t i = 0; i < bytes.size();) {
    const Utf8Sequence sequence = scan_utf8(bytes, i);
    if (sequence.valid) out.append(bytes, i, sequence.length);
    else out += "\xEF\xBF\xBD";  // U+FFFD
    i += sequence.length;
  }
  return out;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(model_dir)) throw Error(model_dir + ": model directory does not exist");
  const TokenizerConfig config = read_tokenizer_config(model_dir + "/tokenizer_config.json");
  const std::string json_path = model_dir + "/tokenizer.json";
  const std::string model_path = model_dir + "/tokenizer.model";
  if (fs::exists(json_path)) {
    try {
      return std::make_unique<BpeTokenizer>(json_path, config);
    } catch (const Error&) {
      // Llama-2 and Mistral checkpoints ship a SentencePiece-style tokenizer.json (Metaspace, byte
      // fallback) beside tokenizer.model: the latter is the tokenizer then.
      if (!fs::exists(model_path)) throw;
    }
  }
  if (fs::exists(model_path)) return std::make_unique<SentencePieceTokenizer>(model_path, config);
  throw Error(model_dir + ": no tokenizer.json or tokenizer.model in the model directory");
}

// ---- StreamingDetokenizer -------------------------------------------------------------------------

void StreamingDetokenizer::set_context(const std::vector<int32_t>& preceding_ids) {
  const size_t keep = std::min(preceding_ids.size(), kContextIds);
  ids_.assign(preceding_ids.end() - keep, preceding_ids.end());
  emitted_count_ = ids_.size();
  pending_.clear();
}

std::string StreamingDetokenizer::push(int32_t id) {
  pending_ += tokenizer_.token_bytes(id);  // throws on a bad id before any state changes
  ids_.push_back(id);
  if (ends_with_incomplete_utf8(pending_)) return "";
  return emit_unread();
}

std::string StreamingDetokenizer::flush() {
  const std::string text = emitted_count_ < ids_.size() ? emit_unread() : std::string();
  ids_.clear();  // the stream ends: held-back bytes were emitted as U+FFFD
  emitted_count_ = 0;
  pending_.clear();
  return text;
}

// Decodes the window with and without the unread ids and emits the difference, so whatever the
// tokenizer's decode does at a sequence start applies only where the real sequence starts.
std::string StreamingDetokenizer::emit_unread() {
  const std::string all = tokenizer_.decode(ids_);
  const std::string before =
      tokenizer_.decode(std::vector<int32_t>(ids_.begin(), ids_.begin() + emitted_count_));
  std::string text = all.substr(common_character_prefix_length(before, all));
  // Slide the window to the ids just emitted, unless they decode to nothing on their own (control
  // tokens): a window must start with visible text for SentencePiece's first-word rule to be moot.
  std::vector<int32_t> unread(ids_.begin() + emitted_count_, ids_.end());
  if (!tokenizer_.decode(unread).empty()) ids_ = std::move(unread);
  emitted_count_ = ids_.size();
  pending_.clear();
  return text;
}

}  // namespace runllm
