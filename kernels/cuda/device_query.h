// GPUs visible to the CUDA runtime (empty where there is no driver or no GPU).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace runllm {

struct CudaDeviceInfo {
  int index;
  std::string name;
  int compute_major;
  int compute_minor;
  size_t total_memory_bytes;
};

std::vector<CudaDeviceInfo> list_cuda_devices();

}  // namespace runllm
