#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "model/model_directory.h"
#include "runtime/cli/commands/commands.h"
#include "runtime/cli/commands/device_options.h"
#include "runtime/cli/commands/model_load_options.h"
#include "runtime/error.h"
#include "runtime/file_io.h"
#include "runtime/perplexity.h"
#include "runtime/progress.h"

namespace runllm::cli {

Action register_perplexity(CLI::App& app) {
  struct Options {
    std::string model_dir, file;
    PerplexityOptions perplexity;
    bool verbose = false;
    ModelLoadFlags load;
    DeviceFlags device;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "perplexity", "Perplexity of a text file by llama.cpp's method (score the second half of each window); "
                    "optionally save logits or compare against saved ones (KL divergence)");
  command->add_option("-m,--model", options->model_dir, "checkpoint directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  command->add_option("-f,--file", options->file, "UTF-8 text file to evaluate")->required()->check(CLI::ExistingFile);
  command->add_option("-c,--ctx", options->perplexity.context, "window length in tokens")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{4}, int64_t{1} << 20));
  command->add_option("--chunks", options->perplexity.max_chunks, "evaluate at most N windows (default: all)")
      ->check(CLI::PositiveNumber);
  command->add_option("--save-logits", options->perplexity.save_logits_path,
                      "store this (base) model's log-probs of every scored token in FILE");
  command->add_option("--kl-divergence", options->perplexity.kl_divergence_path,
                      "compare against a --save-logits FILE: mean KLD, top-1 agreement, perplexity ratio")
      ->check(CLI::ExistingFile);
  add_model_load_options(*command, options->load);
  add_device_options(*command, options->device);
  command->add_flag("-v,--verbose", options->verbose, "print the per-layer implementation choice");

  return [options, command]() {
    BackendPlan plan(options->device, options->verbose);
    const ModelDirectory directory = open_model_directory(
        options->model_dir, options->verbose, to_linear_options(options->load, *command), plan.layer_sink());
    const std::string text = read_whole_file(options->file);
    const int64_t window = options->perplexity.context;
    SelectedBackend backend = plan.select(*directory.model, window, window);
    ProgressSink progress("perplexity", "windows");
    const PerplexityResult result = measure_perplexity(
        *backend.backend, *directory.tokenizer, text, options->perplexity,
        [&progress, window](int64_t done, int64_t windows, double running) {
          if (done == 0) return progress.count(0, windows);
          char detail[96];
          std::snprintf(detail, sizeof detail, "running PPL = %.4f, %.0f tokens/s", running,
                        static_cast<double>(done * window) / std::max(progress.reporter()->elapsed_seconds(), 1e-9));
          progress.count(done, windows, detail);
        });
    std::printf("file: %s (%lld tokens), ctx %lld, %lld chunks, %lld scored tokens\n", options->file.c_str(),
                static_cast<long long>(result.file_tokens), static_cast<long long>(options->perplexity.context),
                static_cast<long long>(result.chunks), static_cast<long long>(result.perplexity.count()));
    std::printf("%s\n", result.perplexity.report().c_str());
    if (result.has_kl)
      for (const std::string& line : result.kl.report()) std::printf("%s\n", line.c_str());
    if (!options->perplexity.save_logits_path.empty())
      std::printf("saved logits: %s\n", options->perplexity.save_logits_path.c_str());
    std::printf("device: %s\n", backend.backend->device_name().c_str());
    return 0;
  };
}

}  // namespace runllm::cli
