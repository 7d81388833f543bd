// The device side of a linear layer: what the GPU model calls for every projection. Each format
// makes its own from its packed tensors (Linear::to_device), owns its GPU layout, and picks its
// kernel for a given number of activation rows M from measured thresholds (KernelThresholds,
// committed as data: layers/kernel_thresholds.json).
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/cuda_context.h"
#include "runtime/dtype.h"

namespace runllm {

// Up to which M each quantized family runs its fused small-M kernel; above it, the large-M path
// (dequantize + cuBLAS, or the int8 tensor-core GEMM). Measured by `run-llm bench --kernels`.
struct KernelThresholds {
  int64_t group_quant_gemv_max_rows = 0;  // AWQ / GPTQ / ExLlama path
  int64_t int8_gemv_max_rows = 0;         // W8A8
  int64_t dense_gemv_max_rows = 0;        // fp16/bf16
};
// The committed thresholds (layers/kernel_thresholds.json, compiled in).
const KernelThresholds& measured_kernel_thresholds();

// What one forward call may use: the stream, the library handles (their workspaces fixed, so a
// CUDA graph can capture the calls) and scratch memory of at least workspace_bytes(M).
struct DeviceRun {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  void* cublaslt_workspace = nullptr;
  size_t cublaslt_workspace_bytes = 0;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
// The context's stream and handles, and `workspace` as the scratch.
DeviceRun device_run(const CudaContext& context, const DeviceMemory& workspace);

struct DeviceLinearOptions {
  DType dtype = DType::F16;  // activation type: F16 or BF16
  KernelThresholds thresholds = measured_kernel_thresholds();
};

class DeviceLinear {
 public:
  virtual ~DeviceLinear() = default;
  virtual int64_t in_features() const = 0;   // K
  virtual int64_t out_features() const = 0;  // N
  // y [M, N] = x [M, K] · Wᵀ (+ b), x and y of the activation type, on run.stream. fp32_output: y is
  // float (the lm_head's logits); only dense linears offer it.
  virtual void forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output = false) const = 0;
  virtual size_t workspace_bytes(int64_t M) const = 0;
  // Bytes of weights (and scales, zeros, bias) one forward reads: the bandwidth floor's numerator.
  virtual size_t weight_bytes() const = 0;
  // The kernel that runs for M rows, for --verbose ("int4 g128 fused GEMV" / "dequantize + cuBLAS").
  virtual std::string kernel(int64_t M) const = 0;
};

// Where a linear keeps its device arrays: one allocation per linear, carved by a counting pass.
size_t align_device_bytes(size_t bytes);  // rounds up to 256 (every piece starts aligned)

}  // namespace runllm
