// A group-wise quantized weight in unpacked, format-neutral form: the integers, true zeros and scales
// that every on-disk format (AWQ gemm, GPTQ v1/v2) packs. Kept at load for repacking into kernel
// layouts, for fusion (q/k/v, gate/up) and for writing checkpoints.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runllm {

struct QuantizedMatrix {
  int bits = 4;                 // 2, 3, 4 or 8
  int64_t N = 0;                // out_features
  int64_t K = 0;                // in_features
  int64_t group_size = 0;       // g: K when the file says -1
  std::vector<uint8_t> q;       // [N, K] integers in [0, 2^bits)
  std::vector<int32_t> zeros;   // [G, N] true zeros (GPTQ v2 / AWQ semantics) in [0, 2^bits)
  std::vector<float> scales;    // [G, N] values exactly representable in fp16
  std::vector<int32_t> g_idx;   // [K] group of each input column (k / g unless act-order)

  int64_t groups() const { return group_size > 0 ? (K + group_size - 1) / group_size : 0; }
  bool has_act_order() const;   // g_idx differs from k / g somewhere
  // W[n, k] = (q[n, k] - zeros[g_idx[k], n]) * scales[g_idx[k], n], fp32 [N, K].
  std::vector<float> dequantize() const;
  // Throws runllm::Error naming `what` when sizes, ranges or g_idx are inconsistent.
  void validate(const std::string& what) const;
};

// Rows [begin, end) of a matrix (one module of a fused linear): their integers, and the zeros and
// scales columns of those outputs; g_idx unchanged.
QuantizedMatrix slice_rows(const QuantizedMatrix& matrix, int64_t begin, int64_t end);

}  // namespace runllm
