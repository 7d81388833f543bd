// Shared helpers for the test suites: where the test model lives, temporary directories, and running
// the run-llm binary as a user would.
#pragma once
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace runllm::test {

// The converted default model: $RUNLLM_TEST_MODEL_DIR, else the cache path scripts/fetch_model.sh
// writes. Fails the calling test (never skips it) with a hint when the directory is missing.
std::string model_dir();
std::string source_dir();           // the repository root
std::string text_data(const std::string& name);  // tests/data/text/<name>: wiki.test.raw, pride_and_prejudice.txt
std::string make_temp_dir(const std::string& tag);     // a fresh directory under the system temp dir

struct CommandResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the built run-llm binary with `arguments` (each shell-quoted here), with `stdin_text` on its
// standard input (empty: /dev/null).
CommandResult run_llm(const std::vector<std::string>& arguments, const std::string& stdin_text = "");

// The message of the runllm::Error `action` throws, or "" when it throws none.
std::string error_message(const std::function<void()>& action);
// Requires `action` to throw a runllm::Error whose message contains every one of `words`.
void require_error(const std::function<void()>& action, std::initializer_list<const char*> words);

// Decodes `ids` through a StreamingDetokenizer, one push per id then flush, checking that every
// piece it emits is valid UTF-8.
std::string stream_decode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& contents);

}  // namespace runllm::test
