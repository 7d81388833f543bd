// W8A8: int8 weights with per-output-channel (or per-tensor) scales and int8 activations quantized
// per token at run time (FORMATS.md §6, compressed-tensors "int-quantized" as llm-compressor writes it
// and vLLM reads it). The CPU reference emulates the int8 x int8 -> int32 product exactly.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/dense_linear.h"
#include "layers/linear.h"

namespace runllm {

class TensorSource;

struct W8A8Format {
  bool per_channel_weights = true;  // weight_scale [N, 1]; false: one scale [1]
  bool static_input = false;        // input_scale [1] from the file instead of per-token dynamic scales
};

class W8A8Linear : public Linear {
 public:
  // Reads PREFIX.{weight (I8 [N, K]), weight_scale, [input_scale], [bias]}; checks dtypes and shapes.
  static std::unique_ptr<W8A8Linear> load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                          int64_t K, const W8A8Format& format, bool with_bias);
  // Symmetric per-channel int8 as llm-compressor does it: scale = absmax / 127.5,
  // q = clamp(round_half_even(w / scale), -128, 127).
  static std::unique_ptr<W8A8Linear> from_dense(const DenseLinear& dense);
  // from_qkv / gate_up: concatenates the int8 rows and the per-channel scales (a per-tensor scale is
  // repeated over its part's rows). Static input scales must be equal to fuse.
  static std::unique_ptr<W8A8Linear> concat_rows(const std::vector<const W8A8Linear*>& parts);
  static bool can_concat(const std::vector<const Linear*>& parts);

  W8A8Linear(std::vector<int8_t> weight, std::vector<float> weight_scale, std::optional<float> input_scale,
             std::vector<float> bias, int64_t N, int64_t K);

  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  // Per token t: a_scale = max|x[t]| / 127 (or the static input_scale), xq = clamp(round(x / a_scale),
  // -127, 127); y = (Σ xq · w) · a_scale · w_scale[n] (+ b) with exact int32 accumulation.
  void forward(const float* x, int64_t M, float* y) const override;
  std::string describe() const override;  // "W8A8Linear int8 per-channel, dynamic per-token activations"
  std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const override;
  std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>& parts) const override;
  // compressed-tensors int-quantized: weight I8 [rows, K], weight_scale F16 [rows, 1].
  void write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                  const LinearWriteOptions& options) const override;

  const std::vector<int8_t>& weight() const { return weight_; }        // [N, K]
  const std::vector<float>& weight_scale() const { return weight_scale_; }  // [N]
  const std::optional<float>& input_scale() const { return input_scale_; }
  const std::vector<float>& bias() const { return bias_; }             // [N] or empty

 private:
  std::vector<int8_t> weight_;
  std::vector<float> weight_scale_;
  std::optional<float> input_scale_;
  std::vector<float> bias_;
  int64_t N_, K_;
};

// The FakeW8A8Linear behaviour (`--fake-quant w8a8`): weights rounded to the per-channel int8 grid
// and activations to the per-token int8 grid, but the product is computed in floating point, for
// quality studies.
class FakeW8A8Linear : public Linear {
 public:
  static std::unique_ptr<FakeW8A8Linear> from_dense(const DenseLinear& dense);
  int64_t in_features() const override { return K_; }
  int64_t out_features() const override { return N_; }
  void forward(const float* x, int64_t M, float* y) const override;
  std::string describe() const override { return "FakeW8A8Linear (int8 grid, fp32 math)"; }
  // On the GPU the int8 grid is run as real W8A8 (the same integers and scales; the products sum
  // exactly in int32 instead of in floating point).
  std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const override;
  std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>&) const override { return nullptr; }

 private:
  FakeW8A8Linear(std::vector<int8_t> q, std::vector<float> scale, std::vector<float> weight, std::vector<float> bias,
                 int64_t N, int64_t K)
      : q_(std::move(q)), scale_(std::move(scale)), weight_(std::move(weight)), bias_(std::move(bias)), N_(N), K_(K) {}
  std::vector<int8_t> q_;      // [N, K]
  std::vector<float> scale_;   // [N]
  std::vector<float> weight_;  // [N, K] on the int8 grid
  std::vector<float> bias_;
  int64_t N_, K_;
};

}  // namespace runllm
