#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "runtime/error.h"
#include "runtime/logits_file.h"
#include "runtime/perplexity_stats.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::error_message;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A file path unique to this process and test, removed when the test ends.
struct TemporaryPath {
  std::string path;
  explicit TemporaryPath(const std::string& name)
      : path((std::filesystem::temp_directory_path() /
              ("runllm_test_" + name + "_" + std::to_string(::getpid()) + ".logits"))
                 .string()) {}
  ~TemporaryPath() { std::remove(path.c_str()); }
};

std::vector<float> random_logits(int64_t vocab_size, float spread, uint32_t seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<float> normal(0.0f, spread);
  std::vector<float> logits(static_cast<size_t>(vocab_size));
  for (float& logit : logits) logit = normal(generator);
  return logits;
}

// log-softmax in double, the reference the file is compared with.
std::vector<double> exact_log_softmax(const std::vector<float>& logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float logit : logits) sum += std::exp(logit - max);
  std::vector<double> log_probs;
  for (float logit : logits) log_probs.push_back(logit - max - std::log(sum));
  return log_probs;
}

std::vector<int32_t> sequence_of(size_t count, int64_t vocab_size) {
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < count; ++i) tokens.push_back(static_cast<int32_t>((i * 7919) % vocab_size));
  return tokens;
}

// Writes positions predicting tokens 1..count from logits made by random_logits(.., seed = i).
void write_file(const std::string& path, int64_t vocab_size, const std::vector<int32_t>& tokens, float spread,
                int64_t count) {
  LogitsFileWriter writer(path, vocab_size, 64, tokens);
  for (int64_t i = 1; i <= count; ++i)
    writer.write_position(i, random_logits(vocab_size, spread, static_cast<uint32_t>(i)).data());
  writer.finish();
}

void rewrite_bytes(const std::string& path, size_t offset, const std::string& bytes) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(offset));
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

constexpr size_t kTokensOffset = 36;

}  // namespace

TEST_CASE("logits file round trip stays within the quantization bound", "[perplexity]") {
  const int64_t vocab_size = 5000;
  const std::vector<int32_t> tokens = sequence_of(10, vocab_size);
  // Spread 3: the log-probs span < 32 nats, nothing is clamped. Spread 12: they span far more,
  // and everything below max - 32 reads back as the floor.
  for (float spread : {3.0f, 12.0f}) {
    TemporaryPath file("round_trip");
    write_file(file.path, vocab_size, tokens, spread, 9);

    LogitsFileReader reader(file.path);
    REQUIRE(reader.vocab_size() == vocab_size);
    REQUIRE(reader.context_size() == 64);
    REQUIRE(reader.position_count() == 9);
    REQUIRE(reader.tokens() == tokens);
    std::vector<float> read_back(vocab_size);
    bool clamped_any = false;
    for (int64_t position = 0; position < 9; ++position) {
      REQUIRE(reader.target_index(position) == position + 1);
      REQUIRE(reader.target_token(position) == tokens[position + 1]);
      const std::vector<float> logits = random_logits(vocab_size, spread, static_cast<uint32_t>(position + 1));
      const std::vector<double> exact = exact_log_softmax(logits);
      const double max_log_prob = *std::max_element(exact.begin(), exact.end());
      const double floor = std::max(*std::min_element(exact.begin(), exact.end()), max_log_prob - kLogitsFileLogProbWindow);
      // Half a step of the u16 grid, plus f32 rounding of the stored range and the result.
      const double bound = (max_log_prob - floor) / 65535 / 2 + 1e-5;

      reader.read_log_probs(position, read_back.data());
      const int32_t target = reader.target_token(position);
      REQUIRE(std::abs(read_back[target] - exact[target]) < 1e-5);  // stored exactly
      double worst_error = 0;
      for (int32_t i = 0; i < vocab_size; ++i) {
        if (i == target) continue;
        worst_error = std::max(worst_error, std::abs(read_back[i] - std::max(exact[i], floor)));
        clamped_any |= exact[i] < floor;
      }
      INFO("spread " << spread << " position " << position);
      REQUIRE(worst_error <= bound);
    }
    REQUIRE(clamped_any == (spread > 10));
  }
}

