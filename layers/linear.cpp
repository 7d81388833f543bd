#include "layers/linear.h"

#include "runtime/error.h"

namespace runllm {

void Linear::write_rows(TensorSink&, const std::string& name, int64_t, int64_t, const LinearWriteOptions&) const {
  throw Error(name + ": a " + describe() + " has no quantized on-disk format to write");
}

bool Linear::has_zero_point_of_zero(int64_t, int64_t) const { return false; }

std::optional<DenseWeights> Linear::dense_weights() const { return std::nullopt; }

}  // namespace runllm
