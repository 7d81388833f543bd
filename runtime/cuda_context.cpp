#include "runtime/cuda_context.h"

#include <cstdio>
#include <utility>

#include "runtime/cuda_check.h"

namespace runllm {

double mebibytes(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); }

namespace {
std::string mib_text(size_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", mebibytes(bytes));
  return text;
}
}  // namespace

DeviceMemory::DeviceMemory(size_t bytes, const std::string& what) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&data_, bytes);
  if (status == cudaSuccess) return;
  (void)cudaGetLastError();  // clear the sticky-free allocation error
  data_ = nullptr;
  size_t free = 0, total = 0;
  cudaMemGetInfo(&free, &total);
  throw Error("out of GPU memory for " + what + ": needed " + mib_text(bytes) + ", free " + mib_text(free) +
              " of " + mib_text(total) + " (" + cudaGetErrorString(status) + ")");
}

DeviceMemory::~DeviceMemory() {
  if (data_) cudaFree(data_);
}

DeviceMemory::DeviceMemory(DeviceMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
  if (this != &other) {
    if (data_) cudaFree(data_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void* DeviceArena::take_bytes(size_t bytes) {
  constexpr size_t kAlignment = 256;
  const size_t offset = (used_ + kAlignment - 1) / kAlignment * kAlignment;
  used_ = offset + bytes;
  if (counting()) return nullptr;
  if (used_ > capacity_)
    throw Error("DeviceArena: " + std::to_string(used_) + " bytes taken from an arena of " +
                std::to_string(capacity_) + " (the sizing pass and the real pass differ)");
  return base_ + offset;
}

bool cuda_device_available() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) (void)cudaGetLastError();
  return status == cudaSuccess && count > 0;
}

CudaContext::CudaContext(int index) : index_(index) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess || index >= count)
    throw Error("--device cuda: no CUDA GPU " + std::to_string(index) + " is available (" +
                (status != cudaSuccess ? std::string(cudaGetErrorString(status))
                                       : std::to_string(count) + " device(s) found") +
                "); use --device cpu");
  CUDA_CHECK(cudaSetDevice(index));
  cudaDeviceProp properties{};
  CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  name_ = properties.name;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&cublas_));
  CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
  // A workspace of our own: cuBLAS then allocates nothing while a graph is being captured.
  constexpr size_t kCublasWorkspace = size_t{32} << 20;
  cublas_workspace_ = DeviceMemory(kCublasWorkspace, "the cuBLAS workspace");
  CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_.get(), kCublasWorkspace));
  CUBLAS_CHECK(cublasLtCreate(&cublaslt_));
  cublaslt_workspace_ = DeviceMemory(kCublasWorkspace, "the cuBLASLt workspace");
}

CudaContext::~CudaContext() {
  if (stream_) cudaStreamSynchronize(stream_);
  if (cublas_) cublasDestroy(cublas_);
  if (cublaslt_) cublasLtDestroy(cublaslt_);
  if (stream_) cudaStreamDestroy(stream_);
}

size_t CudaContext::free_bytes() const {
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return free;
}

size_t CudaContext::total_bytes() const {
  size_t free = 0, total = 0;
  CUDA_CHECK(cudaMemGetInfo(&free, &total));
  return total;
}

void CudaContext::synchronize() const { CUDA_CHECK(cudaStreamSynchronize(stream_)); }

}  // namespace runllm
