// W8A8 int8 linear on the CPU reference path (FORMATS.md §6, FORMATS-REFERENCE.md §4).
#include "layers/w8a8_linear.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/int8_gemm.h"
#include "layers/fuse_rows.h"
#include "layers/tensor_writing.h"
#include "layers/w8a8_device_linear.h"
#include "runtime/tensor_view.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {

namespace {

std::string actual_text(const TensorView& view) { return std::string(dtype_name(view.dtype)) + " " + view.shape_string(); }

bool is_float_dtype(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }

std::string format_float(float value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", static_cast<double>(value));
  return buffer;
}

// A quantization scale must be finite and > 0: a zero, negative or NaN scale would silently produce
// wrong (or NaN) outputs.
void check_scales(const std::string& name, const std::vector<float>& scales) {
  for (size_t i = 0; i < scales.size(); ++i)
    if (!std::isfinite(scales[i]) || !(scales[i] > 0.0f))
      throw Error(name + ": scales must be finite and > 0, got " + format_float(scales[i]) + " at index " +
                  std::to_string(i));
}

// Reads a float scale tensor whose shape is one of `allowed`, converted to fp32.
std::vector<float> read_scale(const TensorSource& checkpoint, const std::string& name,
                              const std::vector<std::vector<int64_t>>& allowed, const std::string& what) {
  const TensorView& view = checkpoint.get(name);
  const bool shape_ok = std::find(allowed.begin(), allowed.end(), view.shape) != allowed.end();
  if (!is_float_dtype(view.dtype) || !shape_ok) {
    std::string expected;
    for (size_t i = 0; i < allowed.size(); ++i) expected += (i ? " or " : "") + shape_to_string(allowed[i]);
    throw Error(name + ": expected F16/BF16/F32 " + expected + " (" + what + "), got " + actual_text(view));
  }
  std::vector<float> values = checkpoint.read_f32(name, view.shape);
  check_scales(name, values);
  return values;
}

// compressed-tensors writes zero points only for asymmetric schemes; an all-zero one is harmless,
// anything else is an asymmetric scheme this path does not implement.
void require_zero_point_absent_or_zero(const TensorSource& checkpoint, const std::string& name) {
  if (!checkpoint.has(name)) return;
  const TensorView& view = checkpoint.get(name);
  bool all_zero = true;
  if (is_float_dtype(view.dtype)) {
    for (float value : checkpoint.read_f32(name, view.shape)) all_zero = all_zero && value == 0.0f;
  } else {
    for (size_t i = 0; i < view.nbytes; ++i) all_zero = all_zero && view.data[i] == 0;
  }
  if (!all_zero)
    throw Error(name + ": nonzero zero point (asymmetric int8) is not supported; only symmetric W8A8 is, got " +
                actual_text(view));
}

// llm-compressor clamps weight scales to at least fp32 epsilon (FORMATS-REFERENCE.md §4.2).
constexpr float kMinimumWeightScale = std::numeric_limits<float>::epsilon();

struct RowQuantized {
  std::vector<int8_t> q;
  std::vector<float> scale;
};

// Symmetric per-channel int8 as llm-compressor's observer does it: scale = absmax / 127.5, clamped to
// >= fp32 eps, q = clamp(round_half_even(w / scale), -128, 127) (so -128 occurs; FORMATS-REFERENCE.md
// §4.2). The scale is rounded to fp16 BEFORE q is computed, so a checkpoint that stores it as fp16
// holds exactly the scale the int8 values were made with (an fp16 overflow keeps the fp32 scale).
RowQuantized quantize_rows(const std::vector<float>& weight, int64_t N, int64_t K) {
  RowQuantized result;
  result.q.resize(static_cast<size_t>(N * K));
  result.scale.resize(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    const float* row = weight.data() + n * K;
    float absmax = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      if (!std::isfinite(row[k]))
        throw Error("W8A8 quantization: weight row " + std::to_string(n) + " holds a non-finite value");
      absmax = std::max(absmax, std::fabs(row[k]));
    }
    float scale = std::max(absmax / 127.5f, kMinimumWeightScale);
    const float as_half = half_to_float(float_to_half(scale));
    if (std::isfinite(as_half)) scale = std::max(as_half, kMinimumWeightScale);
    result.scale[static_cast<size_t>(n)] = scale;
    int8_t* out = result.q.data() + n * K;
    for (int64_t k = 0; k < K; ++k)
      out[k] = static_cast<int8_t>(std::min(127.0f, std::max(-128.0f, std::nearbyint(row[k] / scale))));
  }
  return result;
}

}  // namespace

