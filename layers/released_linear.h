// What stays in a host model after a linear's weights went to the GPU at load (streaming upload):
// its shape and description, for --verbose; running it on the CPU is an error, never a silent zero.
#pragma once
#include <memory>
#include <string>

#include "layers/linear.h"

namespace runllm {

class ReleasedLinear : public Linear {
 public:
  explicit ReleasedLinear(const Linear& moved)
      : N_(moved.out_features()), K_(moved.in_features()), description_(moved.describe()) {}
  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  void forward(const float* x, int64_t M, float* y) const override;
  std::string describe() const override { return description_; }
  std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const override;
  std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>&) const override { return nullptr; }

 private:
  int64_t N_, K_;
  std::string description_;
};

}  // namespace runllm
