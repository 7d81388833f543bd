// Several linears that share one input but cannot be fused (different formats, bits, group sizes or
// act-order g_idx): run one after another, their outputs placed side by side as a fused linear's
// would be, so the forward does not care which it got.
#pragma once
#include <memory>
#include <vector>

#include "layers/linear.h"

namespace runllm {

class SeparateLinears : public Linear {
 public:
  explicit SeparateLinears(std::vector<std::unique_ptr<Linear>> parts);
  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  void forward(const float* x, int64_t M, float* y) const override;  // y [M, N1 + N2 + ...]
  std::string describe() const override;  // the parts' descriptions, joined when they differ
  std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const override;
  std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>&) const override { return nullptr; }
  // Rows [begin, end) must be exactly one part's (one module): that part writes itself.
  void write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                  const LinearWriteOptions& options) const override;
  bool has_zero_point_of_zero(int64_t begin, int64_t end) const override;
  // The parts' rows stacked (a part without bias contributes zeros), when every part is unquantized.
  std::optional<DenseWeights> dense_weights() const override;
  const std::vector<std::unique_ptr<Linear>>& parts() const { return parts_; }

 private:
  const Linear& part_of_rows(const std::string& name, int64_t begin, int64_t end) const;
  std::vector<std::unique_ptr<Linear>> parts_;
  int64_t N_ = 0, K_ = 0;
};

}  // namespace runllm