W8A8Linear::W8A8Linear(std::vector<int8_t> weight, std::vector<float> weight_scale, std::optional<float> input_scale,
                       std::vector<float> bias, int64_t N, int64_t K)
    : weight_(std::move(weight)),
      weight_scale_(std::move(weight_scale)),
      input_scale_(input_scale),
      bias_(std::move(bias)),
      N_(N),
      K_(K) {
  if (N < 0 || K < 0) throw Error("W8A8Linear: negative shape");
  if (static_cast<int64_t>(weight_.size()) != N * K) throw Error("W8A8Linear: weight size does not match [N, K]");
  if (static_cast<int64_t>(weight_scale_.size()) != N)
    throw Error("W8A8Linear: weight_scale size " + std::to_string(weight_scale_.size()) + " does not match N = " +
                std::to_string(N));
  if (!bias_.empty() && static_cast<int64_t>(bias_.size()) != N) throw Error("W8A8Linear: bias size does not match N");
  check_scales("W8A8Linear weight_scale", weight_scale_);
  if (input_scale_) check_scales("W8A8Linear input_scale", {*input_scale_});
}

std::unique_ptr<W8A8Linear> W8A8Linear::load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                             int64_t K, const W8A8Format& format, bool with_bias) {
  const std::string weight_name = prefix + ".weight";
  const TensorView& weight_view = checkpoint.get(weight_name);
  if (weight_view.dtype != DType::I8 || weight_view.shape != std::vector<int64_t>{N, K})
    throw Error(weight_name + ": expected I8 " + shape_to_string({N, K}) + ", got " + actual_text(weight_view));
  std::vector<int8_t> weight(static_cast<size_t>(N * K));
  std::memcpy(weight.data(), weight_view.data, weight.size());

  // Scales: [N, 1] for strategy "channel" (some writers drop the 1), [1] for "tensor" (or a scalar []).
  const std::string scale_name = prefix + ".weight_scale";
  std::vector<float> weight_scale;
  if (format.per_channel_weights) {
    weight_scale = read_scale(checkpoint, scale_name, {{N, 1}, {N}}, "per-channel weight scales");
  } else {
    const std::vector<float> one = read_scale(checkpoint, scale_name, {{1}, {}}, "per-tensor weight scale");
    weight_scale.assign(static_cast<size_t>(N), one.at(0));
  }
  require_zero_point_absent_or_zero(checkpoint, prefix + ".weight_zero_point");

  std::optional<float> input_scale;
  const std::string input_scale_name = prefix + ".input_scale";
  if (format.static_input) {
    if (!checkpoint.has(input_scale_name))
      throw Error(input_scale_name + ": missing; static input activations need an input_scale [1]");
    input_scale = read_scale(checkpoint, input_scale_name, {{1}, {}}, "static input scale").at(0);
    require_zero_point_absent_or_zero(checkpoint, prefix + ".input_zero_point");
  } else if (checkpoint.has(input_scale_name)) {
    // The config says dynamic per-token activations; a stored static scale means the config and the
    // tensors disagree, and picking either one silently could give wrong numbers.
    throw Error(input_scale_name + ": present, but the quantization config says dynamic per-token activations");
  }

  std::vector<float> bias;
  if (with_bias) bias = checkpoint.read_f32(prefix + ".bias", {N});
  return std::make_unique<W8A8Linear>(std::move(weight), std::move(weight_scale), input_scale, std::move(bias), N, K);
}

std::unique_ptr<W8A8Linear> W8A8Linear::from_dense(const DenseLinear& dense) {
  const int64_t N = dense.out_features(), K = dense.in_features();
  RowQuantized rows = quantize_rows(dense.weight(), N, K);
  return std::make_unique<W8A8Linear>(std::move(rows.q), std::move(rows.scale), std::nullopt, dense.bias(), N, K);
}

bool W8A8Linear::can_concat(const std::vector<const Linear*>& parts) {
  if (parts.empty()) return false;
  const auto* first = dynamic_cast<const W8A8Linear*>(parts[0]);
  if (first == nullptr) return false;
  for (const Linear* part : parts) {
    const auto* w8a8 = dynamic_cast<const W8A8Linear*>(part);
    if (w8a8 == nullptr || w8a8->K_ != first->K_ || w8a8->input_scale_ != first->input_scale_) return false;
  }
  return true;
}

std::unique_ptr<W8A8Linear> W8A8Linear::concat_rows(const std::vector<const W8A8Linear*>& parts) {
  if (parts.empty()) throw Error("W8A8Linear::concat_rows: no parts");
  if (!can_concat(std::vector<const Linear*>(parts.begin(), parts.end())))
    throw Error("W8A8Linear::concat_rows: parts differ in in_features or static input scale");
  const int64_t K = parts[0]->K_;
  int64_t N = 0;
  bool any_bias = false;
  for (const W8A8Linear* part : parts) {
    N += part->N_;
    any_bias = any_bias || !part->bias_.empty();
  }
  std::vector<int8_t> weight;
  std::vector<float> scale, bias;
  weight.reserve(static_cast<size_t>(N * K));
  scale.reserve(static_cast<size_t>(N));
  for (const W8A8Linear* part : parts) {
    weight.insert(weight.end(), part->weight_.begin(), part->weight_.end());
    // Scales are already per row in memory (a per-tensor scale was repeated at load), as vLLM's
    // convert_to_channelwise does for fused per-tensor parts.
    scale.insert(scale.end(), part->weight_scale_.begin(), part->weight_scale_.end());
    if (any_bias) {
      if (part->bias_.empty()) bias.insert(bias.end(), static_cast<size_t>(part->N_), 0.0f);
      else bias.insert(bias.end(), part->bias_.begin(), part->bias_.end());
    }
  }
  return std::make_unique<W8A8Linear>(std::move(weight), std::move(scale), parts[0]->input_scale_, std::move(bias), N,
                                      K);
}

