#include <cstdio>
#include <memory>
#include <string>

#include "model/gguf_to_hf.h"
#include "runtime/cli/commands/commands.h"
#include "runtime/progress.h"

namespace runllm::cli {

Action register_convert(CLI::App& app) {
  struct Options {
    std::string gguf_path, out_dir;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "convert", "Convert a GGUF file into a Hugging Face checkpoint directory (fp16 safetensors, config, tokenizer)");
  command->add_option("gguf", options->gguf_path, "GGUF file (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q6_K tensors)")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("--out", options->out_dir, "output directory (created)")->required();
  return [options]() {
    ProgressSink progress("converting", "tensors");
    convert_gguf_to_hf(
        options->gguf_path, options->out_dir, [&progress](const std::string& line) { progress.line(line); },
        [&progress](int64_t done, int64_t tensors) { progress.count(done, tensors); });
    return 0;
  };
}

}  // namespace runllm::cli
