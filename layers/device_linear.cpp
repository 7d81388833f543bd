#include "layers/device_linear.h"

#include <nlohmann/json.hpp>

#include "runtime/error.h"

namespace runllm {

extern const char* const kKernelThresholdsJson;  // layers/kernel_thresholds.json, compiled in by CMake

namespace {

KernelThresholds parse_thresholds() {
  const nlohmann::json data = nlohmann::json::parse(kKernelThresholdsJson);
  const nlohmann::json& rows = data.at("max_rows_of_small_m_kernel");
  KernelThresholds thresholds;
  thresholds.group_quant_gemv_max_rows = rows.at("group_quant_gemv").get<int64_t>();
  thresholds.int8_gemv_max_rows = rows.at("int8_gemv").get<int64_t>();
  thresholds.dense_gemv_max_rows = rows.at("dense_gemv").get<int64_t>();
  return thresholds;
}

}  // namespace

const KernelThresholds& measured_kernel_thresholds() {
  static const KernelThresholds thresholds = parse_thresholds();
  return thresholds;
}

size_t align_device_bytes(size_t bytes) { return (bytes + 255) / 256 * 256; }

DeviceRun device_run(const CudaContext& context, const DeviceMemory& workspace) {
  DeviceRun run;
  run.stream = context.stream();
  run.cublas = context.cublas();
  run.cublaslt = context.cublaslt();
  run.cublaslt_workspace = context.cublaslt_workspace();
  run.cublaslt_workspace_bytes = context.cublaslt_workspace_bytes();
  run.workspace = workspace.get();
  run.workspace_bytes = workspace.bytes();
  return run;
}

}  // namespace runllm
