// A read-only memory mapping of a whole file (RAII). Shared by the safetensors and GGUF readers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace runllm {

class MappedFile {
 public:
  // Throws runllm::Error naming the path when it cannot be opened or mapped. Empty files map to
  // size 0 with data() == nullptr.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace runllm
