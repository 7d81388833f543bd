// Byte-level BPE: SmolLM2's converted tokenizer against ids from HF transformers (built from the
// GGUF, scripts/reference/make_tokenizer_reference.py), and small hand-made tokenizer.json files for
// each pre-tokenizer behavior and normalizer (expected ids checked once against HF `tokenizers` 0.23).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "tests/byte_level_alphabet.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"

using namespace runllm;
using nlohmann::json;
using test::error_message;
namespace fs = std::filesystem;

namespace {

json expected_ids() {
  return json::parse(test::read_file(test::source_dir() + "/tests/data/tokenizer/smollm2_expected_ids.json"));
}

uint64_t fnv1a64_of_ids(const std::vector<int32_t>& ids) {
  uint64_t hash = 0xCBF29CE484222325ull;
  for (int32_t id : ids)
    for (int shift = 0; shift < 32; shift += 8) {
      hash ^= (static_cast<uint32_t>(id) >> shift) & 0xFF;
      hash *= 0x100000001B3ull;
    }
  return hash;
}

using test::byte_level_char;

// Vocabulary: byte b has id b; merges a+b=256, ab+-=257, -+a=258, 1+2=259, -+-=260, Ġ+h=261.
// Added tokens 262..265: <x> (special), <xy>, <l> (lstrip), <r> (rstrip).
json synthetic_tokenizer(const json& pre_tokenizer, bool with_added_tokens = false) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_level_char(b)] = b;
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"a", "b"}, {"ab", "-"}, {"-", "a"}, {"1", "2"}, {"-", "-"}, {byte_level_char(' '), "h"}};
  json merges_json = json::array();
  for (size_t i = 0; i < merges.size(); ++i) {
    vocab[merges[i].first + merges[i].second] = 256 + static_cast<int>(i);
    // Both spellings of a merge occur in real files: "a b" and ["a", "b"].
    if (i % 2) merges_json.push_back(merges[i].first + " " + merges[i].second);
    else merges_json.push_back({merges[i].first, merges[i].second});
  }
  json added = json::array();
  if (with_added_tokens) {
    const auto token = [](int id, const char* content, bool special, bool lstrip, bool rstrip) {
      return json{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", lstrip},
                  {"rstrip", rstrip}, {"normalized", false}, {"special", special}};
    };
    added = {token(262, "<x>", true, false, false), token(263, "<xy>", false, false, false),
             token(264, "<l>", true, true, false), token(265, "<r>", true, false, true)};
  }
  return {{"version", "1.0"}, {"added_tokens", added}, {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer}, {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"vocab", vocab}, {"merges", merges_json}}}};
}

const json kByteLevelNoRegex = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};

json split_then_byte_level(const std::string& behavior, bool invert, const json& pattern = {{"String", "-"}}) {
  return {{"type", "Sequence"},
          {"pretokenizers", {{{"type", "Split"}, {"pattern", pattern}, {"behavior", behavior}, {"invert", invert}},
                             kByteLevelNoRegex}}};
}

struct TempDir {
  fs::path path = test::make_temp_dir("bpe");
  ~TempDir() { fs::remove_all(path); }
};

BpeTokenizer load_synthetic(const TempDir& dir, const json& tokenizer_json, const TokenizerConfig& config = {}) {
  const std::string path = (dir.path / "tokenizer.json").string();
  std::ofstream(path) << tokenizer_json.dump();
  return BpeTokenizer(path, config);
}

using Ids = std::vector<int32_t>;

}  // namespace

TEST_CASE("SmolLM2 tokenizer matches HF transformers ids on every reference line", "[tokenizer]") {
  const auto tokenizer = load_tokenizer(test::model_dir());
  const json expected = expected_ids();
  size_t compared = 0, equal = 0;
  for (const json& entry : expected.at("entries")) {
    const std::string text = entry.at("text").get<std::string>();
    const Ids ids = tokenizer->encode(text, false);
    INFO("line: " << json(text).dump());
    CHECK(ids == entry.at("ids").get<Ids>());
    CHECK(tokenizer->decode(ids) == text);
    ++compared;
    equal += ids == entry.at("ids").get<Ids>();
  }
  CHECK(compared >= 250);
  CHECK(equal == compared);
}

TEST_CASE("SmolLM2 tokenizer encodes wiki.test.raw like HF, quickly, and decodes it back", "[tokenizer]") {
  const auto tokenizer = load_tokenizer(test::model_dir());
  const json expected = expected_ids();
  const std::string text = test::read_file(test::text_data("wiki.test.raw"));
  const auto start = std::chrono::steady_clock::now();
  const Ids ids = tokenizer->encode(text, false);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char hash[17];
  snprintf(hash, sizeof(hash), "%016llx", static_cast<unsigned long long>(fnv1a64_of_ids(ids)));
  CHECK(ids.size() == expected["wiki_test_raw"]["num_ids"].get<size_t>());
  CHECK(hash == expected["wiki_test_raw"]["fnv1a64"].get<std::string>());
  INFO("encoding " << text.size() << " bytes took " << seconds << " s");
  CHECK(seconds < 5.0);
  CHECK(tokenizer->decode(ids) == text);
}

