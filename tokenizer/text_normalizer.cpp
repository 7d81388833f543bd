#include "tokenizer/text_normalizer.h"

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/utypes.h>

#include <climits>
#include <nlohmann/json.hpp>

#include "runtime/error.h"

namespace runllm {

using nlohmann::json;

namespace {

std::string type_of(const json& component) {
  return component.is_object() && component.contains("type") && component["type"].is_string()
             ? component["type"].get<std::string>() : std::string("(no type)");
}

}  // namespace

TextNormalizer::TextNormalizer(const json& normalizer, const std::string& where) {
  if (!normalizer.is_null()) add(normalizer, where);
  try {
    for (const Form form : forms_) apply(form, "");  // missing ICU data fails the load, not an encode
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
}

void TextNormalizer::add(const json& normalizer, const std::string& where) {
  const std::string type = type_of(normalizer);
  if (type == "Sequence") {
    for (const json& member : normalizer.value("normalizers", json::array())) add(member, where);
  } else if (type == "NFC") {
    forms_.push_back(Form::NFC);
  } else if (type == "NFD") {
    forms_.push_back(Form::NFD);
  } else if (type == "NFKC") {
    forms_.push_back(Form::NFKC);
  } else if (type == "NFKD") {
    forms_.push_back(Form::NFKD);
  } else {
    throw Error(where + ": normalizer type '" + type + "' is not supported");
  }
}

std::string TextNormalizer::normalize(std::string_view text) const {
  std::string out(text);
  for (const Form form : forms_) out = apply(form, out);
  return out;
}

std::string TextNormalizer::apply(Form form, std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer =
      form == Form::NFC    ? icu::Normalizer2::getNFCInstance(status)
      : form == Form::NFD  ? icu::Normalizer2::getNFDInstance(status)
      : form == Form::NFKC ? icu::Normalizer2::getNFKCInstance(status)
                           : icu::Normalizer2::getNFKDInstance(status);
  if (U_FAILURE(status)) throw Error(std::string("ICU normalizer unavailable: ") + u_errorName(status));
  if (text.size() > static_cast<size_t>(INT32_MAX))
    throw Error("tokenizer input of " + std::to_string(text.size()) + " bytes is too long to normalize");
  const icu::StringPiece source(text.data(), static_cast<int32_t>(text.size()));
  // Most text is already normalized: a quick scan then spares the rewrite.
  const UBool already = normalizer->isNormalizedUTF8(source, status);
  if (U_SUCCESS(status) && already) return std::string(text);
  status = U_ZERO_ERROR;
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  icu::StringByteSink<std::string> sink(&out);
  normalizer->normalizeUTF8(0, source, sink, nullptr, status);
  if (U_FAILURE(status)) throw Error(std::string("Unicode normalization failed: ") + u_errorName(status));
  return out;
}

}  // namespace runllm
