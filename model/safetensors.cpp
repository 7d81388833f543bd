// Reading safetensors: one validated, memory-mapped file (SafetensorsFile) and a checkpoint directory
// of one file or index-named shards (Checkpoint). Rules follow FORMATS.md §2 and the reference reader
// (huggingface/safetensors `validate`, FORMATS-REFERENCE.md §1.1-1.2).
#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "runtime/error.h"
#include "runtime/json_parse.h"
#include "runtime/mapped_file.h"

namespace runllm {

namespace {

using nlohmann::json;

// The reference reader's header cap (MAX_HEADER_SIZE = 100,000,000 bytes).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Far above any checkpoint run-llm reads (a GPTQ Llama-3-405B holds ~3,500 tensors): more is a
// hostile header, refused before its entries are examined.
constexpr size_t kMaxTensorsPerFile = 100'000;
// The reference reader has no rank limit; real weights have rank 1 to 4.
constexpr size_t kMaxRank = 8;
// Sharded checkpoints have at most a few hundred shards; each one is a mapping, and the kernel's
// default limit is 65,530 mappings per process.
constexpr size_t kMaxShards = 10'000;
constexpr size_t kHeaderLengthBytes = 8;
constexpr const char* kSingleFileName = "model.safetensors";
constexpr const char* kIndexFileName = "model.safetensors.index.json";

uint64_t read_u64_le(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// An unsigned JSON integer (offsets, dims), or an error naming the tensor and field.
uint64_t json_to_unsigned(const json& value, const std::string& what) {
  if (!value.is_number_unsigned())  // nlohmann stores every non-negative JSON integer as unsigned
    throw Error(what + ": expected a non-negative integer, got " + value.dump());
  return value.get<uint64_t>();
}

// The byte range a tensor claims inside the data section, kept for the coverage check.
struct ClaimedRange {
  uint64_t begin;
  uint64_t end;
  const std::string* name;
};

// Validates one header entry and returns its view into the data section.
TensorView parse_tensor_entry(const std::string& name, const json& entry, const std::string& path,
                              const uint8_t* data_section, uint64_t data_size, std::vector<ClaimedRange>& ranges) {
  const std::string where = path + ": tensor " + name;
  if (!entry.is_object()) throw Error(where + ": expected an object {dtype, shape, data_offsets}, got " + entry.dump());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(key)) throw Error(where + ": missing \"" + key + "\"");

  TensorView view{};
  view.name = name;
  const json& dtype = entry.at("dtype");
  if (!dtype.is_string()) throw Error(where + ": \"dtype\" must be a string, got " + dtype.dump());
  try {
    view.dtype = dtype_from_name(dtype.get<std::string>());
  } catch (const Error& error) {
    throw Error(where + ": " + error.what());
  }

  const json& shape = entry.at("shape");
  if (!shape.is_array()) throw Error(where + ": \"shape\" must be an array, got " + shape.dump());
  if (shape.size() > kMaxRank)
    throw Error(where + ": shape has " + std::to_string(shape.size()) + " dimensions, more than the " +
                std::to_string(kMaxRank) + " run-llm accepts");
  // Each dimension and every partial product must fit in int64, as TensorView::numel() multiplies in
  // that order.
  uint64_t numel = 1;
  for (const json& dim : shape) {
    const uint64_t extent = json_to_unsigned(dim, where + ": shape dimension");
    if (extent > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, extent, &numel) ||
        numel > static_cast<uint64_t>(INT64_MAX))
      throw Error(where + ": shape " + shape.dump() + " has too many elements");
    view.shape.push_back(static_cast<int64_t>(extent));
  }
  uint64_t expected_bytes = 0;
  if (__builtin_mul_overflow(numel, dtype_size(view.dtype), &expected_bytes))
    throw Error(where + ": shape " + shape.dump() + " is too large in bytes");

