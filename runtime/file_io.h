// Whole-file reads with errors that name the path: every reader of a small text or JSON file uses these.
#pragma once
#include <string>

namespace runllm {

// The file's bytes. Throws runllm::Error "PATH: cannot open" (with " (expected EXPECTED)" appended when
// given) or "PATH: read failed".
std::string read_whole_file(const std::string& path, const std::string& expected = "");

}  // namespace runllm
