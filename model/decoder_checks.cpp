#include "model/decoder_checks.h"

#include <string>

#include "runtime/error.h"

namespace runllm {

void check_token_ids(const int32_t* tokens, int64_t M, int64_t vocab_size) {
  for (int64_t m = 0; m < M; ++m)
    if (tokens[m] < 0 || tokens[m] >= vocab_size)
      throw Error("token id " + std::to_string(tokens[m]) + " is outside the vocabulary of " +
                  std::to_string(vocab_size));
}

void check_context_room(int64_t length, int64_t M, int64_t capacity) {
  if (M <= 0) throw Error("forward: no tokens to run");
  if (length + M > capacity)
    throw Error("context overflow: " + std::to_string(length + M) + " tokens exceed the context of " +
                std::to_string(capacity) + " (use a larger --ctx or a shorter prompt)");
}

}  // namespace runllm