  const json& offsets = entry.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    throw Error(where + ": \"data_offsets\" must be [begin, end], got " + offsets.dump());
  const uint64_t begin = json_to_unsigned(offsets[0], where + ": data_offsets begin");
  const uint64_t end = json_to_unsigned(offsets[1], where + ": data_offsets end");
  if (end < begin) throw Error(where + ": data_offsets end " + std::to_string(end) + " < begin " + std::to_string(begin));
  if (end - begin != expected_bytes)
    throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "] hold " +
                std::to_string(end - begin) + " bytes, but " + dtype_name(view.dtype) + " " +
                shape_to_string(view.shape) + " needs " + std::to_string(expected_bytes));
  if (end > data_size)
    throw Error(where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                "] run past the end of the data section (" + std::to_string(data_size) + " bytes)");
  view.nbytes = static_cast<size_t>(expected_bytes);
  view.data = data_section + begin;
  ranges.push_back({begin, end, &name});
  return view;
}

// The reference reader requires the tensors, sorted by offset, to tile the data section exactly:
// no overlap, no hole, nothing after the last tensor.
void check_ranges_tile_data(std::vector<ClaimedRange> ranges, uint64_t data_size, const std::string& path) {
  std::sort(ranges.begin(), ranges.end(), [](const ClaimedRange& a, const ClaimedRange& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered_to = 0;
  const std::string* previous = nullptr;
  for (const ClaimedRange& range : ranges) {
    if (range.begin < covered_to)
      throw Error(path + ": tensor " + *range.name + " (bytes " + std::to_string(range.begin) + ".." +
                  std::to_string(range.end) + ") overlaps tensor " + *previous + " (ends at " +
                  std::to_string(covered_to) + ")");
    if (range.begin > covered_to)
      throw Error(path + ": gap of " + std::to_string(range.begin - covered_to) + " unused bytes at data offset " +
                  std::to_string(covered_to) + " before tensor " + *range.name +
                  " (the data section must be fully covered by tensors)");
    covered_to = range.end;
    previous = range.name;
  }
  if (covered_to != data_size)
    throw Error(path + ": gap of " + std::to_string(data_size - covered_to) +
                " unused bytes at the end of the data section (tensors cover " + std::to_string(covered_to) +
                " of " + std::to_string(data_size) + " bytes; the data section must be fully covered)");
}

std::map<std::string, std::string> parse_metadata(const json& metadata, const std::string& path) {
  std::map<std::string, std::string> result;
  if (metadata.is_null()) return result;  // the reference reader treats null as absent
  if (!metadata.is_object())
    throw Error(path + ": \"__metadata__\" must be an object of string to string, got " + metadata.dump());
  for (const auto& item : metadata.items()) {
    if (!item.value().is_string())
      throw Error(path + ": \"__metadata__\" value of \"" + item.key() + "\" must be a string, got " +
                  item.value().dump());
    result[item.key()] = item.value().get<std::string>();
  }
  return result;
}


// A shard name from the index must be a plain file inside the checkpoint directory.
void check_plain_file_name(const std::string& shard, const std::string& index_path) {
  if (shard.empty() || shard == "." || shard == ".." || shard.find('/') != std::string::npos ||
      shard.find('\\') != std::string::npos || shard.find('\0') != std::string::npos)
    throw Error(index_path + ": shard file name \"" + shard +
                "\" must be a plain file name in the checkpoint directory (no '/' or '..')");
}

// Opening a FIFO or a device would block or read forever: weights must be regular files. `what`
// says who named the file.
void require_regular_file(const std::string& path, const std::string& what) {
  std::error_code error;  // a name too long for the file system is an Error here, not an exception
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (!std::filesystem::exists(status))
    throw Error(what + ": " + path + " does not exist" + (error ? " (" + error.message() + ")" : ""));
  if (!std::filesystem::is_regular_file(status)) throw Error(what + ": " + path + " is not a regular file");
}

// weight_map: {tensor name: shard file name} (FORMATS.md §1).
std::map<std::string, std::string> parse_weight_map(const std::string& index_path) {
  const json index = read_json_file(index_path, "", DuplicateKeys::Refuse);
  if (!index.is_object()) throw Error(index_path + ": expected a JSON object with \"weight_map\"");
  if (!index.contains("weight_map")) throw Error(index_path + ": missing \"weight_map\"");
  const json& weight_map = index.at("weight_map");
  if (!weight_map.is_object())
    throw Error(index_path + ": \"weight_map\" must be an object of tensor name to shard file name");
  std::map<std::string, std::string> shard_of;
  for (const auto& item : weight_map.items()) {
    if (!item.value().is_string())
      throw Error(index_path + ": weight_map entry \"" + item.key() + "\" must be a shard file name string, got " +
                  item.value().dump());
    const std::string shard = item.value().get<std::string>();
    check_plain_file_name(shard, index_path);
    shard_of[item.key()] = shard;
  }
  std::set<std::string> shards;
  for (const auto& item : shard_of) shards.insert(item.second);
  if (shards.size() > kMaxShards)
    throw Error(index_path + ": weight_map names " + std::to_string(shards.size()) + " shard files, more than the " +
                std::to_string(kMaxShards) + " run-llm opens");
  return shard_of;
}

}  // namespace

SafetensorsFile::~SafetensorsFile() = default;

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto mapping = std::make_unique<MappedFile>(path);
  std::unique_ptr<SafetensorsFile> file = parse(path, mapping->data(), mapping->size());
  file->mapping_ = std::move(mapping);
  return file;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::parse(const std::string& path, const uint8_t* bytes,
                                                        uint64_t file_size) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  if (file_size < kHeaderLengthBytes)
    throw Error(path + ": file is " + std::to_string(file_size) +
                " bytes, too short for the 8-byte safetensors header length");
  const uint64_t header_size = read_u64_le(bytes);
  if (header_size > kMaxHeaderBytes)
    throw Error(path + ": header length " + std::to_string(header_size) + " exceeds the 100 MB limit (" +
                std::to_string(kMaxHeaderBytes) + " bytes)");
  if (header_size > file_size - kHeaderLengthBytes)
    throw Error(path + ": header length " + std::to_string(header_size) + " runs past the end of the file (" +
                std::to_string(file_size) + " bytes)");

  const std::string header_text(reinterpret_cast<const char*>(bytes + kHeaderLengthBytes), header_size);
  // The reference reader requires the header to start with '{' (it may be right-padded with spaces).
  if (header_text.empty() || header_text[0] != '{') throw Error(path + ": header is not a JSON object (must start with '{')");
  // nlohmann would keep the last of duplicate keys; the reference reader refuses them
  // (FORMATS-REFERENCE.md §1.1).
  const json header = parse_json(header_text, path + ": header", DuplicateKeys::Refuse);
  if (!header.is_object()) throw Error(path + ": header is not a JSON object");
  const size_t tensor_count = header.size() - (header.contains("__metadata__") ? 1 : 0);
  if (tensor_count > kMaxTensorsPerFile)
    throw Error(path + ": header lists " + std::to_string(tensor_count) + " tensors, more than the " +
                std::to_string(kMaxTensorsPerFile) + " run-llm accepts in one file");

  const uint64_t data_offset = kHeaderLengthBytes + header_size;
  const uint64_t data_size = file_size - data_offset;
  std::vector<ClaimedRange> ranges;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") {
      file->metadata_ = parse_metadata(item.value(), path);
      continue;
    }
    auto inserted = file->tensors_.emplace(item.key(), TensorView{});
    inserted.first->second =
        parse_tensor_entry(inserted.first->first, item.value(), path, bytes + data_offset, data_size, ranges);
  }
  check_ranges_tile_data(std::move(ranges), data_size, path);
  return file;
}

