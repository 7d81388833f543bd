// llama.cpp stores Llama 3.1/3.2's rope scaling as a tensor, rope_freqs.weight: one divisor per
// rotary frequency. This maps it back to config.json's rope_scaling {"rope_type": "llama3", ...}.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace runllm {

class GgufFile;

// rope_scaling {"rope_type": "llama3", ...} of config.json.
struct Llama3Rope {
  double factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// The divisors llama.cpp's convert_hf_to_gguf.py (LlamaModel, rope_type llama3) stores, computed as it
// and transformers' _compute_llama3_parameters compute them.
std::vector<double> llama3_rope_factors(const Llama3Rope& rope, double theta, int64_t head_dim);

// The llama3 scaling of FILE's rope_freqs.weight (nullopt when the file has none). The factor is the
// largest divisor; the transition band gives low/high_freq_factor for an original context of 8192
// (Llama 3.1 and 3.2's; another original context with proportionally scaled factors computes the same
// divisors). The result is accepted only when it reproduces every stored divisor; anything else, or
// the tensor on another architecture, is an error naming the tensor.
std::optional<Llama3Rope> read_rope_freqs(const GgufFile& file, const std::string& arch, int64_t head_dim,
                                          double theta, const std::string& path);

}  // namespace runllm
