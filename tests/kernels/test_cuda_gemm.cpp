// The dense linears against the OpenBLAS fp32 reference (cpu::linear_forward) on the same operands
// rounded to the activation type: cuBLAS for any M, the GEMV kernel for M = 1.
#include "kernels/cuda/gemm.h"

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemv.h"
#include "tests/catch.h"
#include "tests/kernels/cuda_test_support.h"

using namespace runllm;
using runllm::test::DeviceBuffer;

namespace {

std::string shape_name(int64_t M, int64_t N, int64_t K) {
  return "M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" + std::to_string(K);
}

}  // namespace

// [cublas]: the kernels are cuBLAS's own; racecheck reports hazards inside them (nvjet split-K
// kernels), which are not ours to fix, so the racecheck run of tests/run_gpu_suite.sh leaves it out.
TEMPLATE_TEST_CASE("linear_forward (cuBLAS) matches the CPU GEMM", "[cuda][cublas]", __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  cublasHandle_t handle = nullptr;
  CUBLAS_CHECK(cublasCreate(&handle));
  struct Shape {
    int64_t M, N, K;
  };
  for (const Shape s : {Shape{1, 4096, 4096}, Shape{7, 1000, 576}, Shape{128, 1536, 576}, Shape{64, 4096, 11008},
                        Shape{300, 14336, 4096}}) {
    if (test::quick() && s.M * s.N * s.K > (int64_t(1) << 31)) continue;
    const std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(s.M * s.K));
    const std::vector<float> w = test::random_values<TestType>(static_cast<size_t>(s.N * s.K), 0.02f);
    DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x)), w_d(test::to_activation<TestType>(w));
    DeviceBuffer<TestType> y_d(static_cast<size_t>(s.M * s.N));
    DeviceBuffer<float> y32_d(static_cast<size_t>(s.M * s.N));
    cuda::linear_forward(handle, x_d.get(), w_d.get(), s.M, s.N, s.K, y_d.get(), nullptr);
    cuda::linear_forward(handle, x_d.get(), w_d.get(), s.M, s.N, s.K, y32_d.get(), nullptr);
    std::vector<float> ref(static_cast<size_t>(s.M * s.N));
    cpu::linear_forward(x.data(), w.data(), nullptr, s.M, s.N, s.K, ref.data());
    const double error = test::max_relative_error(test::to_float(y_d.download()), ref);
    const double error32 = test::max_relative_error(y32_d.download(), ref);
    const std::string type = test::Activation<TestType>::name;
    test::report_error("linear_forward " + type, shape_name(s.M, s.N, s.K), error, kBound);
    test::report_error("linear_forward " + type + "->f32", shape_name(s.M, s.N, s.K), error32, 1e-4);
    CHECK(error < kBound);
    CHECK(error32 < 1e-4);  // fp32 accumulation, no output rounding
  }
  CUBLAS_CHECK(cublasDestroy(handle));
}

// Shapes: the decode linears of SmolLM2 (576 hidden), Llama-2-7B and Llama-3-8B (q/k/v, gate/up,
// down, lm_head), K below one warp's 256-element stride, N not a multiple of the rows per block.
TEMPLATE_TEST_CASE("gemv matches the CPU linear for one row, with and without a bias", "[cuda]", __half,
                   __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  struct Shape {
    int64_t N, K;
  };
  for (const Shape s : {Shape{960, 576}, Shape{3072, 576}, Shape{576, 1536}, Shape{49152, 576}, Shape{12288, 4096},
                        Shape{22016, 4096}, Shape{4096, 11008}, Shape{32000, 4096}, Shape{6144, 4096},
                        Shape{4096, 14336}, Shape{13, 8}, Shape{1001, 72}, Shape{7, 2056}}) {
    if (test::quick() && s.N * s.K > (int64_t(1) << 26)) continue;
    const std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(s.K));
    const std::vector<float> w = test::random_values<TestType>(static_cast<size_t>(s.N * s.K), 0.02f);
    const std::vector<float> b = test::random_values<TestType>(static_cast<size_t>(s.N), 0.5f);
    DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x)), w_d(test::to_activation<TestType>(w));
    DeviceBuffer<TestType> b_d(test::to_activation<TestType>(b)), y_d(static_cast<size_t>(s.N));
    DeviceBuffer<float> y32_d(static_cast<size_t>(s.N));
    REQUIRE(cuda::gemv_supports(s.K, x_d.get(), w_d.get()));

    cuda::GemvArgs<TestType, TestType> args;
    args.x = x_d.get();
    args.weight = w_d.get();
    args.bias = b_d.get();
    args.N = s.N;
    args.K = s.K;
    args.y = y_d.get();
    cuda::gemv(args, nullptr);
    std::vector<float> ref(static_cast<size_t>(s.N));
    cpu::linear_forward(x.data(), w.data(), b.data(), 1, s.N, s.K, ref.data());
    const double error = test::max_relative_error(test::to_float(y_d.download()), ref);
    test::report_error("gemv " + type + " +bias", shape_name(1, s.N, s.K), error, kBound);
    CHECK(error < kBound);

    cuda::GemvArgs<TestType, float> logits_args;  // as the lm_head runs: no bias, fp32 out
    logits_args.x = x_d.get();
    logits_args.weight = w_d.get();
    logits_args.N = s.N;
    logits_args.K = s.K;
    logits_args.y = y32_d.get();
    cuda::gemv(logits_args, nullptr);
    cpu::linear_forward(x.data(), w.data(), nullptr, 1, s.N, s.K, ref.data());
    const double error32 = test::max_relative_error(y32_d.download(), ref);
    test::report_error("gemv " + type + "->f32", shape_name(1, s.N, s.K), error32, 1e-4);
    CHECK(error32 < 1e-4);
  }
}

TEST_CASE("gemv refuses K that is not a multiple of 8 and misaligned rows", "[cuda]") {
  DeviceBuffer<__half> x_d(64), w_d(64 * 4);
  CHECK_FALSE(cuda::gemv_supports(12, x_d.get(), w_d.get()));
  CHECK_FALSE(cuda::gemv_supports(16, x_d.get() + 1, w_d.get()));
  CHECK(cuda::gemv_supports(16, x_d.get(), w_d.get()));
  cuda::GemvArgs<__half, __half> args;
  args.x = x_d.get();
  args.weight = w_d.get();
  args.N = 4;
  args.K = 12;
  args.y = x_d.get();
  REQUIRE_THROWS_WITH(cuda::gemv(args, nullptr), HAS_SUBSTRING("K must be a positive multiple of 8"));
}
