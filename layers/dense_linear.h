// An unquantized linear layer: fp32 weights on the CPU reference path.
#pragma once
#include <vector>

#include "layers/linear.h"
#include "runtime/tensor_view.h"

namespace runllm {

class DenseLinear : public Linear {
 public:
  // Reads PREFIX.weight [N, K] (F32/F16/BF16) and, when `with_bias`, PREFIX.bias [N]; a wrong shape or
  // dtype throws naming the tensor.
  static std::unique_ptr<DenseLinear> load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                           int64_t K, bool with_bias);
  // Stacks the rows of several layers with the same K into one (fused q/k/v, gate/up): one GEMM
  // instead of three. Biases are concatenated (a part without bias contributes zeros).
  static std::unique_ptr<DenseLinear> concat_rows(const std::vector<const DenseLinear*>& parts);
  static bool can_concat(const std::vector<const Linear*>& parts);  // same in_features

  DenseLinear(std::vector<float> weight, std::vector<float> bias, int64_t N, int64_t K);

  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  void forward(const float* x, int64_t M, float* y) const override;
  std::string describe() const override { return "DenseLinear fp32"; }
  std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const override;
  std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>& parts) const override;
  void write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                  const LinearWriteOptions& options) const override;  // fp16 weight rows (and bias)
  std::optional<DenseWeights> dense_weights() const override { return DenseWeights{weight_, bias_, N_, K_}; }
  const std::vector<float>& weight() const { return weight_; }  // [N, K]
  const std::vector<float>& bias() const { return bias_; }      // [N] or empty

 private:
  std::vector<float> weight_;  // [N, K]
  std::vector<float> bias_;    // [N] or empty
  int64_t N_, K_;
};

}  // namespace runllm
