// The converted default model against golden logits from PyTorch/transformers
// (scripts/reference/make_model_reference.py), and incremental decode against one-batch prefill.
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "model/model_directory.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;

namespace {

double relative_error(const float* actual, const float* expected, int64_t n) {
  double diff = 0.0, norm = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (static_cast<double>(actual[i]) - expected[i]) * (static_cast<double>(actual[i]) - expected[i]);
    norm += static_cast<double>(expected[i]) * expected[i];
  }
  return std::sqrt(diff / norm);
}

const ModelDirectory& shared_model() {
  static ModelDirectory directory = open_model_directory(test::model_dir(), false);
  return directory;
}

}  // namespace

TEST_CASE("logits of the converted model match transformers within 1e-3", "[e2e][logits]") {
  const ModelDirectory& directory = shared_model();
  const std::string reference_dir = test::source_dir() + "/tests/data/reference/";
  const auto reference = nlohmann::json::parse(test::read_file(reference_dir + "smollm2_logits.json"));
  const std::string expected_bytes = test::read_file(reference_dir + "smollm2_logits.f32");
  const int64_t vocab = reference["vocab_size"].get<int64_t>();
  REQUIRE(vocab == directory.config.vocab_size);

  const std::vector<int32_t> ids = directory.tokenizer->encode(reference["prompt"].get<std::string>(), false);
  REQUIRE(ids == reference["token_ids"].get<std::vector<int32_t>>());

  const int64_t M = static_cast<int64_t>(ids.size());
  std::vector<float> logits(static_cast<size_t>(M * vocab));
  KvCache cache(directory.config, M);
  directory.model->forward(ids.data(), M, cache, 0, logits.data());

  const auto positions = reference["positions"].get<std::vector<int64_t>>();
  REQUIRE(expected_bytes.size() == positions.size() * vocab * sizeof(float));
  const float* expected = reinterpret_cast<const float*>(expected_bytes.data());
  for (size_t i = 0; i < positions.size(); ++i) {
    const double error = relative_error(logits.data() + positions[i] * vocab, expected + i * vocab, vocab);
    INFO("position " << positions[i] << ": relative error " << error);
    CHECK(error < 1e-3);
  }
  const float* last = logits.data() + (M - 1) * vocab;
  CHECK(std::max_element(last, last + vocab) - last == reference["argmax_last"].get<int64_t>());
}

TEST_CASE("decoding token by token gives the logits of one-batch prefill", "[e2e][logits]") {
  const ModelDirectory& directory = shared_model();
  const std::vector<int32_t> ids = directory.tokenizer->encode("Once upon a time, in a quiet village by the sea,", false);
  const int64_t M = static_cast<int64_t>(ids.size());
  const int64_t vocab = directory.config.vocab_size;

  std::vector<float> batch(static_cast<size_t>(vocab)), incremental(static_cast<size_t>(vocab));
  KvCache batch_cache(directory.config, M);
  directory.model->forward(ids.data(), M, batch_cache, M - 1, batch.data());
  KvCache step_cache(directory.config, M);
  for (int64_t m = 0; m < M; ++m) directory.model->forward(&ids[m], 1, step_cache, 0, incremental.data());
  CHECK(relative_error(incremental.data(), batch.data(), vocab) < 1e-5);
}

TEST_CASE("the forward refuses to overflow its KV cache", "[e2e][logits]") {
  const ModelDirectory& directory = shared_model();
  const std::vector<int32_t> ids = {1, 2, 3, 4};
  std::vector<float> logits(static_cast<size_t>(directory.config.vocab_size));
  KvCache cache(directory.config, 3);
  REQUIRE_THROWS_WITH(directory.model->forward(ids.data(), 4, cache, 3, logits.data()),
                      HAS_SUBSTRING("context overflow"));
  const int32_t bad = static_cast<int32_t>(directory.config.vocab_size);
  REQUIRE_THROWS_WITH(directory.model->forward(&bad, 1, cache, 0, logits.data()),
                      HAS_SUBSTRING("outside the vocabulary"));
}
