// Checked CUDA and cuBLAS calls. Every runtime or cuBLAS call of the project goes through one of
// these; a failure throws runllm::Error naming the call, the file and line, and the library's own
// error string, e.g. "cudaMalloc(&p, bytes) failed at kernels/cuda/x.cu:12: out of memory".
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "runtime/error.h"

namespace runllm::detail {

[[noreturn]] inline void throw_cuda_error(const char* call, const char* file, int line, const char* what) {
  throw Error(std::string(call) + " failed at " + file + ":" + std::to_string(line) + ": " + what);
}

}  // namespace runllm::detail

#define CUDA_CHECK(call)                                                                        \
  do {                                                                                          \
    const cudaError_t runllm_cuda_status_ = (call);                                             \
    if (runllm_cuda_status_ != cudaSuccess)                                                     \
      ::runllm::detail::throw_cuda_error(#call, __FILE__, __LINE__,                             \
                                         cudaGetErrorString(runllm_cuda_status_));              \
  } while (0)

#define CUBLAS_CHECK(call)                                                                      \
  do {                                                                                          \
    const cublasStatus_t runllm_cublas_status_ = (call);                                        \
    if (runllm_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                         \
      ::runllm::detail::throw_cuda_error(#call, __FILE__, __LINE__,                             \
                                         cublasGetStatusString(runllm_cublas_status_));         \
  } while (0)

// After a kernel launch: a bad configuration is reported by cudaGetLastError, not by the launch.
#define CUDA_CHECK_LAUNCH(kernel_name)                                                          \
  do {                                                                                          \
    const cudaError_t runllm_cuda_status_ = cudaGetLastError();                                 \
    if (runllm_cuda_status_ != cudaSuccess)                                                     \
      ::runllm::detail::throw_cuda_error("launch of " #kernel_name, __FILE__, __LINE__,         \
                                         cudaGetErrorString(runllm_cuda_status_));              \
  } while (0)
