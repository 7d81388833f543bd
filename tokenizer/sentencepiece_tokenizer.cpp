#include "tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <string_view>

#include "runtime/error.h"

namespace runllm {

namespace {
const std::string kSpaceMark = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space
}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path, const TokenizerConfig& config)
    : path_(model_path), processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  const auto status = processor_->Load(model_path);
  if (!status.ok()) throw Error(path_ + ": cannot load SentencePiece model: " + status.ToString());

  for (int id = 0; id < processor_->GetPieceSize(); ++id) {
    const std::string& piece = processor_->IdToPiece(id);
    if ((processor_->IsControl(id) || processor_->IsUnknown(id)) && !piece.empty())
      literal_tokens_by_first_byte_[static_cast<unsigned char>(piece[0])].emplace_back(piece, id);
  }
  for (auto& bucket : literal_tokens_by_first_byte_)
    std::stable_sort(bucket.begin(), bucket.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  if (config.bos_token) {
    bos_id_ = token_id(*config.bos_token);
    if (!bos_id_)
      throw Error(path_ + ": BOS token '" + *config.bos_token + "' (tokenizer_config.json) is not in the model");
  } else if (processor_->bos_id() >= 0) {
    bos_id_ = processor_->bos_id();
  }
  add_bos_by_default_ = bos_id_ && config.add_bos_token.value_or(true);
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int32_t> SentencePieceTokenizer::encode(const std::string& text, bool add_bos) const {
  const int64_t bad = find_invalid_utf8(text);
  if (bad >= 0) throw Error("tokenizer input is not valid UTF-8 at byte offset " + std::to_string(bad));
  std::vector<int32_t> ids;
  if (add_bos && bos_id_) ids.push_back(*bos_id_);

  const auto encode_plain = [&](size_t begin, size_t end) {
    if (begin == end) return;
    std::vector<int> piece_ids;
    const auto status = processor_->Encode(std::string_view(text).substr(begin, end - begin), &piece_ids);
    if (!status.ok()) throw Error(path_ + ": encode failed: " + status.ToString());
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  };
  // Leftmost-longest match of the literal control tokens; the text between them goes to the library.
  size_t plain_begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    for (const auto& [piece, id] : literal_tokens_by_first_byte_[static_cast<unsigned char>(text[i])]) {
      if (text.compare(i, piece.size(), piece) != 0) continue;
      encode_plain(plain_begin, i);
      ids.push_back(id);
      plain_begin = i + piece.size();
      i = plain_begin - 1;
      break;
    }
  }
  encode_plain(plain_begin, text.size());
  return ids;
}

void SentencePieceTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw Error(path_ + ": token id " + std::to_string(id) + " is out of range [0, " +
                std::to_string(vocab_size()) + ")");
}

std::string SentencePieceTokenizer::token_bytes(int32_t id) const {
  check_id(id);
  const std::string& piece = processor_->IdToPiece(id);
  if (processor_->IsByte(id)) {  // byte fallback: "<0xNN>"
    return std::string(1, static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
  }
  if (is_special(id)) return piece;
  std::string bytes;
  for (size_t i = 0; i < piece.size();) {
    if (piece.compare(i, kSpaceMark.size(), kSpaceMark) == 0) {
      bytes += ' ';
      i += kSpaceMark.size();
    } else {
      bytes += piece[i++];
    }
  }
  return bytes;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids) const {
  for (int32_t id : ids) check_id(id);
  std::string text;
  const auto status = processor_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) throw Error(path_ + ": decode failed: " + status.ToString());
  return text;
}

int64_t SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

std::optional<int32_t> SentencePieceTokenizer::token_id(const std::string& token_text) const {
  const int id = processor_->PieceToId(token_text);  // the unknown id when absent
  if (processor_->IdToPiece(id) != token_text) return std::nullopt;
  return id;
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
  return id >= 0 && id < vocab_size() && (processor_->IsControl(id) || processor_->IsUnknown(id));
}

}  // namespace runllm
