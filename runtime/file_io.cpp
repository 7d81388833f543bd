#include "runtime/file_io.h"

#include <fstream>
#include <sstream>

#include "runtime/error.h"

namespace runllm {

std::string read_whole_file(const std::string& path, const std::string& expected) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw Error(path + ": cannot open" + (expected.empty() ? "" : " (expected " + expected + ")"));
  std::ostringstream text;
  text << stream.rdbuf();
  if (stream.bad()) throw Error(path + ": read failed");
  return text.str();
}

}  // namespace runllm
