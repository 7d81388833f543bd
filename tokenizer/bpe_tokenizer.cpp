#include "tokenizer/bpe_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <queue>

#include "runtime/error.h"
#include "runtime/json_parse.h"
#include "runtime/vocab_limit.h"

namespace runllm {

using nlohmann::json;

// ---- GPT-2 byte alphabet -------------------------------------------------------------------------

namespace {

// GPT-2's bytes_to_unicode: printable ASCII and Latin-1 bytes keep their code point, the other 68
// bytes map to U+0100, U+0101, ... in byte order, so every byte becomes a visible character.
struct ByteAlphabet {
  std::array<uint32_t, 256> byte_to_code_point{};
  std::array<int, 324> code_point_to_byte{};  // -1 for code points outside the alphabet

  ByteAlphabet() {
    code_point_to_byte.fill(-1);
    uint32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      byte_to_code_point[b] = printable ? static_cast<uint32_t>(b) : next_extra++;
      code_point_to_byte[byte_to_code_point[b]] = b;
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

// UTF-8 of an alphabet character (all below U+0800, so one or two bytes).
void append_utf8(uint32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}


// Byte-alphabet text -> raw bytes. A token holding a character outside the alphabet is taken as
// its own UTF-8 text, as HF's ByteLevel decoder does.
std::string from_byte_level(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char lead = text[i];
    uint32_t code_point = lead;
    size_t length = 1;
    if (lead >= 0xC0 && lead < 0xE0 && i + 1 < text.size()) {
      code_point = ((lead & 0x1F) << 6) | (text[i + 1] & 0x3F);
      length = 2;
    }
    const int byte = code_point < 324 && (length == 2 || lead < 0x80)
                         ? byte_alphabet().code_point_to_byte[code_point] : -1;
    if (byte < 0) return text;
    out += static_cast<char>(byte);
    i += length;
  }
  return out;
}

size_t utf8_char_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// HF's Oniguruma reads \s as Unicode White_Space; PCRE2's \s also takes U+180E (no longer White_Space
// since Unicode 6.3), so \s and \S are spelled out as the property.
std::string with_unicode_white_space(const std::string& pattern) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '\\' || i + 1 == pattern.size()) {
      out += pattern[i];
    } else {
      const char escaped = pattern[++i];  // the pair is consumed whole, so "\\s" stays literal
      out += escaped == 's' ? "\\p{White_Space}" : escaped == 'S' ? "\\P{White_Space}" : std::string{'\\', escaped};
    }
  }
  return out;
}

bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool is_ascii_word(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

}  // namespace

std::string to_byte_level(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char b : raw) append_utf8(byte_alphabet().byte_to_code_point[b], out);
  return out;
}

// ---- Compiled pre-tokenizer pattern -------------------------------------------------------------

// PCRE2 in UTF + UCP mode, so \p{L} \p{N} \s follow Unicode as HF's Oniguruma patterns do.
class PreTokenizerRegex {
 public:
  PreTokenizerRegex(const std::string& pattern, bool literal, const std::string& where) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    // LITERAL refuses UCP. \C would match half a character, and matching skips the UTF check.
    const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C);
    const std::string compiled = literal ? pattern : with_unicode_white_space(pattern);
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(compiled.data()), compiled.size(), options,
                          &error_code, &error_offset, nullptr);
    if (!code_) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof(message));
      throw Error(where + ": cannot compile pre-tokenizer pattern at offset " +
                  std::to_string(error_offset) + ": " + reinterpret_cast<char*>(message));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is absent
  }
  ~PreTokenizerRegex() { pcre2_code_free(code_); }
  PreTokenizerRegex(const PreTokenizerRegex&) = delete;
  PreTokenizerRegex& operator=(const PreTokenizerRegex&) = delete;

  // All non-overlapping matches [begin, end) in order. The text was validated as UTF-8 once, so
  // the per-call UTF check (which would rescan the text on every call) is skipped.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const {
    std::vector<std::pair<size_t, size_t>> matches;
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(code_, nullptr);
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t start = 0;
    while (start <= text.size()) {
      const int rc = pcre2_match(code_, subject, text.size(), start, PCRE2_NO_UTF_CHECK, data, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {  // e.g. a resource limit on a huge input: never tokenize the rest silently wrong
        pcre2_match_data_free(data);
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        throw Error("pre-tokenizer pattern failed at byte " + std::to_string(start) + ": " +
                    reinterpret_cast<char*>(message));
      }
      const PCRE2_SIZE* vector = pcre2_get_ovector_pointer(data);
      matches.emplace_back(vector[0], vector[1]);
      // After an empty match, resume one character later (as Oniguruma's iterator does).
      start = vector[1] > vector[0] ? vector[1]
              : vector[1] < text.size() ? vector[1] + utf8_char_length(text[vector[1]])
                                        : text.size() + 1;
    }
    pcre2_match_data_free(data);
    return matches;
  }

 private:
  pcre2_code* code_ = nullptr;
};

