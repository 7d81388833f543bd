// The largest vocabulary run-llm accepts, far above any real model (the largest have ~256k tokens).
// config.json's vocab_size, tokenizer ids and eos ids are all checked against it, so a hostile id
// can neither size a table nor wrap into the vocabulary's range.
#pragma once
#include <cstdint>

namespace runllm {

inline constexpr int64_t kMaxVocabSize = 4'000'000;

}  // namespace runllm
