#include "layers/quantized_linear.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/gemm.h"
#include "layers/fuse_rows.h"
#include "layers/group_quant_device_linear.h"
#include "layers/tensor_writing.h"
#include "runtime/tensor_view.h"
#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {
namespace {

// The loaders' one error shape (DESIGN.md Conventions): "NAME: expected I32 [576, 72], got I32 [576, 64]".
[[noreturn]] void throw_mismatch(const TensorView& view, const std::string& expected_dtype,
                                 const std::vector<int64_t>& expected_shape) {
  throw Error(view.name + ": expected " + expected_dtype + " " + shape_to_string(expected_shape) + ", got " +
              dtype_name(view.dtype) + " " + view.shape_string());
}

// Packed words: I32 exactly (the formats never write anything else), copied out because mapped tensor
// data need not be 4-byte aligned.
std::vector<int32_t> read_i32(const TensorSource& checkpoint, const std::string& name, const std::vector<int64_t>& shape) {
  const TensorView& view = checkpoint.get(name);  // "DIR: missing tensor NAME" when absent
  if (view.dtype != DType::I32 || view.shape != shape) throw_mismatch(view, "I32", shape);
  std::vector<int32_t> values(static_cast<size_t>(view.numel()));
  std::memcpy(values.data(), view.data, view.nbytes);  // safetensors is little-endian, like the host
  return values;
}

// Scales are F16 on disk; BF16/F32 (AutoGPTQ casts scales to the source dtype) are accepted and rounded to
// fp16, the precision every kernel and QuantizedMatrix keep. A value that is not finite in fp16 is refused.
std::vector<float> read_scales(const TensorSource& checkpoint, const std::string& name, int64_t G, int64_t N) {
  const TensorView& view = checkpoint.get(name);
  const bool float_dtype = view.dtype == DType::F16 || view.dtype == DType::BF16 || view.dtype == DType::F32;
  if (!float_dtype || view.shape != std::vector<int64_t>{G, N}) throw_mismatch(view, "F16", {G, N});
  std::vector<float> scales = checkpoint.read_f32(name, {G, N});
  for (size_t i = 0; i < scales.size(); ++i) {
    const float rounded = half_to_float(float_to_half(scales[i]));
    if (!std::isfinite(rounded))
      throw Error(name + ": scale [" + std::to_string(i / static_cast<size_t>(N)) + ", " +
                  std::to_string(i % static_cast<size_t>(N)) + "] = " + std::to_string(scales[i]) +
                  " is not a finite fp16 value");
    scales[i] = rounded;
  }
  return scales;
}

int64_t resolve_group_size(const std::string& what, int64_t group_size, int64_t K) {
  if (group_size == -1) return K;  // -1 = one group over all of in_features (AutoAWQ, AutoGPTQ)
  if (group_size <= 0)
    throw Error(what + ": group_size " + std::to_string(group_size) + " is invalid (expected a positive size or -1)");
  return group_size;
}

// AWQ gemm layout rules (FORMATS.md §3), checked before anything is read so the message names the layer.
void check_awq_layout(const std::string& what, int64_t N, int64_t K, int64_t group_size) {
  if (K % group_size != 0)
    throw Error(what + ": in_features " + std::to_string(K) + " is not divisible by group_size " +
                std::to_string(group_size));
  if (N % 8 != 0)
    throw Error(what + ": out_features " + std::to_string(N) +
                " is not divisible by 8 (AWQ packs 8 output columns per int32)");
}

// GPTQ packs K * bits / 32 words per column and N * bits / 32 zero words per group (FORMATS.md §4).
void check_gptq_layout(const std::string& what, int bits, int64_t N, int64_t K) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error(what + ": bits " + std::to_string(bits) + " is not supported (expected 2, 3, 4 or 8)");
  const int64_t multiple = bits == 3 ? 32 : 32 / bits;
  if (K % multiple != 0)
    throw Error(what + ": in_features " + std::to_string(K) + " is not a multiple of " + std::to_string(multiple) +
                " (GPTQ " + std::to_string(bits) + "-bit packs along in_features)");
  if (N % multiple != 0)
    throw Error(what + ": out_features " + std::to_string(N) + " is not a multiple of " + std::to_string(multiple) +
                " (GPTQ " + std::to_string(bits) + "-bit packs zeros along out_features)");
}

std::string group_text(const QuantizedMatrix& m) {
  return m.group_size >= m.K ? "g=all" : "g" + std::to_string(m.group_size);
}

// Same bits, K, group size and g_idx: then the parts' rows can share one matrix (FORMATS.md §4: g_idx is
// per input column, so it must be identical for the rows to be stacked).
bool compatible(const QuantizedMatrix& a, const QuantizedMatrix& b) {
  return a.bits == b.bits && a.K == b.K && a.group_size == b.group_size && a.g_idx == b.g_idx;
}

}  // namespace

