#include "runtime/cli/commands/device_options.h"

#include "model/cpu_decoder_backend.h"
#include "model/cuda_llama_model.h"
#include "runtime/cuda_context.h"
#include "runtime/error.h"

namespace runllm::cli {

void add_device_options(CLI::App& command, DeviceFlags& flags) {
  command.add_option("--device", flags.device, "where the model runs: cuda or cpu (default: cuda when a GPU is present)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
  command.add_option("--dtype", flags.dtype,
                     "GPU weights, activations and KV cache: auto (bf16 for a bf16 checkpoint, else fp16), fp16 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "fp16", "bf16"}));
}

SelectedBackend select_backend(const DeviceFlags& flags, const LlamaModel& model, int64_t context_length,
                               int64_t max_batch, bool verbose) {
  SelectedBackend selected;
  const bool cuda = flags.device.empty() ? cuda_device_available() : flags.device == "cuda";
  if (!cuda) {
    if (flags.dtype != "auto") throw Error("--dtype applies only with --device cuda (the CPU path is fp32)");
    selected.backend = std::make_unique<CpuDecoderBackend>(model);
    return selected;
  }
  if (!cuda_device_available())
    throw Error("--device cuda: no CUDA GPU is available on this machine (use --device cpu)");
  selected.context = std::make_shared<CudaContext>(0);
  CudaModelOptions options;
  options.context_length = context_length;
  options.max_batch = max_batch;
  options.dtype = flags.dtype;
  options.verbose = verbose;
  selected.backend = CudaLlamaModel::upload(model, *selected.context, options);
  return selected;
}

}  // namespace runllm::cli
