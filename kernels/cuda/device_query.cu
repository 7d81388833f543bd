// Asks the CUDA runtime which GPUs exist. The CPU build path calls this to decide whether a GPU
// backend could be used; it is the first CUDA unit of the project, so CI compiles CUDA from day one.
#include "kernels/cuda/device_query.h"

#include <cuda_runtime.h>

namespace runllm {

std::vector<CudaDeviceInfo> list_cuda_devices() {
  std::vector<CudaDeviceInfo> devices;
  int count = 0;
  // No driver or no GPU is an answer here ("none"), not an error.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return devices;
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    if (cudaGetDeviceProperties(&properties, index) != cudaSuccess) continue;
    devices.push_back({index, properties.name, properties.major, properties.minor,
                       static_cast<size_t>(properties.totalGlobalMem)});
  }
  return devices;
}

}  // namespace runllm
