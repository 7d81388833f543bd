// top2_logits MODEL_DIR PROMPT [ID ...]: the CPU reference's two best next tokens and their logits
// after PROMPT (tokenized as `run-llm --prompt` does) followed by the given ids. Used where a GPU
// and a CPU greedy run part ways: a near-tie (|l1 - l2| < 1e-2) at the first difference is the
// expected kind of divergence between fp16 and fp32 arithmetic.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "model/cpu_decoder_backend.h"
#include "model/model_directory.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: top2_logits MODEL_DIR PROMPT [ID ...]\n");
    return 2;
  }
  using namespace runllm;
  const ModelDirectory directory = open_model_directory(argv[1], false);
  std::vector<int32_t> ids = directory.tokenizer->encode(argv[2], directory.tokenizer->adds_bos_by_default());
  for (int i = 3; i < argc; ++i) ids.push_back(static_cast<int32_t>(std::atoi(argv[i])));
  CpuDecoderBackend cpu(*directory.model);
  cpu.reset(static_cast<int64_t>(ids.size()));
  const int64_t V = directory.config.vocab_size, M = static_cast<int64_t>(ids.size());
  std::vector<float> logits(static_cast<size_t>(V));
  cpu.forward(ids.data(), M, M - 1, logits.data());
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (int32_t i = 0; i < V; ++i) order[static_cast<size_t>(i)] = i;
  std::partial_sort(order.begin(), order.begin() + 2, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  const float l1 = logits[order[0]], l2 = logits[order[1]];
  std::printf("after %lld tokens: top-1 id %d logit %.5f, top-2 id %d logit %.5f, difference %.5f\n",
              static_cast<long long>(M), order[0], l1, order[1], l2, l1 - l2);
  return 0;
}