// ---- Loading --------------------------------------------------------------------------------------

namespace {

std::string type_of(const json& component) {
  return component.contains("type") && component["type"].is_string()
             ? component["type"].get<std::string>() : std::string("(no type)");
}

}  // namespace

BpeTokenizer::BpeTokenizer(const std::string& tokenizer_json_path, const TokenizerConfig& config)
    : BpeTokenizer(read_json_file(tokenizer_json_path), tokenizer_json_path, config) {}

std::unique_ptr<BpeTokenizer> BpeTokenizer::parse(const std::string& json_text, const std::string& source_name,
                                                  const TokenizerConfig& config) {
  return std::unique_ptr<BpeTokenizer>(new BpeTokenizer(parse_json(json_text, source_name), source_name, config));
}

BpeTokenizer::BpeTokenizer(const json& root, const std::string& source_name, const TokenizerConfig& config)
    : path_(source_name) {
  try {
    normalizer_ = TextNormalizer(root.value("normalizer", json()), path_);
    const json& decoder = root.value("decoder", json());
    if (!decoder.is_null() && type_of(decoder) != "ByteLevel")
      throw Error(path_ + ": decoder type '" + type_of(decoder) + "' is not supported (expected ByteLevel)");
    if (!root.contains("model")) throw Error(path_ + ": no \"model\"");
    parse_model(root["model"]);
    parse_added_tokens(root.value("added_tokens", json::array()));
    parse_pre_tokenizer(root.value("pre_tokenizer", json()));
    parse_bos(root.value("post_processor", json()), config);
  } catch (const json::exception& e) {
    throw Error(path_ + ": unexpected structure: " + e.what());
  }
}

BpeTokenizer::~BpeTokenizer() = default;

int32_t BpeTokenizer::read_token_id(const json& id, const std::string& token) const {
  // nlohmann stores every non-negative JSON integer as unsigned.
  if (!id.is_number_unsigned() || id.get<uint64_t>() >= static_cast<uint64_t>(kMaxVocabSize))
    throw Error(path_ + ": token '" + token + "' has id " + id.dump() + ", expected an integer from 0 to " +
                std::to_string(kMaxVocabSize - 1));
  return static_cast<int32_t>(id.get<uint64_t>());
}