QuantizedLinear::QuantizedLinear(QuantizedMatrix matrix, std::vector<float> bias)
    : matrix_(std::move(matrix)), bias_(std::move(bias)) {
  matrix_.validate("QuantizedLinear");
  if (!bias_.empty() && static_cast<int64_t>(bias_.size()) != matrix_.N)
    throw Error("QuantizedLinear: bias holds " + std::to_string(bias_.size()) + " values, expected out_features " +
                std::to_string(matrix_.N));
}

void QuantizedLinear::forward(const float* x, int64_t M, float* y) const {
  // The CPU reference dequantizes once, exactly as the format defines; forward is then a plain GEMM.
  std::call_once(dequantized_once_, [this] { weight_ = matrix_.dequantize(); });
  cpu::linear_forward(x, weight_.data(), bias_.empty() ? nullptr : bias_.data(), M, matrix_.N, matrix_.K, y);
}

QuantizedMatrix QuantizedLinear::concat_matrices(const std::vector<const QuantizedLinear*>& parts,
                                                 std::vector<float>& bias) {
  if (parts.empty()) throw Error("concat_rows: no parts to concatenate");
  const QuantizedMatrix& first = parts[0]->matrix_;
  QuantizedMatrix out;
  out.bits = first.bits;
  out.K = first.K;
  out.group_size = first.group_size;
  out.g_idx = first.g_idx;
  bool any_bias = false;
  for (const QuantizedLinear* part : parts) {
    if (!compatible(first, part->matrix_))
      throw Error("concat_rows: parts differ in bits, in_features, group_size or g_idx (" +
                  std::to_string(first.bits) + "-bit K " + std::to_string(first.K) + " g" +
                  std::to_string(first.group_size) + " vs " + std::to_string(part->matrix_.bits) + "-bit K " +
                  std::to_string(part->matrix_.K) + " g" + std::to_string(part->matrix_.group_size) + ")");
    out.N += part->matrix_.N;
    any_bias = any_bias || !part->bias_.empty();
  }
  const int64_t G = out.groups();
  bias.clear();
  for (const QuantizedLinear* part : parts) {
    const QuantizedMatrix& m = part->matrix_;
    out.q.insert(out.q.end(), m.q.begin(), m.q.end());  // [N, K] rows stack directly
    if (any_bias) {
      if (part->bias_.empty()) bias.insert(bias.end(), static_cast<size_t>(m.N), 0.0f);
      else bias.insert(bias.end(), part->bias_.begin(), part->bias_.end());
    }
  }
  // zeros/scales are [G, N]: each group row is the parts' rows side by side.
  for (int64_t g = 0; g < G; ++g)
    for (const QuantizedLinear* part : parts) {
      const QuantizedMatrix& m = part->matrix_;
      out.zeros.insert(out.zeros.end(), m.zeros.begin() + g * m.N, m.zeros.begin() + (g + 1) * m.N);
      out.scales.insert(out.scales.end(), m.scales.begin() + g * m.N, m.scales.begin() + (g + 1) * m.N);
    }
  return out;
}

// ---- AwqLinear ---------------------------------------------------------------------------------------

std::unique_ptr<AwqLinear> AwqLinear::load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                           int64_t K, int64_t group_size, bool with_bias) {
  const int64_t g = resolve_group_size(prefix, group_size, K);
  check_awq_layout(prefix, N, K, g);
  const int64_t G = K / g;
  AwqTensors tensors;
  tensors.N = N;
  tensors.K = K;
  tensors.group_size = g;
  tensors.qweight = read_i32(checkpoint, prefix + ".qweight", {K, N / 8});  // [in, out / 8]
  tensors.qzeros = read_i32(checkpoint, prefix + ".qzeros", {G, N / 8});
  tensors.scales = read_scales(checkpoint, prefix + ".scales", G, N);
  std::vector<float> bias;
  if (with_bias) bias = checkpoint.read_f32(prefix + ".bias", {N});
  // Every nibble is a valid 4-bit value and the sizes are checked, so unpacking cannot fail.
  return from_matrix(unpack_awq(tensors), std::move(bias));
}

std::unique_ptr<AwqLinear> AwqLinear::from_dense(const DenseLinear& dense, int64_t group_size) {
  const int64_t N = dense.out_features(), K = dense.in_features();
  const int64_t g = resolve_group_size("AwqLinear::from_dense", group_size, K);
  check_awq_layout("AwqLinear::from_dense", N, K, g);
  RtnOptions options;
  options.bits = 4;
  options.group_size = g;
  options.symmetric = false;  // AWQ always has zero points (zero_point: true)
  return from_matrix(rtn_quantize(dense.weight().data(), N, K, options), dense.bias());
}

