#include "model/quantize/calibration.h"

#include <algorithm>
#include <filesystem>
#include <random>

#include "runtime/error.h"
#include "runtime/file_io.h"
#include "tokenizer/tokenizer.h"

namespace runllm {

namespace {

namespace fs = std::filesystem;

// The running executable's directory (Linux: /proc/self/exe); empty when it cannot be read.
fs::path executable_directory() {
  std::error_code error;
  const fs::path executable = fs::read_symlink("/proc/self/exe", error);
  return error ? fs::path() : executable.parent_path();
}

}  // namespace

std::string find_default_calibration_file() {
  std::error_code error;
  // build/run-llm, build/tests/unit_tests, a build directory one level deeper: four levels is plenty.
  fs::path directory = executable_directory();
  for (int level = 0; level < 4 && !directory.empty(); ++level) {
    const fs::path candidate = directory / kDefaultCalibrationFile;
    if (fs::is_regular_file(candidate, error)) return candidate.lexically_normal().string();
    if (directory == directory.root_path()) break;
    directory = directory.parent_path();
  }
  if (fs::is_regular_file(kDefaultCalibrationFile, error)) return kDefaultCalibrationFile;
  return "";
}

std::string resolve_calibration_file(const std::string& requested) {
  std::string path = requested;
  if (path.empty()) {
    path = find_default_calibration_file();
    if (path.empty()) {
      std::error_code error;
      const fs::path cwd = fs::current_path(error);
      throw Error(std::string("no calibration text: pass --calib FILE (the default is the repository's ") +
                  kDefaultCalibrationFile + ", looked for above the executable's directory " +
                  executable_directory().string() + " and under the working directory " + cwd.string() + ")");
    }
  } else {
    std::error_code error;
    if (!std::filesystem::is_regular_file(path, error)) throw Error(path + ": calibration file not found (--calib)");
  }
  if (std::filesystem::path(path).filename() == "wiki.test.raw")
    throw Error(path + ": this is the evaluation text; calibrate on other text (e.g. " + kDefaultCalibrationFile + ")");
  return path;
}

CalibrationSet sample_calibration_windows(const std::vector<int32_t>& tokens, int64_t samples, int64_t length,
                                          uint64_t seed, const std::string& source) {
  if (samples <= 0) throw Error("--calib-samples must be positive, got " + std::to_string(samples));
  if (length <= 0) throw Error("--calib-len must be positive, got " + std::to_string(length));
  const int64_t total = static_cast<int64_t>(tokens.size());
  if (total < length)
    throw Error(source + ": " + std::to_string(total) + " tokens, too few for --calib-len " + std::to_string(length) +
                " (use a longer text or a smaller --calib-len)");
  CalibrationSet set;
  set.samples = samples;
  set.length = length;
  set.file_tokens = total;
  set.tokens.resize(static_cast<size_t>(samples * length));
  set.offsets.resize(static_cast<size_t>(samples));
  std::mt19937_64 generator(seed);
  const uint64_t positions = static_cast<uint64_t>(total - length + 1);
  for (int64_t s = 0; s < samples; ++s) {
    const int64_t offset = static_cast<int64_t>(generator() % positions);
    set.offsets[static_cast<size_t>(s)] = offset;
    std::copy(tokens.begin() + offset, tokens.begin() + offset + length, set.tokens.begin() + s * length);
  }
  return set;
}

CalibrationSet load_calibration_set(const std::string& path, const Tokenizer& tokenizer, int64_t samples,
                                    int64_t length, uint64_t seed) {
  const std::string text = read_whole_file(path, "a UTF-8 calibration text");
  if (const int64_t bad = find_invalid_utf8(text); bad >= 0)
    throw Error(path + ": invalid UTF-8 at byte " + std::to_string(bad) + " (expected a UTF-8 calibration text)");
  const std::vector<int32_t> tokens = tokenizer.encode(text, false);
  return sample_calibration_windows(tokens, samples, length, seed, path);
}

}  // namespace runllm
