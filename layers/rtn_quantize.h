// Round-to-nearest group-wise quantization of a dense weight (FORMATS-REFERENCE.md §2.2, §3.4): the
// baseline the calibrated quantizers are measured against, and what `--quantize *-rtn` does at load.
#pragma once
#include <cstdint>

#include "layers/quantized_matrix.h"

namespace runllm {

struct RtnOptions {
  int bits = 4;
  int64_t group_size = 128;  // -1 = one group of K
  bool symmetric = false;    // true: zero = 2^(bits-1), scale = 2 max|w| / maxq (AutoGPTQ sym)
};

// Asymmetric (AutoAWQ / AutoGPTQ): scale = max(xmax - xmin, 1e-5) / maxq with xmin <= 0 <= xmax,
// zero = clamp(round(-xmin / scale), 0, maxq), q = clamp(round(w / scale) + zero, 0, maxq).
// Scales are rounded to fp16 before q is computed, so the stored scale is the one used.
QuantizedMatrix rtn_quantize(const float* weight, int64_t N, int64_t K, const RtnOptions& options);

}  // namespace runllm