void BpeTokenizer::parse_model(const json& model) {
  if (model.contains("type") && model["type"] != "BPE")
    throw Error(path_ + ": model type '" + type_of(model) + "' is not supported (expected BPE)");
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() > 0)
    throw Error(path_ + ": BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty())
      throw Error(path_ + ": BPE " + key + " is not supported");
  ignore_merges_ = model.value("ignore_merges", false);

  std::unordered_map<std::string, int32_t> vocab;  // byte-alphabet text -> id
  for (const auto& [token, id_json] : model.at("vocab").items()) {
    const int32_t id = read_token_id(id_json, token);
    vocab.emplace(token, id);
    if (static_cast<size_t>(id) >= id_to_bytes_.size()) {
      id_to_bytes_.resize(id + 1);
      kind_.resize(id + 1, TokenKind::Missing);
    }
    id_to_bytes_[id] = from_byte_level(token);
    kind_[id] = TokenKind::Normal;
  }
  // Vocabularies may lack bytes that never occur in their training text (SmolLM2 lacks 21, e.g.
  // 0xC0, 0xFF): HF then uses unk_token, or drops the byte when there is none.
  for (int b = 0; b < 256; ++b) {
    std::string text;
    append_utf8(byte_alphabet().byte_to_code_point[b], text);
    const auto it = vocab.find(text);
    byte_token_id_[b] = it == vocab.end() ? -1 : it->second;
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string unk_token = model["unk_token"].get<std::string>();
    const auto it = vocab.find(unk_token);
    if (it == vocab.end()) throw Error(path_ + ": unk_token '" + unk_token + "' is not in the vocab");
    unk_id_ = it->second;
  }
  fuse_unk_ = model.value("fuse_unk", false);

  const json& merges = model.at("merges");
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    std::string left, right;
    if (merges[rank].is_array() && merges[rank].size() == 2) {
      left = merges[rank][0].get<std::string>();
      right = merges[rank][1].get<std::string>();
    } else {
      const std::string line = merges[rank].get<std::string>();
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
        throw Error(path_ + ": merge " + std::to_string(rank) + " '" + line + "' is not two tokens");
      left = line.substr(0, space);
      right = line.substr(space + 1);
    }
    const auto left_it = vocab.find(left), right_it = vocab.find(right), merged_it = vocab.find(left + right);
    if (left_it == vocab.end() || right_it == vocab.end() || merged_it == vocab.end())
      throw Error(path_ + ": merge " + std::to_string(rank) + " '" + left + " " + right +
                  "' uses a token that is not in the vocab");
    const uint64_t key = (static_cast<uint64_t>(left_it->second) << 32) | static_cast<uint32_t>(right_it->second);
    merges_[key] = Merge{static_cast<int32_t>(rank), merged_it->second};  // repeated pair: last rank wins (HF)
  }
  vocab_ = std::move(vocab);
}

void BpeTokenizer::parse_added_tokens(const json& added_tokens) {
  for (const json& entry : added_tokens) {
    const std::string content = entry.at("content").get<std::string>();
    AddedToken token{content, read_token_id(entry.at("id"), content),
                     entry.value("special", false), entry.value("lstrip", false),
                     entry.value("rstrip", false), entry.value("single_word", false)};
    if (token.content.empty())
      throw Error(path_ + ": added token with id " + std::to_string(token.id) + " has empty content");
    if (static_cast<size_t>(token.id) >= id_to_bytes_.size()) {
      id_to_bytes_.resize(token.id + 1);
      kind_.resize(token.id + 1, TokenKind::Missing);
    }
    id_to_bytes_[token.id] = token.content;  // added tokens decode to their content as written
    kind_[token.id] = token.special ? TokenKind::Special : TokenKind::Normal;
    added_tokens_.push_back(token);
  }
  for (size_t i = 0; i < added_tokens_.size(); ++i)
    added_by_first_byte_[static_cast<unsigned char>(added_tokens_[i].content[0])].push_back(i);
  for (auto& bucket : added_by_first_byte_)
    std::stable_sort(bucket.begin(), bucket.end(), [&](size_t a, size_t b) {
      return added_tokens_[a].content.size() > added_tokens_[b].content.size();
    });
}

