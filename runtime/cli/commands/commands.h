// The subcommands of `run-llm`. Each registers its options on the CLI11 app and returns the action
// that runs once parsing succeeded (so `--help` never loads a model).
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace runllm::cli {

using Action = std::function<int()>;

// `run-llm --model DIR --prompt TEXT`: options live on the top-level app.
Action register_generate(CLI::App& app);
Action register_convert(CLI::App& app);     // `run-llm convert GGUF --out DIR`
Action register_perplexity(CLI::App& app); // `run-llm perplexity --model DIR --file TEXT`
Action register_quantize(CLI::App& app);   // `run-llm quantize --model DIR --method M --out DIR`
Action register_bench(CLI::App& app);      // `run-llm bench --model DIR | --synthetic llama2-7b`

}  // namespace runllm::cli
