// --device and --dtype, shared by generate and perplexity, and the backend they select: the CPU
// reference path, or the model uploaded to the GPU.
#pragma once
#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "runtime/decoder_backend.h"

namespace runllm {
class LlamaModel;
class LayerSink;
class CudaContext;
class CudaWeightsBuilder;
}  // namespace runllm

namespace runllm::cli {

struct DeviceFlags {
  std::string device;          // "" = cuda when a GPU is present, else cpu
  std::string dtype = "auto";  // activations on the GPU: auto | fp16 | bf16
};

void add_device_options(CLI::App& command, DeviceFlags& flags);

// Owns what a GPU backend needs to outlive (the context) alongside the backend; members are
// destroyed in reverse order, so the backend goes first.
struct SelectedBackend {
  std::shared_ptr<CudaContext> context;  // null on the CPU
  std::unique_ptr<DecoderBackend> backend;
};

// Where the model runs, decided before it is loaded, so that the GPU takes each layer as it loads
// (open_model_directory(..., plan.layer_sink())) and the host never holds the whole model.
class BackendPlan {
 public:
  // Throws runllm::Error when cuda is asked for and absent, or --dtype is given for the CPU.
  BackendPlan(const DeviceFlags& flags, bool verbose);
  ~BackendPlan();
  LayerSink* layer_sink();  // null on the CPU
  // context_length: KV positions the GPU allocates (0 = the model's max, capped by free memory);
  // max_batch: rows per GPU forward batch. With --verbose the GPU reports the load's peak host
  // memory (RssAnon) and its device memory.
  SelectedBackend select(const LlamaModel& model, int64_t context_length, int64_t max_batch);

 private:
  DeviceFlags flags_;
  bool verbose_;
  bool cuda_;
  std::shared_ptr<CudaContext> context_;
  std::unique_ptr<CudaWeightsBuilder> builder_;
};

}  // namespace runllm::cli
