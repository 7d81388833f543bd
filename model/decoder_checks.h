// The checks every decoder backend (CPU reference, GPU) makes before it runs tokens, in one wording.
#pragma once
#include <cstdint>

namespace runllm {

// Throws "token id X is outside the vocabulary of V" for the first id not in [0, V).
void check_token_ids(const int32_t* tokens, int64_t M, int64_t vocab_size);

// Throws "context overflow: L + M tokens exceed the context of C (...)" when M more tokens do not fit.
void check_context_room(int64_t length, int64_t M, int64_t capacity);

}  // namespace runllm
