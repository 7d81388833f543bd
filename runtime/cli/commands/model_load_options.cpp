#include "runtime/cli/commands/model_load_options.h"

#include "runtime/error.h"

namespace runllm::cli {

void add_model_load_options(CLI::App& command, ModelLoadFlags& flags) {
  command.add_option("--awq-kernel", flags.awq_kernel,
                     "how AWQ linears run: native, or exllama (converted to the GPTQ layout at load; same numbers)")
      ->capture_default_str()
      ->check(CLI::IsMember({"native", "exllama"}));
  command.add_option("--quantize", flags.quantize,
                     "quantize an fp16 checkpoint at load, every linear except lm_head, round-to-nearest: "
                     "awq-rtn (int4), gptq-rtn[:2|3|4|8], w8a8");
  command.add_option("--group-size", flags.group_size, "group size for --quantize awq-rtn/gptq-rtn; -1 = one group")
      ->capture_default_str();
  command.add_option("--fake-quant", flags.fake_quant,
                     "w8a8: keep fp32 math but round weights (per channel) and activations (per token) to the int8 grid")
      ->check(CLI::IsMember({"w8a8"}));
}

LinearOptions to_linear_options(const ModelLoadFlags& flags, const CLI::App& command) {
  LinearOptions options;
  options.awq_kernel = flags.awq_kernel == "exllama" ? AwqKernel::Exllama : AwqKernel::Native;
  if (flags.group_size != -1 && (flags.group_size <= 0 || flags.group_size > (int64_t{1} << 20)))
    throw Error("--group-size must be -1 (one group) or a positive size, got " + std::to_string(flags.group_size));
  options.group_size = flags.group_size;
  if (!flags.quantize.empty() && !flags.fake_quant.empty())
    throw Error("--quantize and --fake-quant cannot be combined");
  if (command.count("--group-size") && flags.quantize.empty())
    throw Error("--group-size applies only with --quantize awq-rtn or gptq-rtn");
  if (!flags.quantize.empty()) options = parse_load_quantization(flags.quantize, options);
  if (command.count("--group-size") && options.quantize == LoadQuantization::W8A8)
    throw Error("--group-size does not apply to --quantize w8a8 (per-channel scales)");
  if (!flags.fake_quant.empty()) options.quantize = LoadQuantization::FakeW8A8;
  return options;
}

}  // namespace runllm::cli
