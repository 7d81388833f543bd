// Calibration samples for the quantizers: windows of consecutive tokens cut from one text file at
// seeded random offsets, so the same file, sizes and seed always give the same samples.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace runllm {

class Tokenizer;

// The project's calibration text, relative to the repository root (tests/data/text/README.md has its
// source, hash and licence).
constexpr const char* kDefaultCalibrationFile = "tests/data/text/pride_and_prejudice.txt";

// Where the default calibration text is for this process: kDefaultCalibrationFile under the first
// repository found from the running executable's directory upwards (build/run-llm -> the repository it
// was built from, whatever the working directory), else under the working directory. "" when neither
// has it.
std::string find_default_calibration_file();

// `requested` when given; else find_default_calibration_file(); else throws runllm::Error asking for
// --calib and naming where it looked. Refuses the evaluation text (wiki.test.raw): calibrating on it
// would flatter every perplexity measured afterwards.
std::string resolve_calibration_file(const std::string& requested);

struct CalibrationSet {
  int64_t samples = 0;          // S
  int64_t length = 0;           // L tokens per sample
  int64_t file_tokens = 0;      // tokens in the whole file
  std::vector<int32_t> tokens;  // [S, L]
  std::vector<int64_t> offsets; // [S] first token of each window in the tokenized file
};

// Picks `samples` windows of `length` tokens from `tokens` (the whole file, tokenized without BOS).
// Offsets come from std::mt19937_64 seeded with `seed`: offset_i = (i-th output) mod (T - L + 1), so
// they do not depend on the standard library's distribution classes. Windows may overlap.
// Throws naming `source` when the file has fewer than `length` tokens.
CalibrationSet sample_calibration_windows(const std::vector<int32_t>& tokens, int64_t samples, int64_t length,
                                          uint64_t seed, const std::string& source);

// Reads and tokenizes `path` (UTF-8), then sample_calibration_windows.
CalibrationSet load_calibration_set(const std::string& path, const Tokenizer& tokenizer, int64_t samples,
                                    int64_t length, uint64_t seed);

}  // namespace runllm
