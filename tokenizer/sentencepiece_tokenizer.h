// SentencePiece (tokenizer.model: Llama-2, Mistral) through libsentencepiece. Control tokens written
// literally in the text ("<s>", "</s>") are matched first; every other stretch of text is encoded by
// the library, which adds its dummy-prefix space per stretch as Meta's and Mistral's reference code
// (one sp.encode call per message) does.
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace runllm {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // `config` (tokenizer_config.json) may name another BOS text and whether to add it; by default
  // BOS is the model's own and is added, as HF's LlamaTokenizer does.
  SentencePieceTokenizer(const std::string& model_path, const TokenizerConfig& config);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(const std::string& text, bool add_bos) const override;
  std::string token_bytes(int32_t id) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  int64_t vocab_size() const override;
  std::optional<int32_t> bos_id() const override { return bos_id_; }
  std::optional<int32_t> token_id(const std::string& token_text) const override;
  bool is_special(int32_t id) const override;
  bool adds_bos_by_default() const override { return add_bos_by_default_; }

 private:
  void check_id(int32_t id) const;

  std::string path_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
  // Control and unknown pieces ("<s>", "</s>", "<unk>") by first byte, longest first.
  std::array<std::vector<std::pair<std::string, int32_t>>, 256> literal_tokens_by_first_byte_;
  std::optional<int32_t> bos_id_;
  bool add_bos_by_default_ = false;
};

}  // namespace runllm
