#include "runtime/cli/commands/device_options.h"

#include <cstdio>

#include "model/cpu_decoder_backend.h"
#include "model/cuda_llama_model.h"
#include "runtime/cuda_context.h"
#include "runtime/process_memory.h"
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

BackendPlan::BackendPlan(const DeviceFlags& flags, bool verbose)
    : flags_(flags), verbose_(verbose), cuda_(flags.device.empty() ? cuda_device_available() : flags.device == "cuda") {
  if (!cuda_) {
    if (flags.dtype != "auto") throw Error("--dtype applies only with --device cuda (the CPU path is fp32)");
    return;
  }
  if (!cuda_device_available())
    throw Error("--device cuda: no CUDA GPU is available on this machine (use --device cpu)");
  context_ = std::make_shared<CudaContext>(0);
  builder_ = std::make_unique<CudaWeightsBuilder>(flags.dtype, measured_kernel_thresholds(), true);
}

BackendPlan::~BackendPlan() = default;

LayerSink* BackendPlan::layer_sink() { return builder_.get(); }

SelectedBackend BackendPlan::select(const LlamaModel& model, int64_t context_length, int64_t max_batch) {
  SelectedBackend selected;
  if (!cuda_) {
    selected.backend = std::make_unique<CpuDecoderBackend>(model);
    return selected;
  }
  CudaModelOptions options;
  options.context_length = context_length;
  options.max_batch = max_batch;
  options.dtype = flags_.dtype;
  options.verbose = verbose_;
  CudaWeights weights = builder_->finish(model);
  if (verbose_)
    std::fprintf(stderr, "cuda load: peak host memory %.1f MiB anonymous (RssAnon, sampled after each layer; "
                 "mapped checkpoint pages not counted), %.1f MiB resident at most (VmHWM); device weights %.1f MiB\n",
                 mebibytes(builder_->peak_host_anonymous_bytes()), mebibytes(peak_resident_bytes()),
                 mebibytes(weights.device_bytes()));
  selected.context = context_;
  selected.backend = CudaLlamaModel::from_weights(model.config(), *context_, std::move(weights), options);
  return selected;
}

}  // namespace runllm::cli
