// AWQ, GPTQ (2, 3, 4, 8 bits, act-order) and the ExLlama path on the GPU, from their packed weights
// repacked once into GroupQuantLayout: the fused dequantize + GEMV kernel up to the measured row
// threshold, dequantize into the workspace + cuBLAS above it (and for layouts the fused kernel does
// not take: groups not a multiple of 32 columns, K not a multiple of 32, unequal act-order groups).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "kernels/group_quant_layout.h"
#include "layers/device_linear.h"
#include "layers/quantized_matrix.h"
#include "runtime/cuda_context.h"

namespace runllm {

class GroupQuantDeviceLinear : public DeviceLinear {
 public:
  // `format` names the source in kernel() ("AWQ", "GPTQ", "ExLlama path").
  static std::unique_ptr<GroupQuantDeviceLinear> upload(const QuantizedMatrix& matrix, const std::vector<float>& bias,
                                                        const std::string& format, const DeviceLinearOptions& options);
  // Random packed weights, scales and zeros generated on the device (benchmarks); act_order adds a
  // random column permutation, so the activation gather is timed too.
  static std::unique_ptr<GroupQuantDeviceLinear> random(int bits, int64_t group_size, bool act_order, int64_t N,
                                                        int64_t K, const DeviceLinearOptions& options, uint64_t seed,
                                                        cudaStream_t stream);

  int64_t in_features() const override { return layout_.K; }
  int64_t out_features() const override { return layout_.N; }
  void forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const override;
  size_t workspace_bytes(int64_t M) const override;
  size_t weight_bytes() const override;
  std::string kernel(int64_t M) const override;
  const GroupQuantLayout& layout() const { return layout_; }  // device pointers

 private:
  GroupQuantDeviceLinear(const std::string& format, const DeviceLinearOptions& options)
      : format_(format), options_(options) {}
  bool fused(int64_t M) const;
  template <typename T>
  void run_typed(const T* x, int64_t M, T* y, const DeviceRun& run) const;

  std::string format_;
  DeviceLinearOptions options_;
  DeviceMemory memory_;
  GroupQuantLayout layout_;      // pointers into memory_
  const void* bias_ = nullptr;   // [N] of the activation type, or null
};

}  // namespace runllm
