// The group-wise quantized kernels (kernels/cuda/group_quant_*.cu) against their CPU twin
// (kernels/cpu/group_quant.h) on fresh random GroupQuantLayouts: bits 2, 3, 4, 8; group sizes 32,
// 64, 128 and one group (-1); act-order (a random column permutation) on and off; odd M; fp16 and
// bf16. The fused GEMV at M = 1 .. 17 (tiles of 8 and a remainder), the dequantize kernel (whose
// output cuBLAS multiplies for prompts) on every layout, also unequal act-order groups.
#include <algorithm>
#include <numeric>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/group_quant.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/group_quant.h"
#include "tests/catch.h"
#include "tests/kernels/cuda_test_support.h"

using namespace runllm;
using runllm::test::DeviceBuffer;

namespace {

// A random layout on the host: random words, zeros in [0, 2^bits), fp16 scales ~ 0.002-0.02 (weights
// of the magnitude real checkpoints have), perm a random permutation (act-order) or identity.
struct RandomLayout {
  GroupQuantLayout shape;
  std::vector<uint32_t> words;
  std::vector<uint16_t> scales;
  std::vector<uint8_t> zeros;
  std::vector<int32_t> perm, group_of;

  RandomLayout(int bits, int64_t N, int64_t K, int64_t group_size, bool act_order, bool uneven_groups = false) {
    auto& random = test::rng();
    if (group_size <= 0) group_size = K;
    shape.bits = bits;
    shape.N = N;
    shape.K = K;
    shape.padded_K = (K + 31) / 32 * 32;
    shape.words_per_row = shape.padded_K * bits / 32;
    shape.group_size = group_size;
    shape.groups = (K + group_size - 1) / group_size;
    words.resize(static_cast<size_t>(N * shape.words_per_row));
    for (uint32_t& w : words) w = static_cast<uint32_t>(random());
    // Padding values beyond K are 0 in a real repack; clear them so the twin and kernel agree anyway.
    std::uniform_real_distribution<float> scale(0.002f, 0.02f);
    scales.resize(static_cast<size_t>(N * shape.groups));
    for (uint16_t& s : scales) s = float_to_half(scale(random));
    zeros.resize(scales.size());
    for (uint8_t& z : zeros) z = static_cast<uint8_t>(random() % (1u << bits));
    group_of.resize(static_cast<size_t>(K));
    for (int64_t j = 0; j < K; ++j) group_of[static_cast<size_t>(j)] = static_cast<int32_t>(j / group_size);
    shape.uniform_groups = true;
    if (uneven_groups) {  // sorted but of random sizes: what an arbitrary g_idx leaves after sorting
      std::vector<int32_t> sorted(static_cast<size_t>(K));
      for (int32_t& g : sorted) g = static_cast<int32_t>(random() % static_cast<uint64_t>(shape.groups));
      std::sort(sorted.begin(), sorted.end());
      group_of = sorted;
      shape.uniform_groups = false;
    }
    if (act_order) {
      perm.resize(static_cast<size_t>(K));
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), random);
    }
  }
  GroupQuantLayout host() const {
    GroupQuantLayout layout = shape;
    layout.words = words.data();
    layout.scales = scales.data();
    layout.zeros = zeros.data();
    layout.perm = perm.empty() ? nullptr : perm.data();
    layout.group_of = group_of.data();
    return layout;
  }
};

// The same layout in device memory.
struct DeviceLayout {
  DeviceBuffer<uint32_t> words;
  DeviceBuffer<uint16_t> scales;
  DeviceBuffer<uint8_t> zeros;
  DeviceBuffer<int32_t> perm, group_of;
  GroupQuantLayout layout;
  explicit DeviceLayout(const RandomLayout& r)
      : words(r.words), scales(r.scales), zeros(r.zeros), perm(r.perm), group_of(r.group_of), layout(r.shape) {
    layout.words = words.get();
    layout.scales = scales.get();
    layout.zeros = zeros.get();
    layout.perm = r.perm.empty() ? nullptr : perm.get();
    layout.group_of = group_of.get();
  }
};

std::string describe(const GroupQuantLayout& w, int64_t M) {
  return "int" + std::to_string(w.bits) + " g" + (w.group_size == w.K ? std::string("=K") : std::to_string(w.group_size)) +
         (w.perm ? " act-order" : "") + (w.uniform_groups ? "" : " uneven") + " M=" + std::to_string(M) +
         " N=" + std::to_string(w.N) + " K=" + std::to_string(w.K);
}

}  // namespace

