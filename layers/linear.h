// One interface for every linear layer (y = x · Wᵀ + b), whatever its storage format.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace runllm {

class DeviceLinear;
struct DeviceLinearOptions;

class Linear {
 public:
  virtual ~Linear() = default;
  virtual int64_t in_features() const = 0;   // K
  virtual int64_t out_features() const = 0;  // N
  // y[M, N] = x[M, K] · Wᵀ (+ b), fp32 on the CPU reference path.
  virtual void forward(const float* x, int64_t M, float* y) const = 0;
  // What runs, for --verbose ("DenseLinear fp32").
  virtual std::string describe() const = 0;
  // The device side of this linear (layers/device_linear.h): its tensors uploaded in the layout its
  // GPU kernels read. The host copy is not needed afterwards.
  virtual std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const = 0;
  // from_qkv / gate_up: one linear holding the rows of `parts` (parts[0] is this one) when this
  // format can stack them (all of this format with the same K, bits, group size, g_idx, ...), else
  // null: the caller then runs them as SeparateLinears.
  virtual std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>& parts) const = 0;
};

}  // namespace runllm
