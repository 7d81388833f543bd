// Progress of long work (loading, quantizing, converting, perplexity) on stderr: a bar redrawn in
// place on a terminal, and plain lines otherwise (a log, a pipe, CI), at most one per 10% of the work
// (skipped when the last line is under `min_interval_seconds` old) and one per `heartbeat_seconds`,
// each with the elapsed time. Work that ends within
// `quiet_seconds` prints nothing at all, so small models stay as quiet as before. RUNLLM_PROGRESS=0 in
// the environment turns the progress off (notes, the per-layer lines, still print): for scripts and
// tests that want stderr to hold only what the command says, whatever the machine's speed.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

namespace runllm {

struct ProgressOptions {
  std::FILE* out = stderr;
  int terminal = -1;                 // 1: bar, 0: plain lines, -1: bar when `out` is a terminal
  double quiet_seconds = 0.0;        // nothing is shown before this much time has passed
  double min_interval_seconds = 2.0; // plain lines: a 10% step is printed only this long after the last line
  double heartbeat_seconds = 30.0;   // plain lines: one at least this often while work goes on
  std::function<double()> clock;     // seconds since some fixed point (tests); default steady_clock
};

class ProgressReporter {
 public:
  // `label` starts every line ("loading", "converting"); `total` counts `unit`s ("layers").
  ProgressReporter(std::string label, int64_t total, std::string unit, ProgressOptions options = {});
  ~ProgressReporter();  // ends a bar's line if finish() was not reached (an exception)
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // `done` units of `total` are finished; `detail` ("running PPL = 23.6") goes at the end of the line.
  void update(int64_t done, const std::string& detail = "");
  // A line of its own (a per-layer summary): on a terminal the bar is cleared, the line printed and
  // the bar drawn again below it.
  void note(const std::string& line);
  // The closing line "label: done, 30 layers in 12.3 s" (plus `detail`), unless the work stayed quiet.
  void finish(const std::string& detail = "");

  // "40% (12/30 layers), 3.2 s elapsed, about 4.8 s left"
  std::string status() const;
  double elapsed_seconds() const;
  bool terminal() const { return terminal_; }

 private:
  double now() const;
  void draw_bar();
  void clear_bar();

  std::string label_, unit_;
  int64_t total_, done_ = 0;
  std::string detail_;
  ProgressOptions options_;
  bool terminal_;
  bool silent_;                 // RUNLLM_PROGRESS=0
  double start_;
  double last_output_ = -1.0;   // time of the last line or redraw
  int last_decile_ = 0;         // plain lines: the last 10% step printed
  bool shown_ = false;          // something was printed
  bool bar_on_screen_ = false;
  bool finished_ = false;
};

// For library code that reports counts (done, total) and lines through callbacks: the reporter is made
// at the first count, finished when done reaches total, and lines go above its bar.
class ProgressSink {
 public:
  ProgressSink(std::string label, std::string unit, ProgressOptions options = {})
      : label_(std::move(label)), unit_(std::move(unit)), options_(std::move(options)) {}
  void count(int64_t done, int64_t total, const std::string& detail = "");
  void line(const std::string& text);
  ProgressReporter* reporter() { return reporter_.get(); }

 private:
  std::string label_, unit_;
  ProgressOptions options_;
  std::unique_ptr<ProgressReporter> reporter_;
};

// "12.3 s", "4 min 05 s", "1 h 02 min": an elapsed or remaining time for people.
std::string format_duration(double seconds);

}  // namespace runllm
