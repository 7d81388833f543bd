#include "runtime/cli/commands/kernel_bench.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cuda/random_fill.h"
#include "layers/dense_device_linear.h"
#include "layers/group_quant_device_linear.h"
#include "layers/w8a8_device_linear.h"
#include "model/cuda_weights.h"
#include "runtime/cli/commands/gpu_timing.h"
#include "runtime/cuda_check.h"

namespace runllm::cli {

namespace {

struct LayerShape {
  const char* model;
  const char* kind;
  int64_t N, K;
};

// qkv, o, gate_up, down, lm_head of each model (q/k/v and gate/up fused, as the runtime runs them).
const std::vector<LayerShape>& layer_shapes() {
  static const std::vector<LayerShape> shapes = {
      {"llama2-7b", "qkv", 12288, 4096},   {"llama2-7b", "o", 4096, 4096},       {"llama2-7b", "gate_up", 22016, 4096},
      {"llama2-7b", "down", 4096, 11008},  {"llama2-7b", "lm_head", 32000, 4096}, {"llama3-8b", "qkv", 6144, 4096},
      {"llama3-8b", "o", 4096, 4096},      {"llama3-8b", "gate_up", 28672, 4096}, {"llama3-8b", "down", 4096, 14336},
      {"llama3-8b", "lm_head", 128256, 4096}, {"smollm2-135m", "qkv", 960, 576}, {"smollm2-135m", "o", 576, 576},
      {"smollm2-135m", "gate_up", 3072, 576}, {"smollm2-135m", "down", 576, 1536},
      {"smollm2-135m", "lm_head", 49152, 576}};
  return shapes;
}

using Factory = std::function<std::unique_ptr<DeviceLinear>(int64_t N, int64_t K, uint64_t seed)>;

struct Variant {
  std::string name;
  std::string family;      // for the threshold: small-M and large-M variants of one family
  bool small_m = false;    // the fused small-M kernel (forced)
  bool quantized = true;   // false: dense, also timed on lm_head
  int64_t max_m = 1 << 20; // not timed above this M (a small-M kernel at prompt sizes)
  Factory make;
};

std::vector<Variant> variants(DType dtype, cudaStream_t stream) {
  DeviceLinearOptions small, large, ours;
  for (DeviceLinearOptions* o : {&small, &large, &ours}) o->dtype = dtype;
  small.thresholds = {1 << 30, 1 << 30, 1};
  large.thresholds = {0, 0, 0};
  const auto group = [=](int bits, bool act_order, const DeviceLinearOptions& options) -> Factory {
    return [=](int64_t N, int64_t K, uint64_t seed) {
      return GroupQuantDeviceLinear::random(bits, 128, act_order, N, K, options, seed, stream);
    };
  };
  const auto int8 = [=](const DeviceLinearOptions& options) -> Factory {
    return [=](int64_t N, int64_t K, uint64_t seed) { return W8A8DeviceLinear::random(N, K, options, seed, stream); };
  };
  const auto dense = [=](const DeviceLinearOptions& options) -> Factory {
    return [=](int64_t N, int64_t K, uint64_t seed) { return DenseDeviceLinear::random(N, K, options, seed, stream); };
  };
  return {
      {"fp16 GEMV", "dense", true, false, 1, dense(small)},
      {"int4 g128 fused", "group_quant_gemv", true, true, 64, group(4, false, small)},
      {"int4 g128 dequant+cuBLAS", "group_quant_gemv", false, true, 1 << 20, group(4, false, large)},
      {"int4 g128 act-order fused", "group_quant_gemv_act_order", true, true, 64, group(4, true, small)},
      {"int4 g128 act-order dequant+cuBLAS", "group_quant_gemv_act_order", false, true, 1 << 20, group(4, true, large)},
      {"int3 g128 fused", "int3", true, true, 64, group(3, false, small)},
      {"int2 g128 fused", "int2", true, true, 64, group(2, false, small)},
      {"int8 g128 fused", "int8_group", true, true, 64, group(8, false, small)},
      {"w8a8 int8 GEMV", "int8_gemv", true, true, 64, int8(small)},
      {"w8a8 cuBLASLt int8", "int8_gemv", false, true, 1 << 20, int8(large)},
  };
}

}  // namespace

int run_kernel_bench(const CudaContext& context, DType dtype) {
  const cudaStream_t stream = context.stream();
  const double bandwidth = device_copy_bandwidth(context);
  const int64_t kRows[] = {1, 2, 4, 8, 16, 32, 64, 256, 2048};
  constexpr int64_t kMaxRows = 2048, kMaxK = 14336, kMaxN = 128256;
  constexpr size_t kL2Defeat = size_t{200} << 20;  // copies of small weights until they exceed L2 several times
  DeviceMemory x_memory(static_cast<size_t>(kMaxRows * kMaxK) * 2, "the bench activations");
  DeviceMemory y_memory(static_cast<size_t>(kMaxRows * kMaxN) * 2, "the bench outputs");
  DeviceMemory workspace(size_t{600} << 20, "the bench workspace");
  if (dtype == DType::BF16) cuda::fill_random(static_cast<__nv_bfloat16*>(x_memory.get()), kMaxRows * kMaxK, 5, 1.0f, stream);
  else cuda::fill_random(static_cast<__half*>(x_memory.get()), kMaxRows * kMaxK, 5, 1.0f, stream);
  const DeviceRun run = device_run(context, workspace);

  DeviceLinearOptions baseline_options;
  baseline_options.dtype = dtype;
  baseline_options.thresholds = {0, 0, 0};
  const std::vector<Variant> all = variants(dtype, stream);
  const char* type = dtype == DType::BF16 ? "bf16" : "fp16";
  std::printf("gpu: %s\ndevice copy bandwidth (read + write): %.1f GB/s\nactivations: %s\n", context.device_name().c_str(),
              bandwidth / 1e9, type);
  std::printf("time: median of 20 passes over enough copies of the weights to leave L2 (CUDA events), per call\n");
  std::printf("floor: weight bytes (packed weights, scales, zeros, perm) / copy bandwidth; vs cuBLAS: cuBLAS %s time "
              "on the same shape and M / this time\n\n", type);
  std::printf("%-13s %-8s %6s %6s %5s %-36s %10s %9s %8s %9s\n", "model", "linear", "N", "K", "M", "kernel",
              "us/call", "GB/s", "floor%", "vs cuBLAS");
  // family -> M -> (small-M time, large-M time) summed over the llama2-7b decoder linears
  std::map<std::string, std::map<int64_t, std::pair<double, double>>> crossover;
  uint64_t seed = 1;
  for (const LayerShape& shape : layer_shapes()) {
    const bool lm_head = std::string(shape.kind) == "lm_head";
    const auto time_linear = [&](const Factory& make, int64_t M, size_t& bytes) {
      std::vector<std::unique_ptr<DeviceLinear>> copies;
      copies.push_back(make(shape.N, shape.K, seed++));
      bytes = copies[0]->weight_bytes();
      const size_t count = std::min<size_t>(256, std::max<size_t>(1, kL2Defeat / std::max<size_t>(bytes, 1)));
      while (copies.size() < count) copies.push_back(make(shape.N, shape.K, seed++));
      context.synchronize();
      return median_pass_seconds(context, 20, static_cast<int>(copies.size()), [&](int i) {
               copies[static_cast<size_t>(i)]->forward(x_memory.get(), M, y_memory.get(), run);
             }) /
             static_cast<double>(copies.size());
    };
    for (int64_t M : kRows) {
      size_t dense_bytes = 0;
      const double cublas = time_linear(
          [&](int64_t N, int64_t K, uint64_t s) { return DenseDeviceLinear::random(N, K, baseline_options, s, stream); },
          M, dense_bytes);
      const auto print = [&](const std::string& name, double seconds, size_t bytes) {
        std::printf("%-13s %-8s %6lld %6lld %5lld %-36s %10.2f %9.1f %7.1f%% %8.2fx\n", shape.model, shape.kind,
                    static_cast<long long>(shape.N), static_cast<long long>(shape.K), static_cast<long long>(M),
                    name.c_str(), seconds * 1e6, static_cast<double>(bytes) / seconds / 1e9,
                    100.0 * static_cast<double>(bytes) / bandwidth / seconds, cublas / seconds);
      };
      print(std::string(type) + " cuBLAS", cublas, dense_bytes);
      for (const Variant& variant : all) {
        if (M > variant.max_m || (lm_head && variant.quantized)) continue;
        size_t bytes = 0;
        const double seconds = time_linear(variant.make, M, bytes);
        print(variant.name, seconds, bytes);
        if (std::string(shape.model) == "llama2-7b" && !lm_head) {
          auto& entry = crossover[variant.family][M];
          (variant.small_m ? entry.first : entry.second) += seconds;
        }
      }
    }
  }
  std::printf("\nkernel thresholds (llama2-7b decoder linears summed): largest M where the small-M kernel is faster\n");
  for (const auto& [family, by_rows] : crossover) {
    int64_t threshold = 0;
    for (const auto& [M, times] : by_rows)
      if (times.second == 0.0 || (times.first > 0.0 && times.first < times.second)) threshold = M;
      else break;
    std::printf("  %s: %lld\n", family.c_str(), static_cast<long long>(threshold));
  }
  return 0;
}

}  // namespace runllm::cli
