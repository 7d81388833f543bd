#include "layers/separate_linears.h"

#include <algorithm>

#include "layers/separate_device_linears.h"
#include "runtime/error.h"

namespace runllm {

SeparateLinears::SeparateLinears(std::vector<std::unique_ptr<Linear>> parts) : parts_(std::move(parts)) {
  if (parts_.empty()) throw Error("SeparateLinears: no parts");
  K_ = parts_.front()->in_features();
  for (const auto& part : parts_) {
    if (part->in_features() != K_) throw Error("SeparateLinears: parts differ in in_features");
    N_ += part->out_features();
  }
}

void SeparateLinears::forward(const float* x, int64_t M, float* y) const {
  std::vector<float> part_output;
  int64_t column = 0;
  for (const auto& part : parts_) {
    const int64_t n = part->out_features();
    part_output.resize(static_cast<size_t>(M * n));
    part->forward(x, M, part_output.data());
    for (int64_t m = 0; m < M; ++m)
      std::copy(part_output.begin() + m * n, part_output.begin() + (m + 1) * n, y + m * N_ + column);
    column += n;
  }
}

std::string SeparateLinears::describe() const {
  std::string text;
  for (const auto& part : parts_) {
    const std::string description = part->describe();
    if (text.find(description) == std::string::npos) text += (text.empty() ? "" : " + ") + description;
  }
  return text;
}

std::unique_ptr<DeviceLinear> SeparateLinears::to_device(const DeviceLinearOptions& options) const {
  std::vector<std::unique_ptr<DeviceLinear>> parts;
  for (const auto& part : parts_) parts.push_back(part->to_device(options));
  return std::make_unique<SeparateDeviceLinears>(std::move(parts));
}

}  // namespace runllm