const TensorView* SafetensorsFile::find(const std::string& name) const {
  auto found = tensors_.find(name);
  return found == tensors_.end() ? nullptr : &found->second;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> result;
  for (const auto& item : tensors_) result.push_back(item.first);
  return result;
}

Checkpoint Checkpoint::open_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  Checkpoint checkpoint;
  checkpoint.dir_ = dir;
  if (!fs::is_directory(dir)) throw Error(dir + ": not a directory (expected a checkpoint directory)");

  const fs::path single_path = fs::path(dir) / kSingleFileName;
  const fs::path index_path = fs::path(dir) / kIndexFileName;
  // Like transformers, a single model.safetensors wins over an index.
  if (fs::exists(single_path)) {
    require_regular_file(single_path.string(), dir);
    auto file = std::shared_ptr<SafetensorsFile>(SafetensorsFile::open(single_path.string()));
    for (const std::string& name : file->names()) checkpoint.index_[name] = file->find(name);
    checkpoint.files_.push_back(std::move(file));
    return checkpoint;
  }
  if (!fs::exists(index_path))
    throw Error(dir + ": no weights found (looked for " + kSingleFileName + " and " + kIndexFileName + ")");

  const std::map<std::string, std::string> shard_of = parse_weight_map(index_path.string());
  std::map<std::string, std::shared_ptr<SafetensorsFile>> shards;
  for (const auto& item : shard_of) {
    if (shards.count(item.second)) continue;
    const fs::path shard_path = fs::path(dir) / item.second;
    require_regular_file(shard_path.string(), index_path.string() + ": shard file " + item.second +
                                                  " (named for tensor " + item.first + ")");
    shards[item.second] = std::shared_ptr<SafetensorsFile>(SafetensorsFile::open(shard_path.string()));
  }
  for (const auto& item : shard_of)
    if (shards.at(item.second)->find(item.first) == nullptr)
      throw Error(index_path.string() + ": tensor " + item.first + " is not in its shard " + item.second);
  // Every tensor of every shard is indexed; one stored in two shards is ambiguous.
  std::map<std::string, std::string> shard_holding;
  for (const auto& shard : shards) {
    for (const std::string& name : shard.second->names()) {
      auto inserted = shard_holding.emplace(name, shard.first);
      if (!inserted.second)
        throw Error(dir + ": tensor " + name + " is stored in two shards, " + inserted.first->second + " and " +
                    shard.first);
      checkpoint.index_[name] = shard.second->find(name);
    }
    checkpoint.files_.push_back(shard.second);
  }
  return checkpoint;
}

