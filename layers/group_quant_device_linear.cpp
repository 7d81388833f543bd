#include "layers/group_quant_device_linear.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/group_quant.h"
#include "kernels/cuda/random_fill.h"
#include "layers/device_upload.h"
#include "layers/group_quant_repack.h"
#include "runtime/error.h"

namespace runllm {

std::unique_ptr<GroupQuantDeviceLinear> GroupQuantDeviceLinear::upload(const QuantizedMatrix& matrix,
                                                                       const std::vector<float>& bias,
                                                                       const std::string& format,
                                                                       const DeviceLinearOptions& options) {
  const GroupQuantHostLayout host = repack_for_gpu(matrix);
  std::vector<uint16_t> bias_bits(bias.size());
  for (size_t i = 0; i < bias.size(); ++i)
    bias_bits[i] = options.dtype == DType::BF16 ? float_to_bf16(bias[i]) : float_to_half(bias[i]);
  std::unique_ptr<GroupQuantDeviceLinear> linear(new GroupQuantDeviceLinear(format, options));
  std::vector<void*> at;
  linear->memory_ = upload_pieces({{host.words.data(), host.words.size() * 4},
                                   {host.scales.data(), host.scales.size() * 2},
                                   {host.zeros.data(), host.zeros.size()},
                                   {host.perm.data(), host.perm.size() * 4},
                                   {host.group_of.data(), host.group_of.size() * 4},
                                   {bias_bits.data(), bias_bits.size() * 2}},
                                  at, format + " int" + std::to_string(matrix.bits) + " linear");
  linear->layout_ = host.shape;
  linear->layout_.words = static_cast<const uint32_t*>(at[0]);
  linear->layout_.scales = static_cast<const uint16_t*>(at[1]);
  linear->layout_.zeros = static_cast<const uint8_t*>(at[2]);
  linear->layout_.perm = static_cast<const int32_t*>(at[3]);
  linear->layout_.group_of = static_cast<const int32_t*>(at[4]);
  linear->bias_ = at[5];
  return linear;
}

std::unique_ptr<GroupQuantDeviceLinear> GroupQuantDeviceLinear::random(int bits, int64_t group_size, bool act_order,
                                                                       int64_t N, int64_t K,
                                                                       const DeviceLinearOptions& options,
                                                                       uint64_t seed, cudaStream_t stream) {
  if (group_size <= 0) group_size = K;
  GroupQuantLayout shape;
  shape.bits = bits;
  shape.N = N;
  shape.K = K;
  shape.padded_K = (K + 31) / 32 * 32;
  shape.words_per_row = shape.padded_K * bits / 32;
  shape.group_size = group_size;
  shape.groups = (K + group_size - 1) / group_size;
  std::vector<int32_t> group_of(static_cast<size_t>(K)), perm;
  for (int64_t j = 0; j < K; ++j) group_of[static_cast<size_t>(j)] = static_cast<int32_t>(j / group_size);
  if (act_order) {
    perm.resize(static_cast<size_t>(K));
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937_64(seed));
  }
  const size_t words = static_cast<size_t>(N * shape.words_per_row) * 4;
  const size_t scales = static_cast<size_t>(N * shape.groups) * 2;
  std::unique_ptr<GroupQuantDeviceLinear> linear(
      new GroupQuantDeviceLinear(act_order ? "random GPTQ act-order" : "random", options));
  std::vector<void*> at;
  linear->memory_ = upload_pieces({{nullptr, words},
                                   {nullptr, scales},
                                   {nullptr, static_cast<size_t>(N * shape.groups)},
                                   {perm.data(), perm.size() * 4},
                                   {group_of.data(), group_of.size() * 4}},
                                  at, "a random int" + std::to_string(bits) + " linear");
  cuda::fill_random_bits(at[0], words, seed, stream);
  cuda::fill_random(static_cast<__half*>(at[1]), N * shape.groups, seed + 1, 0.002f, stream);
  cuda::fill_random_bits(at[2], static_cast<size_t>(N * shape.groups) / 4 * 4, seed + 2, stream);
  linear->layout_ = shape;
  linear->layout_.words = static_cast<const uint32_t*>(at[0]);
  linear->layout_.scales = static_cast<const uint16_t*>(at[1]);
  linear->layout_.zeros = static_cast<const uint8_t*>(at[2]);
  linear->layout_.perm = static_cast<const int32_t*>(at[3]);
  linear->layout_.group_of = static_cast<const int32_t*>(at[4]);
  return linear;
}

bool GroupQuantDeviceLinear::fused(int64_t M) const {
  return M <= options_.thresholds.group_quant_gemv_max_rows && cuda::group_quant_gemv_supports(layout_);
}

size_t GroupQuantDeviceLinear::workspace_bytes(int64_t M) const {
  return fused(M) ? 0 : static_cast<size_t>(layout_.N * layout_.K) * 2;  // the dequantized weight
}

size_t GroupQuantDeviceLinear::weight_bytes() const {
  const size_t groups = static_cast<size_t>(layout_.N * layout_.groups);
  return static_cast<size_t>(layout_.N * layout_.words_per_row) * 4 + groups * 3 +
         (layout_.perm ? static_cast<size_t>(layout_.K) * 4 : 0) + (bias_ ? static_cast<size_t>(layout_.N) * 2 : 0);
}

std::string GroupQuantDeviceLinear::kernel(int64_t M) const {
  std::string text = format_ + " int" + std::to_string(layout_.bits) + " " +
                     (layout_.group_size >= layout_.K ? std::string("g=all") : "g" + std::to_string(layout_.group_size)) +
                     (layout_.perm ? " act-order" : "");
  return text + (fused(M) ? ": fused dequantize + GEMV" : ": dequantize + cuBLAS");
}

template <typename T>
void GroupQuantDeviceLinear::run_typed(const T* x, int64_t M, T* y, const DeviceRun& run) const {
  const T* bias = static_cast<const T*>(bias_);
  if (fused(M)) {
    cuda::GroupQuantGemvArgs<T> args;
    args.weight = layout_;
    args.x = x;
    args.bias = bias;
    args.M = M;
    args.y = y;
    cuda::group_quant_gemv(args, run.stream);
    return;
  }
  if (run.workspace_bytes < workspace_bytes(M))
    throw Error("GroupQuantDeviceLinear: workspace of " + std::to_string(run.workspace_bytes) + " bytes, needs " +
                std::to_string(workspace_bytes(M)));
  T* weight = static_cast<T*>(run.workspace);
  cuda::group_quant_dequantize(layout_, weight, run.stream);
  cuda::linear_forward(run.cublas, x, weight, M, layout_.N, layout_.K, y, run.stream);
  if (bias) cuda::add_bias_rows(y, bias, M, layout_.N, run.stream);
}

void GroupQuantDeviceLinear::forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const {
  if (fp32_output) throw Error("--device cuda: a quantized lm_head is not supported");
  if (options_.dtype == DType::BF16)
    run_typed(static_cast<const __nv_bfloat16*>(x), M, static_cast<__nv_bfloat16*>(y), run);
  else
    run_typed(static_cast<const __half*>(x), M, static_cast<__half*>(y), run);
}

}  // namespace runllm
