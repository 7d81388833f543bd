// `run-llm bench --kernels`: every linear kernel family on real layer shapes, timed one kind at a
// time against cuBLAS fp16 on the same shape and M and against the bandwidth floor, in one run.
#pragma once
#include "runtime/cuda_context.h"
#include "runtime/dtype.h"

namespace runllm::cli {

int run_kernel_bench(const CudaContext& context, DType dtype);

}  // namespace runllm::cli
