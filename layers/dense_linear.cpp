#include "layers/dense_linear.h"

#include "kernels/cpu/gemm.h"
#include "layers/dense_device_linear.h"
#include "layers/fuse_rows.h"
#include "layers/tensor_writing.h"
#include "runtime/error.h"

namespace runllm {

DenseLinear::DenseLinear(std::vector<float> weight, std::vector<float> bias, int64_t N, int64_t K)
    : weight_(std::move(weight)), bias_(std::move(bias)), N_(N), K_(K) {
  if (static_cast<int64_t>(weight_.size()) != N * K) throw Error("DenseLinear: weight size does not match [N, K]");
  if (!bias_.empty() && static_cast<int64_t>(bias_.size()) != N) throw Error("DenseLinear: bias size does not match N");
}

std::unique_ptr<DenseLinear> DenseLinear::load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                               int64_t K, bool with_bias) {
  std::vector<float> weight = checkpoint.read_f32(prefix + ".weight", {N, K});
  std::vector<float> bias;
  if (with_bias) bias = checkpoint.read_f32(prefix + ".bias", {N});
  return std::make_unique<DenseLinear>(std::move(weight), std::move(bias), N, K);
}

std::unique_ptr<DenseLinear> DenseLinear::concat_rows(const std::vector<const DenseLinear*>& parts) {
  const int64_t K = parts.at(0)->K_;
  int64_t N = 0;
  bool any_bias = false;
  for (const DenseLinear* part : parts) {
    if (part->K_ != K) throw Error("DenseLinear::concat_rows: parts differ in in_features");
    N += part->N_;
    any_bias = any_bias || !part->bias_.empty();
  }
  std::vector<float> weight, bias;
  weight.reserve(static_cast<size_t>(N * K));
  for (const DenseLinear* part : parts) {
    weight.insert(weight.end(), part->weight_.begin(), part->weight_.end());
    if (any_bias) {
      if (part->bias_.empty()) bias.insert(bias.end(), static_cast<size_t>(part->N_), 0.0f);
      else bias.insert(bias.end(), part->bias_.begin(), part->bias_.end());
    }
  }
  return std::make_unique<DenseLinear>(std::move(weight), std::move(bias), N, K);
}

void DenseLinear::forward(const float* x, int64_t M, float* y) const {
  cpu::linear_forward(x, weight_.data(), bias_.empty() ? nullptr : bias_.data(), M, N_, K_, y);
}

std::unique_ptr<DeviceLinear> DenseLinear::to_device(const DeviceLinearOptions& options) const {
  return DenseDeviceLinear::upload(weight_, bias_, N_, K_, options);
}

bool DenseLinear::can_concat(const std::vector<const Linear*>& parts) {
  for (const Linear* part : parts)
    if (part->in_features() != parts.at(0)->in_features()) return false;
  return !parts.empty();
}

std::unique_ptr<Linear> DenseLinear::fuse_rows(const std::vector<const Linear*>& parts) const {
  return fuse_rows_of<DenseLinear>(parts);
}

void DenseLinear::write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                             const LinearWriteOptions& options) const {
  require_written_format(*this, name, WrittenFormat::Dense, options.format);
  out.add_f16(name + ".weight", {end - begin, K_}, slice_values(weight_, begin * K_, end * K_));
  write_bias_rows(out, name, bias_, begin, end);
}

}  // namespace runllm
