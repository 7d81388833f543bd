// Hugging Face tokenizers normalizers for tokenizer.json: the Unicode normal forms NFC, NFD, NFKC and
// NFKD (through ICU) and Sequences of them. Qwen2 / Qwen2.5 use {"type": "NFC"}.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace runllm {

class TextNormalizer {
 public:
  TextNormalizer() = default;  // the identity
  // Parses tokenizer.json's "normalizer" (null, or an empty Sequence: the identity). Throws Error
  // naming `where` and the first unsupported type.
  TextNormalizer(const nlohmann::json& normalizer, const std::string& where);

  bool is_identity() const { return forms_.empty(); }
  // `text` must be valid UTF-8; the result is valid UTF-8.
  std::string normalize(std::string_view text) const;

 private:
  enum class Form { NFC, NFD, NFKC, NFKD };
  void add(const nlohmann::json& normalizer, const std::string& where);
  static std::string apply(Form form, std::string_view text);

  std::vector<Form> forms_;  // applied in order
};

}  // namespace runllm
