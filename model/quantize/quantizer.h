// `run-llm quantize`: reads an fp16 checkpoint, runs calibration text through it layer by layer, and
// writes an AWQ (AutoAWQ gemm), GPTQ (v1) or W8A8 (compressed-tensors) checkpoint directory.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace runllm {

struct ModelConfig;

enum class QuantizeMethod { Awq, Gptq, W8A8, Rtn };

struct QuantizeOptions {
  std::string model_dir;           // fp16/bf16 checkpoint
  std::string out_dir;
  QuantizeMethod method = QuantizeMethod::Awq;
  int bits = 4;                    // awq: 4; gptq/rtn: 2, 3, 4, 8; w8a8: 8
  int64_t group_size = 128;        // -1 = one group of K
  bool act_order = false;          // gptq: desc_act
  bool sym = false;                // gptq/rtn: symmetric zeros
  std::string calibration_file;    // UTF-8 text (never the evaluation text)
  int64_t calibration_samples = 128;
  int64_t calibration_length = 512;  // tokens per sample
  uint64_t seed = 0;
  double smoothquant_alpha = 0.5;
  // gptq: λ = damp_percent · mean(diag H). AutoGPTQ's default is 0.01; on SmolLM2-135M, 4-bit g64,
  // 16 x 256 calibration tokens, wiki perplexity was 31.5 at 0.01, 29.3 at 0.1, 30.9 at 0.3 (RTN
  // 30.9): with a small calibration set the Hessian needs the stronger dampening.
  double damp_percent = 0.1;
  bool awq_clip = true;            // awq: weight clipping search after the scale search
  bool force = false;              // write into a non-empty out_dir (its files are overwritten)
};

// Throws runllm::Error when `group_size` (> 0; -1 always fits) does not divide the in_features of
// every decoder linear of `config`, naming the first that does not and the group sizes that fit them
// all ("sizes that fit every linear: 16, 32, 64, or -1"). Used by `run-llm quantize` and by
// `--quantize awq-rtn|gptq-rtn` at load, before any work.
void check_group_size_fits(const ModelConfig& config, int64_t group_size);

// Checked before the model loads, so that no quantizing time is lost: `out_dir` must be absent or an
// empty directory (or any directory with `force`), and writable (it is created, and a probe file
// written and removed). Throws runllm::Error naming --out and what is wrong.
void prepare_output_directory(const std::string& out_dir, bool force);

// Progress lines ("layer 3/30: qkv alpha 0.45, loss 1.2e-3 -> 8.1e-4 ...") go to `progress`.
// `on_layer` (optional) is told (0, layers) when quantizing starts and (l, layers) after each layer, for a
// progress bar; `progress` receives the lines (per-layer summaries, notes, the final summary).
void quantize_model(const QuantizeOptions& options, const std::function<void(const std::string&)>& progress,
                    const std::function<void(int64_t done, int64_t layers)>& on_layer = {});

}  // namespace runllm
