#include "layers/dense_device_linear.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/gemv.h"
#include "kernels/cuda/random_fill.h"
#include "layers/device_upload.h"
#include "runtime/error.h"

namespace runllm {

namespace {

std::vector<uint16_t> to_activation_bits(const std::vector<float>& values, DType dtype) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    bits[i] = dtype == DType::BF16 ? float_to_bf16(values[i]) : float_to_half(values[i]);
  return bits;
}

}  // namespace

std::unique_ptr<DenseDeviceLinear> DenseDeviceLinear::upload(const std::vector<float>& weight,
                                                             const std::vector<float>& bias, int64_t N, int64_t K,
                                                             const DeviceLinearOptions& options) {
  if (static_cast<int64_t>(weight.size()) != N * K || (!bias.empty() && static_cast<int64_t>(bias.size()) != N))
    throw Error("DenseDeviceLinear: weight or bias size does not match [" + std::to_string(N) + ", " +
                std::to_string(K) + "]");
  std::unique_ptr<DenseDeviceLinear> linear(new DenseDeviceLinear(N, K, options));
  const std::vector<uint16_t> weight_bits = to_activation_bits(weight, options.dtype);
  const std::vector<uint16_t> bias_bits = to_activation_bits(bias, options.dtype);
  std::vector<void*> at;
  linear->memory_ = upload_pieces({{weight_bits.data(), weight_bits.size() * 2}, {bias_bits.data(), bias_bits.size() * 2}},
                                  at, "a dense linear [" + std::to_string(N) + ", " + std::to_string(K) + "]");
  linear->weight_ = at[0];
  linear->bias_ = at[1];
  return linear;
}

std::unique_ptr<DenseDeviceLinear> DenseDeviceLinear::borrowed(const void* weight, int64_t N, int64_t K,
                                                               const DeviceLinearOptions& options) {
  std::unique_ptr<DenseDeviceLinear> linear(new DenseDeviceLinear(N, K, options));
  linear->weight_ = weight;
  return linear;
}

std::unique_ptr<DenseDeviceLinear> DenseDeviceLinear::random(int64_t N, int64_t K, const DeviceLinearOptions& options,
                                                             uint64_t seed, cudaStream_t stream) {
  std::unique_ptr<DenseDeviceLinear> linear(new DenseDeviceLinear(N, K, options));
  std::vector<void*> at;
  linear->memory_ = upload_pieces({{nullptr, static_cast<size_t>(N * K) * 2}}, at, "a random dense linear");
  linear->weight_ = at[0];
  if (options.dtype == DType::BF16)
    cuda::fill_random(static_cast<__nv_bfloat16*>(at[0]), N * K, seed, 0.02f, stream);
  else
    cuda::fill_random(static_cast<__half*>(at[0]), N * K, seed, 0.02f, stream);
  return linear;
}

size_t DenseDeviceLinear::weight_bytes() const {
  return static_cast<size_t>(N_ * K_) * 2 + (bias_ ? static_cast<size_t>(N_) * 2 : 0);
}

std::string DenseDeviceLinear::kernel(int64_t M) const {
  const std::string type = options_.dtype == DType::BF16 ? "bf16" : "fp16";
  if (M <= options_.thresholds.dense_gemv_max_rows && cuda::gemv_supports(K_, weight_, weight_))
    return type + " GEMV";
  return type + " cuBLAS";
}

template <typename T, typename Out>
void DenseDeviceLinear::run_typed(const T* x, int64_t M, Out* y, const DeviceRun& run) const {
  const T* weight = static_cast<const T*>(weight_);
  const T* bias = static_cast<const T*>(bias_);
  if (M <= options_.thresholds.dense_gemv_max_rows && M == 1 && cuda::gemv_supports(K_, x, weight)) {
    cuda::GemvArgs<T, Out> args;
    args.x = x;
    args.weight = weight;
    args.bias = bias;
    args.N = N_;
    args.K = K_;
    args.y = y;
    cuda::gemv(args, run.stream);
    return;
  }
  cuda::linear_forward(run.cublas, x, weight, M, N_, K_, y, run.stream);
  if (bias) {
    if constexpr (std::is_same_v<T, Out>) cuda::add_bias_rows(y, bias, M, N_, run.stream);
    else throw Error("--device cuda: a bias on a linear with fp32 output is not supported");
  }
}

void DenseDeviceLinear::forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const {
  if (options_.dtype == DType::BF16) {
    const auto* xt = static_cast<const __nv_bfloat16*>(x);
    if (fp32_output) run_typed(xt, M, static_cast<float*>(y), run);
    else run_typed(xt, M, static_cast<__nv_bfloat16*>(y), run);
  } else {
    const auto* xt = static_cast<const __half*>(x);
    if (fp32_output) run_typed(xt, M, static_cast<float*>(y), run);
    else run_typed(xt, M, static_cast<__half*>(y), run);
  }
}

}  // namespace runllm
