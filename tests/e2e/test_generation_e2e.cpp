// `run-llm --model DIR --prompt TEXT` on the converted default model, as a user runs it.
#include <string>

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
