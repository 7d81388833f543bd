// The one error type of run-llm. Every message names what was wrong (file, tensor, flag) and what
// was expected, so the CLI can print it as one line and exit non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace runllm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace runllm
