#include "runtime/perplexity.h"

#include <cmath>
#include <cstdio>
#include <memory>

#include "model/cpu_decoder_backend.h"
#include "runtime/decoder_backend.h"
#include "runtime/error.h"
#include "runtime/logits_file.h"
#include "tokenizer/tokenizer.h"

namespace runllm {

PerplexityResult measure_perplexity(const LlamaModel& model, const Tokenizer& tokenizer, const std::string& text,
                                    const PerplexityOptions& options,
                                    const PerplexityProgress& on_window) {
  CpuDecoderBackend backend(model);
  return measure_perplexity(backend, tokenizer, text, options, on_window);
}

PerplexityResult measure_perplexity(DecoderBackend& model, const Tokenizer& tokenizer, const std::string& text,
                                    const PerplexityOptions& options,
                                    const PerplexityProgress& on_window) {
  const int64_t context = options.context;
  const int64_t vocab = model.config().vocab_size;
  if (context < 4) throw Error("--ctx must be at least 4 for perplexity, got " + std::to_string(context));
  if (context > model.config().max_position_embeddings)
    throw Error("--ctx " + std::to_string(context) + " exceeds the model's maximum of " +
                std::to_string(model.config().max_position_embeddings) + " positions");

  const bool add_bos = tokenizer.adds_bos_by_default();
  std::vector<int32_t> tokens = tokenizer.encode(text, add_bos);
  PerplexityResult result;
  result.file_tokens = static_cast<int64_t>(tokens.size());
  int64_t chunks = result.file_tokens / context;
  if (chunks == 0)
    throw Error("the text has " + std::to_string(tokens.size()) + " tokens, fewer than one window of --ctx " +
                std::to_string(context));
  if (options.max_chunks > 0) chunks = std::min(chunks, options.max_chunks);
  result.chunks = chunks;
  tokens.resize(static_cast<size_t>(chunks * context));  // only whole windows are evaluated
  // As llama.cpp: with a BOS-using tokenizer every window starts with BOS.
  if (add_bos && tokenizer.bos_id())
    for (int64_t chunk = 0; chunk < chunks; ++chunk) tokens[static_cast<size_t>(chunk * context)] = *tokenizer.bos_id();

  std::unique_ptr<LogitsFileWriter> writer;
  if (!options.save_logits_path.empty())
    writer = std::make_unique<LogitsFileWriter>(options.save_logits_path, vocab, context, tokens);
  std::unique_ptr<LogitsFileReader> base;
  std::vector<float> base_log_probs;
  if (!options.kl_divergence_path.empty()) {
    base = std::make_unique<LogitsFileReader>(options.kl_divergence_path);
    base->check_matches(tokens, vocab, context);
    base_log_probs.resize(static_cast<size_t>(vocab));
    result.has_kl = true;
  }

  const int64_t first = context / 2;
  std::vector<float> logits(static_cast<size_t>((context - first) * vocab));
  model.reset(context);
  int64_t base_position = 0;
  if (on_window) on_window(0, chunks, std::nan(""));
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int64_t start = chunk * context;
    model.reset(context);
    model.forward(tokens.data() + start, context, first, logits.data());
    for (int64_t j = first; j < context - 1; ++j) {
      const float* row = logits.data() + (j - first) * vocab;
      const int64_t target_index = start + j + 1;
      const int32_t target = tokens[static_cast<size_t>(target_index)];
      result.perplexity.add(row, vocab, target);
      if (writer) writer->write_position(target_index, row);
      if (base) {
        if (base_position >= base->position_count() || base->target_index(base_position) != target_index)
          throw Error(options.kl_divergence_path + ": scored positions differ from this run (was it made with a "
                      "different --ctx or --chunks?)");
        base->read_log_probs(base_position++, base_log_probs.data());
        result.kl.add(base_log_probs.data(), row, vocab, target);
      }
    }
    if (on_window) on_window(chunk + 1, chunks, result.perplexity.perplexity().value);
  }
  if (writer) writer->finish();
  if (base && base_position != base->position_count())
    throw Error(options.kl_divergence_path + ": holds " + std::to_string(base->position_count()) +
                " scored positions but this run scored " + std::to_string(base_position) +
                " (use the same --ctx and --chunks as the base run)");
  return result;
}

}  // namespace runllm
