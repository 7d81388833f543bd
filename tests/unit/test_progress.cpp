// The progress reporter's plain-line output (not a terminal): at most one line per 10% of the work
// or per heartbeat, elapsed time in every line, nothing at all for work that ends while still quiet.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/progress.h"
#include "tests/catch.h"

using namespace runllm;

namespace {

// Collects what the reporter writes, with a clock the test moves.
struct Capture {
  char* buffer = nullptr;
  size_t size = 0;
  std::FILE* file = open_memstream(&buffer, &size);
  double time = 100.0;
  ~Capture() {
    std::fclose(file);
    std::free(buffer);
  }
  ProgressOptions options(double quiet_seconds = 0.0, double heartbeat = 30.0) {
    ProgressOptions o;
    o.out = file;
    o.terminal = 0;
    o.quiet_seconds = quiet_seconds;
    o.heartbeat_seconds = heartbeat;
    o.clock = [this] { return time; };
    return o;
  }
  std::vector<std::string> lines() {
    std::fflush(file);
    std::vector<std::string> result;
    std::string text(buffer, size), line;
    for (char c : text) {
      if (c == '\n') {
        result.push_back(line);
        line.clear();
      } else {
        line += c;
      }
    }
    if (!line.empty()) result.push_back(line);
    return result;
  }
};

}  // namespace

TEST_CASE("progress prints a plain line per 10% with the elapsed time, then a done line", "[progress]") {
  Capture capture;
  {
    ProgressReporter progress("loading", 200, "layers", capture.options());
    for (int i = 1; i <= 200; ++i) {
      capture.time += 0.5;
      progress.update(i);
    }
    progress.finish();
  }
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 10);  // 10%, 20%, ... 90%, done
  CHECK(lines[0] == "loading: 10% (20/200 layers), 10.0 s elapsed, about 1 min 30 s left");
  CHECK(lines[4] == "loading: 50% (100/200 layers), 50.0 s elapsed, about 50.0 s left");
  CHECK(lines[8].rfind("loading: 90% (180/200 layers), 1 min 30 s elapsed", 0) == 0);
  CHECK(lines[9] == "loading: done, 200 layers in 1 min 40 s");
  for (const std::string& line : lines) CHECK(line.find('\r') == std::string::npos);  // no bar
}

TEST_CASE("progress skips 10% steps that come sooner than min_interval_seconds after the last line", "[progress]") {
  Capture capture;
  {
    ProgressReporter progress("converting", 100, "tensors", capture.options());  // min interval 2 s
    for (int i = 1; i <= 100; ++i) {
      capture.time += 0.0625;  // 6.25 s in all (exact in binary): a 10% step every 0.625 s
      progress.update(i);
    }
    progress.finish();
  }
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].rfind("converting: 32% (32/100 tensors), 2.0 s elapsed", 0) == 0);
  CHECK(lines[1].rfind("converting: 64% (64/100 tensors), 4.0 s elapsed", 0) == 0);
  CHECK(lines[2].rfind("converting: 96% (96/100 tensors), 6.0 s elapsed", 0) == 0);
  CHECK(lines[3] == "converting: done, 100 tensors in 6.2 s");
}

TEST_CASE("progress stays silent for work that ends within quiet_seconds", "[progress]") {
  Capture capture;
  {
    ProgressReporter progress("converting", 30, "tensors", capture.options(2.0));
    for (int i = 1; i <= 30; ++i) {
      capture.time += 0.05;
      progress.update(i);
    }
    progress.finish();
  }
  CHECK(capture.lines().empty());
}

TEST_CASE("progress prints a heartbeat line when a 10% step takes long, and detail and notes", "[progress]") {
  Capture capture;
  {
    ProgressReporter progress("perplexity", 4, "windows", capture.options(0.0, 30.0));
    capture.time += 20;
    progress.update(0);  // nothing yet: no step reached, no heartbeat due
    capture.time += 15;
    progress.update(0, "tokenized");  // 35 s without a line: heartbeat
    capture.time += 5;
    progress.update(1, "running PPL = 23.6");
    progress.note("a line of its own");
    progress.update(1, "running PPL = 23.6");  // the same step again: no line
    capture.time += 5;
    progress.update(4);
    progress.finish("PPL 23.62");
    progress.finish();  // a second finish prints nothing
  }
  const auto lines = capture.lines();
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "perplexity: 0% (0/4 windows), 35.0 s elapsed, tokenized");
  CHECK(lines[1] == "perplexity: 25% (1/4 windows), 40.0 s elapsed, about 2 min 00 s left, running PPL = 23.6");
  CHECK(lines[2] == "a line of its own");
  CHECK(lines[3] == "perplexity: done, 4 windows in 45.0 s, PPL 23.62");
}

TEST_CASE("RUNLLM_PROGRESS=0 turns the progress lines off and keeps the notes", "[progress]") {
  Capture capture;
  setenv("RUNLLM_PROGRESS", "0", 1);
  {
    ProgressReporter progress("loading", 10, "layers", capture.options());
    for (int i = 1; i <= 10; ++i) {
      capture.time += 5.0;  // slow enough for a line per step and heartbeats without the setting
      progress.update(i);
      if (i == 5) progress.note("layer 5/10: done");
    }
    progress.finish();
  }
  unsetenv("RUNLLM_PROGRESS");
  CHECK(capture.lines() == std::vector<std::string>{"layer 5/10: done"});
}

TEST_CASE("format_duration reads as seconds, minutes or hours", "[progress]") {
  CHECK(format_duration(0.04) == "0.0 s");
  CHECK(format_duration(59.94) == "59.9 s");
  CHECK(format_duration(125) == "2 min 05 s");
  CHECK(format_duration(3 * 3600 + 7 * 60 + 10) == "3 h 07 min");
}
