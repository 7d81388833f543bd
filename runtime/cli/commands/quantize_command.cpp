#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "model/quantize/calibration.h"
#include "model/quantize/quantizer.h"
#include "runtime/cli/commands/commands.h"
#include "runtime/error.h"
#include "runtime/progress.h"

namespace runllm::cli {

namespace {

const std::map<std::string, QuantizeMethod> kMethods = {
    {"awq", QuantizeMethod::Awq}, {"gptq", QuantizeMethod::Gptq}, {"w8a8", QuantizeMethod::W8A8}, {"rtn", QuantizeMethod::Rtn}};

}  // namespace

Action register_quantize(CLI::App& app) {
  struct Options {
    QuantizeOptions quantize;
    std::string method;
    bool no_clip = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(
      "quantize",
      "Quantize an fp16/bf16 checkpoint into AWQ (AutoAWQ gemm, int4), GPTQ (int2/3/4/8, optional act-order), W8A8 "
      "(SmoothQuant + int8, compressed-tensors) or RTN (round-to-nearest into the GPTQ format), calibrating layer by "
      "layer on a text file; writes a complete checkpoint directory");
  QuantizeOptions& q = options->quantize;
  command->add_option("-m,--model", q.model_dir, "fp16/bf16 checkpoint directory")
      ->required()
      ->check(CLI::ExistingDirectory);
  command->add_option("--method", options->method, "awq | gptq | w8a8 | rtn")->required();
  command->add_option("--out", q.out_dir,
                      "output checkpoint directory: created, or an existing empty one; checked for writing before "
                      "quantizing")
      ->required();
  command->add_flag("--force", q.force, "write into a non-empty --out, overwriting its checkpoint files");
  CLI::Option* bits = command->add_option("--bits", q.bits, "weight bits: awq 4; gptq/rtn 2, 3, 4 or 8; w8a8 8");
  CLI::Option* group_size =
      command->add_option("--group-size", q.group_size, "inputs per quantization group, -1 = one group per row (awq, gptq, rtn)")
          ->capture_default_str();
  CLI::Option* act_order = command->add_flag("--act-order", q.act_order, "gptq: quantize columns in order of decreasing "
                                                                         "Hessian diagonal (desc_act, writes g_idx)");
  CLI::Option* sym = command->add_flag("--sym", q.sym, "gptq/rtn: symmetric zero points (2^(bits-1))");
  CLI::Option* calib = command->add_option(
      "--calib", q.calibration_file,
      std::string("calibration text (UTF-8; never the evaluation text); default: the repository's ") +
          kDefaultCalibrationFile + ", found from the run-llm executable's directory upwards, else under the working directory");
  CLI::Option* samples =
      command->add_option("--calib-samples", q.calibration_samples,
                          "calibration windows (the default 128 x 512 tokens takes minutes on a small CPU: GPTQ "
                          "9-10 min for the 135M default model on 2 cores; 16 x 256 is a quick run)")
          ->capture_default_str();
  CLI::Option* length =
      command->add_option("--calib-len", q.calibration_length, "tokens per calibration window")->capture_default_str();
  CLI::Option* seed = command->add_option("--seed", q.seed,
                                          "seed of the window offsets (std::mt19937_64; same seed, same checkpoint)")
                          ->capture_default_str();
  CLI::Option* alpha = command->add_option("--smoothquant-alpha", q.smoothquant_alpha,
                                           "w8a8: SmoothQuant migration strength α in [0, 1]")
                           ->capture_default_str();
  CLI::Option* no_clip = command->add_flag("--no-clip", options->no_clip, "awq: skip the weight clipping search");
  CLI::Option* damp = command->add_option("--damp-percent", q.damp_percent,
                                          "gptq: dampening added to the Hessian diagonal, as a fraction of its mean")
                          ->capture_default_str()
                          ->check(CLI::Range(0.0, 1.0));

  return [options, bits, group_size, act_order, sym, calib, samples, length, seed, alpha, no_clip, damp]() {
    QuantizeOptions& q = options->quantize;
    const auto method = kMethods.find(options->method);
    if (method == kMethods.end())
      throw Error("--method: unknown method \"" + options->method + "\" (known: awq, gptq, w8a8, rtn)");
    q.method = method->second;
    const auto refuse = [&](const CLI::Option* option, const std::string& why) {
      if (option->count() > 0) throw Error(option->get_name() + " " + why);
    };
    if (!bits->count()) q.bits = q.method == QuantizeMethod::W8A8 ? 8 : 4;
    if (q.method == QuantizeMethod::W8A8) {
      refuse(group_size, "does not apply to --method w8a8 (per-channel int8 scales)");
      refuse(sym, "does not apply to --method w8a8 (its weights are always symmetric)");
    }
    if (q.method != QuantizeMethod::W8A8) refuse(alpha, "applies to --method w8a8 only");
    if (q.method != QuantizeMethod::Gptq) refuse(act_order, "applies to --method gptq only");
    if (q.method != QuantizeMethod::Awq) refuse(no_clip, "applies to --method awq only");
    if (q.method != QuantizeMethod::Gptq) refuse(damp, "applies to --method gptq only");
    if (q.method == QuantizeMethod::Rtn)
      for (const CLI::Option* option : {calib, samples, length, seed})
        refuse(option, "does not apply to --method rtn (round-to-nearest uses no calibration data)");
    q.awq_clip = !options->no_clip;
    // On a terminal a bar with the elapsed and remaining time stays below the per-layer lines; in a log
    // the lines come with a progress line at each 10% of the layers.
    ProgressSink progress("quantizing", "layers");
    quantize_model(
        q, [&progress](const std::string& line) { progress.line(line); },
        [&progress](int64_t done, int64_t layers) { progress.count(done, layers); });
    return 0;
  };
}

}  // namespace runllm::cli
