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

const Linear& SeparateLinears::part_of_rows(const std::string& name, int64_t begin, int64_t end) const {
  int64_t first = 0;
  for (const auto& part : parts_) {
    if (first == begin && first + part->out_features() == end) return *part;
    first += part->out_features();
  }
  throw Error(name + ": rows [" + std::to_string(begin) + ", " + std::to_string(end) +
              ") are not one of the separate parts' rows");
}

void SeparateLinears::write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                                 const LinearWriteOptions& options) const {
  part_of_rows(name, begin, end).write_rows(out, name, 0, end - begin, options);
}

bool SeparateLinears::has_zero_point_of_zero(int64_t begin, int64_t end) const {
  return part_of_rows("SeparateLinears", begin, end).has_zero_point_of_zero(0, end - begin);
}

std::optional<DenseWeights> SeparateLinears::dense_weights() const {
  std::vector<DenseWeights> parts;
  bool any_bias = false;
  for (const auto& part : parts_) {
    std::optional<DenseWeights> weights = part->dense_weights();
    if (!weights) return std::nullopt;
    any_bias = any_bias || !weights->bias.empty();
    parts.push_back(std::move(*weights));
  }
  DenseWeights result;
  result.K = K_;
  for (const DenseWeights& part : parts) {
    result.weight.insert(result.weight.end(), part.weight.begin(), part.weight.end());
    if (any_bias) {
      if (part.bias.empty()) result.bias.insert(result.bias.end(), static_cast<size_t>(part.N), 0.0f);
      else result.bias.insert(result.bias.end(), part.bias.begin(), part.bias.end());
    }
    result.N += part.N;
  }
  return result;
}

}  // namespace runllm
