#include "layers/tensor_writing.h"

#include "runtime/error.h"

namespace runllm {

std::vector<float> slice_values(const std::vector<float>& values, int64_t begin, int64_t end) {
  if (values.empty()) return {};
  return std::vector<float>(values.begin() + begin, values.begin() + end);
}

void require_written_format(const Linear& linear, const std::string& name, WrittenFormat actual, WrittenFormat wanted) {
  if (actual == wanted) return;
  const char* names[] = {"AWQ", "GPTQ", "W8A8", "dense"};
  throw Error(name + ": expected a " + names[static_cast<int>(wanted)] + " linear to write, got " + linear.describe());
}

void write_bias_rows(TensorSink& out, const std::string& name, const std::vector<float>& bias, int64_t begin,
                     int64_t end) {
  if (!bias.empty()) out.add_f16(name + ".bias", {end - begin}, slice_values(bias, begin, end));
}

}  // namespace runllm
