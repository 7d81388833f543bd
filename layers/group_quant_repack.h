// QuantizedMatrix (any AWQ / GPTQ checkpoint, unpacked) -> the GPU's GroupQuantLayout
// (kernels/group_quant_layout.h): columns sorted by group (act-order), each row one bit stream of
// its values, scales and zeros per row. Done once per linear at load, on the host.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/group_quant_layout.h"
#include "layers/quantized_matrix.h"

namespace runllm {

struct GroupQuantHostLayout {
  GroupQuantLayout shape;          // bits, sizes and group facts; its pointers are not set
  std::vector<uint32_t> words;     // [N, words_per_row]
  std::vector<uint16_t> scales;    // [N, G] fp16 bits
  std::vector<uint8_t> zeros;      // [N, G]
  std::vector<int32_t> perm;       // [K]; empty when the columns keep their order
  std::vector<int32_t> group_of;   // [K]

  GroupQuantLayout view() const;   // `shape` with pointers into the vectors above
};

GroupQuantHostLayout repack_for_gpu(const QuantizedMatrix& matrix);

}  // namespace runllm
