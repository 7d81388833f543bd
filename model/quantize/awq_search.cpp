// AWQ's scale and clip searches (AutoAWQ quantizer.py: _search_best_scale, _compute_best_clip), with
// Q = the 4-bit asymmetric round-to-nearest of layers/rtn_quantize.h (what the checkpoint will hold).
//
// Both searches measure an output error mean_t (x_t · dᵀ)² for a weight change d = Q(W') - W. That is
// the quadratic form d (XᵀX / T) dᵀ, so the calibration rows enter once, through the Gram matrix
// XᵀX / T = H / 2 (the GPTQ Hessian), and each candidate costs an [N, K] x [K, K] product instead of a
// [T, K] x [K, N] one: exact on every row, and 5-10x cheaper than evaluating the outputs.
#include "model/quantize/awq_search.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "layers/rtn_quantize.h"
#include "model/quantize/gptq.h"
#include "runtime/error.h"

namespace runllm {
namespace {

constexpr int kAwqBits = 4;  // AutoAWQ supports only w_bit = 4
// Rows of x that enter the Gram matrix (evenly spaced when there are more): the Gram costs T · K² / 2,
// so 16384 rows keep a K = 1536 down_proj search near a second while far exceeding the 512 tokens
// AutoAWQ's clip search samples (a memory limit of its T x N x K formulation, not a choice of quality).
constexpr int64_t kMaxCalibrationRows = 16384;

void check_arguments(const char* what, const float* weight, int64_t N, int64_t K, const float* x, int64_t T,
                     const AwqSearchOptions& options) {
  const std::string name(what);
  if (N <= 0 || K <= 0)
    throw Error(name + ": weight shape [" + std::to_string(N) + ", " + std::to_string(K) + "] must be positive");
  if (T <= 0) throw Error(name + ": no calibration rows (x has " + std::to_string(T) + " rows)");
  if (x == nullptr) throw Error(name + ": no calibration input");
  if (options.group_size == 0 || options.group_size < -1)
    throw Error(name + ": group_size " + std::to_string(options.group_size) + " must be positive or -1");
  if (options.grid < 1) throw Error(name + ": grid " + std::to_string(options.grid) + " must be at least 1");
  for (int64_t i = 0; i < N * K; ++i)
    if (!std::isfinite(weight[i]))
      throw Error(name + ": weight [" + std::to_string(i / K) + ", " + std::to_string(i % K) + "] is not finite");
  for (int64_t i = 0; i < T * K; ++i)
    if (!std::isfinite(x[i]))
      throw Error(name + ": input [" + std::to_string(i / K) + ", " + std::to_string(i % K) + "] is not finite");
}

// XᵀX / T over (at most kMaxCalibrationRows evenly spaced) rows of x, [K, K] double.
std::vector<double> input_gram(const float* x, int64_t T, int64_t K) {
  HessianAccumulator hessian(K);
  if (T <= kMaxCalibrationRows) {
    hessian.add(x, T);
  } else {
    std::vector<float> rows(static_cast<size_t>(kMaxCalibrationRows * K));
    for (int64_t r = 0; r < kMaxCalibrationRows; ++r) {
      const int64_t t = r * T / kMaxCalibrationRows;
      std::copy(x + t * K, x + (t + 1) * K, rows.begin() + static_cast<std::ptrdiff_t>(r * K));
    }
    hessian.add(rows.data(), kMaxCalibrationRows);
  }
  std::vector<double> gram = hessian.matrix();  // H = 2/T Σ x xᵀ
  for (double& value : gram) value *= 0.5;
  return gram;
}

RtnOptions awq_rtn(int64_t group_size) {
  RtnOptions rtn;
  rtn.bits = kAwqBits;
  rtn.group_size = group_size;
  rtn.symmetric = false;  // AWQ gemm checkpoints always carry zero points (FORMATS.md §3)
  return rtn;
}

}  // namespace

AwqScaleResult awq_search_scales(const float* weight, int64_t N, int64_t K, const float* x, int64_t T,
                                 const AwqSearchOptions& options) {
  check_arguments("awq_search_scales", weight, N, K, x, T, options);
  const std::vector<double> gram = input_gram(x, T, K);

  // x_mean over every calibration row (AutoAWQ: inp.abs().mean(0)).
  std::vector<double> x_mean(static_cast<size_t>(K), 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) x_mean[static_cast<size_t>(k)] += std::fabs(x[t * K + k]);
  for (double& value : x_mean) value /= static_cast<double>(T);
  // w_mean over rows of |w| / (max |w| of its group) (AutoAWQ: get_act_scale of the normalised weight).
  const int64_t g = options.group_size == -1 ? K : options.group_size;
  std::vector<double> w_mean(static_cast<size_t>(K), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t begin = 0; begin < K; begin += g) {
      const int64_t end = std::min(K, begin + g);
      double group_max = 0.0;
      for (int64_t k = begin; k < end; ++k) group_max = std::max(group_max, std::fabs(double(weight[n * K + k])));
      for (int64_t k = begin; k < end; ++k)
        w_mean[static_cast<size_t>(k)] += std::fabs(double(weight[n * K + k])) / (group_max + 1e-6);
    }
  for (double& value : w_mean) value /= static_cast<double>(N);

  std::vector<float> scales(static_cast<size_t>(K)), scaled(static_cast<size_t>(N * K));
  std::vector<double> difference(static_cast<size_t>(N * K)), projected(static_cast<size_t>(N * K)),
      s(static_cast<size_t>(K));
  AwqScaleResult result;
  result.best_loss = std::numeric_limits<double>::infinity();
  // Candidate -1 is s = 1 (plain round-to-nearest): the baseline reported as rtn_loss, and a floor
  // the search never does worse than (with duo scaling, α = 0 is not s = 1).
  for (int i = -1; i < options.grid; ++i) {
    const double alpha = std::max(0, i) / static_cast<double>(options.grid);
    double smax = 0.0, smin = std::numeric_limits<double>::infinity();
    for (int64_t k = 0; k < K; ++k) {
      const double activation = std::pow(x_mean[static_cast<size_t>(k)], alpha);
      s[static_cast<size_t>(k)] =
          i < 0 ? 1.0
                : std::max(options.duo_scaling
                               ? activation / (std::pow(w_mean[static_cast<size_t>(k)], 1.0 - alpha) + 1e-4)
                               : activation,
                           1e-4);
      smax = std::max(smax, s[static_cast<size_t>(k)]);
      smin = std::min(smin, s[static_cast<size_t>(k)]);
    }
    // Normalised so the scales straddle 1 (AutoAWQ: scales / sqrt(max · min)). The fp32 values are
    // the ones the caller folds into the weights and the norm, so they are the ones evaluated.
    const double normaliser = std::sqrt(smax * smin);
    for (int64_t k = 0; k < K; ++k)
      scales[static_cast<size_t>(k)] = static_cast<float>(s[static_cast<size_t>(k)] / normaliser);

    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        scaled[static_cast<size_t>(n * K + k)] = weight[n * K + k] * scales[static_cast<size_t>(k)];
    const std::vector<float> dequantized = rtn_quantize(scaled.data(), N, K, awq_rtn(options.group_size)).dequantize();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        difference[static_cast<size_t>(n * K + k)] =
            static_cast<double>(dequantized[static_cast<size_t>(n * K + k)] / scales[static_cast<size_t>(k)]) -
            weight[n * K + k];
    // loss = mean over (t, n) of (x_t · d_n)² = (1/N) Σ_n d_n (XᵀX / T) d_nᵀ.
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), static_cast<int>(K),
                static_cast<int>(K), 1.0, difference.data(), static_cast<int>(K), gram.data(), static_cast<int>(K), 0.0,
                projected.data(), static_cast<int>(K));
    double loss = 0.0;
    for (size_t j = 0; j < difference.size(); ++j) loss += difference[j] * projected[j];
    loss /= static_cast<double>(N);
    if (!std::isfinite(loss))
      throw Error("awq_search_scales: the output error at alpha " + std::to_string(alpha) +
                  " is not finite (activations or weights out of range)");
    if (i < 0) result.rtn_loss = loss;
    if (loss < result.best_loss) {  // the first minimum wins, as in AutoAWQ
      result.best_loss = loss;
      result.alpha = alpha;
      result.scales = scales;
    }
  }
  return result;
}

