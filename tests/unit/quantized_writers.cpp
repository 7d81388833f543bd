#include "tests/unit/quantized_writers.h"

#include <algorithm>
#include <memory>
#include <random>

#include "layers/dense_linear.h"
#include "layers/rtn_quantize.h"
#include "layers/w8a8_linear.h"

namespace runllm::test {

namespace {

void add_bias(SafetensorsWriter& writer, const std::string& module, const std::vector<float>& bias) {
  if (!bias.empty()) writer.add_f16(module + ".bias", {static_cast<int64_t>(bias.size())}, bias);
}

}  // namespace

LinearWriter awq_writer(int64_t group_size) {
  return [group_size](SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight,
                      int64_t N, int64_t K, const std::vector<float>& bias) {
    const AwqTensors awq = pack_awq(rtn_quantize(weight.data(), N, K, RtnOptions{4, group_size, false}));
    const int64_t G = static_cast<int64_t>(awq.scales.size()) / N;
    add_i32(writer, module + ".qweight", {K, N / 8}, awq.qweight);
    add_i32(writer, module + ".qzeros", {G, N / 8}, awq.qzeros);
    writer.add_f16(module + ".scales", {G, N}, awq.scales);
    add_bias(writer, module, bias);
  };
}

LinearWriter gptq_writer(int bits, int64_t group_size, GptqZeros zeros, uint64_t act_order_seed) {
  auto rng = std::make_shared<std::mt19937_64>(act_order_seed);
  return [=](SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight, int64_t N,
             int64_t K, const std::vector<float>& bias) {
    QuantizedMatrix matrix = rtn_quantize(weight.data(), N, K, RtnOptions{bits, group_size, false});
    if (act_order_seed != 0) std::shuffle(matrix.g_idx.begin(), matrix.g_idx.end(), *rng);
    const GptqTensors gptq = pack_gptq(matrix, zeros);
    const int64_t G = matrix.groups();
    add_i32(writer, module + ".qweight", {K * bits / 32, N}, gptq.qweight);
    add_i32(writer, module + ".qzeros", {G, N * bits / 32}, gptq.qzeros);
    writer.add_f16(module + ".scales", {G, N}, gptq.scales);
    add_i32(writer, module + ".g_idx", {K}, gptq.g_idx);
    add_bias(writer, module, bias);
  };
}

LinearWriter w8a8_writer() {
  return [](SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight, int64_t N,
            int64_t K, const std::vector<float>& bias) {
    const auto w8a8 = W8A8Linear::from_dense(DenseLinear(weight, {}, N, K));
    add_i8(writer, module + ".weight", {N, K}, w8a8->weight());
    writer.add_f16(module + ".weight_scale", {N, 1}, w8a8->weight_scale());
    add_bias(writer, module, bias);
  };
}

nlohmann::json awq_quantization_config(int64_t group_size) {
  return {{"quant_method", "awq"}, {"bits", 4}, {"group_size", group_size}, {"zero_point", true},
          {"version", "gemm"}, {"modules_to_not_convert", nullptr}};
}

nlohmann::json gptq_quantization_config(int bits, int64_t group_size, bool desc_act, GptqZeros zeros) {
  return {{"quant_method", "gptq"}, {"bits", bits}, {"group_size", group_size}, {"desc_act", desc_act},
          {"sym", false}, {"checkpoint_format", zeros == GptqZeros::V1 ? "gptq" : "gptq_v2"}};
}

nlohmann::json w8a8_quantization_config() {
  const nlohmann::json weights = {{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "channel"},
                                  {"dynamic", false}};
  const nlohmann::json inputs = {{"num_bits", 8}, {"type", "int"}, {"symmetric", true}, {"strategy", "token"},
                                 {"dynamic", true}};
  return {{"quant_method", "compressed-tensors"}, {"format", "int-quantized"}, {"quantization_status", "compressed"},
          {"ignore", {"lm_head"}},
          {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", inputs}}}}}};
}

}  // namespace runllm::test
