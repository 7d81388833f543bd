#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/perplexity_stats.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::error_message;

namespace {

std::vector<float> log_softmax(const std::vector<float>& logits) {
  const double normalizer = static_cast<double>(logits[0]) - log_softmax_at(logits.data(), logits.size(), 0);
  std::vector<float> log_probs;
  for (float logit : logits) log_probs.push_back(static_cast<float>(logit - normalizer));
  return log_probs;
}

}  // namespace

TEST_CASE("log_softmax_at is exact and does not overflow", "[perplexity]") {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  const double normalizer = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  REQUIRE(log_softmax_at(logits.data(), 3, 1) == Approx(2.0 - normalizer).epsilon(1e-14));

  // exp(1000) overflows even a double; the max-subtracted form does not.
  const std::vector<float> large = {1000.0f, 1001.0f};
  REQUIRE(log_softmax_at(large.data(), 2, 0) == Approx(-std::log1p(std::exp(1.0))).epsilon(1e-12));

  const std::vector<float> with_nan = {0.0f, std::nanf("")};
  REQUIRE(error_message([&] { log_softmax_at(with_nan.data(), 2, 0); }) == "logits contain NaN");
  REQUIRE(error_message([&] { log_softmax_at(logits.data(), 3, 3); }) == "token 3 is outside the vocab of 3");
}

TEST_CASE("perplexity is exp(mean nll) with llama.cpp's uncertainty", "[perplexity]") {
  PerplexityStats uniform;
  const std::vector<float> flat(32000, 0.25f);
  for (int32_t token : {0, 17, 31999}) uniform.add(flat.data(), 32000, token);
  REQUIRE(uniform.perplexity().value == Approx(32000.0).epsilon(1e-12));
  REQUIRE(uniform.perplexity().uncertainty == 0.0);

  // nll 1, 2, 3, 4: m = 2.5, m2 = 7.5, sd = sqrt((7.5 - 6.25) / 3), ± = sd * e^2.5.
  PerplexityStats stats;
  for (double nll : {1.0, 2.0, 3.0, 4.0}) stats.add_nll(nll);
  const double ppl = std::exp(2.5);
  const double uncertainty = std::sqrt(1.25 / 3) * ppl;
  REQUIRE(stats.count() == 4);
  REQUIRE(stats.mean_nll() == Approx(2.5));
  REQUIRE(stats.perplexity().value == Approx(ppl));
  REQUIRE(stats.perplexity().uncertainty == Approx(uncertainty));
  REQUIRE(stats.report() == "Final estimate: PPL = 12.1825 +/- 7.86377");
}

TEST_CASE("RunningMean reports no uncertainty below two samples", "[perplexity]") {
  RunningMean mean;
  REQUIRE(mean.mean().value == 0.0);
  mean.add(3.0);
  REQUIRE(mean.mean().value == 3.0);
  REQUIRE(mean.mean().uncertainty == 0.0);
}

TEST_CASE("KL divergence of two known distributions", "[perplexity]") {
  // base p = (1/2, 1/2), test q = (1/4, 3/4):
  // KL = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3); argmax base = 0 (tie -> lowest), test = 1.
  const std::vector<float> base = {static_cast<float>(std::log(0.5)), static_cast<float>(std::log(0.5))};
  const std::vector<float> test = {static_cast<float>(std::log(0.25)) + 7.0f,
                                   static_cast<float>(std::log(0.75)) + 7.0f};  // logits: any offset
  KlDivergenceStats stats;
  REQUIRE(stats.add(base.data(), test.data(), 2, 1) == Approx(0.5 * std::log(4.0 / 3.0)).epsilon(1e-6));
  REQUIRE(stats.same_top_percent().value == 0.0);
  REQUIRE(stats.perplexity_base().value == Approx(2.0).epsilon(1e-6));
  REQUIRE(stats.perplexity_test().value == Approx(4.0 / 3.0).epsilon(1e-6));
  REQUIRE(stats.perplexity_ratio().value == Approx(2.0 / 3.0).epsilon(1e-6));
}

