// Hugging Face byte-level BPE from tokenizer.json (GPT-2, SmolLM2, Llama-3, Qwen2 families):
// added tokens are matched first, the rest is normalized (NFC etc., text_normalizer.h), pre-tokenized
// (Split / Digits / ByteLevel regexes), mapped to the GPT-2 byte alphabet and merged by rank.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/text_normalizer.h"
#include "tokenizer/tokenizer.h"

namespace runllm {

// Raw bytes -> their text in GPT-2's byte alphabet, as tokenizer.json spells tokens ("Ġhello" for " hello").
std::string to_byte_level(std::string_view raw);

class PreTokenizerRegex;  // a compiled PCRE2 pattern (bpe_tokenizer.cpp)

class BpeTokenizer : public Tokenizer {
 public:
  // Parses `tokenizer_json_path`; `config` (tokenizer_config.json) names BOS and whether to add it.
  // Token ids must be below 4,000,000.
  BpeTokenizer(const std::string& tokenizer_json_path, const TokenizerConfig& config);
  // The same from the file's text; `source_name` names it in errors.
  static std::unique_ptr<BpeTokenizer> parse(const std::string& json_text, const std::string& source_name,
                                             const TokenizerConfig& config);
  ~BpeTokenizer() override;

  std::vector<int32_t> encode(const std::string& text, bool add_bos) const override;
  std::string token_bytes(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_bytes_.size()); }
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> token_id(const std::string& token_text) const override;
  bool is_special(int32_t id) const override;
  bool adds_bos_by_default() const override { return add_bos_by_default_; }

 private:
  struct AddedToken {
    std::string content;
    int32_t id;
    bool special, lstrip, rstrip, single_word;
  };
  // HF SplitDelimiterBehavior.
  enum class SplitBehavior { Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous };
  struct SplitStep {
    std::shared_ptr<PreTokenizerRegex> regex;
    SplitBehavior behavior;
    bool invert;
    bool add_prefix_space;  // ByteLevel's: prepend " " to each piece not starting with one
  };
  struct Merge {
    int32_t rank;
    int32_t merged_id;
  };
  enum class TokenKind : uint8_t { Missing, Normal, Special };  // Missing: an id no entry uses

  BpeTokenizer(const nlohmann::json& root, const std::string& source_name, const TokenizerConfig& config);
  int32_t read_token_id(const nlohmann::json& id, const std::string& token) const;

  void parse_model(const nlohmann::json& model);
  void parse_added_tokens(const nlohmann::json& added_tokens);
  void parse_pre_tokenizer(const nlohmann::json& pre_tokenizer);
  void parse_bos(const nlohmann::json& post_processor, const TokenizerConfig& config);

  // Splits one segment of plain text (no added tokens) into the pieces BPE runs on.
  std::vector<std::string> pre_tokenize(std::string_view segment) const;
  // BPE of one piece (raw bytes), appended to `out`; results are cached per piece.
  void encode_piece(const std::string& piece, std::vector<int32_t>& out) const;
  std::vector<int32_t> merge_by_rank(const std::string& piece) const;
  // Leftmost-longest added token at or after `from`; nullptr when none.
  const AddedToken* find_added_token(std::string_view text, size_t from, size_t& match_begin,
                                     size_t& match_end) const;

  std::string path_;
  std::vector<std::string> id_to_bytes_;            // raw bytes of each id
  std::vector<TokenKind> kind_;                     // per id
  std::unordered_map<std::string, int32_t> vocab_;  // model.vocab: byte-alphabet text -> id
  std::unordered_map<uint64_t, Merge> merges_;      // (left id << 32 | right id) -> merge
  std::array<int32_t, 256> byte_token_id_{};        // id of each single-byte token, -1 if none
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;  // HF: a piece that is itself in the vocabulary skips merging
  std::vector<AddedToken> added_tokens_;
  std::array<std::vector<size_t>, 256> added_by_first_byte_;  // indices, longest content first
  TextNormalizer normalizer_;  // applied to the text between added tokens
  std::vector<SplitStep> split_steps_;
  std::optional<int32_t> bos_id_;
  bool add_bos_by_default_ = false;

  static constexpr size_t kMaxCachedPieces = 1 << 18;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> piece_cache_;
};

}  // namespace runllm