void BpeTokenizer::parse_pre_tokenizer(const json& pre_tokenizer) {
  std::vector<const json*> steps;
  if (type_of(pre_tokenizer) == "Sequence") {
    for (const json& step : pre_tokenizer.at("pretokenizers")) steps.push_back(&step);
  } else if (!pre_tokenizer.is_null()) {
    steps.push_back(&pre_tokenizer);
  }
  bool has_byte_level = false;
  for (const json* step_json : steps) {
    const json& step = *step_json;
    const std::string type = type_of(step);
    // ByteLevel maps bytes to the byte alphabet; patterns after it would see that alphabet, which
    // no known tokenizer does, so ByteLevel must come last.
    if (has_byte_level) throw Error(path_ + ": pre_tokenizer step '" + type + "' after ByteLevel is not supported");
    if (type == "ByteLevel") {
      has_byte_level = true;
      // GPT-2's pattern, as HF's ByteLevel pre-tokenizer uses it.
      static const std::string gpt2_pattern =
          R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
      SplitStep split{nullptr, SplitBehavior::Isolated, false, step.value("add_prefix_space", true)};
      if (step.value("use_regex", true))
        split.regex = std::make_shared<PreTokenizerRegex>(gpt2_pattern, false, path_);
      split_steps_.push_back(split);
    } else if (type == "Digits") {
      const std::string pattern = step.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)";
      split_steps_.push_back({std::make_shared<PreTokenizerRegex>(pattern, false, path_),
                              SplitBehavior::Isolated, false, false});
    } else if (type == "Split") {
      const json& pattern = step.at("pattern");
      const bool literal = pattern.contains("String");
      const std::string text = pattern.at(literal ? "String" : "Regex").get<std::string>();
      static const std::unordered_map<std::string, SplitBehavior> behaviors = {
          {"Isolated", SplitBehavior::Isolated}, {"Removed", SplitBehavior::Removed},
          {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
          {"MergedWithNext", SplitBehavior::MergedWithNext}, {"Contiguous", SplitBehavior::Contiguous}};
      const std::string behavior = step.at("behavior").get<std::string>();
      const auto it = behaviors.find(behavior);
      if (it == behaviors.end()) throw Error(path_ + ": Split behavior '" + behavior + "' is not supported");
      split_steps_.push_back({std::make_shared<PreTokenizerRegex>(text, literal, path_), it->second,
                              step.value("invert", false), false});
    } else {
      throw Error(path_ + ": pre_tokenizer type '" + type + "' is not supported");
    }
  }
  if (!has_byte_level)
    throw Error(path_ + ": pre_tokenizer has no ByteLevel step (only byte-level BPE is supported)");
}

void BpeTokenizer::parse_bos(const json& post_processor, const TokenizerConfig& config) {
  // HF adds BOS through a TemplateProcessing post-processor ("single": [{"SpecialToken": ...}, ...]).
  std::optional<std::string> template_bos;
  std::vector<const json*> processors;
  if (type_of(post_processor) == "Sequence") {
    for (const json& p : post_processor.at("processors")) processors.push_back(&p);
  } else if (!post_processor.is_null()) {
    processors.push_back(&post_processor);
  }
  for (const json* processor : processors) {
    if (type_of(*processor) != "TemplateProcessing") continue;
    const json& single = processor->value("single", json::array());
    if (!single.empty() && single[0].contains("SpecialToken"))
      template_bos = single[0]["SpecialToken"].at("id").get<std::string>();
  }
  const std::optional<std::string> bos_text = config.bos_token ? config.bos_token : template_bos;
  if (bos_text) {
    bos_id_ = token_id(*bos_text);
    if (!bos_id_) throw Error(path_ + ": BOS token '" + *bos_text + "' is not in the vocabulary");
  }
  add_bos_by_default_ = bos_id_ && config.add_bos_token.value_or(template_bos.has_value());
}

// ---- Encoding -------------------------------------------------------------------------------------

