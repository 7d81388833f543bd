// AWQ's activation-aware search (Lin et al.; AutoAWQ quantizer.py): per-input-channel scales that
// protect the channels with large activations, and per-group weight clipping, both chosen by the
// output error they leave on calibration inputs.
#pragma once
#include <cstdint>
#include <vector>

namespace runllm {

struct AwqSearchOptions {
  int64_t group_size = 128;  // -1 = one group of K
  int grid = 20;             // α in {0, 1/grid, ..., (grid - 1)/grid}; clip ratios 1 - i/grid for i < grid/2
  // AutoAWQ's default: s = mean|x|^α / mean|ŵ|^(1-α), ŵ each weight relative to its group's max |w|,
  // so channels whose weights are already small are scaled less. false: s = mean|x|^α (the paper's).
  bool duo_scaling = true;
};

struct AwqScaleResult {
  std::vector<float> scales;  // [K] s: weight columns are multiplied by s, inputs divided by s
  double alpha = 0.0;         // the chosen α (0 also when s = 1, plain round-to-nearest, won)
  double rtn_loss = 0.0;      // output MSE at s = 1 (plain round-to-nearest)
  double best_loss = 0.0;     // output MSE at the chosen α
};

// weight [N, K]: every linear that reads input x (e.g. q, k, v stacked); x [T, K] calibration rows.
// Candidates: s = 1 and, per α, s = mean|x|^α (/ mean|ŵ|^(1-α) with duo_scaling) normalised by
// sqrt(max s · min s); loss = mean (x · Q(W·s)/s ᵀ - x · Wᵀ)² with Q the 4-bit asymmetric
// round-to-nearest of the group size.
AwqScaleResult awq_search_scales(const float* weight, int64_t N, int64_t K, const float* x, int64_t T,
                                 const AwqSearchOptions& options);

// For each output row and group, clamps the weights to ±ratio · max|w| with the ratio that minimises
// the group's output error mean_t (x_t[group] · (Q(clamped) - W)[n, group])² (AutoAWQ auto_clip);
// modifies weight in place. Returns that per-group error after clipping, averaged over rows and groups.
// Both searches use every row of x up to 16384 (evenly spaced beyond), through the Gram matrix XᵀX.
double awq_search_clip(float* weight, int64_t N, int64_t K, const float* x, int64_t T, const AwqSearchOptions& options);

}  // namespace runllm
