// W8A8 on the GPU: the activations quantized per token (or with the static input scale) into the
// workspace, then the int8 GEMV (dp4a, epilogue fused) up to the measured row threshold, the
// cuBLASLt int8 tensor-core GEMM into int32 + the epilogue kernel above it.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/device_linear.h"
#include "runtime/cuda_context.h"

namespace runllm {

class W8A8DeviceLinear : public DeviceLinear {
 public:
  // weight [N, K] int8, weight_scale [N], bias [N] or empty; static input scale or dynamic per token.
  static std::unique_ptr<W8A8DeviceLinear> upload(const std::vector<int8_t>& weight,
                                                  const std::vector<float>& weight_scale,
                                                  std::optional<float> input_scale, const std::vector<float>& bias,
                                                  int64_t N, int64_t K, const DeviceLinearOptions& options);
  static std::unique_ptr<W8A8DeviceLinear> random(int64_t N, int64_t K, const DeviceLinearOptions& options,
                                                  uint64_t seed, cudaStream_t stream);

  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  void forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const override;
  size_t workspace_bytes(int64_t M) const override;
  size_t weight_bytes() const override;
  std::string kernel(int64_t M) const override;

 private:
  W8A8DeviceLinear(int64_t N, int64_t K, std::optional<float> input_scale, const DeviceLinearOptions& options)
      : N_(N), K_(K), input_scale_(input_scale), options_(options) {}
  bool gemv(int64_t M) const;
  template <typename T>
  void run_typed(const T* x, int64_t M, T* y, const DeviceRun& run) const;

  int64_t N_, K_;
  std::optional<float> input_scale_;
  DeviceLinearOptions options_;
  DeviceMemory memory_;
  const int8_t* weight_ = nullptr;   // [N, K]
  const float* w_scale_ = nullptr;   // [N]
  const float* bias_ = nullptr;      // [N] fp32, or null
};

}  // namespace runllm
