// The options every model-loading command shares: how quantized linears run and whether an fp16
// checkpoint is quantized at load (--awq-kernel, --quantize, --group-size, --fake-quant).
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "model/linear_loader.h"

namespace runllm::cli {

struct ModelLoadFlags {
  std::string awq_kernel = "native";
  std::string quantize;    // "" = none
  std::string fake_quant;  // "" = none
  int64_t group_size = 128;
};

void add_model_load_options(CLI::App& command, ModelLoadFlags& flags);
// Throws runllm::Error naming the flag when values or combinations are invalid.
LinearOptions to_linear_options(const ModelLoadFlags& flags, const CLI::App& command);

}  // namespace runllm::cli
