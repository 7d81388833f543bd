// W8A8 on the GPU (kernels/cuda/w8a8*.cu) against the exact int32 emulation of the CPU reference
// (kernels/cpu/int8_gemm.h and W8A8Linear's epilogue): the int8 activations and their scales
// bit-equal, and every output equal to the reference's fp32 value rounded once to T.
#include <cublasLt.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/int8_gemm.h"
#include "kernels/cuda/w8a8.h"
#include "tests/catch.h"
#include "tests/kernels/cuda_test_support.h"

using namespace runllm;
using runllm::test::DeviceBuffer;

namespace {

// The CPU reference's epilogue, operation for operation (layers/w8a8_linear.cpp).
std::vector<float> reference_output(const std::vector<int32_t>& acc, const std::vector<float>& a_scale,
                                    const std::vector<float>& w_scale, const std::vector<float>& bias, int64_t M,
                                    int64_t N) {
  std::vector<float> y(static_cast<size_t>(M * N));
  for (int64_t t = 0; t < M; ++t)
    for (int64_t n = 0; n < N; ++n) {
      float value = static_cast<float>(acc[static_cast<size_t>(t * N + n)]) * w_scale[static_cast<size_t>(n)] *
                    a_scale[static_cast<size_t>(t)];
      if (!bias.empty()) value += bias[static_cast<size_t>(n)];
      y[static_cast<size_t>(t * N + n)] = value;
    }
  return y;
}

std::vector<int8_t> random_int8(size_t n) {
  std::vector<int8_t> values(n);
  for (int8_t& v : values) v = static_cast<int8_t>(static_cast<int>(test::rng()() % 256) - 128);
  return values;
}

}  // namespace

TEMPLATE_TEST_CASE("quantize_rows_int8 is bit-equal to the CPU per-token and static quantization", "[cuda]", __half,
                   __nv_bfloat16) {
  for (const int64_t K : {int64_t{16}, int64_t{576}, int64_t{4096}, int64_t{11008}}) {
    const int64_t M = 9;
    std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(M * K), 3.0f);
    std::fill(x.begin() + 2 * K, x.begin() + 3 * K, 0.0f);  // a zero row: scale 0, no NaN
    x[static_cast<size_t>(4 * K + 1)] = std::numeric_limits<float>::quiet_NaN();
    x[static_cast<size_t>(5 * K + 3)] = std::numeric_limits<float>::infinity();
    DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x));
    DeviceBuffer<int8_t> xq_d(static_cast<size_t>(M * K));
    DeviceBuffer<float> scale_d(static_cast<size_t>(M));
    for (const float static_scale : {0.0f, 0.02f}) {
      std::vector<int8_t> xq(static_cast<size_t>(M * K));
      std::vector<float> scales(static_cast<size_t>(M));
      if (static_scale > 0) cpu::quantize_static_int8(x.data(), M, K, static_scale, xq.data(), scales.data());
      else cpu::quantize_per_token_int8(x.data(), M, K, xq.data(), scales.data());
      cuda::quantize_rows_int8(x_d.get(), M, K, static_scale, xq_d.get(), scale_d.get(), nullptr);
      const std::vector<int8_t> xq_gpu = xq_d.download();
      const std::vector<float> scales_gpu = scale_d.download();
      size_t mismatches = 0;
      for (size_t i = 0; i < xq.size(); ++i) mismatches += xq[i] != xq_gpu[i];
      for (int64_t t = 0; t < M; ++t) {
        const float a = scales[static_cast<size_t>(t)], b = scales_gpu[static_cast<size_t>(t)];
        mismatches += !(a == b || (std::isnan(a) && std::isnan(b)));
      }
      std::printf("measured | quantize_rows_int8 %s | K=%lld %s | mismatches %zu | bound 0\n",
                  test::Activation<TestType>::name, static_cast<long long>(K), static_scale > 0 ? "static" : "dynamic",
                  mismatches);
      CHECK(mismatches == 0);
    }
  }
}

TEMPLATE_TEST_CASE("int8_gemv and the cuBLASLt int8 GEMM equal the exact int32 emulation up to the final rounding",
                   "[cuda][cublas]", __half, __nv_bfloat16) {
  cublasLtHandle_t handle = nullptr;
  REQUIRE(cublasLtCreate(&handle) == CUBLAS_STATUS_SUCCESS);
  DeviceBuffer<char> lt_workspace(size_t{32} << 20);
  struct Shape {
    int64_t N, K;
  };
  for (const Shape s : {Shape{960, 576}, Shape{67, 64}, Shape{4096, 4096}, Shape{4096, 11008}})
    for (const int64_t M : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{7}, int64_t{64}, int64_t{301}}) {
      if (test::quick() && s.N * s.K * M > (int64_t{1} << 28)) continue;
      const std::vector<int8_t> xq = random_int8(static_cast<size_t>(M * s.K));
      const std::vector<int8_t> w = random_int8(static_cast<size_t>(s.N * s.K));
      std::vector<float> a_scale(static_cast<size_t>(M)), w_scale(static_cast<size_t>(s.N));
      std::uniform_real_distribution<float> scale(1e-4f, 1e-2f);
      for (float& v : a_scale) v = scale(test::rng());
      for (float& v : w_scale) v = scale(test::rng());
      const std::vector<float> bias = test::random_values<__half>(static_cast<size_t>(s.N), 0.1f);
      std::vector<int32_t> acc(static_cast<size_t>(M * s.N));
      cpu::int8_gemm_int32(xq.data(), w.data(), M, s.N, s.K, acc.data());
      const std::vector<float> ref = reference_output(acc, a_scale, w_scale, bias, M, s.N);

      DeviceBuffer<int8_t> xq_d(xq), w_d(w);
      DeviceBuffer<float> a_d(a_scale), ws_d(w_scale), bias_d(bias);
      DeviceBuffer<TestType> y_d(static_cast<size_t>(M * s.N));
      DeviceBuffer<int32_t> acc_d(static_cast<size_t>(M * s.N));
      cuda::Int8LinearArgs<TestType> args;
      args.xq = xq_d.get();
      args.a_scale = a_d.get();
      args.weight = w_d.get();
      args.w_scale = ws_d.get();
      args.bias = bias_d.get();
      args.M = M;
      args.N = s.N;
      args.K = s.K;
      args.y = y_d.get();
      for (const bool gemv : {true, false}) {
        y_d.poison();
        if (gemv) {
          cuda::int8_gemv(args, nullptr);
        } else {
          cuda::int8_gemm_int32(handle, xq_d.get(), w_d.get(), M, s.N, s.K, acc_d.get(), lt_workspace.get(),
                                lt_workspace.size(), nullptr);
          cuda::int8_epilogue(acc_d.get(), args, nullptr);
        }
        const std::vector<float> y = test::to_float(y_d.download());
        size_t mismatches = 0;
        for (size_t i = 0; i < y.size(); ++i) mismatches += y[i] != test::round_to<TestType>(ref[i]);
        std::printf("measured | %s %s | M=%lld N=%lld K=%lld | mismatches %zu | bound 0\n",
                    gemv ? "int8_gemv" : "cuBLASLt int8+epilogue", test::Activation<TestType>::name,
                    static_cast<long long>(M), static_cast<long long>(s.N), static_cast<long long>(s.K), mismatches);
        CHECK(mismatches == 0);
      }
    }
  cublasLtDestroy(handle);
}