TEST_CASE("equal logits read back as the uniform distribution", "[perplexity]") {
  TemporaryPath file("uniform");
  const std::vector<int32_t> tokens = {0, 1};
  LogitsFileWriter writer(file.path, 100, 16, tokens);
  writer.write_position(1, std::vector<float>(100, 2.5f).data());
  writer.finish();
  std::vector<float> read_back(100);
  LogitsFileReader(file.path).read_log_probs(0, read_back.data());
  for (float log_prob : read_back) REQUIRE(log_prob == Approx(-std::log(100.0)).epsilon(1e-6));
}

TEST_CASE("a base run compared with itself through the file has no divergence", "[perplexity]") {
  TemporaryPath file("self_compare");
  const int64_t vocab_size = 3000;
  const std::vector<int32_t> tokens = sequence_of(20, vocab_size);
  write_file(file.path, vocab_size, tokens, 4.0f, 19);

  LogitsFileReader reader(file.path);
  reader.check_matches(tokens, vocab_size, 64);
  PerplexityStats base_run;
  KlDivergenceStats stats;
  std::vector<float> base(vocab_size);
  for (int64_t position = 0; position < reader.position_count(); ++position) {
    const std::vector<float> logits = random_logits(vocab_size, 4.0f, static_cast<uint32_t>(position + 1));
    reader.read_log_probs(position, base.data());
    stats.add(base.data(), logits.data(), vocab_size, reader.target_token(position));
    base_run.add(logits.data(), vocab_size, reader.target_token(position));
  }
  REQUIRE(std::abs(stats.mean_kld().value) < 1e-6);  // only u16 rounding remains
  REQUIRE(stats.same_top_percent().value == 100.0);
  // The target log-probs are stored exactly: the base perplexity is the base run's own.
  REQUIRE(stats.perplexity_base().value == Approx(base_run.perplexity().value).epsilon(1e-6));
  REQUIRE(stats.perplexity_ratio().value == Approx(1.0).epsilon(1e-6));
}

TEST_CASE("check_matches detects a different text, tokenizer, vocab or context", "[perplexity]") {
  TemporaryPath file("mismatch");
  const std::vector<int32_t> tokens = {1, 2, 5, 7};
  write_file(file.path, 10, tokens, 1.0f, 3);
  LogitsFileReader reader(file.path);
  reader.check_matches(tokens, 10, 64);

  REQUIRE(error_message([&] { reader.check_matches({1, 2, 6, 7}, 10, 64); }) ==
          file.path + ": was made from different text or tokenizer (first difference at token 2: file has 5, "
                      "this run has 6)");
  REQUIRE(error_message([&] { reader.check_matches({1, 2, 5}, 10, 64); }) ==
          file.path + ": was made from different text or tokenizer (it holds 4 tokens, this run has 3)");
  REQUIRE(error_message([&] { reader.check_matches(tokens, 12, 64); }) ==
          file.path + ": made with a vocab of 10, this model has 12");
  REQUIRE(error_message([&] { reader.check_matches(tokens, 10, 128); }) ==
          file.path + ": made with context size 64, this run uses 128 (use the same context size)");
}

