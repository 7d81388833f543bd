// Perplexity and KL-divergence statistics, computed and printed as llama.cpp's perplexity tool
// does, so numbers can be compared with it directly.
//
// Perplexity: exp(mean negative log-likelihood) of the scored tokens, natural log. Its "±" is
// llama.cpp's: with mean nll m and mean square m2 over n tokens, sd = sqrt((m2 - m^2) / (n - 1))
// is the standard error of m, and ± = sd * ppl (first-order error of exp).
// KL divergence (--kl-divergence): per scored token KL(base || test) =
// Σ p_base (log p_base − log p_test), with its mean ± standard error, how often both models
// rank the same token first, and both models' perplexity of the actual next tokens. Unlike
// llama.cpp, p_base is renormalized first, so the rounding of stored base log-probs does not
// bias the mean KLD (see KlDivergenceStats::add).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runllm {

// A value and its one-sigma uncertainty, printed as "value ± uncertainty".
struct Estimate {
  double value = 0;
  double uncertainty = 0;
};

// Running mean of a sample with the standard error of that mean.
class RunningMean {
 public:
  void add(double x);
  int64_t count() const { return count_; }
  // Mean ± sqrt((m2 - m^2) / (n - 1)); the uncertainty is 0 with fewer than two samples.
  Estimate mean() const;

 private:
  double sum_ = 0;
  double sum_of_squares_ = 0;
  int64_t count_ = 0;
};

// log p(token) under softmax(logits): max-subtracted log-sum-exp in double. Throws runllm::Error
// on NaN logits or a token outside [0, vocab_size).
double log_softmax_at(const float* logits, int64_t vocab_size, int32_t token);

class PerplexityStats {
 public:
  // Scores one position: logits predict next_token. Returns its negative log-likelihood.
  double add(const float* logits, int64_t vocab_size, int32_t next_token);
  void add_nll(double nll);
  int64_t count() const { return nll_.count(); }
  double mean_nll() const { return nll_.mean().value; }
  // exp(mean nll) ± sd * ppl.
  Estimate perplexity() const;
  // "Final estimate: PPL = 11.6055 +/- 0.12345", llama.cpp's closing line.
  std::string report() const;

 private:
  RunningMean nll_;
};

class KlDivergenceStats {
 public:
  // Scores one position. base_log_probs: the base model's log-softmax over the vocab (as read
  // back from a logits file); test_logits: this run's raw logits for the same position;
  // next_token: the token that follows. Returns this position's KL(base || test).
  double add(const float* base_log_probs, const float* test_logits, int64_t vocab_size, int32_t next_token);

  int64_t count() const { return kld_.count(); }
  Estimate mean_kld() const { return kld_.mean(); }
  // Percentage of positions where both argmaxes agree (ties -> lowest id), with the binomial
  // standard error 100 * sqrt(p (1 - p) / (n - 1)).
  Estimate same_top_percent() const;
  Estimate perplexity_base() const;
  Estimate perplexity_test() const;
  // PPL(test) / PPL(base) = exp(mean(nll_test - nll_base)); the ± comes from the per-token
  // differences, so the correlation between the two runs is accounted for.
  Estimate perplexity_ratio() const;

  // Printable lines, e.g. "Mean PPL(Q): 11.623400 ± 0.123456", "Mean PPL(base): ...",
  // "PPL(Q)/PPL(base): 1.012300 ± 0.000456", "Mean KLD: 0.012345 ± 0.000321",
  // "Same top p: 93.120 ± 0.450 %". Q is the run under test, as in llama.cpp.
  std::vector<std::string> report() const;

 private:
  RunningMean kld_;
  RunningMean nll_base_;
  RunningMean nll_test_;
  RunningMean nll_difference_;  // nll_test - nll_base, per token
  RunningMean same_top_;        // 1 where the argmaxes agree, else 0
};

}  // namespace runllm
