#include "runtime/logits_file.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "runtime/error.h"

// The format is little-endian and records are copied to and from memory as they are.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "logits files are written in host byte order");

namespace runllm {
namespace {

constexpr char kMagic[8] = {'R', 'L', 'L', 'M', 'L', 'O', 'G', 'P'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = 36;
constexpr size_t kPositionCountOffset = 20;
constexpr uint64_t kUnfinished = std::numeric_limits<uint64_t>::max();
constexpr size_t kRecordHeaderSize = 20;  // target_index, target_log_prob, max_log_prob, min_log_prob
constexpr float kLevels = 65535.0f;

size_t record_size(int64_t vocab_size) { return kRecordHeaderSize + 2 * static_cast<size_t>(vocab_size); }

template <typename T>
T load(const uint8_t* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

template <typename T>
void store(uint8_t* bytes, T value) {
  std::memcpy(bytes, &value, sizeof value);
}

// The u16 step both sides derive from the two stored floats, so they agree bit for bit.
float quantization_step(float max_log_prob, float min_log_prob) { return (max_log_prob - min_log_prob) / kLevels; }

// Encodes one position's log-softmax into record (after its target_index field).
void encode_log_probs(const float* logits, int64_t vocab_size, int32_t target_token, uint8_t* record) {
  double max_logit = -std::numeric_limits<double>::infinity();
  double min_logit = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < vocab_size; ++i) {
    if (std::isnan(logits[i])) throw Error("logits contain NaN");
    if (logits[i] == std::numeric_limits<float>::infinity()) throw Error("logits contain +inf");
    max_logit = std::max(max_logit, static_cast<double>(logits[i]));
    min_logit = std::min(min_logit, static_cast<double>(logits[i]));
  }
  if (max_logit == -std::numeric_limits<double>::infinity()) throw Error("logits are all -inf");
  double sum = 0;
  for (int64_t i = 0; i < vocab_size; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  const double log_normalizer = max_logit + std::log(sum);

  const float max_log_prob = static_cast<float>(max_logit - log_normalizer);
  const float min_log_prob =
      std::max(static_cast<float>(min_logit - log_normalizer), max_log_prob - kLogitsFileLogProbWindow);
  const float step = quantization_step(max_log_prob, min_log_prob);
  store(record + 8, static_cast<float>(static_cast<double>(logits[target_token]) - log_normalizer));
  store(record + 12, max_log_prob);
  store(record + 16, min_log_prob);

  uint8_t* levels = record + kRecordHeaderSize;
  for (int64_t i = 0; i < vocab_size; ++i) {
    uint16_t level = 0;  // all values equal (step 0), or at/below the window's floor
    if (step > 0) {
      const double scaled = (static_cast<double>(logits[i]) - log_normalizer - min_log_prob) / step;
      level = static_cast<uint16_t>(std::lround(std::min(std::max(scaled, 0.0), static_cast<double>(kLevels))));
    }
    store(levels + 2 * i, level);
  }
}

}  // namespace

LogitsFileWriter::LogitsFileWriter(const std::string& path, int64_t vocab_size, int64_t context_size,
                                   const std::vector<int32_t>& tokens)
    : path_(path), vocab_size_(vocab_size), tokens_(tokens) {
  constexpr int64_t max_u32 = std::numeric_limits<uint32_t>::max();
  if (vocab_size <= 0 || vocab_size > max_u32)
    throw Error(path + ": vocab size must be in [1, 2^32), got " + std::to_string(vocab_size));
  if (context_size <= 0 || context_size > max_u32)
    throw Error(path + ": context size must be in [1, 2^32), got " + std::to_string(context_size));
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab_size)
      throw Error(path + ": token " + std::to_string(i) + " has id " + std::to_string(tokens[i]) +
                  ", outside the vocab of " + std::to_string(vocab_size));

  file_.reset(std::fopen(path.c_str(), "wb"));
  if (!file_) throw Error(path + ": cannot create: " + std::strerror(errno));
  uint8_t header[kHeaderSize];
  std::memcpy(header, kMagic, sizeof kMagic);
  store(header + 8, kVersion);
  store(header + 12, static_cast<uint32_t>(vocab_size));
  store(header + 16, static_cast<uint32_t>(context_size));
  store(header + kPositionCountOffset, kUnfinished);
  store(header + 28, static_cast<uint64_t>(tokens.size()));
  write_bytes(header, sizeof header);
  write_bytes(tokens.data(), tokens.size() * sizeof(int32_t));
  record_.resize(record_size(vocab_size));
}

void LogitsFileWriter::write_bytes(const void* data, size_t size) {
  if (size > 0 && std::fwrite(data, 1, size, file_.get()) != size)
    throw Error(path_ + ": write failed: " + std::strerror(errno));
}

void LogitsFileWriter::write_position(int64_t target_index, const float* logits) {
  if (!file_) throw Error(path_ + ": write_position after finish");
  if (target_index < 1 || target_index >= static_cast<int64_t>(tokens_.size()))
    throw Error(path_ + ": target index " + std::to_string(target_index) + " is outside [1, " +
                std::to_string(tokens_.size()) + ")");
  store(record_.data(), static_cast<uint64_t>(target_index));
  encode_log_probs(logits, vocab_size_, tokens_[static_cast<size_t>(target_index)], record_.data());
  write_bytes(record_.data(), record_.size());
  ++position_count_;
}

void LogitsFileWriter::finish() {
  if (!file_) throw Error(path_ + ": finish called twice");
  const uint64_t count = static_cast<uint64_t>(position_count_);
  if (std::fflush(file_.get()) != 0 || std::fseek(file_.get(), kPositionCountOffset, SEEK_SET) != 0)
    throw Error(path_ + ": write failed: " + std::strerror(errno));
  write_bytes(&count, sizeof count);
  // fclose flushes the count: its result is the last word on whether the file is complete.
  if (std::fclose(file_.release()) != 0) throw Error(path_ + ": write failed: " + std::strerror(errno));
}

LogitsFileReader::LogitsFileReader(const std::string& path) : file_(path) {
  const uint8_t* data = file_.data();
  const size_t size = file_.size();
  if (size < sizeof kMagic || std::memcmp(data, kMagic, sizeof kMagic) != 0)
    throw Error(path + ": not a run-llm logits file (it does not start with RLLMLOGP)");
  if (size < kHeaderSize)
    throw Error(path + ": truncated: " + std::to_string(size) + " bytes, the header alone is " +
                std::to_string(kHeaderSize));
  const uint32_t version = load<uint32_t>(data + 8);
  if (version != kVersion)
    throw Error(path + ": logits file version " + std::to_string(version) + ", this build reads version " +
                std::to_string(kVersion));
  vocab_size_ = load<uint32_t>(data + 12);
  context_size_ = load<uint32_t>(data + 16);
  const uint64_t position_count = load<uint64_t>(data + kPositionCountOffset);
  const uint64_t token_count = load<uint64_t>(data + 28);
  if (vocab_size_ == 0) throw Error(path + ": vocab size is 0");
  if (context_size_ == 0) throw Error(path + ": context size is 0");
  if (position_count == kUnfinished)
    throw Error(path + ": incomplete: the run writing it stopped before finishing");

  const size_t token_bytes_available = size - kHeaderSize;
  if (token_count > token_bytes_available / sizeof(int32_t))
    throw Error(path + ": truncated: " + std::to_string(size) + " bytes cannot hold its " +
                std::to_string(token_count) + " tokens");
  tokens_.resize(static_cast<size_t>(token_count));
  std::memcpy(tokens_.data(), data + kHeaderSize, tokens_.size() * sizeof(int32_t));
  for (size_t i = 0; i < tokens_.size(); ++i)
    if (tokens_[i] < 0 || tokens_[i] >= vocab_size_)
      throw Error(path + ": token " + std::to_string(i) + " has id " + std::to_string(tokens_[i]) +
                  ", outside the vocab of " + std::to_string(vocab_size_));

  records_offset_ = kHeaderSize + tokens_.size() * sizeof(int32_t);
  const size_t record_bytes_available = size - records_offset_;
  const size_t whole_records = record_bytes_available / record_size(vocab_size_);
  if (position_count > whole_records)
    throw Error(path + ": truncated: " + std::to_string(size) + " bytes hold " + std::to_string(whole_records) +
                " of its " + std::to_string(position_count) + " positions");
  if (record_bytes_available != position_count * record_size(vocab_size_))
    throw Error(path + ": " + std::to_string(record_bytes_available - position_count * record_size(vocab_size_)) +
                " unexpected bytes after its " + std::to_string(position_count) + " positions");
  position_count_ = static_cast<int64_t>(position_count);
}

void LogitsFileReader::check_matches(const std::vector<int32_t>& tokens, int64_t vocab_size,
                                     int64_t context_size) const {
  if (vocab_size != vocab_size_)
    throw Error(path() + ": made with a vocab of " + std::to_string(vocab_size_) + ", this model has " +
                std::to_string(vocab_size));
  if (context_size != context_size_)
    throw Error(path() + ": made with context size " + std::to_string(context_size_) + ", this run uses " +
                std::to_string(context_size) + " (use the same context size)");
  const std::string mismatch = path() + ": was made from different text or tokenizer";
  if (tokens.size() != tokens_.size())
    throw Error(mismatch + " (it holds " + std::to_string(tokens_.size()) + " tokens, this run has " +
                std::to_string(tokens.size()) + ")");
  const auto difference = std::mismatch(tokens.begin(), tokens.end(), tokens_.begin());
  if (difference.first != tokens.end())
    throw Error(mismatch + " (first difference at token " + std::to_string(difference.first - tokens.begin()) +
                ": file has " + std::to_string(*difference.second) + ", this run has " +
                std::to_string(*difference.first) + ")");
}

const uint8_t* LogitsFileReader::record(int64_t position) const {
  if (position < 0 || position >= position_count_)
    throw Error(path() + ": position " + std::to_string(position) + " is outside [0, " +
                std::to_string(position_count_) + ")");
  return file_.data() + records_offset_ + static_cast<size_t>(position) * record_size(vocab_size_);
}

int64_t LogitsFileReader::target_index(int64_t position) const {
  const uint64_t index = load<uint64_t>(record(position));
  if (index < 1 || index >= tokens_.size())
    throw Error(path() + ": position " + std::to_string(position) + " predicts token index " +
                std::to_string(index) + ", outside [1, " + std::to_string(tokens_.size()) + ")");
  return static_cast<int64_t>(index);
}

void LogitsFileReader::read_log_probs(int64_t position, float* log_probs) const {
  const int32_t target = target_token(position);
  const uint8_t* bytes = record(position);
  const float target_log_prob = load<float>(bytes + 8);
  const float max_log_prob = load<float>(bytes + 12);
  const float min_log_prob = load<float>(bytes + 16);
  if (!(std::isfinite(max_log_prob) && std::isfinite(min_log_prob) && min_log_prob <= max_log_prob &&
        max_log_prob <= 0 && !std::isnan(target_log_prob) && target_log_prob <= 0))
    throw Error(path() + ": position " + std::to_string(position) + " is corrupt (log-prob range [" +
                std::to_string(min_log_prob) + ", " + std::to_string(max_log_prob) + "], target " +
                std::to_string(target_log_prob) + ")");
  const double step = quantization_step(max_log_prob, min_log_prob);
  const uint8_t* levels = bytes + kRecordHeaderSize;
  for (int64_t i = 0; i < vocab_size_; ++i)
    log_probs[i] = static_cast<float>(min_log_prob + step * load<uint16_t>(levels + 2 * i));
  log_probs[target] = target_log_prob;
}

}  // namespace runllm