std::unique_ptr<AwqLinear> AwqLinear::from_matrix(QuantizedMatrix matrix, std::vector<float> bias) {
  matrix.validate("AwqLinear");
  if (matrix.bits != 4)
    throw Error("AwqLinear: AWQ is 4-bit only, the matrix is " + std::to_string(matrix.bits) + "-bit");
  check_awq_layout("AwqLinear", matrix.N, matrix.K, matrix.group_size);
  if (matrix.has_act_order()) throw Error("AwqLinear: AWQ has no g_idx, so an act-order matrix cannot be AWQ");
  return std::unique_ptr<AwqLinear>(new AwqLinear(std::move(matrix), std::move(bias)));
}

std::unique_ptr<AwqLinear> AwqLinear::concat_rows(const std::vector<const AwqLinear*>& parts) {
  std::vector<float> bias;
  QuantizedMatrix matrix =
      concat_matrices(std::vector<const QuantizedLinear*>(parts.begin(), parts.end()), bias);
  return from_matrix(std::move(matrix), std::move(bias));
}

bool AwqLinear::can_concat(const std::vector<const Linear*>& parts) {
  if (parts.empty()) return false;
  const auto* first = dynamic_cast<const AwqLinear*>(parts[0]);
  if (first == nullptr) return false;
  for (const Linear* part : parts) {
    const auto* awq = dynamic_cast<const AwqLinear*>(part);
    if (awq == nullptr || !compatible(first->matrix_, awq->matrix_)) return false;
  }
  return true;
}

std::string AwqLinear::describe() const { return "AwqLinear int4 " + group_text(matrix_); }

// ---- GptqLinear --------------------------------------------------------------------------------------

std::unique_ptr<GptqLinear> GptqLinear::load(const TensorSource& checkpoint, const std::string& prefix, int64_t N,
                                             int64_t K, const GptqFormat& format, bool require_g_idx,
                                             bool with_bias) {
  const int bits = format.bits;
  check_gptq_layout(prefix, bits, N, K);
  const int64_t g = resolve_group_size(prefix, format.group_size, K);
  const int64_t G = (K + g - 1) / g;  // GPTQ allows a last, partial group
  GptqTensors tensors;
  tensors.bits = bits;
  tensors.N = N;
  tensors.K = K;
  tensors.group_size = g;
  tensors.qweight = read_i32(checkpoint, prefix + ".qweight", {K * bits / 32, N});  // packed along K
  tensors.qzeros = read_i32(checkpoint, prefix + ".qzeros", {G, N * bits / 32});    // packed along N
  tensors.scales = read_scales(checkpoint, prefix + ".scales", G, N);
  const std::string g_idx_name = prefix + ".g_idx";
  if (checkpoint.has(g_idx_name)) {
    tensors.g_idx = read_i32(checkpoint, g_idx_name, {K});
    for (size_t k = 0; k < tensors.g_idx.size(); ++k)
      if (tensors.g_idx[k] < 0 || tensors.g_idx[k] >= G)
        throw Error(g_idx_name + ": entry " + std::to_string(k) + " is " + std::to_string(tensors.g_idx[k]) +
                    ", expected a group in [0, " + std::to_string(G) + ")");
  } else if (require_g_idx) {
    // With desc_act the groups are an arbitrary map of input columns; k / g would be silently wrong.
    throw Error(g_idx_name + ": missing (desc_act checkpoints must carry g_idx)");
  }  // else: unpack_gptq uses k / g
  std::vector<float> bias;
  if (with_bias) bias = checkpoint.read_f32(prefix + ".bias", {N});
  return from_matrix(unpack_gptq(tensors, format.zeros), std::move(bias));
}

std::unique_ptr<GptqLinear> GptqLinear::from_dense(const DenseLinear& dense, const RtnOptions& options) {
  check_gptq_layout("GptqLinear::from_dense", options.bits, dense.out_features(), dense.in_features());
  return from_matrix(rtn_quantize(dense.weight().data(), dense.out_features(), dense.in_features(), options),
                     dense.bias());
}

std::unique_ptr<GptqLinear> GptqLinear::from_matrix(QuantizedMatrix matrix, std::vector<float> bias) {
  matrix.validate("GptqLinear");
  // A GptqLinear must stay writable as a GPTQ checkpoint and runnable by the packed kernels.
  check_gptq_layout("GptqLinear", matrix.bits, matrix.N, matrix.K);
  return std::unique_ptr<GptqLinear>(new GptqLinear(std::move(matrix), std::move(bias)));
}

