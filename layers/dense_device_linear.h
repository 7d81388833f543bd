// Dense fp16/bf16 linears on the GPU: the GEMV kernel for one row (bias fused), cuBLAS otherwise.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/device_linear.h"
#include "runtime/cuda_context.h"

namespace runllm {

class DenseDeviceLinear : public DeviceLinear {
 public:
  // weight [N, K] and bias ([N] or empty) rounded to the activation type (nearest even) and uploaded.
  static std::unique_ptr<DenseDeviceLinear> upload(const std::vector<float>& weight, const std::vector<float>& bias,
                                                   int64_t N, int64_t K, const DeviceLinearOptions& options);
  // A view of a weight that lives elsewhere on the device (the lm_head tied to embed_tokens).
  static std::unique_ptr<DenseDeviceLinear> borrowed(const void* weight, int64_t N, int64_t K,
                                                     const DeviceLinearOptions& options);
  // Random weights ~U(-0.02, 0.02) generated on the device (benchmarks).
  static std::unique_ptr<DenseDeviceLinear> random(int64_t N, int64_t K, const DeviceLinearOptions& options,
                                                   uint64_t seed, cudaStream_t stream);

  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  void forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const override;
  size_t workspace_bytes(int64_t) const override { return 0; }
  size_t weight_bytes() const override;
  std::string kernel(int64_t M) const override;

 private:
  DenseDeviceLinear(int64_t N, int64_t K, const DeviceLinearOptions& options) : N_(N), K_(K), options_(options) {}
  template <typename T, typename Out>
  void run_typed(const T* x, int64_t M, Out* y, const DeviceRun& run) const;

  int64_t N_, K_;
  DeviceLinearOptions options_;
  DeviceMemory memory_;            // empty when borrowed
  const void* weight_ = nullptr;   // [N, K] of the activation type
  const void* bias_ = nullptr;     // [N] or null
};

}  // namespace runllm
