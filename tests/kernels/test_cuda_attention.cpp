// Prefill and split decode attention against kernels/cpu/attention on q, K, V rounded to the
// activation type (fp16 and bf16).
#include "kernels/cuda/attention.h"

#include "kernels/cpu/attention.h"
#include "tests/catch.h"
#include "tests/kernels/cuda_test_support.h"

using namespace runllm;
using runllm::test::DeviceBuffer;

namespace {

struct Heads {
  int64_t heads, kv_heads, head_dim;
};

// Runs one attention step of M rows after `past` cached rows on both sides; returns the error.
// With `past_on_device` (decode), past is read from device memory and the launch is sized for the
// largest past the cache allows, as in a captured CUDA graph.
template <typename T>
double compare_attention(const Heads& h, int64_t past, int64_t M, bool decode, float q_scale,
                         bool past_on_device = false) {
  const int64_t q_dim = h.heads * h.head_dim, kv_dim = h.kv_heads * h.head_dim;
  const int64_t q_stride = q_dim + 2 * kv_dim;  // q read from a fused qkv buffer
  const int64_t capacity = past + M + 5;        // rows past the step stay unread
  const std::vector<float> qkv = test::random_values<T>(static_cast<size_t>(M * q_stride), q_scale);
  const std::vector<float> k = test::random_values<T>(static_cast<size_t>(capacity * kv_dim));
  const std::vector<float> v = test::random_values<T>(static_cast<size_t>(capacity * kv_dim));

  DeviceBuffer<T> q_d(test::to_activation<T>(qkv)), k_d(test::to_activation<T>(k)), v_d(test::to_activation<T>(v));
  DeviceBuffer<T> out_d(static_cast<size_t>(M * q_dim));
  cuda::AttentionArgs<T> args;
  args.q = q_d.get();
  args.q_stride = q_stride;
  args.k_cache = k_d.get();
  args.v_cache = v_d.get();
  args.num_heads = h.heads;
  args.num_kv_heads = h.kv_heads;
  args.head_dim = h.head_dim;
  args.past = past;
  args.M = M;
  args.out = out_d.get();
  DeviceBuffer<int32_t> past_d(std::vector<int32_t>{static_cast<int32_t>(past)});
  if (past_on_device) {
    args.past = capacity - 1;
    args.device_past = past_d.get();
  }
  if (decode) {
    const size_t bytes = cuda::attention_decode_workspace_bytes(h.heads, h.head_dim);
    DeviceBuffer<float> workspace(bytes / sizeof(float));
    cuda::attention_decode(args, workspace.get(), bytes, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
  } else {
    cuda::attention_prefill(args, nullptr);
  }

  std::vector<float> ref(static_cast<size_t>(M * q_dim));
  cpu::causal_attention(qkv.data(), q_stride, k.data(), v.data(), {h.heads, h.kv_heads, h.head_dim}, past, M,
                        ref.data());
  const double error = test::max_relative_error(test::to_float(out_d.download()), ref);
  test::report_error(std::string(decode ? "attention_decode " : "attention_prefill ") + test::Activation<T>::name,
                     "heads=" + std::to_string(h.heads) + "/" + std::to_string(h.kv_heads) +
                         " D=" + std::to_string(h.head_dim) + " past=" + std::to_string(past) +
                         " M=" + std::to_string(M) + " qscale=" + std::to_string(static_cast<int>(q_scale)) +
                         (past_on_device ? " past-on-device" : ""),
                     error, test::Activation<T>::bound);
  return error;
}

const Heads kHeadShapes[] = {
    {9, 3, 64},     // SmolLM2-135M
    {8, 8, 64},     // no grouping
    {32, 8, 128},   // Llama-3-8B
    {32, 32, 128},  // Llama-2-7B
    {16, 2, 128},   // group of 8, the decode kernel's largest
};

}  // namespace

TEMPLATE_TEST_CASE("attention_prefill matches the CPU twin (causal, GQA, with a cached past)", "[cuda]", __half,
                   __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  for (const Heads& h : kHeadShapes) {
    for (const int64_t M : {1, 17, 128, 300}) {
      for (const int64_t past : {0, 37}) {
        CHECK(compare_attention<TestType>(h, past, M, false, 1.0f) < kBound);
      }
    }
  }
  // Peaked softmax (large scores) and a long prompt after a long past.
  if (!test::quick()) CHECK(compare_attention<TestType>({32, 8, 128}, 0, 1024, false, 4.0f) < kBound);
  CHECK(compare_attention<TestType>({9, 3, 64}, 2000, 77, false, 4.0f) < kBound);
}

TEMPLATE_TEST_CASE("attention_decode matches the CPU twin over short and long contexts", "[cuda]", __half,
                   __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  for (const Heads& h : kHeadShapes) {
    for (const int64_t past : {0, 5, 127, 1000, 4095, 16383}) {
      if (test::quick() && past > 4095) continue;
      CHECK(compare_attention<TestType>(h, past, 1, true, 1.0f) < kBound);
    }
  }
  if (!test::quick()) {
    CHECK(compare_attention<TestType>({32, 8, 128}, 32767, 1, true, 1.0f) < kBound);
    CHECK(compare_attention<TestType>({32, 8, 128}, 131071, 1, true, 1.0f) < kBound);
  }
  CHECK(compare_attention<TestType>({9, 3, 64}, 8191, 1, true, 4.0f) < kBound);
}

TEMPLATE_TEST_CASE("attention_decode reads past from device memory (CUDA graph replay)", "[cuda]", __half,
                   __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  for (const Heads& h : kHeadShapes)
    for (const int64_t past : {0, 5, 127, 1000})
      CHECK(compare_attention<TestType>(h, past, 1, true, 1.0f, true) < kBound);
}

TEST_CASE("attention_decode rejects M > 1 and groups over 8 heads", "[cuda]") {
  cuda::AttentionArgs<__half> args;
  args.head_dim = 128;
  args.num_heads = 32;
  args.num_kv_heads = 8;
  args.M = 2;
  REQUIRE_THROWS_WITH(cuda::attention_decode(args, nullptr, 0, nullptr), HAS_SUBSTRING("expected M == 1"));
  args.M = 1;
  args.num_kv_heads = 2;
  REQUIRE_THROWS_WITH(cuda::attention_decode(args, nullptr, 0, nullptr), HAS_SUBSTRING("query heads per kv head"));
}
