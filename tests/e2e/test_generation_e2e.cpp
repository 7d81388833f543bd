// `run-llm --model DIR --prompt TEXT` on the converted default model, as a user runs it.
#include <string>
#include <vector>

#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;

TEST_CASE("greedy chat answers the capital of France with Paris", "[e2e][generate]") {
  const auto result = test::run_llm({"--model", test::model_dir(), "--chat", "--prompt",
                                     "What is the capital of France?", "--temperature", "0", "-n", "32"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  INFO(result.out);
  CHECK(result.out.find("Paris") != std::string::npos);
  CHECK(result.err.find("tokens/s") != std::string::npos);
}

TEST_CASE("the same seed gives the same output; another seed another", "[e2e][generate]") {
  const auto run = [](const std::string& seed) {
    return test::run_llm({"--model", test::model_dir(), "--prompt", "Write a short poem about the sea.",
                          "--temperature", "1.0", "--top-k", "0", "--top-p", "1", "--min-p", "0", "--seed", seed,
                          "-n", "24"});
  };
  const auto first = run("7"), second = run("7"), other = run("8");
  REQUIRE(first.exit_code == 0);
  REQUIRE(second.exit_code == 0);
  REQUIRE(other.exit_code == 0);
  CHECK(first.out == second.out);
  CHECK(first.out != other.out);
}

TEST_CASE("generation stops at the token limit and reports it", "[e2e][generate]") {
  const auto result = test::run_llm({"--model", test::model_dir(), "--prompt", "1, 2, 3, 4,", "--temperature", "0",
                                     "-n", "5"});
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.find("generation: 5 tokens") != std::string::npos);
  CHECK(result.err.find("stop: max tokens") != std::string::npos);
}

TEST_CASE("a prompt longer than the context is refused with a clear error", "[e2e][generate][errors]") {
  std::string prompt;
  for (int i = 0; i < 50; ++i) prompt += "The quick brown fox jumps over the lazy dog. ";
  const auto result = test::run_llm({"--model", test::model_dir(), "--prompt", prompt, "--ctx", "64"});
  CHECK(result.exit_code == 1);
  CHECK(result.err.find("does not fit the context of 64 tokens") != std::string::npos);
  CHECK(result.err.find('\n') == result.err.size() - 1);  // one line
}

TEST_CASE("bad command lines are refused naming the flag", "[e2e][generate][errors]") {
  const auto top_p = test::run_llm({"--model", test::model_dir(), "--prompt", "hi", "--top-p", "1.5"});
  CHECK(top_p.exit_code == 1);
  CHECK(top_p.err.find("--top-p") != std::string::npos);
  const auto no_prompt = test::run_llm({"--model", test::model_dir()});
  CHECK(no_prompt.exit_code == 1);
  CHECK(no_prompt.err.find("--prompt") != std::string::npos);
  const auto format = test::run_llm({"--model", test::model_dir(), "--prompt", "hi", "--chat", "--chat-format", "vicuna"});
  CHECK(format.exit_code == 1);
  CHECK(format.err.find("vicuna") != std::string::npos);
  const auto too_long_ctx = test::run_llm({"--model", test::model_dir(), "--prompt", "hi", "--ctx", "100000"});
  CHECK(too_long_ctx.exit_code == 1);
  CHECK(too_long_ctx.err.find("8192") != std::string::npos);
}

TEST_CASE("invalid UTF-8 and empty prompts get a clear error", "[e2e][generate][errors]") {
  const auto invalid = test::run_llm({"--model", test::model_dir(), "--prompt", "caf\xC3(", "-n", "2"});
  CHECK(invalid.exit_code == 1);
  CHECK(invalid.err.find("UTF-8") != std::string::npos);
  CHECK(invalid.err.find("offset 3") != std::string::npos);
  const auto empty = test::run_llm({"--model", test::model_dir(), "--prompt", "", "-n", "2"});
  CHECK(empty.exit_code == 1);
  CHECK(empty.err.find("prompt is empty") != std::string::npos);
}

// CLI11's own errors (repeated, unknown or malformed flags) look like run-llm's: one line, exit 1.
TEST_CASE("flag errors from the command-line parser are one run-llm: error: line with exit 1", "[e2e][generate][errors]") {
  const auto require_one_line = [](const test::CommandResult& result, const std::vector<std::string>& words) {
    INFO("stderr: " << result.err);
    CHECK(result.exit_code == 1);
    CHECK(result.err.rfind("run-llm: error: ", 0) == 0);
    CHECK(result.err.find('\n') == result.err.size() - 1);
    for (const std::string& word : words) CHECK(result.err.find(word) != std::string::npos);
  };
  require_one_line(test::run_llm({"--model", test::model_dir(), "--prompt", "hi", "-n", "2", "-n", "3"}),
                   {"--max-tokens", "run-llm --help"});
  require_one_line(test::run_llm({"--model", test::model_dir(), "--prompt", "hi", "--bogus"}), {"--bogus"});
  require_one_line(test::run_llm({"--model", test::model_dir(), "--prompt", "hi", "-n", "many"}), {"--max-tokens", "many"});
  require_one_line(test::run_llm({"quantize", "--model", test::model_dir(), "--method", "rtn"}),
                   {"--out", "run-llm quantize --help"});
  const auto help = test::run_llm({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--prompt") != std::string::npos);
  CHECK(test::run_llm({"quantize", "--help"}).exit_code == 0);
}

// --quantize awq-rtn with the default group size 128 on a hidden size of 576: the same hint as `quantize`.
TEST_CASE("--quantize with a group size that does not fit names the sizes that do", "[e2e][generate][errors]") {
  const auto result = test::run_llm({"--model", test::model_dir(), "--quantize", "awq-rtn", "--prompt", "hi", "-n", "1"});
  INFO("stderr: " << result.err);
  CHECK(result.exit_code == 1);
  CHECK(result.err.find("--group-size 128 does not divide in_features 576") != std::string::npos);
  CHECK(result.err.find("sizes that fit every linear: 16, 32, 64, or -1") != std::string::npos);
  const auto gptq = test::run_llm({"--model", test::model_dir(), "--quantize", "gptq-rtn:4", "--group-size", "100",
                                   "--prompt", "hi", "-n", "1"});
  CHECK(gptq.exit_code == 1);
  CHECK(gptq.err.find("sizes that fit every linear") != std::string::npos);
}
