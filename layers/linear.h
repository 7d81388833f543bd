// One interface for every linear layer (y = x · Wᵀ + b), whatever its storage format.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace runllm {

class DeviceLinear;
struct DeviceLinearOptions;
class TensorSink;

// The on-disk layouts run-llm writes (FORMATS.md §3, §4, §6).
enum class WrittenFormat {
  Awq,   // AutoAWQ gemm: qweight, qzeros, scales
  Gptq,  // GPTQ: qweight, qzeros, scales, g_idx; zeros as gptq_v1_zeros says
  W8A8,  // compressed-tensors int-quantized: weight I8 [N, K], weight_scale F16 [N, 1]
  Dense, // weight F16 [N, K] (and bias): what stays unquantized, the lm_head
};
// An unquantized linear's weights: what the quantizers start from.
struct DenseWeights {
  std::vector<float> weight;  // [N, K] fp32
  std::vector<float> bias;    // [N] or empty
  int64_t N = 0, K = 0;
};

struct LinearWriteOptions {
  WrittenFormat format = WrittenFormat::Awq;
  bool gptq_v1_zeros = true;  // GPTQ v1 stores zero - 1 (checkpoint_format "gptq"); false: v2
};

class Linear {
 public:
  virtual ~Linear() = default;
  virtual int64_t in_features() const = 0;   // K
  virtual int64_t out_features() const = 0;  // N
  // y[M, N] = x[M, K] · Wᵀ (+ b), fp32 on the CPU reference path.
  virtual void forward(const float* x, int64_t M, float* y) const = 0;
  // What runs, for --verbose ("DenseLinear fp32").
  virtual std::string describe() const = 0;
  // The device side of this linear (layers/device_linear.h): its tensors uploaded in the layout its
  // GPU kernels read. The host copy is not needed afterwards.
  virtual std::unique_ptr<DeviceLinear> to_device(const DeviceLinearOptions& options) const = 0;
  // from_qkv / gate_up: one linear holding the rows of `parts` (parts[0] is this one) when this
  // format can stack them (all of this format with the same K, bits, group size, g_idx, ...), else
  // null: the caller then runs them as SeparateLinears.
  virtual std::unique_ptr<Linear> fuse_rows(const std::vector<const Linear*>& parts) const = 0;
  // Writes output rows [begin, end) (one module of a fused linear) as module `name` in
  // `options.format`, which must be this linear's own format: else it throws naming the module.
  virtual void write_rows(TensorSink& out, const std::string& name, int64_t begin, int64_t end,
                          const LinearWriteOptions& options) const;
  // Whether some true zero point of rows [begin, end) is 0, which GPTQ v1 cannot store.
  virtual bool has_zero_point_of_zero(int64_t begin, int64_t end) const;
  // The fp32 weight and bias of an unquantized linear; nullopt for a quantized one.
  virtual std::optional<DenseWeights> dense_weights() const;
};

}  // namespace runllm
