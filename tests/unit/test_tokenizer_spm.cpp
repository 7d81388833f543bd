// SentencePiece: a small BPE model trained here with `spm_train` (Llama-style settings: identity
// normalization, whitespace kept, byte fallback), compared with `spm_encode --output_format=id`.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tokenizer/sentencepiece_tokenizer.h"
#include "tokenizer/tokenizer.h"

using namespace runllm;
namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

namespace {

std::vector<std::string> read_lines(const std::string& path, size_t max_lines = SIZE_MAX) {
  std::ifstream file(path, std::ios::binary);
  REQUIRE(file.good());
  std::vector<std::string> lines;
  for (std::string line; lines.size() < max_lines && std::getline(file, line);) lines.push_back(line);
  return lines;
}

void run(const std::string& command) {
  INFO("command: " << command);
  REQUIRE(std::system(command.c_str()) == 0);
}

// Trained once per test run into a temporary directory (m.model, tokenizer.model, the training log),
// removed at exit.
struct TrainedModel {
  fs::path dir;
  TrainedModel();
  ~TrainedModel() { fs::remove_all(dir); }
};

TrainedModel::TrainedModel() : dir(test::make_temp_dir("spm")) {
  std::ofstream corpus(dir / "corpus.txt", std::ios::binary);
  for (const std::string& line : read_lines(test::text_data("pride_and_prejudice.txt"), 2000))
    corpus << line << "\n";
  corpus.close();
  run("spm_train --input=" + (dir / "corpus.txt").string() + " --model_prefix=" + (dir / "m").string() +
      " --vocab_size=800 --model_type=bpe --byte_fallback=true --character_coverage=1.0"
      " --normalization_rule_name=identity --remove_extra_whitespaces=false --minloglevel=2 > " +
      (dir / "train.log").string() + " 2>&1");
  fs::copy_file(dir / "m.model", dir / "tokenizer.model");
}

const fs::path& trained_model_dir() {
  static const TrainedModel model;
  return model.dir;
}

// Lines of the shared tokenizer test text (as stored, escapes not expanded: spm_encode reads one
// line at a time), minus those with control-token text, which only our encode matches literally.
std::vector<std::string> comparison_lines() {
  std::vector<std::string> lines;
  for (const std::string& line : read_lines(test::source_dir() + "/tests/data/tokenizer/lines.txt"))
    if (!line.empty() && line.find("<s>") == std::string::npos && line.find("</s>") == std::string::npos &&
        line.find("<unk>") == std::string::npos)
      lines.push_back(line);
  return lines;
}

}  // namespace

TEST_CASE("SentencePiece encode matches spm_encode and round-trips", "[tokenizer]") {
  const fs::path& dir = trained_model_dir();
  const std::vector<std::string> lines = comparison_lines();
  std::ofstream(dir / "lines.txt", std::ios::binary) << [&] {
    std::string all;
    for (const std::string& line : lines) all += line + "\n";
    return all;
  }();
  run("spm_encode --model=" + (dir / "m.model").string() + " --output_format=id < " + (dir / "lines.txt").string() +
      " > " + (dir / "ids.txt").string());
  const std::vector<std::string> reference = read_lines((dir / "ids.txt").string());
  REQUIRE(reference.size() == lines.size());

  const auto tokenizer = load_tokenizer(dir.string());
  size_t byte_fallback_lines = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    Ids expected;
    std::istringstream stream(reference[i]);
    for (int32_t id; stream >> id;) expected.push_back(id);
    const Ids ids = tokenizer->encode(lines[i], false);
    INFO("line: " << lines[i]);
    CHECK(ids == expected);
    CHECK(tokenizer->decode(ids) == lines[i]);
    // token_bytes: "▁" is a space (the dummy prefix gives the leading one), <0xNN> is the byte.
    std::string bytes;
    for (int32_t id : ids) bytes += tokenizer->token_bytes(id);
    CHECK(bytes == " " + lines[i]);
    byte_fallback_lines += std::any_of(ids.begin(), ids.end(), [&](int32_t id) {
      const std::string token = tokenizer->token_bytes(id);
      return token.size() == 1 && static_cast<unsigned char>(token[0]) >= 0x80;
    });
  }
  CHECK(lines.size() >= 250);
  CHECK(byte_fallback_lines >= 30);  // emoji, CJK, ... really went through byte tokens
}

