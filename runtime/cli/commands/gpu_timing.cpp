#include "runtime/cli/commands/gpu_timing.h"

#include <algorithm>
#include <vector>

#include "runtime/cuda_check.h"

namespace runllm::cli {

double device_copy_bandwidth(const CudaContext& context) {
  constexpr size_t kBytes = size_t{1} << 30;
  DeviceMemory source(kBytes, "the bandwidth probe"), destination(kBytes, "the bandwidth probe");
  CUDA_CHECK(cudaMemsetAsync(source.get(), 1, kBytes, context.stream()));
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int i = 0; i < 12; ++i) {
    CUDA_CHECK(cudaEventRecord(start, context.stream()));
    CUDA_CHECK(cudaMemcpyAsync(destination.get(), source.get(), kBytes, cudaMemcpyDeviceToDevice, context.stream()));
    CUDA_CHECK(cudaEventRecord(stop, context.stream()));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (i >= 2) times.push_back(ms);  // the first copies warm up
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  const double ms = times[times.size() / 2];
  return 2.0 * static_cast<double>(kBytes) / (ms * 1e-3);
}

double median_pass_seconds(const CudaContext& context, int passes, int count, const std::function<void(int)>& body) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> times;
  for (int pass = 0; pass < passes + 2; ++pass) {
    CUDA_CHECK(cudaEventRecord(start, context.stream()));
    for (int i = 0; i < count; ++i) body(i);
    CUDA_CHECK(cudaEventRecord(stop, context.stream()));
    CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (pass >= 2) times.push_back(ms);  // two warm-up passes
  }
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2] * 1e-3;
}

}  // namespace runllm::cli
