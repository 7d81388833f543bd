#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "runtime/error.h"

namespace runllm {
namespace {

template <typename T>
[[noreturn]] void throw_flag_error(const char* flag, const char* rule, T value) {
  std::ostringstream message;
  message << flag << " must be " << rule << ", got " << value;
  throw Error(message.str());
}

}  // namespace

void validate(const SamplingParams& params) {
  // Written as !(in range) so that NaN fails every check.
  if (!(params.temperature >= 0 && std::isfinite(params.temperature)))
    throw_flag_error("--temperature", "a finite number >= 0", params.temperature);
  if (params.top_k < 0) throw_flag_error("--top-k", ">= 0", params.top_k);
  if (!(params.top_p > 0 && params.top_p <= 1)) throw_flag_error("--top-p", "in (0, 1]", params.top_p);
  if (!(params.min_p >= 0 && params.min_p <= 1)) throw_flag_error("--min-p", "in [0, 1]", params.min_p);
  if (!(params.repeat_penalty > 0 && std::isfinite(params.repeat_penalty)))
    throw_flag_error("--repeat-penalty", "a finite number > 0", params.repeat_penalty);
  if (params.repeat_last_n < 0) throw_flag_error("--repeat-last-n", ">= 0", params.repeat_last_n);
}

Sampler::Sampler(const SamplingParams& params) : params_(params), generator_(params.seed) {
  validate(params_);
}

int32_t Sampler::sample(const float* logits, int64_t vocab_size, const std::vector<int32_t>& history) {
  if (vocab_size <= 0 || vocab_size > std::numeric_limits<int32_t>::max())
    throw Error("sampler: vocab size must be in [1, 2^31), got " + std::to_string(vocab_size));
  load_candidates(logits, vocab_size);
  apply_repeat_penalty(history, vocab_size);
  if (params_.temperature == 0) return greedy_choice();
  keep_top_k();
  keep_top_p();
  keep_min_p();
  return draw_with_temperature();
}

bool Sampler::ranks_before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

void Sampler::load_candidates(const float* logits, int64_t vocab_size) {
  candidates_.resize(static_cast<size_t>(vocab_size));
  bool any_finite = false;
  for (int64_t i = 0; i < vocab_size; ++i) {
    const float logit = logits[i];
    if (std::isnan(logit)) throw Error("logits contain NaN");
    if (logit == std::numeric_limits<float>::infinity()) throw Error("logits contain +inf");
    any_finite |= logit != -std::numeric_limits<float>::infinity();
    candidates_[i] = {logit, static_cast<int32_t>(i)};
  }
  if (!any_finite) throw Error("logits are all -inf");
  sorted_prefix_ = 0;
}

void Sampler::apply_repeat_penalty(const std::vector<int32_t>& history, int64_t vocab_size) {
  if (params_.repeat_penalty == 1.0f || params_.repeat_last_n == 0 || history.empty()) return;
  const size_t window = std::min(history.size(), static_cast<size_t>(params_.repeat_last_n));
  // Each id is penalized once, however often it repeats (llama.cpp's rule).
  penalized_ids_.assign(history.end() - static_cast<std::ptrdiff_t>(window), history.end());
  std::sort(penalized_ids_.begin(), penalized_ids_.end());
  penalized_ids_.erase(std::unique(penalized_ids_.begin(), penalized_ids_.end()), penalized_ids_.end());
  for (const int32_t id : penalized_ids_) {
    if (id < 0 || id >= vocab_size)
      throw Error("sampler: history token id " + std::to_string(id) + " is outside the vocab of " +
                  std::to_string(vocab_size));
    // candidates_ is still indexed by id: no filter has reordered it yet.
    float& logit = candidates_[static_cast<size_t>(id)].logit;
    logit = logit > 0 ? logit / params_.repeat_penalty : logit * params_.repeat_penalty;
  }
}

int32_t Sampler::greedy_choice() const {
  int32_t best = 0;
  for (size_t i = 1; i < candidates_.size(); ++i)
    if (candidates_[i].logit > candidates_[best].logit) best = static_cast<int32_t>(i);
  return candidates_[best].id;  // strict > keeps the lowest id among equal logits
}

void Sampler::sort_best(size_t k) {
  k = std::min(k, candidates_.size());
  if (k <= sorted_prefix_) return;
  // The sorted prefix already ranks before everything after it: select from the rest only.
  const auto first = candidates_.begin() + static_cast<std::ptrdiff_t>(sorted_prefix_);
  const auto middle = candidates_.begin() + static_cast<std::ptrdiff_t>(k);
  // Heap selection costs about one comparison per candidate once its heap is full, the best for
  // a few winners (top-k 40 over 150k: ~3x faster than quickselect); for thousands of winners
  // quickselect plus sorting them is faster.
  constexpr size_t kHeapSelectLimit = 1024;
  if (k - sorted_prefix_ <= kHeapSelectLimit) {
    std::partial_sort(first, middle, candidates_.end(), ranks_before);
  } else {
    std::nth_element(first, middle - 1, candidates_.end(), ranks_before);
    std::sort(first, middle, ranks_before);
  }
  sorted_prefix_ = k;
}

void Sampler::keep_top_k() {
  const size_t k = static_cast<size_t>(params_.top_k);
  if (k == 0 || k >= candidates_.size()) return;
  sort_best(k);
  candidates_.resize(k);
}

void Sampler::keep_top_p() {
  if (params_.top_p >= 1.0f) return;
  // Probabilities at temperature 1 over the current candidates; keep the smallest best-first
  // prefix whose mass reaches top_p (the token that crosses it is kept). The nucleus is usually
  // small, so the sorted prefix grows only as far as the scan needs it.
  double max_logit = -std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, static_cast<double>(c.logit));
  double total = 0;
  for (const Candidate& c : candidates_) total += std::exp(static_cast<double>(c.logit) - max_logit);
  const double target = static_cast<double>(params_.top_p) * total;
  double cumulative = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    if (i == sorted_prefix_) sort_best(std::max<size_t>(64, 4 * i));
    cumulative += std::exp(static_cast<double>(candidates_[i].logit) - max_logit);
    if (cumulative >= target) {
      candidates_.resize(i + 1);
      return;
    }
  }
}