TEST_CASE("SentencePiece BOS, control tokens and errors", "[tokenizer]") {
  const fs::path& dir = trained_model_dir();
  const auto tokenizer = load_tokenizer(dir.string());
  REQUIRE(tokenizer->bos_id() == 1);  // spm_train's defaults: <unk>=0 <s>=1 </s>=2
  CHECK(tokenizer->adds_bos_by_default());
  CHECK(tokenizer->vocab_size() == 800);
  CHECK(tokenizer->token_id("</s>") == 2);
  CHECK_FALSE(tokenizer->token_id("no such piece"));
  CHECK(tokenizer->is_special(2));
  const Ids plain = tokenizer->encode("Hello there", false);
  Ids with_bos = tokenizer->encode("Hello there", true);
  REQUIRE(with_bos.front() == 1);
  CHECK(Ids(with_bos.begin() + 1, with_bos.end()) == plain);
  // Control tokens written in the text become their ids; each stretch between them is encoded alone.
  const Ids chat = tokenizer->encode("<s>Hello there</s>", false);
  CHECK(chat.front() == 1);
  CHECK(chat.back() == 2);
  CHECK(Ids(chat.begin() + 1, chat.end() - 1) == plain);
  CHECK(tokenizer->decode(chat) == "Hello there");
  CHECK_THROWS_AS(tokenizer->encode("bad \xC3", false), Error);
  CHECK(tokenizer->encode("", false).empty());
  CHECK_THROWS_AS(tokenizer->decode({800}), Error);
  CHECK_THROWS_AS(tokenizer->token_bytes(-1), Error);

  std::ofstream(dir / "tokenizer_config.json") << R"({"bos_token": {"content": "</s>"}, "add_bos_token": false})";
  const auto configured = load_tokenizer(dir.string());
  fs::remove(dir / "tokenizer_config.json");
  CHECK(configured->bos_id() == 2);
  CHECK_FALSE(configured->adds_bos_by_default());
}

TEST_CASE("load_tokenizer takes tokenizer.model when tokenizer.json beside it is not byte-level BPE", "[tokenizer]") {
  const fs::path& dir = trained_model_dir();
  // The shape of Llama-2's tokenizer.json: SentencePiece-style BPE that only tokenizer.model runs.
  std::ofstream(dir / "tokenizer.json") << R"({"normalizer": {"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
      "pre_tokenizer": null, "model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}})";
  const auto tokenizer = load_tokenizer(dir.string());
  fs::remove(dir / "tokenizer.json");
  CHECK(tokenizer->vocab_size() == 800);
  CHECK(tokenizer->decode(tokenizer->encode("Hello there", false)) == "Hello there");
}

TEST_CASE("SentencePiece streaming keeps the first-word and continuation spaces right", "[tokenizer]") {
  const auto tokenizer = load_tokenizer(trained_model_dir().string());
  for (const std::string& line : comparison_lines()) {
    const Ids ids = tokenizer->encode(line, true);
    const std::string streamed = test::stream_decode(*tokenizer, ids);
    INFO("line: " << line);
    CHECK(streamed == tokenizer->decode(ids));
  }
  // Streaming a continuation after a prompt keeps the space the first new token starts with.
  const Ids prompt = tokenizer->encode("It is a truth universally", true);
  const Ids full = tokenizer->encode("It is a truth universally acknowledged", true);
  REQUIRE(Ids(full.begin(), full.begin() + prompt.size()) == prompt);
  StreamingDetokenizer stream(*tokenizer);
  stream.set_context(prompt);
  std::string continuation;
  for (size_t i = prompt.size(); i < full.size(); ++i) continuation += stream.push(full[i]);
  continuation += stream.flush();
  CHECK(continuation == " acknowledged");
}