TEST_CASE("SmolLM2 special tokens, BOS settings and chat prompts", "[tokenizer]") {
  const auto tokenizer = load_tokenizer(test::model_dir());
  CHECK(tokenizer->vocab_size() == 49152);
  CHECK(tokenizer->token_id("<|im_start|>") == 1);
  CHECK(tokenizer->token_id("<|im_end|>") == 2);
  CHECK(tokenizer->is_special(2));
  CHECK_FALSE(tokenizer->is_special(905));
  CHECK(tokenizer->token_bytes(2) == "<|im_end|>");
  CHECK_FALSE(tokenizer->adds_bos_by_default());  // GGUF: tokenizer.ggml.add_bos_token = false
  CHECK(tokenizer->bos_id() == 1);                // tokenizer_config.json: "<|im_start|>"
  const Ids prompt = tokenizer->encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", false);
  CHECK(prompt.front() == 1);
  CHECK(std::count(prompt.begin(), prompt.end(), 2) == 1);
}

TEST_CASE("SmolLM2 streaming detokenizer reproduces decode without splitting characters", "[tokenizer]") {
  const auto tokenizer = load_tokenizer(test::model_dir());
  const json expected = expected_ids();
  for (const json& entry : expected.at("entries")) {
    const Ids ids = entry.at("ids").get<Ids>();
    const std::string streamed = test::stream_decode(*tokenizer, ids);
    INFO("line: " << json(entry.at("text")).dump());
    CHECK(streamed == tokenizer->decode(ids));
  }
}

TEST_CASE("BPE encode rejects invalid UTF-8 naming the offset; empty and NUL inputs", "[tokenizer]") {
  TempDir dir;
  const BpeTokenizer tokenizer = load_synthetic(dir, synthetic_tokenizer(kByteLevelNoRegex));
  CHECK(error_message([&] { tokenizer.encode(std::string("ab\xC3("), false); }).find("byte offset 2") !=
        std::string::npos);
  CHECK(tokenizer.encode("", false).empty());
  CHECK(tokenizer.encode(std::string("a\0b", 3), false) == Ids{97, 0, 98});
  CHECK(tokenizer.decode({97, 0, 98}) == std::string("a\0b", 3));
  CHECK_THROWS_AS(tokenizer.token_bytes(266), Error);
  CHECK_THROWS_AS(tokenizer.decode({-1}), Error);
}

TEST_CASE("BPE merges by rank, leftmost first, with merges in both spellings", "[tokenizer]") {
  TempDir dir;
  const BpeTokenizer tokenizer = load_synthetic(dir, synthetic_tokenizer(kByteLevelNoRegex));
  CHECK(tokenizer.encode("ab-ab-12", false) == Ids{257, 257, 259});
  CHECK(tokenizer.decode({257, 257, 259}) == "ab-ab-12");
  CHECK(tokenizer.token_id("ab-") == 257);
  CHECK(tokenizer.token_id(" h") == 261);  // text as written, not in the byte alphabet
  json repeated = synthetic_tokenizer(kByteLevelNoRegex);
  CHECK(load_synthetic(dir, repeated).encode("-ab", false) == Ids{45, 256});
  repeated["model"]["merges"].push_back("a b");  // a repeated pair takes its last rank, as in HF
  CHECK(load_synthetic(dir, repeated).encode("-ab", false) == Ids{258, 98});
}

TEST_CASE("BPE bytes missing from the vocabulary become unk or are dropped, as in HF", "[tokenizer]") {
  TempDir dir;
  json tokenizer_json = synthetic_tokenizer(kByteLevelNoRegex);
  tokenizer_json["model"]["vocab"].erase(byte_level_char(0x04));  // SmolLM2 lacks this one too
  CHECK(load_synthetic(dir, tokenizer_json).encode("a\x04\x04" "b", false) == Ids{256});  // a, b now adjacent
  tokenizer_json["model"]["unk_token"] = "x";
  CHECK(load_synthetic(dir, tokenizer_json).encode("a\x04\x04" "b", false) == Ids{97, 120, 120, 98});
  tokenizer_json["model"]["fuse_unk"] = true;
  CHECK(load_synthetic(dir, tokenizer_json).encode("a\x04\x04" "b", false) == Ids{97, 120, 98});
}

