// run-llm: generate text with a llama-style model, measure perplexity, convert GGUF checkpoints,
// quantize fp16 checkpoints into AWQ, GPTQ or W8A8, benchmark the GPU path.
#include <cstdio>
#include <exception>
#include <string>

#include "runtime/cli/commands/commands.h"
#include "runtime/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "run-llm: runs a llama-style decoder (Llama, Mistral, Qwen2) from a Hugging Face checkpoint directory.\n"
      "Without a subcommand it generates text: run-llm --model DIR --prompt TEXT"};
  app.require_subcommand(0, 1);
  app.get_formatter()->column_width(34);
  const runllm::cli::Action generate = runllm::cli::register_generate(app);
  const runllm::cli::Action convert = runllm::cli::register_convert(app);
  const runllm::cli::Action perplexity = runllm::cli::register_perplexity(app);
  const runllm::cli::Action quantize = runllm::cli::register_quantize(app);
  const runllm::cli::Action bench = runllm::cli::register_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help, --help-all and the like are ParseErrors with exit code 0: CLI11 prints the help.
    if (e.get_exit_code() == 0) return app.exit(e);
    // Flag errors in run-llm's own style: one line, exit status 1 (CLI11 would print two lines and
    // exit with its own codes, 105/109/114...).
    std::string message = e.what();
    for (char& c : message)
      if (c == '\n') c = ' ';
    while (!message.empty() && message.back() == ' ') message.pop_back();
    std::string command = "run-llm";
    for (const CLI::App* subcommand : app.get_subcommands()) command += " " + subcommand->get_name();
    std::fprintf(stderr, "run-llm: error: %s (%s --help lists the options)\n", message.c_str(), command.c_str());
    return 1;
  }
  try {
    if (app.got_subcommand("convert")) return convert();
    if (app.got_subcommand("perplexity")) return perplexity();
    if (app.got_subcommand("quantize")) return quantize();
    if (app.got_subcommand("bench")) return bench();
    return generate();
  } catch (const runllm::Error& e) {
    std::fprintf(stderr, "run-llm: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "run-llm: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "run-llm: error: %s\n", e.what());
    return 1;
  }
}
