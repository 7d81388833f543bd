// Programmatic dependent launch (Hopper): a kernel launched with launch_dependent() may be scheduled
// before the previous kernel in its stream has fully completed, so its launch latency overlaps that
// kernel's tail. A decode step is ~11 kernels per layer, most of them a few microseconds long, so
// this latency is a large share of the step. The contract: every kernel launched this way calls
// wait_for_previous_kernel() before it reads or writes memory another kernel touches; the wait
// returns once the previous kernel has completed and its writes are visible (at once for a kernel
// launched normally). Included by .cu files only.
#pragma once
#include <cuda_runtime.h>

#include <utility>

namespace runllm::cuda {

__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// A failed launch is reported like any other: by cudaGetLastError, which the caller checks with
// CUDA_CHECK_LAUNCH(kernel) to name the kernel and the call site.
template <typename... KernelParameters, typename... Args>
void launch_dependent(void (*kernel)(KernelParameters...), dim3 grid, dim3 block, cudaStream_t stream,
                      Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  (void)cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace runllm::cuda
