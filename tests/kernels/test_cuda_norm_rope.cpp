// RMSNorm (plain and fused with the residual add) and RoPE against kernels/cpu/norm_rope.
#include "kernels/cuda/norm_rope.h"

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/norm_rope.h"
#include "tests/catch.h"
#include "tests/kernels/cuda_test_support.h"

using namespace runllm;
using runllm::test::DeviceBuffer;

namespace {
constexpr float kEps = 1e-5f;
}  // namespace

TEMPLATE_TEST_CASE("rms_norm matches the CPU twin", "[cuda]", __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  for (const int64_t H : {576, 4096, 8192, 1001}) {
    for (const int64_t M : {1, 5, 64}) {
      const std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(M * H), 2.0f);
      std::vector<float> weight = test::random_values<TestType>(static_cast<size_t>(H), 0.5f);
      for (float& w : weight) w = test::round_to<TestType>(1.0f + w);
      DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x)), w_d(test::to_activation<TestType>(weight)), y_d(static_cast<size_t>(M * H));
      cuda::rms_norm(x_d.get(), w_d.get(), M, H, kEps, y_d.get(), nullptr);
      std::vector<float> ref(x.size());
      cpu::rms_norm(x.data(), weight.data(), M, H, kEps, ref.data());
      const double error = test::max_relative_error(test::to_float(y_d.download()), ref);
      test::report_error("rms_norm " + type, "M=" + std::to_string(M) + " H=" + std::to_string(H), error, kBound);
      CHECK(error < kBound);
    }
  }
}

TEMPLATE_TEST_CASE("add_rms_norm adds the residual in place and normalizes the sum", "[cuda]", __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  for (const int64_t H : {576, 4096, 1001}) {
    for (const int64_t M : {1, 64}) {
      const std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(M * H), 2.0f);
      const std::vector<float> residual = test::random_values<TestType>(static_cast<size_t>(M * H), 2.0f);
      const std::vector<float> weight = test::random_values<TestType>(static_cast<size_t>(H), 1.0f);
      DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x)), r_d(test::to_activation<TestType>(residual)), w_d(test::to_activation<TestType>(weight));
      DeviceBuffer<TestType> y_d(static_cast<size_t>(M * H));
      cuda::add_rms_norm(x_d.get(), r_d.get(), w_d.get(), M, H, kEps, y_d.get(), nullptr);

      std::vector<float> sum = x;
      cpu::add_in_place(sum.data(), residual.data(), M * H);
      for (float& s : sum) s = test::round_to<TestType>(s);  // the stream is stored rounded
      std::vector<float> ref(sum.size());
      cpu::rms_norm(sum.data(), weight.data(), M, H, kEps, ref.data());
      const double sum_error = test::max_relative_error(test::to_float(x_d.download()), sum);
      const double error = test::max_relative_error(test::to_float(y_d.download()), ref);
      const std::string shape = "M=" + std::to_string(M) + " H=" + std::to_string(H);
      test::report_error("add_rms_norm (x+=r) " + type, shape, sum_error, 0);
      test::report_error("add_rms_norm (norm) " + type, shape, error, kBound);
      CHECK(sum_error == 0.0);
      CHECK(error < kBound);
    }
  }
}

TEMPLATE_TEST_CASE("apply_rope rotates q and k heads of a fused qkv buffer like the CPU twin", "[cuda]", __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  cpu::RopeParams llama3;
  llama3.theta = 500000.0f;
  llama3.scaling_type = "llama3";
  llama3.factor = 8.0f;
  llama3.low_freq_factor = 1.0f;
  llama3.high_freq_factor = 4.0f;
  llama3.original_max_position_embeddings = 8192;
  cpu::RopeParams plain;  // theta 10000, default

  struct Case {
    const char* name;
    cpu::RopeParams params;
    int64_t heads, kv_heads, head_dim;
  };
  for (Case c : {Case{"default", plain, 9, 3, 64}, Case{"default", plain, 32, 32, 128},
                 Case{"llama3", llama3, 32, 8, 128}, Case{"llama3", llama3, 16, 4, 64}}) {
    c.params.head_dim = c.head_dim;
    const std::vector<float> inv_freq = cpu::rope_inverse_frequencies(c.params);
    const int64_t q_dim = c.heads * c.head_dim, kv_dim = c.kv_heads * c.head_dim;
    const int64_t stride = q_dim + 2 * kv_dim;
    for (const int64_t M : {1, 17, 64}) {
      const std::vector<float> qkv = test::random_values<TestType>(static_cast<size_t>(M * stride));
      std::vector<int64_t> positions(static_cast<size_t>(M));
      std::vector<int32_t> positions32(static_cast<size_t>(M));
      const int64_t past = M == 1 ? 32000 : 1000;  // long-context angles too
      for (int64_t m = 0; m < M; ++m) positions32[m] = static_cast<int32_t>(positions[m] = past + m);

      DeviceBuffer<TestType> qkv_d(test::to_activation<TestType>(qkv));
      DeviceBuffer<int32_t> pos_d(positions32);
      DeviceBuffer<float> freq_d(inv_freq);
      cuda::RopeArgs<TestType> args;
      args.x = qkv_d.get();
      args.M = M;
      args.row_stride = stride;
      args.head_dim = c.head_dim;
      args.positions = pos_d.get();
      args.inv_freq = freq_d.get();
      args.column_offset = 0;
      args.num_heads = c.heads;
      cuda::apply_rope(args, nullptr);  // q
      args.column_offset = q_dim;
      args.num_heads = c.kv_heads;
      cuda::apply_rope(args, nullptr);  // k

      std::vector<float> ref = qkv;
      cpu::apply_rope(ref.data(), M, stride, c.heads, c.head_dim, positions.data(), inv_freq);
      cpu::apply_rope(ref.data() + q_dim, M, stride, c.kv_heads, c.head_dim, positions.data(), inv_freq);
      const std::vector<float> out = test::to_float(qkv_d.download());
      const double error = test::max_relative_error(out, ref);
      bool v_untouched = true;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t i = q_dim + kv_dim; i < stride; ++i) v_untouched &= out[m * stride + i] == qkv[m * stride + i];
      test::report_error("apply_rope " + std::string(c.name) + " " + type,
                         "M=" + std::to_string(M) + " heads=" + std::to_string(c.heads) + "/" +
                             std::to_string(c.kv_heads) + " D=" + std::to_string(c.head_dim) +
                             " pos>=" + std::to_string(past),
                         error, kBound);
      CHECK(error < kBound);
      CHECK(v_untouched);
    }
  }
}
