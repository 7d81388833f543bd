#include "runtime/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>

namespace runllm {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr double kRedrawSeconds = 0.1;  // a bar is redrawn at most ten times a second
constexpr int kBarWidth = 24;

}  // namespace

std::string format_duration(double seconds) {
  char text[64];
  if (!(seconds >= 0)) seconds = 0;
  if (seconds < 60) {
    std::snprintf(text, sizeof text, "%.1f s", seconds);
  } else if (seconds < 3600) {
    const long long whole = std::llround(seconds);
    std::snprintf(text, sizeof text, "%lld min %02lld s", whole / 60, whole % 60);
  } else {
    const long long minutes = std::llround(seconds / 60);
    std::snprintf(text, sizeof text, "%lld h %02lld min", minutes / 60, minutes % 60);
  }
  return text;
}

ProgressReporter::ProgressReporter(std::string label, int64_t total, std::string unit, ProgressOptions options)
    : label_(std::move(label)), unit_(std::move(unit)), total_(std::max<int64_t>(total, 0)),
      options_(std::move(options)) {
  if (options_.out == nullptr) options_.out = stderr;
  const char* setting = std::getenv("RUNLLM_PROGRESS");
  silent_ = setting != nullptr && std::string(setting) == "0";
  terminal_ = !silent_ && (options_.terminal >= 0 ? options_.terminal == 1 : isatty(fileno(options_.out)) != 0);
  start_ = now();
}

ProgressReporter::~ProgressReporter() {
  if (bar_on_screen_) {
    std::fputc('\n', options_.out);
    std::fflush(options_.out);
  }
}

double ProgressReporter::now() const { return options_.clock ? options_.clock() : steady_seconds(); }

double ProgressReporter::elapsed_seconds() const { return now() - start_; }

std::string ProgressReporter::status() const {
  const double elapsed = elapsed_seconds();
  const int percent = total_ > 0 ? static_cast<int>(done_ * 100 / total_) : 100;
  std::string text = std::to_string(percent) + "% (" + std::to_string(done_) + "/" + std::to_string(total_) + " " +
                     unit_ + "), " + format_duration(elapsed) + " elapsed";
  if (done_ > 0 && done_ < total_)
    text += ", about " + format_duration(elapsed * static_cast<double>(total_ - done_) / static_cast<double>(done_)) +
            " left";
  return text;
}

void ProgressReporter::update(int64_t done, const std::string& detail) {
  if (finished_ || silent_) return;
  done_ = std::min(std::max<int64_t>(done, 0), total_);
  detail_ = detail;
  const double t = now();
  if (t - start_ < options_.quiet_seconds) return;
  if (terminal_) {
    if (last_output_ < 0 || t - last_output_ >= kRedrawSeconds || done_ == total_) draw_bar();
    return;
  }
  // Plain lines: the 100% line is finish()'s.
  const int decile = total_ > 0 ? static_cast<int>(done_ * 10 / total_) : 10;
  const double since = t - (last_output_ < 0 ? start_ : last_output_);
  const bool step = decile > last_decile_ && decile < 10 && since >= options_.min_interval_seconds;
  if (step || (since >= options_.heartbeat_seconds && done_ < total_)) {
    std::fprintf(options_.out, "%s: %s%s%s\n", label_.c_str(), status().c_str(), detail_.empty() ? "" : ", ",
                 detail_.c_str());
    std::fflush(options_.out);
    last_decile_ = std::max(last_decile_, decile);
    last_output_ = t;
    shown_ = true;
  }
}

void ProgressReporter::note(const std::string& line) {
  clear_bar();
  std::fprintf(options_.out, "%s\n", line.c_str());
  std::fflush(options_.out);
  if (terminal_ && shown_ && !finished_) draw_bar();
}

void ProgressReporter::finish(const std::string& detail) {
  if (finished_) return;
  finished_ = true;
  if (silent_) return;
  const double elapsed = elapsed_seconds();
  clear_bar();
  if (!shown_ && elapsed < options_.quiet_seconds) return;
  std::fprintf(options_.out, "%s: done, %lld %s in %s%s%s\n", label_.c_str(), static_cast<long long>(done_),
               unit_.c_str(), format_duration(elapsed).c_str(), detail.empty() ? "" : ", ", detail.c_str());
  std::fflush(options_.out);
}

void ProgressReporter::draw_bar() {
  const int filled = total_ > 0 ? static_cast<int>(done_ * kBarWidth / total_) : kBarWidth;
  const std::string bar = std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(kBarWidth - filled), '.');
  // \r returns to the line's start, ESC[K clears what a longer previous drawing left.
  std::fprintf(options_.out, "\r%s [%s] %s%s%s\x1b[K", label_.c_str(), bar.c_str(), status().c_str(),
               detail_.empty() ? "" : ", ", detail_.c_str());
  std::fflush(options_.out);
  last_output_ = now();
  bar_on_screen_ = true;
  shown_ = true;
}

void ProgressReporter::clear_bar() {
  if (!bar_on_screen_) return;
  std::fputs("\r\x1b[K", options_.out);
  bar_on_screen_ = false;
}

void ProgressSink::count(int64_t done, int64_t total, const std::string& detail) {
  if (!reporter_) reporter_ = std::make_unique<ProgressReporter>(label_, total, unit_, options_);
  reporter_->update(done, detail);
  if (done >= total) reporter_->finish(detail);
}

void ProgressSink::line(const std::string& text) {
  if (reporter_) {
    reporter_->note(text);
    return;
  }
  std::fprintf(options_.out == nullptr ? stderr : options_.out, "%s\n", text.c_str());
  std::fflush(options_.out == nullptr ? stderr : options_.out);
}

}  // namespace runllm