std::vector<int32_t> BpeTokenizer::encode(const std::string& text, bool add_bos) const {
  const int64_t bad = find_invalid_utf8(text);
  if (bad >= 0) throw Error("tokenizer input is not valid UTF-8 at byte offset " + std::to_string(bad));
  std::vector<int32_t> ids;
  if (add_bos && bos_id_) ids.push_back(*bos_id_);

  // As in HF, the normalizer sees each stretch between added tokens on its own; added tokens are
  // matched on the raw text (HF matches those marked "normalized": true on the normalized text).
  const auto encode_plain = [&](std::string_view segment) {
    std::string normalized;
    if (!normalizer_.is_identity()) segment = normalized = normalizer_.normalize(segment);
    for (const std::string& piece : pre_tokenize(segment)) encode_piece(piece, ids);
  };
  size_t plain_begin = 0;
  size_t match_begin = 0, match_end = 0;
  while (const AddedToken* token = find_added_token(text, plain_begin, match_begin, match_end)) {
    // lstrip / rstrip: the token swallows the whitespace beside it (ASCII whitespace here).
    if (token->lstrip)
      while (match_begin > plain_begin && is_ascii_space(text[match_begin - 1])) --match_begin;
    if (token->rstrip)
      while (match_end < text.size() && is_ascii_space(text[match_end])) ++match_end;
    encode_plain(std::string_view(text).substr(plain_begin, match_begin - plain_begin));
    ids.push_back(token->id);
    plain_begin = match_end;
  }
  encode_plain(std::string_view(text).substr(plain_begin));
  return ids;
}

const BpeTokenizer::AddedToken* BpeTokenizer::find_added_token(std::string_view text, size_t from,
                                                               size_t& match_begin, size_t& match_end) const {
  for (size_t i = from; i < text.size(); ++i) {
    for (size_t index : added_by_first_byte_[static_cast<unsigned char>(text[i])]) {
      const AddedToken& token = added_tokens_[index];
      if (text.compare(i, token.content.size(), token.content) != 0) continue;
      const size_t end = i + token.content.size();
      // single_word: not glued to a word on either side (ASCII word characters here).
      const bool glued = (i > 0 && is_ascii_word(text[i - 1])) || (end < text.size() && is_ascii_word(text[end]));
      if (token.single_word && glued) continue;
      match_begin = i;
      match_end = end;
      return &token;
    }
  }
  return nullptr;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view segment) const {
  std::vector<std::string> pieces;
  if (!segment.empty()) pieces.emplace_back(segment);
  for (const SplitStep& step : split_steps_) {
    std::vector<std::string> next;
    next.reserve(pieces.size());
    for (std::string& piece : pieces) {
      if (step.add_prefix_space && piece[0] != ' ') piece.insert(piece.begin(), ' ');
      if (!step.regex) {
        next.push_back(std::move(piece));
        continue;
      }
      // HF's Split: the piece becomes (span, is_match) runs, then the behavior groups them.
      struct Span { size_t begin, end; bool is_match; };
      std::vector<Span> spans;
      size_t previous = 0;
      for (const auto& [begin, end] : step.regex->find_all(piece)) {
        if (begin > previous) spans.push_back({previous, begin, step.invert});
        spans.push_back({begin, end, !step.invert});
        previous = end;
      }
      if (previous < piece.size()) spans.push_back({previous, piece.size(), step.invert});

      std::vector<Span> grouped;
      bool previous_match = false;
      switch (step.behavior) {
        case SplitBehavior::Isolated: grouped = spans; break;
        case SplitBehavior::Removed:
          for (const Span& s : spans) if (!s.is_match) grouped.push_back(s);
          break;
        case SplitBehavior::MergedWithPrevious:
          for (const Span& s : spans) {
            if (s.is_match && !previous_match && !grouped.empty()) grouped.back().end = s.end;
            else grouped.push_back(s);
            previous_match = s.is_match;
          }
          break;
        case SplitBehavior::MergedWithNext:
          for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
            if (it->is_match && !previous_match && !grouped.empty()) grouped.back().begin = it->begin;
            else grouped.push_back(*it);
            previous_match = it->is_match;
          }
          std::reverse(grouped.begin(), grouped.end());
          break;
        case SplitBehavior::Contiguous:
          for (const Span& s : spans) {
            if (s.is_match == previous_match && !grouped.empty()) grouped.back().end = s.end;
            else grouped.push_back(s);
            previous_match = s.is_match;
          }
          break;
      }
      for (const Span& s : grouped)
        if (s.end > s.begin) next.push_back(piece.substr(s.begin, s.end - s.begin));
    }
    pieces = std::move(next);
  }
  return pieces;
}