TEST_CASE("KL statistics accumulate means, standard errors and agreement like llama.cpp", "[perplexity]") {
  // Four positions over a vocab of 3; test logits shift the base distribution by varying amounts.
  const std::vector<std::vector<float>> base_logits = {
      {2.0f, 1.0f, 0.0f}, {0.0f, 3.0f, 1.0f}, {1.0f, 1.5f, -1.0f}, {0.5f, 0.0f, 2.5f}};
  const std::vector<std::vector<float>> test_logits = {
      {2.1f, 0.9f, 0.0f}, {0.0f, 2.0f, 1.5f}, {1.6f, 1.5f, -1.0f}, {0.5f, 0.2f, 2.4f}};
  const std::vector<int32_t> next_tokens = {0, 2, 1, 2};

  KlDivergenceStats stats;
  std::vector<double> kld, nll_base, nll_test;
  for (size_t i = 0; i < base_logits.size(); ++i) {
    const std::vector<float> base = log_softmax(base_logits[i]);
    const std::vector<float> test = log_softmax(test_logits[i]);
    double expected = 0;
    for (size_t j = 0; j < 3; ++j) expected += std::exp(base[j]) * (base[j] - test[j]);
    // expected uses the f32 log-probs: agreement to f32 rounding, not to a relative epsilon.
    REQUIRE(stats.add(base.data(), test_logits[i].data(), 3, next_tokens[i]) == Approx(expected).margin(1e-7));
    kld.push_back(expected);
    nll_base.push_back(-base[next_tokens[i]]);
    nll_test.push_back(-test[next_tokens[i]]);
  }
  auto mean_and_error = [](const std::vector<double>& x) {
    double m = 0, m2 = 0;
    for (double v : x) m += v, m2 += v * v;
    m /= x.size();
    m2 /= x.size();
    return Estimate{m, std::sqrt((m2 - m * m) / (x.size() - 1))};
  };
  REQUIRE(stats.count() == 4);
  REQUIRE(stats.mean_kld().value == Approx(mean_and_error(kld).value).epsilon(1e-6));
  REQUIRE(stats.mean_kld().uncertainty == Approx(mean_and_error(kld).uncertainty).epsilon(1e-5));
  REQUIRE(stats.perplexity_base().value == Approx(std::exp(mean_and_error(nll_base).value)).epsilon(1e-6));
  REQUIRE(stats.perplexity_test().value == Approx(std::exp(mean_and_error(nll_test).value)).epsilon(1e-6));
  REQUIRE(stats.perplexity_ratio().value ==
          Approx(stats.perplexity_test().value / stats.perplexity_base().value).epsilon(1e-6));

  // Argmax agrees at positions 0, 1 and 3 (at 2 the test model prefers token 0).
  REQUIRE(stats.same_top_percent().value == Approx(75.0));
  REQUIRE(stats.same_top_percent().uncertainty == Approx(100 * std::sqrt(0.75 * 0.25 / 3)));

  const std::vector<std::string> lines = stats.report();
  REQUIRE(lines.size() == 5);
  REQUIRE(lines[0].rfind("Mean PPL(Q): ", 0) == 0);
  REQUIRE(lines[1].rfind("Mean PPL(base): ", 0) == 0);
  REQUIRE(lines[2].rfind("PPL(Q)/PPL(base): ", 0) == 0);
  REQUIRE(lines[3].rfind("Mean KLD: ", 0) == 0);
  REQUIRE(lines[4] == "Same top p: 75.000 ± 25.000 %");
}

TEST_CASE("a model compared with itself has zero KLD and a PPL ratio of 1", "[perplexity]") {
  std::vector<float> logits(5000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(std::sin(0.37 * i) * 6.0);
  const std::vector<float> base = log_softmax(logits);
  KlDivergenceStats stats;
  for (int32_t token : {3, 100, 4999}) stats.add(base.data(), logits.data(), 5000, token);
  REQUIRE(std::abs(stats.mean_kld().value) < 1e-6);
  REQUIRE(stats.same_top_percent().value == 100.0);
  REQUIRE(stats.perplexity_ratio().value == Approx(1.0).epsilon(1e-6));
  REQUIRE(error_message([&] { stats.add(base.data(), logits.data(), 5000, 5000); }) ==
          "next token 5000 is outside the vocab of 5000");
}
