// LinearWriters that store a synthetic model's linears in each quantized on-disk format, through the
// library's own packers (whose bit layout tests/unit/test_quant_packing.cpp checks independently).
#pragma once
#include <cstdint>

#include "layers/quant_packing.h"
#include "tests/unit/synthetic_model.h"

namespace runllm::test {

LinearWriter awq_writer(int64_t group_size);
// act_order_seed != 0: each module gets its own random g_idx (a shuffle of k / g), as desc_act files have.
LinearWriter gptq_writer(int bits, int64_t group_size, GptqZeros zeros, uint64_t act_order_seed = 0);
LinearWriter w8a8_writer();

nlohmann::json awq_quantization_config(int64_t group_size);
nlohmann::json gptq_quantization_config(int bits, int64_t group_size, bool desc_act, GptqZeros zeros);
nlohmann::json w8a8_quantization_config();

}  // namespace runllm::test
