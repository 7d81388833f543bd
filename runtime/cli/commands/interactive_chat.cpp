#include "runtime/cli/commands/interactive_chat.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <optional>
#include <vector>

#include "runtime/decoder_backend.h"
#include "runtime/error.h"
#include "runtime/generator.h"
#include "tokenizer/tokenizer.h"

namespace runllm::cli {

namespace {

// Set by SIGINT; generation checks it before every token. A std::atomic<bool> that is lock-free may
// be stored to from a signal handler.
std::atomic<bool> g_interrupted{false};
static_assert(ATOMIC_BOOL_LOCK_FREE == 2, "the SIGINT flag must be lock-free");

extern "C" void on_sigint(int) { g_interrupted.store(true); }

// Installs the handler for the conversation's lifetime and restores the previous one after. No
// SA_RESTART: a Ctrl-C at the prompt makes the blocked read() return EINTR, which ends the program.
class SigintGuard {
 public:
  SigintGuard() {
    struct sigaction action {};
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;
    sigaction(SIGINT, &action, &previous_);
  }
  ~SigintGuard() { sigaction(SIGINT, &previous_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction previous_ {};
};

// Lines from a file descriptor through read(2), so that a pipe and a terminal behave alike and a
// signal interrupts the wait (std::getline would retry or leave the stream in a failed state).
class LineReader {
 public:
  enum class Status { Line, EndOfInput, Interrupted };
  Status next(std::string& line) {
    for (;;) {
      const size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return Status::Line;
      }
      if (g_interrupted.load()) return Status::Interrupted;
      char chunk[4096];
      const ssize_t count = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (count < 0 && errno == EINTR) continue;  // the flag, checked above, says whether it was SIGINT
      if (count <= 0) {
        if (buffer_.empty()) return Status::EndOfInput;
        line.swap(buffer_);
        buffer_.clear();
        return Status::Line;
      }
      buffer_.append(chunk, static_cast<size_t>(count));
    }
  }

 private:
  std::string buffer_;
};

std::string trim(const std::string& text) {
  const char* whitespace = " \t\r\n";
  const size_t begin = text.find_first_not_of(whitespace);
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(whitespace) - begin + 1);
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

class Conversation {
 public:
  Conversation(DecoderBackend& backend, const Tokenizer& tokenizer, const InteractiveChatSettings& settings)
      : backend_(backend), tokenizer_(tokenizer), settings_(settings) {
    backend_.reset(settings_.context_length);
  }

  void reset() {
    messages_.clear();
    cached_.clear();
    backend_.reset(settings_.context_length);
  }

