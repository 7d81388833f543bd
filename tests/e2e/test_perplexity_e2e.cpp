// Perplexity of the converted default model on the evaluation text, against the value PyTorch computed
// by the same method (scripts/reference/make_model_reference.py), and the KL-divergence mode.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;

namespace {
double number_after(const std::string& text, const std::string& label) {
  const std::regex pattern(label + R"(\s*([0-9.eE+-]+))");
  std::smatch match;
  if (!std::regex_search(text, match, pattern)) FAIL("no \"" << label << "\" in output:\n" << text);
  return std::stod(match[1]);
}
}  // namespace

TEST_CASE("perplexity on wikitext-2 (8 windows of 512) is within 0.5% of the reference", "[e2e][perplexity]") {
  const auto reference = nlohmann::json::parse(
      test::read_file(test::source_dir() + "/tests/data/reference/smollm2_perplexity.json"));
  const auto result = test::run_llm({"perplexity", "--model", test::model_dir(), "--file",
                                     test::text_data("wiki.test.raw"), "--ctx", "512", "--chunks",
                                     "8"});
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  const double ppl = number_after(result.out, "PPL = ");
  const double expected = reference["perplexity"].get<double>();
  INFO("run-llm " << ppl << ", reference " << expected);
  CHECK(std::abs(ppl - expected) / expected < 0.005);
  CHECK(number_after(result.out, "chunks,") == reference["scored_tokens"].get<double>());
  CHECK(number_after(result.out, R"(\()") == reference["file_tokens"].get<double>());
}

TEST_CASE("KL divergence of a model against its own saved logits is zero", "[e2e][perplexity]") {
  const std::string dir = test::make_temp_dir("kl");
  const std::string logits_path = dir + "/base.logits";
  const std::string text = test::text_data("wiki.test.raw");
  const auto base = test::run_llm({"perplexity", "--model", test::model_dir(), "--file", text, "--ctx", "128",
                                   "--chunks", "2", "--save-logits", logits_path});
  INFO(base.err);
  REQUIRE(base.exit_code == 0);
  const auto compared = test::run_llm({"perplexity", "--model", test::model_dir(), "--file", text, "--ctx", "128",
                                       "--chunks", "2", "--kl-divergence", logits_path});
  INFO(compared.err);
  REQUIRE(compared.exit_code == 0);
  CHECK(number_after(compared.out, "Mean KLD:") < 1e-4);
  CHECK(number_after(compared.out, "Same top p:") == 100.0);
  CHECK(std::abs(number_after(compared.out, R"(PPL\(Q\)/PPL\(base\):)") - 1.0) < 1e-4);

  // A different window length scores different positions: refused with a clear message.
  const auto mismatched = test::run_llm({"perplexity", "--model", test::model_dir(), "--file", text, "--ctx", "64",
                                         "--chunks", "2", "--kl-divergence", logits_path});
  CHECK(mismatched.exit_code != 0);
  CHECK(mismatched.err.find(logits_path) != std::string::npos);
  std::filesystem::remove_all(dir);
}
