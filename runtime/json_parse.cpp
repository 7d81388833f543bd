#include "runtime/json_parse.h"

#include <filesystem>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/file_io.h"

namespace runllm {

using nlohmann::json;

namespace {

// A first pass over the text that builds nothing: it checks nesting before the DOM parser (which is
// iterative) builds anything, and duplicate keys where asked. nlohmann's callback parser could do
// both, but it rescans the enclosing object at every object end: quadratic in the number of
// tensors of a safetensors header.
class StructureCheck : public nlohmann::json_sax<json> {
 public:
  StructureCheck(const std::string& what, DuplicateKeys duplicates) : what_(what), duplicates_(duplicates) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    open();
    keys_per_open_object_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (duplicates_ == DuplicateKeys::Refuse && !keys_per_open_object_.back().insert(key).second)
      throw Error(what_ + ": duplicate key \"" + key + "\"");
    return true;
  }
  bool end_object() override {
    --depth_;
    keys_per_open_object_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    open();
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& error) override {
    throw Error(what_ + ": not valid JSON: " + error.what());
  }

 private:
  void open() {
    if (++depth_ > kMaxJsonDepth)
      throw Error(what_ + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }

  const std::string& what_;
  DuplicateKeys duplicates_;
  int depth_ = 0;
  std::vector<std::set<std::string>> keys_per_open_object_;  // keys recorded for DuplicateKeys::Refuse only
};

void check_structure(const std::string& text, const std::string& what, DuplicateKeys duplicates) {
  StructureCheck check(what, duplicates);
  json::sax_parse(text, &check);
}

// Refuses what is not a regular file (a FIFO would block the read) or is over kMaxJsonFileBytes; a
// missing file is left to read_whole_file's "cannot open" error.
void check_json_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (fs::exists(status)) {
    if (!fs::is_regular_file(status)) throw Error(path + ": not a regular file");
    const uintmax_t size = fs::file_size(path, error);
    if (error) throw Error(path + ": cannot read its size: " + error.message());
    if (size > kMaxJsonFileBytes)
      throw Error(path + ": " + std::to_string(size) + " bytes is over the " + std::to_string(kMaxJsonFileBytes) +
                  "-byte limit for a JSON file");
  }
}

}  // namespace

json parse_json(const std::string& text, const std::string& what, DuplicateKeys duplicates) {
  check_structure(text, what, duplicates);
  return json::parse(text);  // cannot fail now: the check saw every syntax error
}

json read_json_file(const std::string& path, const std::string& expected, DuplicateKeys duplicates) {
  check_json_file(path);
  return parse_json(read_whole_file(path, expected), path, duplicates);
}

std::string read_checked_json_text(const std::string& path, const std::string& expected) {
  check_json_file(path);
  std::string text = read_whole_file(path, expected);
  check_structure(text, path, DuplicateKeys::LastWins);
  return text;
}

std::optional<json> read_optional_json_file(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::nullopt;
  return read_json_file(path);
}

}  // namespace runllm
