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

}  // namespace runllm