double awq_search_clip(float* weight, int64_t N, int64_t K, const float* x, int64_t T,
                       const AwqSearchOptions& options) {
  check_arguments("awq_search_clip", weight, N, K, x, T, options);
  const int64_t g = options.group_size == -1 ? K : options.group_size;
  const int64_t G = (K + g - 1) / g;
  const std::vector<double> gram = input_gram(x, T, K);

  std::vector<float> original_max(static_cast<size_t>(N * G), 0.0f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      float& m = original_max[static_cast<size_t>(n * G + k / g)];
      m = std::max(m, std::fabs(weight[n * K + k]));
    }
  std::vector<float> best_max = original_max;
  std::vector<double> min_error(static_cast<size_t>(N * G), std::numeric_limits<double>::infinity());

  std::vector<float> clamped(static_cast<size_t>(N * K)), max_val(static_cast<size_t>(N * G));
  std::vector<double> difference(static_cast<size_t>(N * K)), projected(static_cast<size_t>(N * g));
  // Ratios 1 - i/grid for i < grid/2 (AutoAWQ's max_shrink 0.5); i = 0 is "no clipping", so the result
  // never does worse than plain RTN on the per-group error measured here.
  const int shrink_steps = std::max(1, options.grid / 2);
  for (int i = 0; i < shrink_steps; ++i) {
    const float ratio = 1.0f - static_cast<float>(i) / static_cast<float>(options.grid);
    for (size_t j = 0; j < max_val.size(); ++j) max_val[j] = original_max[j] * ratio;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) {
        const float limit = max_val[static_cast<size_t>(n * G + k / g)];
        clamped[static_cast<size_t>(n * K + k)] = std::clamp(weight[n * K + k], -limit, limit);
      }
    const std::vector<float> dequantized = rtn_quantize(clamped.data(), N, K, awq_rtn(options.group_size)).dequantize();
    for (int64_t j = 0; j < N * K; ++j)
      difference[static_cast<size_t>(j)] = static_cast<double>(dequantized[static_cast<size_t>(j)]) - weight[j];
    for (int64_t group = 0; group < G; ++group) {
      const int64_t begin = group * g;
      const int64_t width = std::min(K, begin + g) - begin;
      // The group's own output error (AutoAWQ measures each group's partial sum separately):
      // mean_t (x_t[group] · d_n[group])² = d_n[group] · Gram[group, group] · d_n[group]ᵀ.
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), static_cast<int>(width),
                  static_cast<int>(width), 1.0, difference.data() + begin, static_cast<int>(K),
                  gram.data() + begin * K + begin, static_cast<int>(K), 0.0, projected.data(), static_cast<int>(width));
      for (int64_t n = 0; n < N; ++n) {
        double error = 0.0;
        for (int64_t k = 0; k < width; ++k)
          error += difference[static_cast<size_t>(n * K + begin + k)] * projected[static_cast<size_t>(n * width + k)];
        if (!std::isfinite(error))
          throw Error("awq_search_clip: the output error is not finite (activations or weights out of range)");
        const size_t entry = static_cast<size_t>(n * G + group);
        if (error < min_error[entry]) {
          min_error[entry] = error;
          best_max[entry] = max_val[entry];
        }
      }
    }
  }

  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const float limit = best_max[static_cast<size_t>(n * G + k / g)];
      weight[n * K + k] = std::clamp(weight[n * K + k], -limit, limit);
    }
  double total = 0.0;
  for (double value : min_error) total += value;
  return total / static_cast<double>(N * G);
}

}  // namespace runllm
