#include "layers/separate_device_linears.h"

#include <algorithm>

#include "runtime/cuda_check.h"
#include "runtime/error.h"

namespace runllm {

SeparateDeviceLinears::SeparateDeviceLinears(std::vector<std::unique_ptr<DeviceLinear>> parts)
    : parts_(std::move(parts)) {
  if (parts_.empty()) throw Error("SeparateDeviceLinears: no parts");
  K_ = parts_.front()->in_features();
  for (const auto& part : parts_) N_ += part->out_features();
}

// The workspace: one part's output [M, N_i] (2-byte elements) | that part's own workspace.
size_t SeparateDeviceLinears::workspace_bytes(int64_t M) const {
  size_t output = 0, inner = 0;
  for (const auto& part : parts_) {
    output = std::max(output, static_cast<size_t>(M * part->out_features()) * 2);
    inner = std::max(inner, part->workspace_bytes(M));
  }
  return align_device_bytes(output) + inner;
}

size_t SeparateDeviceLinears::weight_bytes() const {
  size_t bytes = 0;
  for (const auto& part : parts_) bytes += part->weight_bytes();
  return bytes;
}

std::string SeparateDeviceLinears::kernel(int64_t M) const {
  std::string text;
  for (const auto& part : parts_) {
    const std::string kernel = part->kernel(M);
    if (text.find(kernel) == std::string::npos) text += (text.empty() ? "" : " + ") + kernel;
  }
  return "separate: " + text;
}

void SeparateDeviceLinears::forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const {
  if (fp32_output) throw Error("--device cuda: separate linears with fp32 output are not supported");
  if (run.workspace_bytes < workspace_bytes(M))
    throw Error("SeparateDeviceLinears: workspace too small");
  size_t output = 0;
  for (const auto& part : parts_) output = std::max(output, static_cast<size_t>(M * part->out_features()) * 2);
  DeviceRun inner = run;
  inner.workspace = static_cast<char*>(run.workspace) + align_device_bytes(output);
  inner.workspace_bytes = run.workspace_bytes - align_device_bytes(output);
  int64_t column = 0;
  for (const auto& part : parts_) {
    const int64_t n = part->out_features();
    part->forward(x, M, run.workspace, inner);
    // Rows of n elements into rows of N_ elements at `column` (2-byte elements).
    CUDA_CHECK(cudaMemcpy2DAsync(static_cast<char*>(y) + column * 2, N_ * 2, run.workspace, n * 2, n * 2, M,
                                 cudaMemcpyDeviceToDevice, run.stream));
    column += n;
  }
}

}  // namespace runllm
