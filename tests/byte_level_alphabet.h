// GPT-2's byte alphabet (bytes_to_unicode), as tokenizer.json spells single bytes, written for the tests
// independently of tokenizer/: printable bytes keep their code point, the others take U+0100, U+0101,
// ... in byte order. Shared by the unit tests, the synthetic model and the fuzz targets.
#pragma once

#include <string>

namespace runllm::test {

inline bool byte_keeps_code_point(int byte) {
  return (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || byte >= 0xAE;
}

// The UTF-8 text of byte `byte`'s character in the byte-level alphabet.
inline std::string byte_level_char(int byte) {
  int code_point = byte;
  if (!byte_keeps_code_point(byte)) {
    code_point = 256;
    for (int other = 0; other < byte; ++other) code_point += byte_keeps_code_point(other) ? 0 : 1;
  }
  if (code_point < 0x80) return std::string(1, static_cast<char>(code_point));
  return {static_cast<char>(0xC0 | (code_point >> 6)), static_cast<char>(0x80 | (code_point & 0x3F))};
}

}  // namespace runllm::test