std::unique_ptr<GptqLinear> GptqLinear::from_awq(const AwqLinear& awq) {
  // Through the packed words, as the loader of an AWQ checkpoint for the ExLlama path does; the true
  // zeros are kept (v2), so the integers and scales come out identical to the AWQ matrix.
  QuantizedMatrix matrix = unpack_gptq(awq_to_gptq(awq.packed()), GptqZeros::V2);
  std::unique_ptr<GptqLinear> linear = from_matrix(std::move(matrix), awq.bias());
  linear->from_awq_ = true;
  return linear;
}

std::unique_ptr<GptqLinear> GptqLinear::concat_rows(const std::vector<const GptqLinear*>& parts) {
  std::vector<float> bias;
  QuantizedMatrix matrix =
      concat_matrices(std::vector<const QuantizedLinear*>(parts.begin(), parts.end()), bias);
  std::unique_ptr<GptqLinear> linear = from_matrix(std::move(matrix), std::move(bias));
  bool all_from_awq = true;
  for (const GptqLinear* part : parts) all_from_awq = all_from_awq && part->from_awq_;
  linear->from_awq_ = all_from_awq;
  return linear;
}

bool GptqLinear::can_concat(const std::vector<const Linear*>& parts) {
  if (parts.empty()) return false;
  const auto* first = dynamic_cast<const GptqLinear*>(parts[0]);
  if (first == nullptr) return false;
  for (const Linear* part : parts) {
    const auto* gptq = dynamic_cast<const GptqLinear*>(part);
    if (gptq == nullptr || !compatible(first->matrix_, gptq->matrix_)) return false;
  }
  return true;
}

std::string GptqLinear::describe() const {
  std::string text = "GptqLinear int" + std::to_string(matrix_.bits) + " " + group_text(matrix_);
  if (matrix_.has_act_order()) text += " act-order";
  if (from_awq_) text += " (ExLlama path, from AWQ)";
  return text;
}

std::unique_ptr<DeviceLinear> AwqLinear::to_device(const DeviceLinearOptions& options) const {
  return GroupQuantDeviceLinear::upload(matrix_, bias_, "AWQ", options);
}

std::unique_ptr<DeviceLinear> GptqLinear::to_device(const DeviceLinearOptions& options) const {
  return GroupQuantDeviceLinear::upload(matrix_, bias_, from_awq_ ? "ExLlama path (AWQ)" : "GPTQ", options);
}

std::unique_ptr<Linear> AwqLinear::fuse_rows(const std::vector<const Linear*>& parts) const {
  return fuse_rows_of<AwqLinear>(parts);
}

std::unique_ptr<Linear> GptqLinear::fuse_rows(const std::vector<const Linear*>& parts) const {
  return fuse_rows_of<GptqLinear>(parts);
}

bool QuantizedLinear::has_zero_point_of_zero(int64_t begin, int64_t end) const {
  return any_zero_is_zero(slice_rows(matrix_, begin, end));
}

namespace {

void add_i32(TensorSink& out, const std::string& name, std::vector<int64_t> shape, const std::vector<int32_t>& values) {
  out.add(name, DType::I32, std::move(shape), to_bytes(values));
}

}  // namespace

void AwqLinear::write_rows(TensorSink& out, const std::string& p, int64_t begin, int64_t end,
                           const LinearWriteOptions& options) const {
  require_written_format(*this, p, WrittenFormat::Awq, options.format);
  const AwqTensors t = pack_awq(slice_rows(matrix_, begin, end));
  const int64_t G = static_cast<int64_t>(t.scales.size()) / t.N;
  add_i32(out, p + ".qweight", {t.K, t.N / 8}, t.qweight);
  add_i32(out, p + ".qzeros", {G, t.N / 8}, t.qzeros);
  out.add_f16(p + ".scales", {G, t.N}, t.scales);
  write_bias_rows(out, p, bias_, begin, end);
}

void GptqLinear::write_rows(TensorSink& out, const std::string& p, int64_t begin, int64_t end,
                            const LinearWriteOptions& options) const {
  require_written_format(*this, p, WrittenFormat::Gptq, options.format);
  const GptqTensors t =
      pack_gptq(slice_rows(matrix_, begin, end), options.gptq_v1_zeros ? GptqZeros::V1 : GptqZeros::V2);
  const int64_t G = static_cast<int64_t>(t.scales.size()) / t.N;
  add_i32(out, p + ".qweight", {static_cast<int64_t>(t.qweight.size()) / t.N, t.N}, t.qweight);
  add_i32(out, p + ".qzeros", {G, static_cast<int64_t>(t.qzeros.size()) / G}, t.qzeros);
  out.add_f16(p + ".scales", {G, t.N}, t.scales);
  add_i32(out, p + ".g_idx", {t.K}, t.g_idx);
  write_bias_rows(out, p, bias_, begin, end);
}

}  // namespace runllm
