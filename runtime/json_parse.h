// JSON from files run-llm did not write (config.json, tokenizer.json, safetensors headers, indexes):
// size and nesting are capped before anything is built, so a hostile file ends in a runllm::Error.
// nlohmann::json parses and destroys without recursion, but copying and dump() recurse once per
// nesting level, so an unbounded depth would be a stack overflow waiting for the first error message.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace runllm {

// Far above any real file: tokenizer.json nests about 8 levels, config.json about 5.
inline constexpr int kMaxJsonDepth = 64;
// The largest real tokenizer.json files are ~35 MB (256k-token vocabularies).
inline constexpr uint64_t kMaxJsonFileBytes = uint64_t{128} << 20;

enum class DuplicateKeys { LastWins, Refuse };

// Throws "WHAT: not valid JSON: ...", "WHAT: JSON nested deeper than 64 levels" or, with Refuse,
// "WHAT: duplicate key "K"".
nlohmann::json parse_json(const std::string& text, const std::string& what,
                          DuplicateKeys duplicates = DuplicateKeys::LastWins);

// Reads PATH and parses it, naming PATH in every error. A path that is not a regular file (a FIFO
// would block the read) or is larger than kMaxJsonFileBytes is refused before reading; a missing
// file is "PATH: cannot open (expected EXPECTED)".
nlohmann::json read_json_file(const std::string& path, const std::string& expected = "",
                              DuplicateKeys duplicates = DuplicateKeys::LastWins);
// The same for optional files: nullopt when PATH does not exist.
std::optional<nlohmann::json> read_optional_json_file(const std::string& path);
// The text of PATH after read_json_file's checks (file kind, size, syntax, depth), for a caller
// that parses it again itself, e.g. into nlohmann::ordered_json to keep the key order.
std::string read_checked_json_text(const std::string& path, const std::string& expected = "");

}  // namespace runllm