TEST_CASE("BPE Split behaviors follow HF tokenizers", "[tokenizer]") {
  TempDir dir;
  const auto encode = [&](const json& pre_tokenizer, const std::string& text) {
    return load_synthetic(dir, synthetic_tokenizer(pre_tokenizer)).encode(text, false);
  };
  CHECK(encode(split_then_byte_level("Isolated", false), "ab-ab-12") == Ids{256, 45, 256, 45, 259});
  CHECK(encode(split_then_byte_level("Isolated", false), "a--b-") == Ids{97, 45, 45, 98, 45});
  CHECK(encode(split_then_byte_level("Removed", false), "ab-ab-12") == Ids{256, 256, 259});
  CHECK(encode(split_then_byte_level("Removed", false), "a--b-") == Ids{97, 98});
  CHECK(encode(split_then_byte_level("MergedWithPrevious", false), "ab-ab-12") == Ids{257, 257, 259});
  CHECK(encode(split_then_byte_level("MergedWithNext", false), "ab-ab-12") == Ids{256, 45, 256, 45, 259});
  CHECK(encode(split_then_byte_level("Contiguous", false), "a--b-") == Ids{97, 260, 98, 45});
  CHECK(encode(split_then_byte_level("Removed", true), "ab-ab-12") == Ids{45, 45});
  CHECK(encode(split_then_byte_level("MergedWithPrevious", true), "ab-ab-12") == Ids{256, 45, 256, 45, 259});
  CHECK(encode(split_then_byte_level("Isolated", false, {{"Regex", "\\d+"}}), "ab12ab") == Ids{256, 259, 256});
}