void BpeTokenizer::encode_piece(const std::string& piece, std::vector<int32_t>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    const auto it = piece_cache_.find(piece);
    if (it != piece_cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids = merge_by_rank(piece);
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (piece_cache_.size() >= kMaxCachedPieces) piece_cache_.clear();  // bounded memory on long runs
  piece_cache_.emplace(piece, std::move(ids));
}

// HF's BPE word merge: repeatedly apply the lowest-ranked merge among adjacent symbols, the
// leftmost one on ties, through a priority queue; stale queue entries are skipped.
std::vector<int32_t> BpeTokenizer::merge_by_rank(const std::string& piece) const {
  if (ignore_merges_) {
    const auto it = vocab_.find(to_byte_level(piece));
    if (it != vocab_.end()) return {it->second};
  }
  struct Symbol { int32_t id, prev, next; bool alive; };
  std::vector<Symbol> symbols;
  symbols.reserve(piece.size());
  for (unsigned char byte : piece) {
    int32_t id = byte_token_id_[byte];
    if (id < 0 && unk_id_) {
      if (fuse_unk_ && !symbols.empty() && symbols.back().id == *unk_id_) continue;
      id = *unk_id_;
    }
    if (id < 0) continue;  // no token for this byte and no unk: HF drops it
    const int32_t pos = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, pos - 1, -1, true});
    if (pos > 0) symbols[pos - 1].next = pos;
  }

  struct Candidate { int32_t rank, pos, merged_id; };
  const auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> queue(later);
  const auto find_merge = [&](int32_t left_id, int32_t right_id) -> const Merge* {
    const auto it = merges_.find((static_cast<uint64_t>(left_id) << 32) | static_cast<uint32_t>(right_id));
    return it == merges_.end() ? nullptr : &it->second;
  };
  const auto push_pair = [&](int32_t pos) {
    if (pos < 0 || symbols[pos].next < 0) return;
    if (const Merge* merge = find_merge(symbols[pos].id, symbols[symbols[pos].next].id))
      queue.push({merge->rank, pos, merge->merged_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push_pair(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const Merge* merge = find_merge(left.id, right.id);
    if (!merge || merge->merged_id != top.merged_id) continue;
    left.id = merge->merged_id;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.pos;
    push_pair(left.prev);
    push_pair(top.pos);
  }
  std::vector<int32_t> ids;
  for (int32_t i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[i].next) ids.push_back(symbols[i].id);
  return ids;
}

// ---- Decoding and lookups ---------------------------------------------------------------------------

std::string BpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size() || kind_[id] == TokenKind::Missing)
    throw Error(path_ + ": token id " + std::to_string(id) + " is not in the vocabulary");
  return id_to_bytes_[id];
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (int32_t id : ids) bytes += token_bytes(id);
  return to_valid_utf8(bytes);
}

std::optional<int32_t> BpeTokenizer::token_id(const std::string& token_text) const {
  for (const AddedToken& token : added_tokens_)
    if (token.content == token_text) return token.id;
  const auto it = vocab_.find(to_byte_level(token_text));
  if (it != vocab_.end()) return it->second;
  return std::nullopt;
}

bool BpeTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && kind_[id] == TokenKind::Special;
}

}  // namespace runllm