TEST_CASE("damaged logits files are rejected with errors naming the file", "[perplexity]") {
  const int64_t vocab_size = 50;
  const std::vector<int32_t> tokens = sequence_of(6, vocab_size);
  const size_t record_size = 20 + 2 * vocab_size;
  const size_t full_size = kTokensOffset + 4 * tokens.size() + 5 * record_size;
  TemporaryPath file("damaged");
  auto write_good_file = [&] { write_file(file.path, vocab_size, tokens, 2.0f, 5); };
  auto open_error = [&] { return error_message([&] { LogitsFileReader reader(file.path); }); };

  SECTION("truncated records") {
    write_good_file();
    std::filesystem::resize_file(file.path, full_size - 1);
    REQUIRE(open_error() == file.path + ": truncated: " + std::to_string(full_size - 1) + " bytes hold 4 of its 5 positions");
  }
  SECTION("truncated header") {
    write_good_file();
    std::filesystem::resize_file(file.path, 20);
    REQUIRE(open_error() == file.path + ": truncated: 20 bytes, the header alone is 36");
  }
  SECTION("truncated tokens") {
    write_good_file();
    std::filesystem::resize_file(file.path, kTokensOffset + 8);
    REQUIRE(open_error() == file.path + ": truncated: 44 bytes cannot hold its 6 tokens");
  }
  SECTION("trailing bytes") {
    write_good_file();
    std::filesystem::resize_file(file.path, full_size + 3);
    REQUIRE(open_error() == file.path + ": 3 unexpected bytes after its 5 positions");
  }
  SECTION("wrong magic") {
    write_good_file();
    rewrite_bytes(file.path, 0, "GGUF");
    REQUIRE(open_error() == file.path + ": not a run-llm logits file (it does not start with RLLMLOGP)");
  }
  SECTION("unknown version") {
    write_good_file();
    rewrite_bytes(file.path, 8, std::string("\x02\0\0\0", 4));
    REQUIRE(open_error() == file.path + ": logits file version 2, this build reads version 1");
  }
  SECTION("token outside the vocab") {
    write_good_file();
    rewrite_bytes(file.path, kTokensOffset + 4 * 3, std::string("\x40\0\0\0", 4));
    REQUIRE(open_error() == file.path + ": token 3 has id 64, outside the vocab of 50");
  }
  SECTION("garbled target index") {
    write_good_file();
    rewrite_bytes(file.path, kTokensOffset + 4 * tokens.size() + record_size, std::string("\x09\0\0\0", 4));
    LogitsFileReader reader(file.path);
    std::vector<float> log_probs(vocab_size);
    REQUIRE(error_message([&] { reader.read_log_probs(1, log_probs.data()); }) ==
            file.path + ": position 1 predicts token index 9, outside [1, 6)");
    REQUIRE(contains(error_message([&] { reader.read_log_probs(5, log_probs.data()); }), "position 5 is outside"));
  }
  SECTION("a writer that never finished") {
    {
      LogitsFileWriter writer(file.path, vocab_size, 64, tokens);
      writer.write_position(1, random_logits(vocab_size, 2.0f, 1).data());
    }
    REQUIRE(open_error() == file.path + ": incomplete: the run writing it stopped before finishing");
  }
  SECTION("missing file") {
    REQUIRE(contains(open_error(), file.path + ": cannot open"));
  }
}

TEST_CASE("the writer rejects what the format cannot describe", "[perplexity]") {
  TemporaryPath file("writer_errors");
  REQUIRE(contains(error_message([&] { LogitsFileWriter(file.path + ".missing/x", 10, 64, {1}); }),
                   file.path + ".missing/x: cannot create"));
  REQUIRE(error_message([&] { LogitsFileWriter(file.path, 10, 64, {1, 10}); }) ==
          file.path + ": token 1 has id 10, outside the vocab of 10");
  LogitsFileWriter writer(file.path, 10, 64, {1, 2, 3});
  const std::vector<float> logits(10, 0.0f);
  REQUIRE(error_message([&] { writer.write_position(0, logits.data()); }) ==
          file.path + ": target index 0 is outside [1, 3)");
  std::vector<float> with_nan = logits;
  with_nan[4] = std::nanf("");
  REQUIRE(error_message([&] { writer.write_position(1, with_nan.data()); }) == "logits contain NaN");
  writer.finish();
  REQUIRE(error_message([&] { writer.write_position(1, logits.data()); }) ==
          file.path + ": write_position after finish");
}
