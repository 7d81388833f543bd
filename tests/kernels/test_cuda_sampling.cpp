// The GPU sampler against runllm::Sampler: the same logits and the same uniform draw give the
// same token, for greedy and for top-k/top-p/min-p/temperature chains, ties included.
#include "kernels/cuda/sampling.h"

#include "runtime/sampler.h"
#include "tests/catch.h"
#include "tests/kernels/cuda_test_support.h"

using namespace runllm;
using runllm::test::DeviceBuffer;

namespace {

// The first uniform number Sampler(seed) draws (Sampler::uniform01, specified in sampler.h).
double first_uniform(uint64_t seed) {
  std::mt19937_64 generator(seed);
  return static_cast<double>(generator() >> 11) * 0x1.0p-53;
}

int32_t gpu_token(const DeviceBuffer<float>& logits, int64_t vocab, const SamplingParams& p, double u) {
  DeviceBuffer<int32_t> token(1);
  cuda::GpuSamplingParams params;
  params.temperature = p.temperature;
  params.top_k = p.top_k;
  params.top_p = p.top_p;
  params.min_p = p.min_p;
  cuda::sample_token(logits.get(), vocab, params, u, token.get(), nullptr);
  return token.download()[0];
}

}  // namespace

TEST_CASE("sample_token picks the CPU sampler's token for the same u", "[cuda]") {
  struct Chain {
    float temperature;
    int top_k;
    float top_p, min_p;
  };
  const Chain chains[] = {
      {0.0f, 40, 0.95f, 0.05f},   // greedy
      {0.8f, 40, 0.95f, 0.05f},   // the defaults
      {1.5f, 1024, 0.9f, 0.0f},   // wide nucleus
      {1.0f, 200, 1.0f, 0.1f},    // min-p only after top-k
      {0.5f, 1, 1.0f, 0.0f},      // top-1
      {2.0f, 500, 0.5f, 0.02f},
  };
  int compared = 0, agreed = 0;
  for (const int64_t vocab : {1000, 32000, 128256}) {
    for (const bool ties : {false, true}) {
      std::vector<float> logits = test::random_half_values(static_cast<size_t>(vocab), 2.5f);
      if (ties)
        for (float& l : logits) l = std::round(l * 2.0f) / 2.0f;  // few distinct values: ties by id decide
      DeviceBuffer<float> logits_d(logits);
      for (const Chain& c : chains) {
        for (int trial = 0; trial < (test::quick() ? 2 : 25); ++trial) {
          SamplingParams params;
          params.temperature = c.temperature;
          params.top_k = static_cast<int>(std::min<int64_t>(c.top_k, vocab - 1));  // GPU: top_k < vocab
          params.top_p = c.top_p;
          params.min_p = c.min_p;
          params.repeat_penalty = 1.0f;
          params.seed = test::rng()();
          Sampler sampler(params);
          const int32_t cpu = sampler.sample(logits.data(), vocab, {});
          const int32_t gpu = gpu_token(logits_d, vocab, params, first_uniform(params.seed));
          INFO("vocab " << vocab << " ties " << ties << " T " << c.temperature << " k " << c.top_k << " p "
                        << c.top_p << " min_p " << c.min_p << " seed " << params.seed);
          CHECK(gpu == cpu);
          ++compared;
          agreed += gpu == cpu;
        }
      }
    }
  }
  std::printf("measured | %-22s | %-52s | %d of %d tokens equal\n", "sample_token", "vocab 1000/32000/128256, 6 chains",
              agreed, compared);
}

TEST_CASE("sample_token reports NaN and +inf logits as -1 and rejects unsupported top_k", "[cuda]") {
  std::vector<float> logits = test::random_half_values(5000);
  logits[4321] = std::numeric_limits<float>::quiet_NaN();
  DeviceBuffer<float> logits_d(logits);
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  CHECK(gpu_token(logits_d, 5000, greedy, 0.5) == -1);
  SamplingParams sampled;
  CHECK(gpu_token(logits_d, 5000, sampled, 0.5) == -1);
  logits[4321] = std::numeric_limits<float>::infinity();
  logits_d.upload(logits);
  CHECK(gpu_token(logits_d, 5000, sampled, 0.5) == -1);

  SamplingParams no_top_k;
  no_top_k.top_k = 0;
  REQUIRE_THROWS_WITH(gpu_token(logits_d, 5000, no_top_k, 0.5), HAS_SUBSTRING("top_k must be in [1, 1024]"));
}
