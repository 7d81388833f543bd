// Timing helpers of `run-llm bench`: the device copy bandwidth (the floor's denominator) and the
// median time of repeated passes measured with CUDA events.
#pragma once
#include <functional>

#include "runtime/cuda_context.h"

namespace runllm::cli {

// Bytes read plus bytes written per second by one large device-to-device copy (median of 10).
double device_copy_bandwidth(const CudaContext& context);

// Median time in seconds of `passes` runs of body(i) for i in [0, count), after two warm-up passes.
double median_pass_seconds(const CudaContext& context, int passes, int count, const std::function<void(int)>& body);

}  // namespace runllm::cli