TEST_CASE("BPE Digits and ByteLevel pre-tokenizers follow HF tokenizers", "[tokenizer]") {
  TempDir dir;
  const auto encode = [&](const json& pre_tokenizer, const std::string& text) {
    return load_synthetic(dir, synthetic_tokenizer(pre_tokenizer)).encode(text, false);
  };
  const auto digits = [](bool individual) {
    return json{{"type", "Sequence"},
                {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", individual}}, kByteLevelNoRegex}}};
  };
  CHECK(encode(digits(true), "a12b123") == Ids{97, 49, 50, 98, 49, 50, 51});
  CHECK(encode(digits(false), "a12b123") == Ids{97, 259, 98, 259, 51});
  const json gpt2 = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  CHECK(encode(gpt2, "ab-ab 12 hh  h") == Ids{256, 45, 256, 32, 259, 261, 104, 32, 261});
  const json with_prefix = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  CHECK(encode(with_prefix, "hh") == Ids{261, 104});
}

TEST_CASE("BPE added tokens: leftmost longest, lstrip and rstrip", "[tokenizer]") {
  TempDir dir;
  const BpeTokenizer tokenizer = load_synthetic(dir, synthetic_tokenizer(kByteLevelNoRegex, true));
  CHECK(tokenizer.encode("a<xy>b<x>ab", false) == Ids{97, 263, 98, 262, 256});
  CHECK(tokenizer.encode("a  <l>  b", false) == Ids{97, 264, 32, 32, 98});
  CHECK(tokenizer.encode("a  <r>  b", false) == Ids{97, 32, 32, 265, 98});
  CHECK(tokenizer.encode("<x<x>>", false) == Ids{60, 120, 262, 62});
  CHECK(tokenizer.encode("<xy", false) == Ids{60, 120, 121});
  CHECK(tokenizer.is_special(262));
  CHECK_FALSE(tokenizer.is_special(263));
  CHECK(tokenizer.decode({97, 262, 98}) == "a<x>b");
}

TEST_CASE("BPE ignore_merges takes whole vocabulary words as they are", "[tokenizer]") {
  TempDir dir;
  json tokenizer_json = synthetic_tokenizer(kByteLevelNoRegex);
  tokenizer_json["model"]["vocab"]["-ab"] = 266;  // not reachable through merges
  CHECK(load_synthetic(dir, tokenizer_json).encode("-ab", false) == Ids{45, 256});
  tokenizer_json["model"]["ignore_merges"] = true;
  CHECK(load_synthetic(dir, tokenizer_json).encode("-ab", false) == Ids{266});
}

TEST_CASE("BPE BOS comes from tokenizer_config.json or the post-processor template", "[tokenizer]") {
  TempDir dir;
  json tokenizer_json = synthetic_tokenizer(kByteLevelNoRegex, true);
  CHECK_FALSE(load_synthetic(dir, tokenizer_json).bos_id());
  tokenizer_json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<x>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  const BpeTokenizer templated = load_synthetic(dir, tokenizer_json);
  CHECK(templated.bos_id() == 262);
  CHECK(templated.adds_bos_by_default());
  CHECK(templated.encode("ab", true) == Ids{262, 256});
  TokenizerConfig config;
  config.bos_token = "<l>";
  config.add_bos_token = false;
  const BpeTokenizer configured = load_synthetic(dir, tokenizer_json, config);
  CHECK(configured.bos_id() == 264);
  CHECK_FALSE(configured.adds_bos_by_default());
}

TEST_CASE("BPE loading errors name the file and the unsupported part", "[tokenizer]") {
  TempDir dir;
  const auto error_of = [&](const json& tokenizer_json) {
    return error_message([&] { load_synthetic(dir, tokenizer_json); });
  };
  json metaspace = synthetic_tokenizer({{"type", "Metaspace"}, {"replacement", "_"}});
  CHECK(error_of(metaspace).find("pre_tokenizer type 'Metaspace'") != std::string::npos);
  CHECK(error_of(metaspace).find("tokenizer.json") != std::string::npos);
  json precompiled = synthetic_tokenizer(kByteLevelNoRegex);
  precompiled["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
  CHECK(error_of(precompiled).find("normalizer type 'Precompiled' is not supported") != std::string::npos);
  precompiled["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
  CHECK(error_of(precompiled).find("normalizer type 'Lowercase'") != std::string::npos);
  json no_byte_level = synthetic_tokenizer(split_then_byte_level("Isolated", false)["pretokenizers"][0]);
  CHECK(error_of(no_byte_level).find("no ByteLevel") != std::string::npos);
  json bad_merge = synthetic_tokenizer(kByteLevelNoRegex);
  bad_merge["model"]["merges"].push_back("zz q");
  CHECK(error_of(bad_merge).find("merge 6 'zz q'") != std::string::npos);
  json bad_regex = synthetic_tokenizer(split_then_byte_level("Isolated", false, {{"Regex", "(unclosed"}}));
  CHECK(error_of(bad_regex).find("cannot compile") != std::string::npos);
  CHECK(error_message([&] { load_tokenizer((dir.path / "missing").string()); }).find("does not exist") !=
        std::string::npos);
  fs::create_directories(dir.path / "empty");
  CHECK(error_message([&] { load_tokenizer((dir.path / "empty").string()); })
            .find("no tokenizer.json or tokenizer.model") != std::string::npos);
}

TEST_CASE("BPE Unicode normalizers (NFC as in Qwen2) apply between added tokens, as in HF", "[tokenizer]") {
  TempDir dir;
  const std::string e_acute = "\xC3\xA9";       // U+00E9: bytes 195 169
  const std::string e_combining = "e\xCC\x81";  // e + U+0301: bytes 101 204 129
  const auto with_normalizer = [&](const json& normalizer) {
    json tokenizer_json = synthetic_tokenizer(kByteLevelNoRegex, true);
    tokenizer_json["normalizer"] = normalizer;
    return load_synthetic(dir, tokenizer_json);
  };
  const json nfc = {{"type", "NFC"}};

  const BpeTokenizer plain = with_normalizer(nullptr);
  CHECK(plain.encode(e_combining, false) == Ids{101, 204, 129});
  CHECK(plain.encode(e_acute, false) == Ids{195, 169});

  const BpeTokenizer composed = with_normalizer(nfc);
  CHECK(composed.encode(e_combining, false) == Ids{195, 169});
  CHECK(composed.encode(e_acute, false) == Ids{195, 169});
  CHECK(composed.encode("caf" + e_combining + " ab", false) == Ids{99, 97, 102, 195, 169, 32, 256});
  // Each stretch between added tokens is normalized on its own: nothing composes across <x>.
  CHECK(composed.encode(e_combining + "<x>" + e_combining, false) == Ids{195, 169, 262, 195, 169});
  CHECK(composed.encode("e<x>\xCC\x81", false) == Ids{101, 262, 204, 129});
  CHECK(composed.decode({101, 204, 129}) == e_combining);  // decoding is not normalized
  CHECK(composed.encode("", false).empty());

  CHECK(with_normalizer({{"type", "Sequence"}, {"normalizers", {nfc}}}).encode(e_combining, false) ==
        Ids{195, 169});
  CHECK(with_normalizer({{"type", "Sequence"}, {"normalizers", json::array()}}).encode(e_combining, false) ==
        Ids{101, 204, 129});
  CHECK(with_normalizer({{"type", "NFD"}}).encode(e_acute, false) == Ids{101, 204, 129});
  CHECK(with_normalizer({{"type", "NFKC"}}).encode("\xEF\xAC\x81", false) == Ids{102, 105});  // U+FB01: fi
  CHECK(with_normalizer({{"type", "NFKD"}}).encode("\xEF\xAC\x81" + e_acute, false) ==
        Ids{102, 105, 101, 204, 129});
  CHECK(with_normalizer({{"type", "Sequence"}, {"normalizers", {{{"type", "NFD"}}, nfc}}}).encode(e_acute, false) ==
        Ids{195, 169});
}
