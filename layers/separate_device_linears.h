// The device side of SeparateLinears: q/k/v (or gate/up) that cannot fuse run one after another,
// each into the workspace, and their outputs are copied side by side into the caller's rows, so
// the model sees one linear either way.
#pragma once
#include <memory>
#include <vector>

#include "layers/device_linear.h"

namespace runllm {

class SeparateDeviceLinears : public DeviceLinear {
 public:
  explicit SeparateDeviceLinears(std::vector<std::unique_ptr<DeviceLinear>> parts);
  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  void forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const override;
  size_t workspace_bytes(int64_t M) const override;
  size_t weight_bytes() const override;
  std::string kernel(int64_t M) const override;  // the parts' kernels, joined when they differ

 private:
  std::vector<std::unique_ptr<DeviceLinear>> parts_;
  int64_t N_ = 0, K_ = 0;
};

}  // namespace runllm
