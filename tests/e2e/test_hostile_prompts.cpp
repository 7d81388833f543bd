// Prompts a hostile or careless user gives run-llm: ill-formed UTF-8, NUL bytes, a megabyte of text,
// nothing but special tokens, nothing at all. Each gets defined behaviour: a one-line error naming the
// problem with exit code 1, or a run whose token ids and output are checked. (test_generation_e2e.cpp
// covers --prompt with "caf\xC3(", --prompt "" and a prompt over --ctx 64.)
#include <chrono>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/catch.h"
#include "tests/test_support.h"
#include "tokenizer/tokenizer.h"

using namespace runllm;

namespace {

// A prompt written to a file in a fresh directory, removed with it.
struct PromptFile {
  explicit PromptFile(const std::string& contents) : dir(test::make_temp_dir("prompt")), path(dir + "/prompt.txt") {
    test::write_file(path, contents);
  }
  ~PromptFile() { std::filesystem::remove_all(dir); }
  std::string dir, path;
};

void require_one_line_error(const test::CommandResult& result, const std::string& expected) {
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 1);
  CHECK(result.err == "run-llm: error: " + expected + "\n");
}

// The ids after `label: ` on the -v line that starts with it.
std::vector<int32_t> ids_on_line(const std::string& err, const std::string& label) {
  const size_t start = err.find(label + ": ");
  REQUIRE(start != std::string::npos);
  std::istringstream line(err.substr(start + label.size() + 2, err.find('\n', start) - start - label.size() - 2));
  std::vector<int32_t> ids;
  for (int32_t id; line >> id;) ids.push_back(id);
  return ids;
}

}  // namespace

TEST_CASE("ill-formed UTF-8 is refused before the model loads, naming the flag and the offset",
          "[e2e][hostile][errors]") {
  // Offsets are in the text the user gave, not in the chat-templated text the tokenizer sees.
  const std::string model = test::model_dir();
  const struct { const char* what; std::string text; int offset; } cases[] = {
      {"lone continuation byte", "ab\x80", 2},
      {"overlong '/'", "\xC0\xAF", 0},
      {"UTF-16 surrogate", "x\xED\xA0\x80", 1},
      {"above U+10FFFF", "\xF4\x90\x80\x80", 0},
      {"truncated at the end", "euro \xE2\x82", 5},
      {"0xFF", "\xFF", 0},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    const std::string message = " is not valid UTF-8 at byte offset " + std::to_string(c.offset);
    require_one_line_error(test::run_llm({"--model", model, "--chat", "--prompt", c.text}), "--prompt" + message);
    const PromptFile file(c.text);
    require_one_line_error(test::run_llm({"--model", model, "--prompt-file", file.path}),
                           "--prompt-file " + file.path + message);
  }
  require_one_line_error(test::run_llm({"--model", model, "--chat", "--system", "ok\xC3", "--prompt", "hi"}),
                         "--system is not valid UTF-8 at byte offset 2");
  require_one_line_error(test::run_llm({"--model", model, "--prompt-file", "-"}, "caf\xC3("),
                         "--prompt-file - is not valid UTF-8 at byte offset 3");
}

TEST_CASE("NUL bytes from stdin are tokenized as the byte they are", "[e2e][hostile]") {
  // --prompt cannot carry a NUL (argv strings end at one); --prompt-file can. U+0000 is valid UTF-8 and
  // byte-level BPE maps byte 0 to 'Ā' (id 190 in SmolLM2's vocabulary), as HF tokenizers does:
  // "Hello" 19556, "\0" 190, "world" 6693 (no merges across the pre-tokenizer's split).
  const std::string prompt("Hello\0world\0", 12);
  const auto result =
      test::run_llm({"--model", test::model_dir(), "--prompt-file", "-", "-n", "4", "--temperature", "0", "-v"},
                         prompt);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(ids_on_line(result.err, "prompt ids") == std::vector<int32_t>{19556, 190, 6693, 190});
  CHECK(result.err.find("prompt: 4 tokens") != std::string::npos);
  const auto tokenizer = load_tokenizer(test::model_dir());
  CHECK(tokenizer->decode({19556, 190, 6693, 190}) == prompt);
  // What was printed is exactly the generated ids, decoded.
  CHECK(result.out == tokenizer->decode(ids_on_line(result.err, "generated ids")) + "\n");
}

