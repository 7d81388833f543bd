// Helpers of the [cuda] kernel tests: device buffers, fresh random inputs, fp16/bf16 conversion, and
// the error measure every test reports.
//
// Error measure: max|out - ref| / max|ref| over the whole output ("max-relative"), where ref is the
// CPU twin run in fp32 on the same inputs, already rounded to the kernel's activation type. NaN or
// inf in the output gives +inf, so an unwritten (poisoned) element always fails.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "runtime/cuda_check.h"
#include "runtime/dtype.h"

namespace runllm::test {

// Device memory of `count` elements, filled with 0xFF bytes (NaN for fp16 and fp32, -1 for int32)
// so that an element a kernel fails to write is caught.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    CUDA_CHECK(cudaMalloc(&data_, std::max<size_t>(count, 1) * sizeof(T)));
    poison();
  }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  size_t size() const { return count_; }
  void poison() { CUDA_CHECK(cudaMemset(data_, 0xFF, count_ * sizeof(T))); }
  void upload(const std::vector<T>& host) {
    if (host.size() != count_) throw Error("DeviceBuffer::upload: size mismatch");
    CUDA_CHECK(cudaMemcpy(data_, host.data(), count_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    CUDA_CHECK(cudaDeviceSynchronize());
    std::vector<T> host(count_);
    CUDA_CHECK(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// One generator per process, freshly seeded unless RUNLLM_TEST_SEED repeats a run; the seed is printed.
inline std::mt19937_64& rng() {
  static std::mt19937_64 generator = [] {
    uint64_t seed = std::random_device{}();
    if (const char* fixed = std::getenv("RUNLLM_TEST_SEED")) seed = std::strtoull(fixed, nullptr, 10);
    std::printf("random seed %llu (RUNLLM_TEST_SEED=%llu repeats this run)\n", static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(seed));
    return std::mt19937_64(seed);
  }();
  return generator;
}

// The quick form of the suite (RUNLLM_CUDA_TESTS_QUICK set) leaves out the largest shapes, for runs
// under compute-sanitizer, which slows every kernel by one to two orders of magnitude.
inline bool quick() { return std::getenv("RUNLLM_CUDA_TESTS_QUICK") != nullptr; }

// What a test needs of each activation type the kernels are built for: its name, the error bound
// of outputs rounded to it once (fp16: half an ulp is at most 2^-11 relative, bf16: 2^-8; both
// bounds leave a margin of about 4), and exact host conversions (runtime/dtype.h, round to nearest even).
template <typename T>
struct Activation;
template <>
struct Activation<__half> {
  static constexpr const char* name = "fp16";
  static constexpr double bound = 2e-3;
  static __half from_float(float value) {
    __half_raw raw;
    raw.x = float_to_half(value);
    return __half(raw);
  }
  static float to_float(__half value) { return half_to_float(static_cast<__half_raw>(value).x); }
};
template <>
struct Activation<__nv_bfloat16> {
  static constexpr const char* name = "bf16";
  static constexpr double bound = 1.6e-2;
  static __nv_bfloat16 from_float(float value) {
    __nv_bfloat16_raw raw;
    raw.x = float_to_bf16(value);
    return __nv_bfloat16(raw);
  }
  static float to_float(__nv_bfloat16 value) { return bf16_to_float(static_cast<__nv_bfloat16_raw>(value).x); }
};

template <typename T>
float round_to(float value) {
  return Activation<T>::to_float(Activation<T>::from_float(value));
}

// Normal(0, scale) values, already rounded to T so both sides see the same inputs.
template <typename T>
std::vector<float> random_values(size_t n, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> values(n);
  for (float& v : values) v = round_to<T>(normal(rng()));
  return values;
}
inline std::vector<float> random_half_values(size_t n, float scale = 1.0f) { return random_values<__half>(n, scale); }

template <typename T>
std::vector<T> to_activation(const std::vector<float>& values) {
  std::vector<T> out(values.size());
  std::transform(values.begin(), values.end(), out.begin(), [](float v) { return Activation<T>::from_float(v); });
  return out;
}
template <typename T>
std::vector<float> to_float(const std::vector<T>& values) {
  std::vector<float> out(values.size());
  std::transform(values.begin(), values.end(), out.begin(), [](T v) { return Activation<T>::to_float(v); });
  return out;
}

inline double max_relative_error(const std::vector<float>& out, const std::vector<float>& ref) {
  if (out.size() != ref.size()) return std::numeric_limits<double>::infinity();
  double max_diff = 0, max_ref = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return std::numeric_limits<double>::infinity();
    max_diff = std::max(max_diff, std::abs(static_cast<double>(out[i]) - ref[i]));
    max_ref = std::max(max_ref, std::abs(static_cast<double>(ref[i])));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

// One line per measured comparison; tests/run_gpu_suite.sh collects them into the results file.
inline void report_error(const std::string& kernel, const std::string& shape, double error, double bound) {
  std::printf("measured | %-22s | %-52s | max_rel_err %.3e | bound %.0e\n", kernel.c_str(), shape.c_str(), error,
              bound);
}

}  // namespace runllm::test
