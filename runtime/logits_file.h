// The logits file of `--save-logits FILE` (written by a base run) and `--kl-divergence FILE`
// (read by a run under test): the base model's log-softmax at every scored position, stored
// compactly, plus the evaluated tokens so the comparing run can check it scores the same text.
//
// Format, version 1. All numbers little-endian, no padding.
//
//   offset  size  field
//   0       8     magic "RLLMLOGP"
//   8       4     u32 version = 1
//   12      4     u32 vocab_size (V)
//   16      4     u32 context_size: tokens per evaluated window, so the comparing run can use the same windows
//   20      8     u64 position_count (P); all ones while the file is being written, set on finish
//   28      8     u64 token_count (T)
//   36      4*T   i32 tokens: the whole evaluated token sequence
//   then P records of 20 + 2*V bytes:
//           8     u64 target_index: these log-probs predict tokens[target_index], 1 <= target_index < T
//           4     f32 target_log_prob: log p(tokens[target_index]), exact
//           4     f32 max_log_prob: the largest log-prob of the position
//           4     f32 min_log_prob: max(smallest log-prob, max_log_prob - kLogitsFileLogProbWindow)
//           2*V   u16 q[V]: log p(i) ~= min_log_prob + q[i] * (max_log_prob - min_log_prob) / 65535
//
// The quantization follows llama.cpp's perplexity tool (uint16 log-probs over a range clamped
// below the maximum; tools/perplexity/perplexity.cpp), with two changes. The window is 32 nats
// instead of 16: ik_llama.cpp PR #325 found the 16-nat floor biases the base perplexity on
// large vocabularies, and it drops up to V * e^-16 of probability mass from the KL sum, while
// V * e^-32 is negligible for any vocabulary. And the target token's log-prob is stored exactly,
// so the base perplexity read back from the file is the base run's own, unclamped. The cost is
// a coarser step: the error of a stored log-prob at or above min_log_prob is at most half of
// (max_log_prob - min_log_prob) / 65535 <= 32 / 131070 = 2.4e-4 nats (plus f32 rounding);
// log-probs below min_log_prob read back as min_log_prob.
#pragma once
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "runtime/mapped_file.h"

namespace runllm {

constexpr float kLogitsFileLogProbWindow = 32.0f;  // nats below the max log-prob that the u16 range covers

// Streams positions to disk: only the tokens and one encoded position are held in memory.
// A writer destroyed before finish() leaves position_count all ones, so readers reject the file
// as incomplete instead of reading a partial run.
class LogitsFileWriter {
 public:
  // Creates or truncates path and writes the header and tokens. Throws runllm::Error naming the
  // file on I/O failure or sizes the format cannot hold.
  LogitsFileWriter(const std::string& path, int64_t vocab_size, int64_t context_size,
                   const std::vector<int32_t>& tokens);

  // Appends one position: logits (vocab_size raw values) predict tokens[target_index].
  // Throws on NaN or +inf logits and on a target_index outside [1, token_count).
  void write_position(int64_t target_index, const float* logits);
  // Records the position count and closes the file; throws naming the file if that fails.
  void finish();
  int64_t position_count() const { return position_count_; }

 private:
  void write_bytes(const void* data, size_t size);

  std::string path_;
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_{nullptr, &std::fclose};
  int64_t vocab_size_;
  std::vector<int32_t> tokens_;  // to look up each position's target token
  int64_t position_count_ = 0;
  std::vector<uint8_t> record_;  // one position, encoded
};

// Reads a finished logits file through a read-only mapping; positions are decoded on demand.
class LogitsFileReader {
 public:
  // Validates magic, version, sizes and completeness; every error names the file.
  explicit LogitsFileReader(const std::string& path);

  const std::string& path() const { return file_.path(); }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t context_size() const { return context_size_; }
  int64_t position_count() const { return position_count_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

  // Throws runllm::Error unless this run evaluates the same tokens with the same vocab size and
  // context size as the run that wrote the file ("FILE: was made from different text or
  // tokenizer (first difference at token 17: ...)").
  void check_matches(const std::vector<int32_t>& tokens, int64_t vocab_size, int64_t context_size) const;

  // The index into tokens() of the token that position predicts.
  int64_t target_index(int64_t position) const;
  int32_t target_token(int64_t position) const { return tokens_[static_cast<size_t>(target_index(position))]; }
  // Decodes position's log-probs into log_probs[0 .. vocab_size); the target token's entry is
  // its exact stored value.
  void read_log_probs(int64_t position, float* log_probs) const;

 private:
  const uint8_t* record(int64_t position) const;

  MappedFile file_;
  int64_t vocab_size_ = 0;
  int64_t context_size_ = 0;
  int64_t position_count_ = 0;
  std::vector<int32_t> tokens_;
  size_t records_offset_ = 0;
};

}  // namespace runllm
