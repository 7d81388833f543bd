// Malformed quantized checkpoints, run through the run-llm binary as a user would: each gets a clear
// error naming the tensor or key at fault and exit code 1 (never a crash or garbage output).
#include <string>
#include <vector>

#include "layers/rtn_quantize.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/quantized_writers.h"
#include "tests/unit/synthetic_model.h"

using namespace runllm;

namespace {

const char* kTarget = "model.layers.1.self_attn.q_proj";

// `base` for every module except kTarget, which `replacement` writes instead.
test::LinearWriter with_replacement(test::LinearWriter base, test::LinearWriter replacement) {
  return [=](SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight, int64_t N,
             int64_t K, const std::vector<float>& bias) {
    (module == kTarget ? replacement : base)(writer, module, weight, N, K, bias);
  };
}

void require_load_error(const nlohmann::json& config, const test::LinearWriter& writer,
                        std::initializer_list<const char*> words) {
  test::SyntheticModelSpec spec;
  spec.quantization_config = config;
  const std::string dir = test::make_temp_dir("malformed-quant");
  test::write_synthetic_model(dir, spec, 3, writer);
  const test::CommandResult result = test::run_llm({"--model", dir, "--prompt", "hello", "-n", "2"});
  INFO(result.err);
  CHECK(result.exit_code == 1);
  CHECK(result.out.empty());
  for (const char* word : words) CHECK_THAT(result.err, HAS_SUBSTRING(word));
}

}  // namespace

TEST_CASE("AWQ qweight of the wrong shape", "[malformed-quant]") {
  const auto wrong_shape = [](SafetensorsWriter& writer, const std::string& module, const std::vector<float>&, int64_t N,
                              int64_t K, const std::vector<float>&) {
    test::add_i32(writer, module + ".qweight", {K, N / 8 - 1}, std::vector<int32_t>(K * (N / 8 - 1), 0x12345678));
    test::add_i32(writer, module + ".qzeros", {K / 32, N / 8}, std::vector<int32_t>(K / 32 * (N / 8), 0x88888888));
    writer.add_f16(module + ".scales", {K / 32, N}, std::vector<float>(K / 32 * N, 0.01f));
  };
  require_load_error(test::awq_quantization_config(32), with_replacement(test::awq_writer(32), wrong_shape),
                     {"model.layers.1.self_attn.q_proj.qweight", "[64, 8]", "[64, 7]"});
}

TEST_CASE("AWQ scales of the wrong dtype", "[malformed-quant]") {
  const auto int_scales = [](SafetensorsWriter& writer, const std::string& module, const std::vector<float>&, int64_t N,
                             int64_t K, const std::vector<float>&) {
    test::add_i32(writer, module + ".qweight", {K, N / 8}, std::vector<int32_t>(K * (N / 8), 0x12345678));
    test::add_i32(writer, module + ".qzeros", {K / 32, N / 8}, std::vector<int32_t>(K / 32 * (N / 8), 0x88888888));
    test::add_i32(writer, module + ".scales", {K / 32, N}, std::vector<int32_t>(K / 32 * N, 1));
  };
  require_load_error(test::awq_quantization_config(32), with_replacement(test::awq_writer(32), int_scales),
                     {"model.layers.1.self_attn.q_proj.scales", "I32"});
}

TEST_CASE("a group size that does not divide in_features", "[malformed-quant]") {
  require_load_error(test::awq_quantization_config(48), test::awq_writer(32), {"group_size 48", "64"});
}

TEST_CASE("GPTQ bits 5", "[malformed-quant]") {
  require_load_error(test::gptq_quantization_config(5, 32, false, GptqZeros::V1),
                     test::gptq_writer(4, 32, GptqZeros::V1), {"quantization_config", "GPTQ bits 5"});
}

TEST_CASE("a missing g_idx with desc_act", "[malformed-quant]") {
  const auto without_g_idx = [](SafetensorsWriter& writer, const std::string& module, const std::vector<float>& weight,
                                int64_t N, int64_t K, const std::vector<float>&) {
    const QuantizedMatrix matrix = rtn_quantize(weight.data(), N, K, RtnOptions{4, 32, false});
    const GptqTensors gptq = pack_gptq(matrix, GptqZeros::V1);
    test::add_i32(writer, module + ".qweight", {K / 8, N}, gptq.qweight);
    test::add_i32(writer, module + ".qzeros", {K / 32, N / 8}, gptq.qzeros);
    writer.add_f16(module + ".scales", {K / 32, N}, gptq.scales);
  };
  require_load_error(test::gptq_quantization_config(4, 32, true, GptqZeros::V1),
                     with_replacement(test::gptq_writer(4, 32, GptqZeros::V1, 5), without_g_idx),
                     {"model.layers.1.self_attn.q_proj.g_idx"});
}

TEST_CASE("a quantization_config of an unknown method", "[malformed-quant]") {
  require_load_error({{"quant_method", "hqq"}, {"bits", 4}}, test::write_dense_linear,
                     {"quantization_config", "unknown quant_method \"hqq\""});
}

TEST_CASE("a config that says quantized over dense tensors", "[malformed-quant]") {
  require_load_error(test::awq_quantization_config(32), test::write_dense_linear,
                     {"model.layers.0.self_attn.q_proj", "qweight", "missing"});
}
