#include "tests/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "runtime/error.h"
#include "tests/catch.h"

namespace runllm::test {

namespace fs = std::filesystem;

std::string source_dir() { return RUNLLM_SOURCE_DIR; }

std::string text_data(const std::string& name) { return source_dir() + "/tests/data/text/" + name; }

std::string model_dir() {
  std::string dir;
  if (const char* env = std::getenv("RUNLLM_TEST_MODEL_DIR")) {
    dir = env;
  } else {
    const char* cache = std::getenv("XDG_CACHE_HOME");
    const char* home = std::getenv("HOME");
    dir = (cache ? std::string(cache) : std::string(home ? home : "/root") + "/.cache") +
          "/run-llm/SmolLM2-135M-Instruct-f16";
  }
  if (!fs::exists(dir + "/model.safetensors"))
    FAIL("test model not found at " << dir << ": run scripts/fetch_model.sh (or set RUNLLM_TEST_MODEL_DIR)");
  return dir;
}

std::string make_temp_dir(const std::string& tag) {
  std::random_device device;
  const fs::path dir = fs::temp_directory_path() / ("run-llm-test-" + tag + "-" + std::to_string(device()));
  fs::create_directories(dir);
  return dir.string();
}

std::string error_message(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

void require_error(const std::function<void()>& action, std::initializer_list<const char*> words) {
  const std::string message = error_message(action);
  INFO("error message: " << message);
  REQUIRE(!message.empty());
  for (const char* word : words) CHECK(message.find(word) != std::string::npos);
}

std::string stream_decode(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  StreamingDetokenizer stream(tokenizer);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    CHECK(find_invalid_utf8(piece) == -1);
    streamed += piece;
  }
  return streamed + stream.flush();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path);
}

namespace {
std::string shell_quote(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) quoted += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}
}  // namespace

CommandResult run_llm(const std::vector<std::string>& arguments, const std::string& stdin_text) {
  const std::string dir = make_temp_dir("cmd");
  std::string input = "/dev/null";
  if (!stdin_text.empty()) {
    input = dir + "/in";
    write_file(input, stdin_text);
  }
  // OpenBLAS picks its kernels by CPU (AVX2, AVX-512, ...), and their fp32 rounding differs; GPTQ at
  // 2-3 bits turns that into perplexities 10% apart. Pinning the AVX2 (Haswell) kernels, which every
  // x86-64 CI machine runs, makes the committed reference numbers reproducible on any of them.
  // RUNLLM_PROGRESS=0: progress lines appear only when loading takes over 2 s (a slow or sanitized
  // build), so the tests that hold stderr to one error line would depend on the machine's speed.
  std::string command = "RUNLLM_PROGRESS=0 OPENBLAS_CORETYPE=\"${OPENBLAS_CORETYPE:-Haswell}\" " +
                        shell_quote(RUNLLM_BINARY);
  for (const std::string& argument : arguments) command += " " + shell_quote(argument);
  command += " >" + shell_quote(dir + "/out") + " 2>" + shell_quote(dir + "/err") + " <" + shell_quote(input);
  const int status = std::system(command.c_str());
  CommandResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = read_file(dir + "/out");
  result.err = read_file(dir + "/err");
  fs::remove_all(dir);
  return result;
}

}  // namespace runllm::test