TEST_CASE("a megabyte of prompt is refused quickly as longer than the context", "[e2e][hostile][errors]") {
  // 1 MiB of real text (wiki.test.raw, cut at a character boundary): far past --prompt's 128 KiB
  // argument limit, so it comes through --prompt-file.
  std::string text = test::read_file(test::text_data("wiki.test.raw"));
  REQUIRE(text.size() > (1u << 20));
  size_t cut = 1u << 20;
  while ((static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  const PromptFile file(text);
  const auto start = std::chrono::steady_clock::now();
  const auto result = test::run_llm({"--model", test::model_dir(), "--prompt-file", file.path, "-n", "1"});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("stderr: " << result.err << "took " << seconds << " s");
  CHECK(result.exit_code == 1);
  CHECK(result.err.rfind("run-llm: error: the prompt is ", 0) == 0);
  CHECK(result.err.find("does not fit the context of 8192 tokens") != std::string::npos);
  CHECK(result.err.find('\n') == result.err.size() - 1);
  // About 4 bytes per token on English text: the count is the whole prompt's, not a truncation.
  const int64_t tokens = std::stoll(result.err.substr(std::string("run-llm: error: the prompt is ").size()));
  CHECK(tokens > 200000);
  CHECK(tokens < 400000);
  // Model load plus tokenizing 1 MiB takes a few seconds (more under sanitizers); a hang fails here.
  CHECK(seconds < 60);
}

TEST_CASE("a prompt of nothing but special tokens runs", "[e2e][hostile]") {
  // HF tokenizers match added tokens written in the text, so this is <|im_start|> (1) <|im_end|> (2).
  const auto result = test::run_llm({"--model", test::model_dir(), "--prompt", "<|im_start|><|im_end|>", "-n", "6",
                                     "--temperature", "0", "-v"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(ids_on_line(result.err, "prompt ids") == std::vector<int32_t>{1, 2});
  CHECK(result.err.find("prompt: 2 tokens") != std::string::npos);
  const std::vector<int32_t> generated = ids_on_line(result.err, "generated ids");
  const auto tokenizer = load_tokenizer(test::model_dir());
  CHECK(result.out == tokenizer->decode(generated) + "\n");
  // Either the limit was reached or the model ended its turn at once; the stop line says which.
  const std::string count = "generation: " + std::to_string(generated.size()) + " tokens";
  CHECK(result.err.find(count) != std::string::npos);
  CHECK(result.err.find(generated.size() == 6 ? "stop: max tokens" : "stop: eos") != std::string::npos);
}

TEST_CASE("empty prompts: refused from a file or stdin, a valid conversation with --chat", "[e2e][hostile]") {
  const std::string model = test::model_dir();
  const PromptFile empty("");
  require_one_line_error(test::run_llm({"--model", model, "--prompt-file", empty.path}),
                         "the prompt is empty after tokenization; give some text with --prompt or --prompt-file");
  require_one_line_error(test::run_llm({"--model", model, "--prompt-file", "-"}, ""),
                         "the prompt is empty after tokenization; give some text with --prompt or --prompt-file");

  // An empty user turn is still a conversation: SmolLM2's template rendered for [{"role": "user",
  // "content": ""}] with add_generation_prompt.
  const auto chat = test::run_llm({"--model", model, "--chat", "--prompt", "", "-n", "2", "--temperature", "0", "-v"});
  INFO(chat.err);
  REQUIRE(chat.exit_code == 0);
  const auto tokenizer = load_tokenizer(model);
  const std::string rendered =
      "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
      "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n";
  CHECK(ids_on_line(chat.err, "prompt ids") == tokenizer->encode(rendered, false));
}

TEST_CASE("a --prompt-file that cannot give a prompt is refused naming it", "[e2e][hostile][errors]") {
  const PromptFile file("hi");
  const auto both = test::run_llm({"--model", test::model_dir(), "--prompt", "hi", "--prompt-file", file.path});
  require_one_line_error(both, "--prompt excludes --prompt-file (run-llm --help lists the options)");
  require_one_line_error(test::run_llm({"--model", test::model_dir(), "--prompt-file", file.dir}),
                         "--prompt-file " + file.dir + ": is a directory");
  require_one_line_error(test::run_llm({"--model", test::model_dir(), "--prompt-file", file.dir + "/missing.txt"}),
                         file.dir + "/missing.txt: cannot open (expected the prompt text)");
}
