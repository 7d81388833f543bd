// The group-wise quantized linears: AwqLinear (AutoAWQ gemm, 4-bit) and GptqLinear (2/3/4/8-bit,
// act-order, v1/v2 zeros, and AWQ converted for the ExLlama path). Both hold the unpacked
// QuantizedMatrix (the format's exact integers, zeros and scales) and, on the CPU reference path,
// the weight dequantized once at load exactly as the format defines; forward is then a dense GEMM.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "layers/dense_linear.h"
#include "layers/linear.h"
#include "layers/quant_packing.h"
#include "layers/quantized_matrix.h"
#include "layers/rtn_quantize.h"

namespace runllm {

class TensorSource;

class QuantizedLinear : public Linear {
 public:
  int64_t in_features() const override { return matrix_.K; }
  int64_t out_features() const override { return matrix_.N; }
  void forward(const float* x, int64_t M, float* y) const override;
  bool has_zero_point_of_zero(int64_t begin, int64_t end) const override;

  const QuantizedMatrix& matrix() const { return matrix_; }
  const std::vector<float>& bias() const { return bias_; }  // [N] or empty

 protected:
  QuantizedLinear(QuantizedMatrix matrix, std::vector<float> bias);
  // Row-concatenation of the parts' matrices and biases (a part without bias contributes zeros);
  // throws unless bits, K, group size and g_idx agree.
  static QuantizedMatrix concat_matrices(const std::vector<const QuantizedLinear*>& parts, std::vector<float>& bias);

  QuantizedMatrix matrix_;
  std::vector<float> bias_;
  // [N, K] fp32, dequantized at the first CPU forward: only the CPU backend needs it (the GPU reads
  // the packed weights), and for a 7B model it is 4 bytes per weight.
  mutable std::once_flag dequantized_once_;
  mutable std::vector<float> weight_;
};

class AwqLinear : public QuantizedLinear {
 public:
  // Reads PREFIX.{qweight, qzeros, scales[, bias]} in the AutoAWQ gemm layout; `group_size` -1 = K.
  // Checks dtypes, shapes (naming the tensor and the expected shape) and K % g == 0, N % 8 == 0.
  static std::unique_ptr<AwqLinear> load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                         int64_t K, int64_t group_size, bool with_bias);
  // Round-to-nearest 4-bit asymmetric quantization (quantize at load, `--quantize awq-rtn`).
  static std::unique_ptr<AwqLinear> from_dense(const DenseLinear& dense, int64_t group_size);
  static std::unique_ptr<AwqLinear> from_matrix(QuantizedMatrix matrix, std::vector<float> bias);
  static std::unique_ptr<AwqLinear> concat_rows(const std::vector<const AwqLinear*>& parts);  // from_qkv, gate_up
  static bool can_concat(const std::vector<const Linear*>& parts);

  AwqTensors packed() const { return pack_awq(matrix_); }
  std::string describe() const override;  // "AwqLinear int4 g64"
  std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const override;
  std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>& parts) const override;
  void write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                  const LinearWriteOptions& options) const override;  // AutoAWQ gemm tensors

 private:
  using QuantizedLinear::QuantizedLinear;
};

struct GptqFormat {
  int bits = 4;
  int64_t group_size = 128;  // -1 = K
  bool sym = true;
  GptqZeros zeros = GptqZeros::V1;
};

class GptqLinear : public QuantizedLinear {
 public:
  // Reads PREFIX.{qweight, qzeros, scales, g_idx[, bias]}; g_idx is required when `require_g_idx`
  // (desc_act) and otherwise optional (k / g when absent). Checks dtypes, shapes and value ranges
  // (g_idx entries within [0, G)).
  static std::unique_ptr<GptqLinear> load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                          int64_t K, const GptqFormat& format, bool require_g_idx, bool with_bias);
  static std::unique_ptr<GptqLinear> from_dense(const DenseLinear& dense, const RtnOptions& options);
  static std::unique_ptr<GptqLinear> from_matrix(QuantizedMatrix matrix, std::vector<float> bias);
  // The ExLlama path for AWQ checkpoints: awq_to_gptq on the packed words; same integers and scales.
  static std::unique_ptr<GptqLinear> from_awq(const AwqLinear& awq);
  static std::unique_ptr<GptqLinear> concat_rows(const std::vector<const GptqLinear*>& parts);
  static bool can_concat(const std::vector<const Linear*>& parts);  // same bits, group size and g_idx

  GptqTensors packed(GptqZeros convention) const { return pack_gptq(matrix_, convention); }
  std::string describe() const override;  // "GptqLinear int4 g128 act-order" / "... (ExLlama path, from AWQ)"
  std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const override;
  std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>& parts) const override;
  void write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                  const LinearWriteOptions& options) const override;  // GPTQ tensors, v1 or v2 zeros

 private:
  using QuantizedLinear::QuantizedLinear;
  bool from_awq_ = false;
};

}  // namespace runllm
