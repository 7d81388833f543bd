// Elementwise CUDA kernels against kernels/cpu/elementwise, and the CUDA_CHECK contract.
#include "kernels/cuda/elementwise.h"

#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/attention.h"
#include "tests/catch.h"
#include "tests/kernels/cuda_test_support.h"

using namespace runllm;
using runllm::test::DeviceBuffer;

TEMPLATE_TEST_CASE("embedding_gather copies the rows of the ids exactly", "[cuda]", __half, __nv_bfloat16) {
  const std::string type = test::Activation<TestType>::name;
  for (const int64_t H : {576, 4096, 100, 33}) {  // 100, 33: not multiples of 8, the scalar path
    for (const int64_t M : {1, 7, 64}) {
      const int64_t rows = 1000;
      const std::vector<float> table = test::random_values<TestType>(static_cast<size_t>(rows * H));
      std::vector<int32_t> ids(static_cast<size_t>(M));
      std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(rows - 1));
      for (auto& id : ids) id = pick(test::rng());
      ids[0] = static_cast<int32_t>(rows - 1);  // the last row too

      DeviceBuffer<TestType> table_d(test::to_activation<TestType>(table)), out_d(static_cast<size_t>(M * H));
      DeviceBuffer<int32_t> ids_d(ids);
      cuda::embedding_gather(table_d.get(), H, ids_d.get(), M, out_d.get(), nullptr);
      std::vector<float> ref(static_cast<size_t>(M * H));
      cpu::embedding_gather(table.data(), H, ids.data(), M, ref.data());
      const double error = test::max_relative_error(test::to_float(out_d.download()), ref);
      test::report_error("embedding_gather " + type, "M=" + std::to_string(M) + " H=" + std::to_string(H), error, 0);
      CHECK(error == 0.0);
    }
  }
}

TEMPLATE_TEST_CASE("silu_mul matches the CPU twin", "[cuda]", __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  for (const int64_t I : {1536, 11008, 100}) {
    for (const int64_t M : {1, 3, 64}) {
      const std::vector<float> gate_up = test::random_values<TestType>(static_cast<size_t>(M * 2 * I), 3.0f);
      DeviceBuffer<TestType> in_d(test::to_activation<TestType>(gate_up)), out_d(static_cast<size_t>(M * I));
      cuda::silu_mul(in_d.get(), M, I, out_d.get(), nullptr);
      std::vector<float> ref(static_cast<size_t>(M * I));
      cpu::silu_mul(gate_up.data(), M, I, ref.data());
      const double error = test::max_relative_error(test::to_float(out_d.download()), ref);
      test::report_error("silu_mul " + type, "M=" + std::to_string(M) + " I=" + std::to_string(I), error, kBound);
      CHECK(error < kBound);
    }
  }
}

TEMPLATE_TEST_CASE("add_in_place matches the CPU twin", "[cuda]", __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  for (const int64_t n : {576, 4096 * 64, 1001}) {
    const std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(n));
    const std::vector<float> delta = test::random_values<TestType>(static_cast<size_t>(n));
    DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x)), delta_d(test::to_activation<TestType>(delta));
    cuda::add_in_place(x_d.get(), delta_d.get(), n, nullptr);
    std::vector<float> ref = x;
    cpu::add_in_place(ref.data(), delta.data(), n);
    const double error = test::max_relative_error(test::to_float(x_d.download()), ref);
    test::report_error("add_in_place " + type, "n=" + std::to_string(n), error, kBound);
    CHECK(error < kBound);
  }
}

TEMPLATE_TEST_CASE("kv_cache_append writes k and v of the fused qkv rows at past", "[cuda]", __half, __nv_bfloat16) {
  const int64_t q_dim = 32 * 128, kv_dim = 8 * 128, stride = q_dim + 2 * kv_dim;
  for (const int64_t M : {1, 19}) {
    const int64_t past = 37, capacity = 64;
    const std::vector<float> qkv = test::random_values<TestType>(static_cast<size_t>(M * stride));
    DeviceBuffer<TestType> qkv_d(test::to_activation<TestType>(qkv));
    DeviceBuffer<TestType> k_d(static_cast<size_t>(capacity * kv_dim)), v_d(static_cast<size_t>(capacity * kv_dim));
    cuda::KvAppendArgs<TestType> args;
    args.qkv = qkv_d.get();
    args.qkv_stride = stride;
    args.k_column = q_dim;
    args.v_column = q_dim + kv_dim;
    args.kv_dim = kv_dim;
    args.past = past;
    args.M = M;
    args.k_cache = k_d.get();
    args.v_cache = v_d.get();
    cuda::kv_cache_append(args, nullptr);
    const std::vector<float> k = test::to_float(k_d.download()), v = test::to_float(v_d.download());
    bool exact = true;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < kv_dim; ++c) {
        exact &= k[(past + m) * kv_dim + c] == qkv[m * stride + q_dim + c];
        exact &= v[(past + m) * kv_dim + c] == qkv[m * stride + q_dim + kv_dim + c];
      }
    CHECK(exact);
    CHECK(std::isnan(k[(past - 1) * kv_dim]));  // rows before past untouched (still poison)
  }
}

// [api-error]: provokes a failing CUDA call on purpose, which compute-sanitizer reports; the
// sanitizer runs of tests/run_gpu_suite.sh leave it out.
TEST_CASE("CUDA_CHECK names the call, the file and the CUDA error", "[cuda][api-error]") {
  void* pointer = nullptr;
  const auto allocate_too_much = [&] { CUDA_CHECK(cudaMalloc(&pointer, size_t(1) << 62)); };
  REQUIRE_THROWS_WITH(allocate_too_much(),
                      HAS_SUBSTRING("cudaMalloc(&pointer, size_t(1) << 62) failed at") &&
                          HAS_SUBSTRING("test_cuda_elementwise.cpp:") && HAS_SUBSTRING("out of memory"));
  cudaGetLastError();  // clear the sticky-free error state of the failed allocation
  cuda::AttentionArgs<__half> args;
  args.head_dim = 96;
  args.num_heads = 4;
  args.num_kv_heads = 4;
  args.M = 1;
  REQUIRE_THROWS_WITH(cuda::attention_prefill(args, nullptr), HAS_SUBSTRING("head_dim 64 or 128"));
}
