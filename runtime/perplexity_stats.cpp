#include "runtime/perplexity_stats.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <utility>

#include "runtime/error.h"

namespace runllm {
namespace {

void check_token(int64_t vocab_size, int32_t token, const char* what) {
  if (token < 0 || token >= vocab_size)
    throw Error(std::string(what) + " " + std::to_string(token) + " is outside the vocab of " +
                std::to_string(vocab_size));
}

// The largest logit and its index (ties -> lowest index); throws on NaN.
std::pair<double, int64_t> max_logit(const float* logits, int64_t vocab_size) {
  if (vocab_size <= 0) throw Error("logits: vocab size must be positive, got " + std::to_string(vocab_size));
  int64_t best = 0;
  for (int64_t i = 0; i < vocab_size; ++i) {
    if (std::isnan(logits[i])) throw Error("logits contain NaN");
    if (logits[i] > logits[best]) best = i;
  }
  return {logits[best], best};
}

// log Σ exp(logits), with the max subtracted so no term overflows.
double log_sum_exp(const float* logits, int64_t vocab_size, double max) {
  double sum = 0;
  for (int64_t i = 0; i < vocab_size; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  return max + std::log(sum);
}

Estimate exp_of(const Estimate& log_estimate) {
  const double value = std::exp(log_estimate.value);
  return {value, value * log_estimate.uncertainty};
}

std::string format_line(const char* format, double a, double b) {
  char line[128];
  std::snprintf(line, sizeof line, format, a, b);
  return line;
}

}  // namespace

void RunningMean::add(double x) {
  sum_ += x;
  sum_of_squares_ += x * x;
  ++count_;
}

Estimate RunningMean::mean() const {
  if (count_ == 0) return {};
  const double n = static_cast<double>(count_);
  const double mean = sum_ / n;
  const double variance = sum_of_squares_ / n - mean * mean;
  // Rounding can make a zero variance slightly negative.
  const double uncertainty = count_ > 1 && variance > 0 ? std::sqrt(variance / (n - 1)) : 0.0;
  return {mean, uncertainty};
}

double log_softmax_at(const float* logits, int64_t vocab_size, int32_t token) {
  const double max = max_logit(logits, vocab_size).first;
  check_token(vocab_size, token, "token");
  return static_cast<double>(logits[token]) - log_sum_exp(logits, vocab_size, max);
}

double PerplexityStats::add(const float* logits, int64_t vocab_size, int32_t next_token) {
  const double nll = -log_softmax_at(logits, vocab_size, next_token);
  add_nll(nll);
  return nll;
}

void PerplexityStats::add_nll(double nll) { nll_.add(nll); }

Estimate PerplexityStats::perplexity() const { return exp_of(nll_.mean()); }

std::string PerplexityStats::report() const {
  const Estimate ppl = perplexity();
  return format_line("Final estimate: PPL = %.4f +/- %.5f", ppl.value, ppl.uncertainty);
}

double KlDivergenceStats::add(const float* base_log_probs, const float* test_logits, int64_t vocab_size,
                              int32_t next_token) {
  const auto test_max = max_logit(test_logits, vocab_size);
  check_token(vocab_size, next_token, "next token");
  const double test_log_normalizer = log_sum_exp(test_logits, vocab_size, test_max.first);

  // Stored base log-probs are rounded, so their probabilities need not sum to 1. Summing them
  // as they are (llama.cpp does) leaves an error of first order in the rounding, about 1e-5 for
  // u16 log-probs. Renormalizing, KL = (Σ e^b (b - t)) / S - log S with S = Σ e^b, leaves only a
  // second-order one; for exact log-probs S = 1 and nothing changes.
  double base_mass = 0;
  double weighted_difference = 0;
  int64_t base_top = 0;
  for (int64_t i = 0; i < vocab_size; ++i) {
    const double log_p_base = base_log_probs[i];
    if (std::isnan(log_p_base)) throw Error("base log-probs contain NaN");
    if (log_p_base > base_log_probs[base_top]) base_top = i;
    const double p_base = std::exp(log_p_base);
    // Tokens the base model rules out contribute nothing (and 0 * -inf would be NaN).
    if (p_base == 0) continue;
    base_mass += p_base;
    weighted_difference += p_base * (log_p_base - (static_cast<double>(test_logits[i]) - test_log_normalizer));
  }
  if (!(base_mass > 0)) throw Error("base log-probs are all -inf");
  const double kld = weighted_difference / base_mass - std::log(base_mass);

  const double nll_base = -static_cast<double>(base_log_probs[next_token]);
  const double nll_test = test_log_normalizer - static_cast<double>(test_logits[next_token]);
  kld_.add(kld);
  nll_base_.add(nll_base);
  nll_test_.add(nll_test);
  nll_difference_.add(nll_test - nll_base);
  same_top_.add(base_top == test_max.second ? 1.0 : 0.0);
  return kld;
}

Estimate KlDivergenceStats::same_top_percent() const {
  const int64_t n = same_top_.count();
  if (n == 0) return {};
  const double p = same_top_.mean().value;
  const double uncertainty = n > 1 ? std::sqrt(p * (1 - p) / static_cast<double>(n - 1)) : 0.0;
  return {100 * p, 100 * uncertainty};
}

Estimate KlDivergenceStats::perplexity_base() const { return exp_of(nll_base_.mean()); }

Estimate KlDivergenceStats::perplexity_test() const { return exp_of(nll_test_.mean()); }

Estimate KlDivergenceStats::perplexity_ratio() const { return exp_of(nll_difference_.mean()); }

std::vector<std::string> KlDivergenceStats::report() const {
  const Estimate test = perplexity_test(), base = perplexity_base(), ratio = perplexity_ratio();
  const Estimate kld = mean_kld(), same_top = same_top_percent();
  return {
      format_line("Mean PPL(Q): %.6f ± %.6f", test.value, test.uncertainty),
      format_line("Mean PPL(base): %.6f ± %.6f", base.value, base.uncertainty),
      format_line("PPL(Q)/PPL(base): %.6f ± %.6f", ratio.value, ratio.uncertainty),
      format_line("Mean KLD: %.6f ± %.6f", kld.value, kld.uncertainty),
      format_line("Same top p: %.3f ± %.3f %%", same_top.value, same_top.uncertainty),
  };
}

}  // namespace runllm
