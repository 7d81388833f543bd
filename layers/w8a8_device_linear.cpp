#include "layers/w8a8_device_linear.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/cuda/random_fill.h"
#include "kernels/cuda/w8a8.h"
#include "layers/device_upload.h"
#include "runtime/error.h"

namespace runllm {

std::unique_ptr<W8A8DeviceLinear> W8A8DeviceLinear::upload(const std::vector<int8_t>& weight,
                                                           const std::vector<float>& weight_scale,
                                                           std::optional<float> input_scale,
                                                           const std::vector<float>& bias, int64_t N, int64_t K,
                                                           const DeviceLinearOptions& options) {
  if (static_cast<int64_t>(weight.size()) != N * K || static_cast<int64_t>(weight_scale.size()) != N ||
      (!bias.empty() && static_cast<int64_t>(bias.size()) != N))
    throw Error("W8A8DeviceLinear: tensor sizes do not match [" + std::to_string(N) + ", " + std::to_string(K) + "]");
  if (K % 4 != 0)
    throw Error("--device cuda: W8A8 needs in_features divisible by 4 (int8 tensor cores), got " + std::to_string(K));
  std::unique_ptr<W8A8DeviceLinear> linear(new W8A8DeviceLinear(N, K, input_scale, options));
  std::vector<void*> at;
  linear->memory_ = upload_pieces({{weight.data(), weight.size()},
                                   {weight_scale.data(), weight_scale.size() * 4},
                                   {bias.data(), bias.size() * 4}},
                                  at, "a W8A8 linear [" + std::to_string(N) + ", " + std::to_string(K) + "]");
  linear->weight_ = static_cast<const int8_t*>(at[0]);
  linear->w_scale_ = static_cast<const float*>(at[1]);
  linear->bias_ = static_cast<const float*>(at[2]);
  return linear;
}

std::unique_ptr<W8A8DeviceLinear> W8A8DeviceLinear::random(int64_t N, int64_t K, const DeviceLinearOptions& options,
                                                           uint64_t seed, cudaStream_t stream) {
  std::unique_ptr<W8A8DeviceLinear> linear(new W8A8DeviceLinear(N, K, std::nullopt, options));
  const std::vector<float> scales(static_cast<size_t>(N), 1e-4f);
  std::vector<void*> at;
  linear->memory_ = upload_pieces({{nullptr, static_cast<size_t>(N * K)}, {scales.data(), scales.size() * 4}}, at,
                                  "a random W8A8 linear");
  cuda::fill_random_bits(at[0], static_cast<size_t>(N * K), seed, stream);
  linear->weight_ = static_cast<const int8_t*>(at[0]);
  linear->w_scale_ = static_cast<const float*>(at[1]);
  return linear;
}

bool W8A8DeviceLinear::gemv(int64_t M) const {
  return M <= options_.thresholds.int8_gemv_max_rows && K_ % 16 == 0;
}

// The workspace: xq [M, K] int8 | a_scale [M] fp32 | (GEMM path) acc [M, N] int32.
size_t W8A8DeviceLinear::workspace_bytes(int64_t M) const {
  size_t bytes = align_device_bytes(static_cast<size_t>(M * K_)) + align_device_bytes(static_cast<size_t>(M) * 4);
  if (!gemv(M)) bytes += static_cast<size_t>(M * N_) * 4;
  return bytes;
}

size_t W8A8DeviceLinear::weight_bytes() const {
  return static_cast<size_t>(N_ * K_) + static_cast<size_t>(N_) * 4 + (bias_ ? static_cast<size_t>(N_) * 4 : 0);
}

std::string W8A8DeviceLinear::kernel(int64_t M) const {
  const std::string activations = input_scale_ ? "static int8 activations" : "per-token int8 activations";
  return "W8A8 " + activations + (gemv(M) ? ": int8 GEMV (dp4a)" : ": cuBLASLt int8 GEMM + epilogue");
}

template <typename T>
void W8A8DeviceLinear::run_typed(const T* x, int64_t M, T* y, const DeviceRun& run) const {
  if (run.workspace_bytes < workspace_bytes(M))
    throw Error("W8A8DeviceLinear: workspace of " + std::to_string(run.workspace_bytes) + " bytes, needs " +
                std::to_string(workspace_bytes(M)));
  char* cursor = static_cast<char*>(run.workspace);
  int8_t* xq = reinterpret_cast<int8_t*>(cursor);
  cursor += align_device_bytes(static_cast<size_t>(M * K_));
  float* a_scale = reinterpret_cast<float*>(cursor);
  cursor += align_device_bytes(static_cast<size_t>(M) * 4);
  cuda::quantize_rows_int8(x, M, K_, input_scale_.value_or(0.0f), xq, a_scale, run.stream);
  cuda::Int8LinearArgs<T> args;
  args.xq = xq;
  args.a_scale = a_scale;
  args.weight = weight_;
  args.w_scale = w_scale_;
  args.bias = bias_;
  args.M = M;
  args.N = N_;
  args.K = K_;
  args.y = y;
  if (gemv(M)) {
    cuda::int8_gemv(args, run.stream);
    return;
  }
  int32_t* acc = reinterpret_cast<int32_t*>(cursor);
  cuda::int8_gemm_int32(run.cublaslt, xq, weight_, M, N_, K_, acc, run.cublaslt_workspace, run.cublaslt_workspace_bytes,
                        run.stream);
  cuda::int8_epilogue(acc, args, run.stream);
}

void W8A8DeviceLinear::forward(const void* x, int64_t M, void* y, const DeviceRun& run, bool fp32_output) const {
  if (fp32_output) throw Error("--device cuda: a W8A8 lm_head is not supported");
  if (options_.dtype == DType::BF16)
    run_typed(static_cast<const __nv_bfloat16*>(x), M, static_cast<__nv_bfloat16*>(y), run);
  else
    run_typed(static_cast<const __half*>(x), M, static_cast<__half*>(y), run);
}

}  // namespace runllm
