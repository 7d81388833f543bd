// safetensors checkpoints: validated, memory-mapped reading (one file or a sharded index) and writing.
// Format: u64 little-endian header length N, N bytes of UTF-8 JSON, then the data section
// (FORMATS.md §2). Every structural rule is checked at open time so later reads cannot go out of bounds.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime/dtype.h"
#include "runtime/tensor_view.h"

namespace runllm {

class MappedFile;

// One .safetensors file, memory-mapped read-only.
class SafetensorsFile {
 public:
  // Throws runllm::Error naming the file and the rule broken: file shorter than 8 bytes, header
  // length past the end of the file or over the 100 MB cap, header not a JSON object (or nested
  // deeper than 64 levels, or with a duplicate key), more than 100,000 tensors, unknown dtype,
  // negative/overflowing shape or rank over 8, end - begin != numel * itemsize, offsets out of range
  // or overlapping, gaps in the data section.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  // The same checks on a file already in memory (what open() runs on its mapping); `bytes` must
  // outlive the result, and `path` only names the file in errors.
  static std::unique_ptr<SafetensorsFile> parse(const std::string& path, const uint8_t* bytes, uint64_t size);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  const TensorView* find(const std::string& name) const;  // nullptr when absent
  std::vector<std::string> names() const;                 // sorted
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  std::unique_ptr<MappedFile> mapping_;  // null for parse()
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// All weights of a checkpoint directory: model.safetensors, or the shards named by
// model.safetensors.index.json ({"weight_map": {tensor: file}}). A tensor the index names must exist
// in the shard it names; shard names are plain file names of regular files in the directory, at most
// 10,000 of them.
class Checkpoint : public TensorSource {
 public:
  static Checkpoint open_dir(const std::string& dir);

  bool has(const std::string& name) const override;
  // Throws "DIR: missing tensor NAME" when absent.
  const TensorView& get(const std::string& name) const override;
  std::vector<std::string> names() const;
  std::vector<float> read_f32(const std::string& name, const std::vector<int64_t>& expected_shape) const override;

 private:
  std::string dir_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorView*> index_;
};

// Builds a safetensors file in memory order of add() calls; tensors are written sorted by name
// (as the reference writer does), 8-byte aligned header.
class SafetensorsWriter : public TensorSink {
 public:
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) override;
  void add_f16(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) override;
  void set_metadata(const std::string& key, const std::string& value);
  void write(const std::string& path) const;  // throws naming the path on I/O failure

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes a safetensors file tensor by tensor, holding none of them: the header, computed from the
// names, dtypes and shapes given up front, goes first (laid out as SafetensorsWriter lays it out:
// sorted by name, 8-byte aligned), then write() streams each tensor's bytes in that sorted order
// (order() lists it). The file is written as PATH.partial and renamed to PATH by finish(), so an
// interrupted conversion never leaves a file that looks complete.
class StreamingSafetensorsWriter {
 public:
  struct Spec {
    DType dtype;
    std::vector<int64_t> shape;
  };
  StreamingSafetensorsWriter(const std::string& path, const std::map<std::string, Spec>& tensors,
                             const std::map<std::string, std::string>& metadata);
  ~StreamingSafetensorsWriter();  // removes the .partial file unless finish() ran
  const std::vector<std::string>& order() const { return order_; }
  // The next tensor's bytes: `name` must be order()[next] and the size must match its spec.
  void write(const std::string& name, const uint8_t* bytes, size_t size);
  void finish();  // throws unless every tensor was written; then renames into place

 private:
  std::string path_, partial_path_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> order_;
  std::vector<uint64_t> sizes_;
  size_t next_ = 0;
};

}  // namespace runllm
