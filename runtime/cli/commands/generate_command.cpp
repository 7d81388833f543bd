#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "model/model_directory.h"
#include "runtime/cli/commands/commands.h"
#include "runtime/cli/commands/device_options.h"
#include "runtime/cli/commands/interactive_chat.h"
#include "runtime/cli/commands/model_load_options.h"
#include "runtime/error.h"
#include "runtime/file_io.h"
#include "runtime/generator.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace runllm::cli {

namespace {

struct GenerateOptions {
  std::string model_dir;
  std::string prompt;
  std::string prompt_file;  // --prompt-file: "-" is stdin
  int64_t max_tokens = 256;
  int64_t context_length = 0;  // 0 = the model's max_position_embeddings
  SamplingParams sampling;
  bool chat = false;
  bool interactive = false;
  std::string chat_format;
  std::string system_prompt;
  bool system_given = false;  // --system "" is a real (empty) system prompt
  bool verbose = false;
  ModelLoadFlags load;
  DeviceFlags device;
};

ChatFormat choose_chat_format(const GenerateOptions& options, const ModelDirectory& directory) {
  if (!options.chat_format.empty()) {
    const auto format = chat_format_from_name(options.chat_format);
    if (!format) throw Error("--chat-format: unknown format \"" + options.chat_format +
                             "\" (known: chatml, llama2, llama3, mistral)");
    return *format;
  }
  if (directory.chat_template.empty())
    throw Error(directory.path + ": no chat template (" + directory.chat_template_source +
                "); pass --chat-format chatml|llama2|llama3|mistral");
  const auto format = detect_chat_format(directory.chat_template);
  if (!format)
    throw Error("the checkpoint's chat template is not one run-llm recognises; pass --chat-format "
                "chatml|llama2|llama3|mistral");
  return *format;
}

// All of stdin, for --prompt-file -.
std::string read_stdin() {
  std::string text;
  char buffer[1 << 16];
  size_t count;
  while ((count = std::fread(buffer, 1, sizeof buffer, stdin)) > 0) text.append(buffer, count);
  if (std::ferror(stdin)) throw Error("--prompt-file -: reading stdin failed");
  return text;
}

std::string read_prompt_file(const std::string& path) {
  // A directory opens and reads as zero bytes, which would pass for an empty prompt.
  std::error_code error;  // a name too long or a directory we may not search: left to the read's error
  if (std::filesystem::is_directory(path, error)) throw Error("--prompt-file " + path + ": is a directory");
  return read_whole_file(path, "the prompt text");
}

// Checked here, before the model loads, so the error is quick and names where the text came from
// (the tokenizer would only see the chat-templated text and count offsets in that).
void require_valid_utf8(const std::string& text, const std::string& source) {
  const int64_t bad = find_invalid_utf8(text);
  if (bad >= 0) throw Error(source + " is not valid UTF-8 at byte offset " + std::to_string(bad));
}

// The prompt ids for a plain or chat prompt; adds the chat format's end-of-turn token to the stop ids.
std::vector<int32_t> prompt_ids(const GenerateOptions& options, const ModelDirectory& directory,
                                std::set<int32_t>& stop_ids) {
  const Tokenizer& tokenizer = *directory.tokenizer;
  if (!options.chat) return tokenizer.encode(options.prompt, tokenizer.adds_bos_by_default());
  const ChatFormat format = choose_chat_format(options, directory);
  const std::string system =
      options.system_given ? options.system_prompt : default_system_prompt(directory.chat_template);
  const auto bos = tokenizer.bos_id();
  const std::string bos_text = bos ? tokenizer.token_bytes(*bos) : "";
  const std::string text = apply_chat_format(format, system, options.prompt, bos_text);
  if (const auto end_of_turn = tokenizer.token_id(end_of_turn_text(format))) stop_ids.insert(*end_of_turn);
  if (options.verbose) std::fprintf(stderr, "chat format: %s\n", chat_format_name(format));
  return tokenizer.encode(text, false);
}

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string text;
  for (const int32_t id : ids) text += (text.empty() ? "" : " ") + std::to_string(id);
  return text;
}

int run_interactive(const GenerateOptions& o, ModelDirectory& directory, BackendPlan& plan) {
  const Tokenizer& tokenizer = *directory.tokenizer;
  InteractiveChatSettings settings;
  settings.format = choose_chat_format(o, directory);
  settings.system_prompt = o.system_given ? o.system_prompt : default_system_prompt(directory.chat_template);
  const auto bos = tokenizer.bos_id();
  settings.bos_text = bos ? tokenizer.token_bytes(*bos) : "";
  settings.stop_ids = directory.eos_ids;
  if (const auto end_of_turn = tokenizer.token_id(end_of_turn_text(settings.format))) settings.stop_ids.insert(*end_of_turn);
  settings.max_new_tokens = o.max_tokens;
  settings.sampling = o.sampling;
  settings.first_message = o.prompt;
  settings.verbose = o.verbose;
  const int64_t model_max = directory.config.max_position_embeddings;
  if (o.context_length > model_max)
    throw Error("--ctx " + std::to_string(o.context_length) + " exceeds the model's maximum of " +
                std::to_string(model_max) + " positions");
  settings.context_length = o.context_length > 0 ? o.context_length : model_max;
  if (o.verbose) {
    std::fprintf(stderr, "chat format: %s\n", chat_format_name(settings.format));
    std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(o.sampling.seed));
  }
  SelectedBackend backend = plan.select(*directory.model, o.context_length, 512);
  if (backend.context) settings.context_length = std::min(settings.context_length, backend.backend->capacity());
  return run_interactive_chat(*backend.backend, tokenizer, settings);
}

}  // namespace

