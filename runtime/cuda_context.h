// What every GPU computation of one run shares: the device, one stream, the cuBLAS handle (with a
// fixed workspace, so a CUDA graph can capture its calls), and checked device allocations whose
// out-of-memory error says what was being allocated, how much was needed and how much was free.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace runllm {

// One cudaMalloc'd block, freed on destruction.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  // Throws runllm::Error "out of GPU memory for WHAT: needed X MiB, free Y MiB of Z MiB" on failure.
  DeviceMemory(size_t bytes, const std::string& what);
  ~DeviceMemory();
  DeviceMemory(DeviceMemory&& other) noexcept;
  DeviceMemory& operator=(DeviceMemory&& other) noexcept;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* get() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Hands out 256-byte-aligned pieces of one DeviceMemory block; sized once (plan with a first pass
// that only counts, see `counting`), so nothing is allocated per token.
class DeviceArena {
 public:
  // A counting arena: take() returns null and only adds up the bytes.
  DeviceArena() = default;
  // Pieces of `memory` (owned by the caller, at least as large as the counting pass said).
  explicit DeviceArena(const DeviceMemory& memory)
      : base_(static_cast<char*>(memory.get())), capacity_(memory.bytes()) {}
  template <typename T>
  T* take(int64_t count) {
    return static_cast<T*>(take_bytes(static_cast<size_t>(count) * sizeof(T)));
  }
  size_t used() const { return used_; }
  bool counting() const { return base_ == nullptr; }

 private:
  void* take_bytes(size_t bytes);
  char* base_ = nullptr;
  size_t capacity_ = 0;
  size_t used_ = 0;
};

class CudaContext {
 public:
  // Selects device `index`; throws runllm::Error when there is no such GPU.
  explicit CudaContext(int index = 0);
  ~CudaContext();
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;

  cudaStream_t stream() const { return stream_; }
  cublasHandle_t cublas() const { return cublas_; }
  cublasLtHandle_t cublaslt() const { return cublaslt_; }  // the int8 GEMMs of W8A8
  void* cublaslt_workspace() const { return cublaslt_workspace_.get(); }
  size_t cublaslt_workspace_bytes() const { return cublaslt_workspace_.bytes(); }
  const std::string& device_name() const { return name_; }  // "NVIDIA H100 80GB HBM3"
  size_t free_bytes() const;
  size_t total_bytes() const;
  void synchronize() const;

 private:
  int index_ = 0;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceMemory cublas_workspace_;
  cublasLtHandle_t cublaslt_ = nullptr;
  DeviceMemory cublaslt_workspace_;
};

// True when the CUDA runtime sees at least one GPU (no exception, no driver needed).
bool cuda_device_available();

double mebibytes(size_t bytes);

}  // namespace runllm