TEMPLATE_TEST_CASE("group_quant_gemv matches the CPU twin for every bit width, group size and act-order", "[cuda]",
                   __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  struct Shape {
    int64_t N, K;
  };
  for (const int bits : {2, 3, 4, 8})
    for (const int64_t group_size : {int64_t{32}, int64_t{64}, int64_t{128}, int64_t{-1}})
      for (const bool act_order : {false, true})
        for (const Shape s : {Shape{67, 256}, Shape{300, 576}, Shape{1024, 4096}}) {
          if (test::quick() && s.K > 1024) continue;
          const RandomLayout random(bits, s.N, s.K, group_size, act_order);
          const DeviceLayout device(random);
          REQUIRE(cuda::group_quant_gemv_supports(device.layout));
          for (const int64_t M : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{8}, int64_t{13}}) {
            const std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(M * s.K));
            const std::vector<float> bias = test::random_values<TestType>(static_cast<size_t>(s.N), 0.1f);
            std::vector<float> ref(static_cast<size_t>(M * s.N));
            cpu::group_quant_linear(random.host(), x.data(), M, bias.data(), ref.data());
            DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x)), bias_d(test::to_activation<TestType>(bias));
            DeviceBuffer<TestType> y_d(static_cast<size_t>(M * s.N));
            cuda::GroupQuantGemvArgs<TestType> args;
            args.weight = device.layout;
            args.x = x_d.get();
            args.bias = bias_d.get();
            args.M = M;
            args.y = y_d.get();
            cuda::group_quant_gemv(args, nullptr);
            const double error = test::max_relative_error(test::to_float(y_d.download()), ref);
            test::report_error("group_quant_gemv " + type, describe(device.layout, M), error, kBound);
            CHECK(error < kBound);
          }
        }
}

TEMPLATE_TEST_CASE("group_quant_dequantize + cuBLAS matches the CPU twin, uneven act-order groups too", "[cuda][cublas]",
                   __half, __nv_bfloat16) {
  const double kBound = test::Activation<TestType>::bound;
  const std::string type = test::Activation<TestType>::name;
  cublasHandle_t handle = nullptr;
  CUBLAS_CHECK(cublasCreate(&handle));
  struct Case {
    int bits;
    int64_t group_size, N, K;
    bool act_order, uneven;
  };
  for (const Case c : {Case{4, 128, 1024, 4096, false, false}, Case{4, 64, 300, 576, true, false},
                       Case{3, 32, 129, 256, true, false}, Case{2, -1, 64, 256, false, false},
                       Case{8, 128, 256, 1536, false, false}, Case{4, 64, 96, 200, false, false},
                       Case{3, 64, 50, 320, true, true}, Case{8, 32, 40, 96, true, true}}) {
    const RandomLayout random(c.bits, c.N, c.K, c.group_size, c.act_order, c.uneven);
    const DeviceLayout device(random);
    // The dequantized weight itself: exact up to the one rounding to T.
    DeviceBuffer<TestType> weight_d(static_cast<size_t>(c.N * c.K));
    cuda::group_quant_dequantize(device.layout, weight_d.get(), nullptr);
    const std::vector<float> weight = cpu::group_quant_dequantize(random.host());
    const std::vector<float> weight_gpu = test::to_float(weight_d.download());
    size_t mismatches = 0;
    for (size_t i = 0; i < weight.size(); ++i) mismatches += weight_gpu[i] != test::round_to<TestType>(weight[i]);
    CHECK(mismatches == 0);
    for (const int64_t M : {int64_t{17}, int64_t{300}}) {
      const std::vector<float> x = test::random_values<TestType>(static_cast<size_t>(M * c.K));
      std::vector<float> ref(static_cast<size_t>(M * c.N));
      cpu::group_quant_linear(random.host(), x.data(), M, nullptr, ref.data());
      DeviceBuffer<TestType> x_d(test::to_activation<TestType>(x)), y_d(static_cast<size_t>(M * c.N));
      cuda::linear_forward(handle, x_d.get(), weight_d.get(), M, c.N, c.K, y_d.get(), nullptr);
      const double error = test::max_relative_error(test::to_float(y_d.download()), ref);
      test::report_error("dequantize+cuBLAS " + type, describe(device.layout, M), error, kBound);
      CHECK(error < kBound);
    }
  }
  CUBLAS_CHECK(cublasDestroy(handle));
}

TEST_CASE("group_quant_gemv refuses layouts it cannot run", "[cuda]") {
  const RandomLayout uneven(4, 8, 256, 64, true, true);
  const DeviceLayout device(uneven);
  CHECK_FALSE(cuda::group_quant_gemv_supports(device.layout));
  const RandomLayout odd(4, 8, 200, 40, false);
  CHECK_FALSE(cuda::group_quant_gemv_supports(DeviceLayout(odd).layout));
}
