#include "layers/released_linear.h"

#include "layers/device_linear.h"
#include "runtime/error.h"

namespace runllm {

void ReleasedLinear::forward(const float*, int64_t, float*) const {
  throw Error("internal: a linear whose weights were moved to the GPU at load was run on the CPU");
}

std::unique_ptr<DeviceLinear> ReleasedLinear::to_device(const DeviceLinearOptions&) const {
  throw Error("internal: a linear whose weights were moved to the GPU at load was uploaded twice");
}

}  // namespace runllm
