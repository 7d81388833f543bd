// SmoothQuant's per-channel migration strength (FORMATS-REFERENCE.md §4.3, original SQ formula):
// s_k = max|X_k|^α / max_n |W[n, k]|^(1-α).
#include "model/quantize/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "runtime/error.h"

namespace runllm {

std::vector<float> smoothquant_scales(const std::vector<float>& activation_absmax, const float* weight, int64_t N,
                                      int64_t K, double alpha) {
  if (N <= 0 || K <= 0)
    throw Error("smoothquant_scales: weight shape [" + std::to_string(N) + ", " + std::to_string(K) +
                "] must be positive");
  if (static_cast<int64_t>(activation_absmax.size()) != K)
    throw Error("smoothquant_scales: " + std::to_string(activation_absmax.size()) +
                " activation ranges for a weight with in_features " + std::to_string(K));
  if (!(alpha >= 0.0 && alpha <= 1.0))
    throw Error("smoothquant_scales: alpha " + std::to_string(alpha) + " must be in [0, 1]");

  std::vector<double> weight_absmax(static_cast<size_t>(K), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const float value = weight[n * K + k];
      if (!std::isfinite(value))
        throw Error("smoothquant_scales: weight [" + std::to_string(n) + ", " + std::to_string(k) + "] is not finite");
      weight_absmax[static_cast<size_t>(k)] =
          std::max(weight_absmax[static_cast<size_t>(k)], std::fabs(static_cast<double>(value)));
    }

  // Floor: a dead channel (max|X_k| = 0) would give s = 0 and a division by zero in the norm.
  constexpr double kMinimumScale = 1e-5;
  std::vector<float> scales(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) {
    const double activation = activation_absmax[static_cast<size_t>(k)];
    if (!std::isfinite(activation) || activation < 0.0)
      throw Error("smoothquant_scales: activation range [" + std::to_string(k) + "] = " + std::to_string(activation) +
                  " must be finite and non-negative");
    const double w = weight_absmax[static_cast<size_t>(k)];
    double s = std::pow(activation, alpha);
    if (w > 0.0) s /= std::pow(w, 1.0 - alpha);  // a zero column: nothing to balance against
    scales[static_cast<size_t>(k)] = static_cast<float>(std::max(s, kMinimumScale));
  }
  return scales;
}

}  // namespace runllm