bool Checkpoint::has(const std::string& name) const { return index_.count(name) > 0; }

const TensorView& Checkpoint::get(const std::string& name) const {
  auto found = index_.find(name);
  if (found == index_.end()) throw Error(dir_ + ": missing tensor " + name);
  return *found->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> result;
  for (const auto& item : index_) result.push_back(item.first);
  return result;
}

std::vector<float> Checkpoint::read_f32(const std::string& name, const std::vector<int64_t>& expected_shape) const {
  const TensorView& view = get(name);
  if (view.shape != expected_shape)
    throw Error(name + ": expected " + shape_to_string(expected_shape) + ", got " + dtype_name(view.dtype) + " " +
                view.shape_string());
  std::vector<float> values(static_cast<size_t>(view.numel()));
  // Tensor data need not be aligned (headers are not always 8-padded): copy element by element.
  switch (view.dtype) {
    case DType::F32:
      std::memcpy(values.data(), view.data, view.nbytes);  // safetensors is little-endian, like the host
      break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i < values.size(); ++i) {
        const uint16_t bits = static_cast<uint16_t>(view.data[2 * i] | (view.data[2 * i + 1] << 8));
        values[i] = view.dtype == DType::F16 ? half_to_float(bits) : bf16_to_float(bits);
      }
      break;
    default:
      throw Error(name + ": expected a float tensor (F32, F16 or BF16), got " + dtype_name(view.dtype) + " " +
                  view.shape_string());
  }
  return values;
}

}  // namespace runllm
