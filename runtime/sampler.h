// The CPU token sampler: turns one row of logits into the next token id.
//
// The chain follows llama.cpp's default order: repeat penalty -> top-k -> top-p -> min-p ->
// temperature -> softmax -> draw. Temperature 0 is greedy (argmax after the repeat penalty).
// Draws are reproducible: the same seed and the same logits give the same tokens on every
// platform, because the generator (std::mt19937_64) and its conversion to a uniform double are
// fully specified, and every ordering breaks ties by the lower token id.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace runllm {

struct SamplingParams {
  float temperature = 0.8f;     // 0 = greedy (argmax, ties -> lowest id)
  int top_k = 40;               // 0 = off
  float top_p = 0.95f;          // 1 = off
  float min_p = 0.05f;          // 0 = off; keep tokens with p >= min_p * p_max
  float repeat_penalty = 1.0f;  // 1 = off; logit > 0 ? logit / penalty : logit * penalty
  int repeat_last_n = 64;       // how many of the latest tokens the penalty looks at; 0 = off
  uint64_t seed = 0;
};

// Throws runllm::Error naming the command-line flag of the first out-of-range field
// ("--top-p must be in (0, 1], got 1.5").
void validate(const SamplingParams& params);

class Sampler {
 public:
  // Validates params (see validate) and seeds the generator with params.seed.
  explicit Sampler(const SamplingParams& params);

  // Picks the next token from logits[0 .. vocab_size). history holds the tokens so far (prompt
  // and generated); the repeat penalty reads its last repeat_last_n entries. Throws
  // runllm::Error on NaN or +inf logits, or on a penalized history id outside the vocab.
  int32_t sample(const float* logits, int64_t vocab_size, const std::vector<int32_t>& history);

  // The uniform number in [0, 1) that sample() would draw next (it draws one per call when the
  // temperature is above 0), for a device sampler that reproduces this sampler's draws.
  double draw_uniform01() { return uniform01(); }

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };

  // A total order on candidates, best first: higher logit, then lower id. Ties resolve the same
  // way on every platform, so sampling is reproducible.
  static bool ranks_before(const Candidate& a, const Candidate& b);

  void load_candidates(const float* logits, int64_t vocab_size);
  void apply_repeat_penalty(const std::vector<int32_t>& history, int64_t vocab_size);
  int32_t greedy_choice() const;
  // Puts the best k candidates first, best first, without sorting the rest.
  void sort_best(size_t k);
  // Each filter keeps a prefix (or subset) of candidates_.
  void keep_top_k();
  void keep_top_p();
  void keep_min_p();
  int32_t draw_with_temperature();
  double uniform01();

  SamplingParams params_;
  std::mt19937_64 generator_;
  std::vector<Candidate> candidates_;   // reused between calls: no per-token allocation
  std::vector<double> weights_;         // unnormalized probabilities of candidates_
  std::vector<int32_t> penalized_ids_;  // distinct ids of the penalty window
  size_t sorted_prefix_ = 0;            // candidates_[0, sorted_prefix_) are the best, in order
};

}  // namespace runllm