void W8A8Linear::forward(const float* x, int64_t M, float* y) const {
  std::vector<int8_t> xq(static_cast<size_t>(M * K_));
  std::vector<float> a_scale(static_cast<size_t>(M));
  if (input_scale_) cpu::quantize_static_int8(x, M, K_, *input_scale_, xq.data(), a_scale.data());
  else cpu::quantize_per_token_int8(x, M, K_, xq.data(), a_scale.data());
  std::vector<int32_t> acc(static_cast<size_t>(M * N_));
  cpu::int8_gemm_int32(xq.data(), weight_.data(), M, N_, K_, acc.data());
  // Epilogue in fp32, in vLLM's order: (acc · w_scale[n]) · a_scale[t], then the bias.
  for (int64_t t = 0; t < M; ++t) {
    const int32_t* row = acc.data() + t * N_;
    float* out = y + t * N_;
    const float token_scale = a_scale[static_cast<size_t>(t)];
    for (int64_t n = 0; n < N_; ++n) {
      float value = static_cast<float>(row[n]) * weight_scale_[static_cast<size_t>(n)] * token_scale;
      if (!bias_.empty()) value += bias_[static_cast<size_t>(n)];
      out[n] = value;
    }
  }
}

std::string W8A8Linear::describe() const {
  // Per-tensor scales are expanded to one per row at load, so the layer tells them apart by value.
  const bool per_tensor =
      !weight_scale_.empty() &&
      std::all_of(weight_scale_.begin(), weight_scale_.end(), [&](float s) { return s == weight_scale_[0]; });
  std::string text = std::string("W8A8Linear int8 ") + (per_tensor && N_ > 1 ? "per-tensor" : "per-channel");
  text += input_scale_ ? ", static input scale" : ", dynamic per-token activations";
  return text;
}

std::unique_ptr<FakeW8A8Linear> FakeW8A8Linear::from_dense(const DenseLinear& dense) {
  const int64_t N = dense.out_features(), K = dense.in_features();
  RowQuantized rows = quantize_rows(dense.weight(), N, K);
  std::vector<float> weight(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      weight[static_cast<size_t>(n * K + k)] =
          static_cast<float>(rows.q[static_cast<size_t>(n * K + k)]) * rows.scale[static_cast<size_t>(n)];
  return std::unique_ptr<FakeW8A8Linear>(
      new FakeW8A8Linear(std::move(rows.q), std::move(rows.scale), std::move(weight), dense.bias(), N, K));
}

void FakeW8A8Linear::forward(const float* x, int64_t M, float* y) const {
  std::vector<int8_t> xq(static_cast<size_t>(M * K_));
  std::vector<float> a_scale(static_cast<size_t>(M));
  cpu::quantize_per_token_int8(x, M, K_, xq.data(), a_scale.data());
  std::vector<float> x_grid(static_cast<size_t>(M * K_));
  for (int64_t t = 0; t < M; ++t)
    for (int64_t k = 0; k < K_; ++k)
      x_grid[static_cast<size_t>(t * K_ + k)] =
          static_cast<float>(xq[static_cast<size_t>(t * K_ + k)]) * a_scale[static_cast<size_t>(t)];
  cpu::linear_forward(x_grid.data(), weight_.data(), bias_.empty() ? nullptr : bias_.data(), M, N_, K_, y);
}

std::unique_ptr<DeviceLinear> W8A8Linear::to_device(const DeviceLinearOptions& options) const {
  return W8A8DeviceLinear::upload(weight_, weight_scale_, input_scale_, bias_, N_, K_, options);
}

std::unique_ptr<DeviceLinear> FakeW8A8Linear::to_device(const DeviceLinearOptions& options) const {
  return W8A8DeviceLinear::upload(q_, scale_, std::nullopt, bias_, N_, K_, options);
}

std::unique_ptr<Linear> W8A8Linear::fuse_rows(const std::vector<const Linear*>& parts) const {
  return fuse_rows_of<W8A8Linear>(parts);
}

void W8A8Linear::write_rows(TensorSink& out, const std::string& p, int64_t begin, int64_t end,
                            const LinearWriteOptions& options) const {
  require_written_format(*this, p, WrittenFormat::W8A8, options.format);
  const std::vector<int8_t> rows(weight_.begin() + begin * K_, weight_.begin() + end * K_);
  out.add(p + ".weight", DType::I8, {end - begin, K_}, to_bytes(rows));
  out.add_f16(p + ".weight_scale", {end - begin, 1}, slice_values(weight_scale_, begin, end));
  write_bias_rows(out, p, bias_, begin, end);
}

}  // namespace runllm
