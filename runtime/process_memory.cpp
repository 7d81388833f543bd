#include "runtime/process_memory.h"

#include <cstdio>
#include <cstring>

namespace runllm {

namespace {

size_t status_kilobytes(const char* key) {
  std::FILE* file = std::fopen("/proc/self/status", "r");
  if (!file) return 0;
  char line[256];
  size_t value = 0;
  const size_t length = std::strlen(key);
  while (std::fgets(line, sizeof line, file))
    if (std::strncmp(line, key, length) == 0 && line[length] == ':') {
      std::sscanf(line + length + 1, "%zu", &value);
      break;
    }
  std::fclose(file);
  return value * 1024;
}

}  // namespace

size_t resident_anonymous_bytes() { return status_kilobytes("RssAnon"); }
size_t peak_resident_bytes() { return status_kilobytes("VmHWM"); }

}  // namespace runllm
