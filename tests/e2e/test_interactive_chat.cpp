// `run-llm --chat -i`: a conversation through piped stdin keeps its history in the KV cache, so the
// second answer knows the first turn while only the new turn's tokens are prefilled.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>
#include <sstream>
#include <string>
#include <vector>

#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

struct TurnPrefill {
  int turn;
  long new_tokens, conversation, cached;
};

// -v prints "turn 2: prefill 18 new tokens (conversation 86 tokens, 68 cached)" before each answer.
std::vector<TurnPrefill> prefills(const std::string& err) {
  std::vector<TurnPrefill> result;
  const std::regex pattern(R"(turn (\d+): prefill (\d+) new tokens \(conversation (\d+) tokens, (\d+) cached\))");
  for (std::sregex_iterator it(err.begin(), err.end(), pattern), end; it != end; ++it)
    result.push_back({std::stoi((*it)[1]), std::stol((*it)[2]), std::stol((*it)[3]), std::stol((*it)[4])});
  return result;
}

}  // namespace

TEST_CASE("interactive chat: three turns from stdin, the second answer knows the first turn",
          "[e2e][generate][interactive]") {
  const std::string model = test::model_dir();
  // Greedy answers of the default model (checked by hand): asked alone, "What is my dog called?" gets
  // a name other than Rex ("... a loyal companion named Luna"), so "Rex" in the second answer comes
  // from the first turn held in the cache.
  const auto result = test::run_llm({"--model", model, "--chat", "-i", "--temperature", "0", "-n", "32", "--ctx", "512",
                                     "-v"},
                                    "I have a dog called Rex.\nWhat is my dog called?\nThank you!\n/exit\nNot read\n");
  INFO("stdout:\n" << result.out << "\nstderr:\n" << result.err);
  REQUIRE(result.exit_code == 0);
  const auto answers = lines_of(result.out);
  REQUIRE(answers.size() == 3);  // one line per answer; nothing after /exit
  CHECK(answers[1].find("Rex") != std::string::npos);

  const auto turns = prefills(result.err);
  REQUIRE(turns.size() == 3);
  CHECK(turns[0].cached == 0);
  CHECK(turns[0].new_tokens == turns[0].conversation);
  for (int i = 1; i < 3; ++i) {
    // Only the new turn is processed: the cache holds the rest of the conversation.
    CHECK(turns[i].new_tokens < turns[i].conversation);
    CHECK(turns[i].cached > turns[i - 1].conversation);
    CHECK(turns[i].cached + turns[i].new_tokens == turns[i].conversation);
  }
  for (const char* line : {"[turn 1] prompt:", "[turn 2] prompt:", "[turn 3] prompt:"})
    CHECK(result.err.find(line) != std::string::npos);
  CHECK(result.err.find("tokens/s") != std::string::npos);
}

TEST_CASE("interactive chat: a full context drops the oldest turns; /reset starts over",
          "[e2e][generate][interactive]") {
  const std::string model = test::model_dir();
  // 160 positions hold the first two turns (86 tokens + 32 for an answer) but not a third.
  const auto result = test::run_llm({"--model", model, "--chat", "-i", "--temperature", "0", "-n", "32", "--ctx", "160",
                                     "-v"},
                                    "I have a dog called Rex.\n/nonsense\nWhat is my dog called?\nThank you!\n/reset\nHello\n");
  INFO("stdout:\n" << result.out << "\nstderr:\n" << result.err);
  REQUIRE(result.exit_code == 0);
  CHECK(result.err.find("unknown command /nonsense") != std::string::npos);
  CHECK(result.err.find("context full (160 tokens): dropped the oldest 1 turn") != std::string::npos);
  CHECK(result.err.find("conversation reset") != std::string::npos);
  const auto turns = prefills(result.err);
  REQUIRE(turns.size() == 4);
  CHECK(turns[2].cached == 0);  // processed again without the dropped turn
  CHECK(turns[2].conversation + 32 <= 160);  // room for an answer again
  CHECK(turns[3].cached == 0);  // after /reset
  CHECK(lines_of(result.out).size() == 4);
}

TEST_CASE("interactive chat: SIGINT (Ctrl-C) stops the answer, not the program", "[e2e][generate][interactive]") {
  const std::string model = test::model_dir();
  const std::string dir = test::make_temp_dir("interactive-sigint");
  const std::string out_path = dir + "/out", err_path = dir + "/err";
  int input[2];
  REQUIRE(pipe(input) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(input[0], STDIN_FILENO);
    close(input[0]);
    close(input[1]);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    execl(RUNLLM_BINARY, RUNLLM_BINARY, "--model", model.c_str(), "-i", "--temperature", "0", "-n", "2000", "--ctx",
          "2048", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(input[0]);
  auto send = [&](const std::string& line) { REQUIRE(write(input[1], line.data(), line.size()) == static_cast<ssize_t>(line.size())); };
  send("Write a very long story about a dragon.\n");
  // Interrupt once the answer is streaming (its first 100 bytes are out).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto streamed = [&] {  // 0 until the child has created its output file
    std::error_code error;
    const auto size = std::filesystem::file_size(out_path, error);
    return error ? 0 : size;
  };
  while (streamed() < 100 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  REQUIRE(streamed() >= 100);
  kill(pid, SIGINT);
  send("/reset\nHello\n");  // a fresh conversation, so the second answer is short (9 tokens)
  close(input[1]);  // end of input after the second turn: the program exits
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline + std::chrono::seconds(60)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL("run-llm -i did not end after SIGINT and end of input");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string err = test::read_file(err_path);
  INFO("stdout:\n" << test::read_file(out_path) << "\nstderr:\n" << err);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::regex first(R"(\[turn 1\] prompt: \d+ new tokens, [0-9.]+ tokens/s \| answer: (\d+) tokens.*stop: interrupted)");
  std::smatch match;
  REQUIRE(std::regex_search(err, match, first));
  CHECK(std::stol(match[1]) < 2000);
  CHECK(err.find("[turn 2] prompt:") != std::string::npos);  // the conversation went on
  std::filesystem::remove_all(dir);
}
