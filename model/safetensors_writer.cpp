#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/safetensors.h"
#include "runtime/error.h"

namespace runllm {

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes) {
  int64_t numel = 1;
  for (int64_t dim : shape) numel *= dim;
  if (bytes.size() != static_cast<size_t>(numel) * dtype_size(dtype))
    throw Error(name + ": tensor byte size " + std::to_string(bytes.size()) + " does not match its shape");
  entries_[name] = Entry{dtype, std::move(shape), std::move(bytes)};
}

void SafetensorsWriter::add_f16(const std::string& name, std::vector<int64_t> shape,
                                const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t half = float_to_half(values[i]);
    std::memcpy(&bytes[2 * i], &half, 2);  // little-endian host
  }
  add(name, DType::F16, std::move(shape), std::move(bytes));
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& [name, entry] : entries_) {  // std::map: sorted by name, as the reference writer
    header[name] = {{"dtype", dtype_name(entry.dtype)},
                    {"shape", entry.shape},
                    {"data_offsets", {offset, offset + entry.bytes.size()}}};
    offset += entry.bytes.size();
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned (what the reference writer does).
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_size = header_text.size();

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot open for writing");
  out.write(reinterpret_cast<const char*>(&header_size), 8);
  out.write(header_text.data(), static_cast<std::streamsize>(header_text.size()));
  for (const auto& [name, entry] : entries_)
    out.write(reinterpret_cast<const char*>(entry.bytes.data()), static_cast<std::streamsize>(entry.bytes.size()));
  out.close();
  if (!out) throw Error(path + ": write failed (disk full?)");
}

StreamingSafetensorsWriter::StreamingSafetensorsWriter(const std::string& path, const std::map<std::string, Spec>& tensors,
                                                       const std::map<std::string, std::string>& metadata)
    : path_(path), partial_path_(path + ".partial") {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, spec] : tensors) {  // std::map: sorted by name, as SafetensorsWriter
    uint64_t numel = 1;
    for (int64_t dim : spec.shape) numel *= static_cast<uint64_t>(dim);
    const uint64_t size = numel * dtype_size(spec.dtype);
    header[name] = {{"dtype", dtype_name(spec.dtype)}, {"shape", spec.shape}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    order_.push_back(name);
    sizes_.push_back(size);
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  const uint64_t header_size = header_text.size();
  file_ = std::fopen(partial_path_.c_str(), "wb");
  if (file_ == nullptr) throw Error(partial_path_ + ": cannot open for writing");
  if (std::fwrite(&header_size, 8, 1, file_) != 1 ||
      std::fwrite(header_text.data(), 1, header_text.size(), file_) != header_text.size())
    throw Error(partial_path_ + ": write failed (disk full?)");
}

StreamingSafetensorsWriter::~StreamingSafetensorsWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(partial_path_.c_str());
  }
}

void StreamingSafetensorsWriter::write(const std::string& name, const uint8_t* bytes, size_t size) {
  if (file_ == nullptr || next_ >= order_.size() || order_[next_] != name)
    throw Error(path_ + ": tensor " + name + " written out of order (expected " +
                (next_ < order_.size() ? order_[next_] : std::string("none")) + ")");
  if (size != sizes_[next_])
    throw Error(path_ + ": tensor " + name + " has " + std::to_string(size) + " bytes, its header says " +
                std::to_string(sizes_[next_]));
  if (size > 0 && std::fwrite(bytes, 1, size, file_) != size) throw Error(partial_path_ + ": write failed (disk full?)");
  ++next_;
}

void StreamingSafetensorsWriter::finish() {
  if (file_ == nullptr) return;
  if (next_ != order_.size())
    throw Error(path_ + ": only " + std::to_string(next_) + " of " + std::to_string(order_.size()) + " tensors written");
  const bool failed = std::fclose(file_) != 0;
  file_ = nullptr;
  if (failed) {
    std::remove(partial_path_.c_str());
    throw Error(partial_path_ + ": write failed (disk full?)");
  }
  if (std::rename(partial_path_.c_str(), path_.c_str()) != 0) throw Error(path_ + ": cannot rename " + partial_path_ + " into place");
}

}  // namespace runllm