  // One user turn: prefill what the cache lacks, stream the answer, print its speed.
  void turn(const std::string& user_message) {
    const int64_t capacity = backend_.capacity();
    messages_.push_back({"user", user_message});
    std::vector<int32_t> ids = render();
    // Room for the answer: the whole token limit when the context is large, a quarter of it otherwise.
    const int64_t reserve = std::max<int64_t>(1, std::min(settings_.max_new_tokens, capacity / 4));
    int dropped = 0;
    while (static_cast<int64_t>(ids.size()) + reserve > capacity && messages_.size() > 1) {
      messages_.erase(messages_.begin(), messages_.begin() + 2);  // the oldest question and its answer
      ++dropped;
      ids = render();
    }
    if (static_cast<int64_t>(ids.size()) + 1 > capacity) {
      std::fprintf(stderr, "this message is %zu tokens with the chat format; the context holds %lld (--ctx): not sent\n",
                   ids.size(), static_cast<long long>(capacity));
      messages_.pop_back();
      if (dropped > 0) reset_cache();
      return;
    }
    if (dropped > 0) {
      std::fprintf(stderr, "context full (%lld tokens): dropped the oldest %d turn%s, processing the rest again\n",
                   static_cast<long long>(capacity), dropped, dropped == 1 ? "" : "s");
      reset_cache();
    }
    if (common_prefix(cached_, ids) < cached_.size()) {
      // The new rendering re-tokenized an earlier answer differently (or a template strips it): the
      // cache no longer matches the conversation's start, so it is rebuilt from the whole text.
      if (settings_.verbose) std::fprintf(stderr, "the cached tokens are not a prefix of the conversation: processing it again\n");
      reset_cache();
    }
    ++turn_count_;
    GenerationRequest request;
    request.prompt_ids.assign(ids.begin() + static_cast<std::ptrdiff_t>(cached_.size()), ids.end());
    request.context_length = capacity;
    request.max_new_tokens = std::max<int64_t>(1, std::min(settings_.max_new_tokens, capacity - static_cast<int64_t>(ids.size())));
    request.stop_ids = settings_.stop_ids;
    request.sampling = settings_.sampling;
    request.sampling.seed = settings_.sampling.seed + static_cast<uint64_t>(turn_count_ - 1);
    request.interrupt = &g_interrupted;
    if (settings_.verbose)
      std::fprintf(stderr, "turn %d: prefill %zu new tokens (conversation %zu tokens, %zu cached)\n", turn_count_,
                   request.prompt_ids.size(), ids.size(), cached_.size());

    g_interrupted.store(false);
    const GenerationResult result = continue_generation(backend_, tokenizer_, cached_, request, [](const std::string& text) {
      std::fwrite(text.data(), 1, text.size(), stdout);
      std::fflush(stdout);
    });
    std::fputc('\n', stdout);
    std::fflush(stdout);
    const bool interrupted = result.stop_reason == "interrupted";
    g_interrupted.store(false);

    // An answer stopped inside a character (Ctrl-C, the token limit) may end in a partial UTF-8
    // sequence, which the next rendering could not be tokenized with: it becomes U+FFFD, and the
    // prefix check then re-processes what differs.
    messages_.push_back({"assistant", to_valid_utf8(tokenizer_.decode(result.tokens))});
    // What the cache holds now: the new ids and the answer, less its last token when generation
    // ended without running it (the token limit, the context's end).
    std::vector<int32_t> all = ids;
    all.insert(all.end(), result.tokens.begin(), result.tokens.end());
    all.resize(static_cast<size_t>(std::min<int64_t>(backend_.length(), static_cast<int64_t>(all.size()))));
    cached_ = std::move(all);

    const double prompt_rate = static_cast<double>(request.prompt_ids.size()) / std::max(result.prompt_seconds, 1e-9);
    const double decode_rate = result.tokens.size() / std::max(result.decode_seconds, 1e-9);
    std::fprintf(stderr, "[turn %d] prompt: %zu new tokens, %.1f tokens/s | answer: %zu tokens, %.1f tokens/s | stop: %s%s\n",
                 turn_count_, request.prompt_ids.size(), prompt_rate, result.tokens.size(), decode_rate,
                 result.stop_reason.c_str(), interrupted ? " (Ctrl-C; another at the prompt exits)" : "");
    if (result.stop_reason == "context full")
      std::fprintf(stderr, "the context (%lld tokens) is full: the next message drops the oldest turns\n",
                   static_cast<long long>(capacity));
  }

 private:
  std::vector<int32_t> render() const {
    return tokenizer_.encode(render_chat(settings_.format, settings_.system_prompt, messages_, settings_.bos_text), false);
  }
  void reset_cache() {
    cached_.clear();
    backend_.reset(settings_.context_length);
  }

  DecoderBackend& backend_;
  const Tokenizer& tokenizer_;
  const InteractiveChatSettings& settings_;
  std::vector<ChatMessage> messages_;
  std::vector<int32_t> cached_;  // the ids in the backend's cache, in order
  int turn_count_ = 0;
};

}  // namespace

int run_interactive_chat(DecoderBackend& backend, const Tokenizer& tokenizer, const InteractiveChatSettings& settings) {
  SigintGuard sigint;
  const bool terminal = isatty(STDIN_FILENO) != 0;
  Conversation conversation(backend, tokenizer, settings);
  if (terminal)
    std::fprintf(stderr, "interactive chat: one line per message; /reset starts over, /exit (or Ctrl-D) ends; "
                         "Ctrl-C stops an answer\n");
  if (!settings.first_message.empty()) conversation.turn(settings.first_message);
  LineReader reader;
  std::string line;
  for (;;) {
    if (terminal) {
      std::fputs("> ", stdout);
      std::fflush(stdout);
    }
    const LineReader::Status status = reader.next(line);
    if (status == LineReader::Status::Interrupted) {
      if (terminal) std::fputc('\n', stdout);
      break;
    }
    if (status == LineReader::Status::EndOfInput) break;
    const std::string message = trim(line);
    if (message.empty()) continue;
    if (message == "/exit" || message == "/quit") break;
    if (message == "/reset") {
      conversation.reset();
      std::fprintf(stderr, "conversation reset\n");
      continue;
    }
    if (message[0] == '/') {
      std::fprintf(stderr, "unknown command %s: the commands are /reset and /exit\n", message.c_str());
      continue;
    }
    const int64_t bad = find_invalid_utf8(message);
    if (bad >= 0) {
      std::fprintf(stderr, "this message is not valid UTF-8 at byte offset %lld: not sent\n", static_cast<long long>(bad));
      continue;
    }
    conversation.turn(message);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace runllm::cli
