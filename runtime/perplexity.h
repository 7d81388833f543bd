// Perplexity and KL divergence over a text file, by llama.cpp's method: the token sequence is cut into
// non-overlapping windows of `context` tokens; in each window the logits of positions context/2 ..
// context-2 score the token that follows (the first half only gives those positions context).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/perplexity_stats.h"

namespace runllm {

class DecoderBackend;
class LlamaModel;
class Tokenizer;

struct PerplexityOptions {
  int64_t context = 512;
  int64_t max_chunks = 0;            // 0 = every whole window of the file
  std::string save_logits_path;      // write the base model's log-probs of every scored position
  std::string kl_divergence_path;    // compare against a file written by --save-logits
};

struct PerplexityResult {
  int64_t file_tokens = 0;
  int64_t chunks = 0;
  PerplexityStats perplexity;
  bool has_kl = false;
  KlDivergenceStats kl;
};

// Called once before the first window (0 done, perplexity NaN) and after each window with the windows
// done, their total and the running perplexity.
using PerplexityProgress = std::function<void(int64_t windows_done, int64_t windows, double running_perplexity)>;

// `on_window` reports progress (may be empty). Throws runllm::Error when
// the text is shorter than one window, or when a KL base file does not match this text and model.
PerplexityResult measure_perplexity(DecoderBackend& model, const Tokenizer& tokenizer, const std::string& text,
                                    const PerplexityOptions& options,
                                    const PerplexityProgress& on_window);
// The CPU reference path (a CpuDecoderBackend over `model`).
PerplexityResult measure_perplexity(const LlamaModel& model, const Tokenizer& tokenizer, const std::string& text,
                                    const PerplexityOptions& options,
                                    const PerplexityProgress& on_window);

}  // namespace runllm