Action register_generate(CLI::App& app) {
  auto options = std::make_shared<GenerateOptions>();
  app.add_option("-m,--model", options->model_dir, "checkpoint directory (config.json, *.safetensors, tokenizer)")
      ->check(CLI::ExistingDirectory);
  CLI::Option* prompt = app.add_option("-p,--prompt", options->prompt, "prompt text");
  // The one way to give a prompt with NUL bytes (argv strings end at the first) or over the 128 KiB
  // a single argument may have.
  app.add_option("--prompt-file", options->prompt_file, "read the prompt from a file (- = stdin)")->excludes(prompt);
  app.add_option("-n,--max-tokens", options->max_tokens, "most tokens to generate")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--ctx", options->context_length,
                 "context length in tokens, prompt included (default: the model's max_position_embeddings)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  app.add_option("--temperature", options->sampling.temperature, "sampling temperature; 0 = greedy")
      ->capture_default_str();
  app.add_option("--top-k", options->sampling.top_k, "keep the k most likely tokens; 0 = off")->capture_default_str();
  app.add_option("--top-p", options->sampling.top_p, "nucleus sampling mass; 1 = off")->capture_default_str();
  app.add_option("--min-p", options->sampling.min_p, "drop tokens below min-p times the top probability; 0 = off")
      ->capture_default_str();
  app.add_option("--repeat-penalty", options->sampling.repeat_penalty, "penalty for recent tokens; 1 = off")
      ->capture_default_str();
  app.add_option("--repeat-last-n", options->sampling.repeat_last_n, "how many recent tokens the penalty sees")
      ->capture_default_str();
  app.add_option("--seed", options->sampling.seed, "random seed; the same seed gives the same output (default: random)");
  app.add_flag("--chat", options->chat, "wrap the prompt in the checkpoint's chat template");
  app.add_flag("-i,--interactive", options->interactive,
               "multi-turn chat (implies --chat): one message per line of stdin, /reset, /exit; "
               "--prompt, if given, is the first message");
  app.add_option("--chat-format", options->chat_format,
                 "chat format when the template is not recognised: chatml, llama2, llama3, mistral");
  app.add_option("--system", options->system_prompt, "system prompt for --chat (default: the template's own)");
  add_model_load_options(app, options->load);
  add_device_options(app, options->device);
  app.add_flag("-v,--verbose", options->verbose, "print the per-layer implementation choice, timings, seed and token ids");

  return [options, &app]() {
    GenerateOptions& o = *options;
    if (o.model_dir.empty()) throw Error("--model DIR is required (run-llm --help lists every option)");
    if (o.interactive) o.chat = true;
    if (o.interactive && app.count("--prompt-file") != 0 && o.prompt_file == "-")
      throw Error("--prompt-file - reads stdin, which --interactive reads its messages from");
    if (app.count("--prompt-file") != 0)
      o.prompt = o.prompt_file == "-" ? read_stdin() : read_prompt_file(o.prompt_file);
    else if (app.count("--prompt") == 0 && !o.interactive)
      throw Error("--prompt TEXT (or --prompt-file PATH) is required (or --chat -i for an interactive chat)");
    require_valid_utf8(o.prompt, app.count("--prompt-file") ? "--prompt-file " + o.prompt_file : "--prompt");
    o.system_given = app.count("--system") != 0;
    if (o.system_given && !o.chat) throw Error("--system only applies with --chat");
    require_valid_utf8(o.system_prompt, "--system");
    validate(o.sampling);
    if (app.count("--seed") == 0) o.sampling.seed = std::random_device{}();

    BackendPlan plan(o.device, o.verbose);
    ModelDirectory directory =
        open_model_directory(o.model_dir, o.verbose, to_linear_options(o.load, app), plan.layer_sink());
    if (o.interactive) return run_interactive(o, directory, plan);
    GenerationRequest request;
    request.stop_ids = directory.eos_ids;
    request.prompt_ids = prompt_ids(o, directory, request.stop_ids);
    const int64_t model_max = directory.config.max_position_embeddings;
    if (o.context_length > model_max)
      throw Error("--ctx " + std::to_string(o.context_length) + " exceeds the model's maximum of " +
                  std::to_string(model_max) + " positions");
    request.context_length = o.context_length > 0 ? o.context_length : model_max;
    request.max_new_tokens = o.max_tokens;
    request.sampling = o.sampling;
    if (o.verbose) {
      std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(o.sampling.seed));
      std::fprintf(stderr, "prompt ids: %s\n", join_ids(request.prompt_ids).c_str());
    }

    // The GPU keeps the whole --ctx (default: the model's max, capped by free memory) in its KV cache.
    SelectedBackend backend = plan.select(*directory.model, o.context_length, 512);
    if (backend.context) request.context_length = std::min(request.context_length, backend.backend->capacity());
    const GenerationResult result = generate(*backend.backend, *directory.tokenizer, request, [](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    const double prompt_rate = static_cast<double>(request.prompt_ids.size()) / result.prompt_seconds;
    const double decode_rate = result.tokens.size() / (result.decode_seconds > 0 ? result.decode_seconds : 1e-9);
    std::fprintf(stderr,
                 "prompt: %zu tokens, %.1f tokens/s | generation: %zu tokens, %.1f tokens/s | stop: %s | device: %s\n",
                 request.prompt_ids.size(), prompt_rate, result.tokens.size(), decode_rate,
                 result.stop_reason.c_str(), backend.backend->device_name().c_str());
    if (o.verbose) std::fprintf(stderr, "generated ids: %s\n", join_ids(result.tokens).c_str());
    return 0;
  };
}

}  // namespace runllm::cli