void Sampler::keep_min_p() {
  if (params_.min_p <= 0.0f) return;
  // p >= min_p * p_max  <=>  logit - max_logit >= log(min_p); no softmax needed.
  double max_logit = -std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, static_cast<double>(c.logit));
  const double threshold = max_logit + std::log(static_cast<double>(params_.min_p));
  candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(),
                                   [threshold](const Candidate& c) { return c.logit < threshold; }),
                    candidates_.end());
}

int32_t Sampler::draw_with_temperature() {
  double max_logit = -std::numeric_limits<double>::infinity();
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, static_cast<double>(c.logit));
  const double inverse_temperature = 1.0 / static_cast<double>(params_.temperature);
  double total = 0;
  weights_.resize(candidates_.size());
  for (size_t i = 0; i < candidates_.size(); ++i) {
    weights_[i] = std::exp((static_cast<double>(candidates_[i].logit) - max_logit) * inverse_temperature);
    total += weights_[i];
  }
  const double target = uniform01() * total;
  double cumulative = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += weights_[i];
    if (target < cumulative) return candidates_[i].id;
  }
  return candidates_.back().id;  // target rounded up to total
}

double Sampler::uniform01() {
  // The top 53 bits of one 64-bit draw, scaled to [0, 1): exact and the same everywhere, unlike
  // std::uniform_real_distribution whose algorithm the standard leaves to the library.
  return static_cast<double>(generator_() >> 11) * 0x1.0p-53;
}

}  // namespace runllm
