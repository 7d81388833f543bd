#include "model/gguf_rope_freqs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "model/gguf.h"
#include "runtime/error.h"

namespace runllm {

namespace {

bool rope_factors_match(const std::vector<float>& stored, const std::vector<double>& expected) {
  if (stored.size() != expected.size()) return false;
  for (size_t i = 0; i < stored.size(); ++i)
    if (!(std::abs(stored[i] - expected[i]) <= 1e-4 * std::abs(expected[i]))) return false;
  return true;
}

double round_significant(double value, int digits) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*g", digits, value);
  return std::strtod(text, nullptr);
}

}  // namespace

std::vector<double> llama3_rope_factors(const Llama3Rope& r, double theta, int64_t head_dim) {
  const double pi = 3.14159265358979323846;
  const double low_freq_wavelen = static_cast<double>(r.original_max_position_embeddings) / r.low_freq_factor;
  const double high_freq_wavelen = static_cast<double>(r.original_max_position_embeddings) / r.high_freq_factor;
  std::vector<double> factors;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const double wavelen = 2 * pi * std::pow(theta, static_cast<double>(i) / static_cast<double>(head_dim));
    if (wavelen < high_freq_wavelen) {
      factors.push_back(1.0);
    } else if (wavelen > low_freq_wavelen) {
      factors.push_back(r.factor);
    } else {
      const double smooth = (static_cast<double>(r.original_max_position_embeddings) / wavelen - r.low_freq_factor) /
                            (r.high_freq_factor - r.low_freq_factor);
      factors.push_back(1.0 / ((1.0 - smooth) / r.factor + smooth));
    }
  }
  return factors;
}

std::optional<Llama3Rope> read_rope_freqs(const GgufFile& file, const std::string& arch, int64_t head_dim,
                                          double theta, const std::string& path) {
  const GgufTensorInfo* info = file.find_tensor("rope_freqs.weight");
  if (info == nullptr) return std::nullopt;
  const std::string where = path + ": rope_freqs.weight";
  if (arch != "llama") throw Error(where + ": per-dimension rope factors are only converted for llama (llama3 rope scaling)");
  if (info->dims.size() != 1 || info->dims[0] != static_cast<uint64_t>(head_dim / 2))
    throw Error(where + ": expected " + std::to_string(head_dim / 2) + " factors (head_dim / 2)");
  if (!gguf_type_supported(info->type)) throw Error(where + ": GGUF tensor type " + ggml_type_name(info->type) + " is not supported");
  const std::vector<float> stored = gguf_dequantize(*info);
  const float largest = *std::max_element(stored.begin(), stored.end());
  std::vector<Llama3Rope> candidates;
  Llama3Rope standard;
  standard.factor = round_significant(largest, 7);  // 8.0f -> 8
  candidates.push_back(standard);
  // The transition band: 1 < divisor < factor, where smooth = (1/d - 1/factor) / (1 - 1/factor) is
  // (original / wavelen - low) / (high - low), a line in 1 / wavelen.
  std::vector<std::pair<double, double>> band;  // (original / wavelen, smooth)
  for (size_t i = 0; i < stored.size(); ++i) {
    const double d = stored[i];
    if (!(d > 1.0 + 1e-6 && d < largest * (1 - 1e-6))) continue;
    const double wavelen = 2 * 3.14159265358979323846 * std::pow(theta, 2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
    band.emplace_back(8192.0 / wavelen, (1.0 / d - 1.0 / largest) / (1.0 - 1.0 / largest));
  }
  if (!band.empty()) {
    Llama3Rope solved = standard;
    if (band.size() >= 2) {  // s = (x - low) / (high - low) through the first and last points
      const auto [x0, s0] = band.front();
      const auto [x1, s1] = band.back();
      const double width = (x1 - x0) / (s1 - s0);
      solved.low_freq_factor = x0 - s0 * width;
      solved.high_freq_factor = solved.low_freq_factor + width;
    } else {  // one point: low_freq_factor 1 as in every released llama3 config
      solved.high_freq_factor = 1.0 + (band[0].first - 1.0) / band[0].second;
    }
    solved.low_freq_factor = round_significant(solved.low_freq_factor, 6);
    solved.high_freq_factor = round_significant(solved.high_freq_factor, 6);
    if (solved.low_freq_factor > 0 && solved.high_freq_factor > solved.low_freq_factor) candidates.push_back(solved);
  }
  for (const Llama3Rope& candidate : candidates)
    if (candidate.factor > 1.0 && rope_factors_match(stored, llama3_rope_factors(candidate, theta, head_dim)))
      return candidate;
  throw Error(where + ": these per-dimension rope factors (largest " + std::to_string(largest) +
              ") match no llama3 rope scaling (factor, low_freq_factor, high_freq_factor, "
              "original_max_position_embeddings); other rope_freqs cannot be converted");
}

}  // namespace runllm
