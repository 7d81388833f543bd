// GGUF v2/v3 reader (FORMATS.md §7). Nothing in the file is trusted: every count, length, dimension
// and offset is checked against the bytes that remain before it is used, so a corrupt or hostile file
// ends in a one-line runllm::Error, never a crash, a hang or a huge allocation.
#include "model/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "runtime/error.h"
#include "runtime/mapped_file.h"

namespace runllm {
namespace {

// Sanity caps. Real files hold hundreds of tensors and a few dozen keys; anything near these is corrupt.
constexpr uint64_t kMaxTensorCount = 1000000;
constexpr uint64_t kMaxKvCount = 1000000;
// The GGUF spec limits keys to 65,535 bytes; tensor names are held to the same (llama.cpp: 63).
constexpr uint64_t kMaxNameBytes = 65535;
// Array elements of all KVs together. Each costs ~40 bytes in memory but may take 1 byte in the
// file, so this bounds what a file can make us allocate; real files hold ~4 arrays the size of the
// vocabulary (at most ~260k tokens).
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 23;
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint64_t kMaxAlignment = uint64_t{1} << 20;

// Block geometry of every ggml type id (gguf-py GGML_QUANT_SIZES): elements per block, bytes per block.
struct TypeTraits {
  uint32_t id;
  const char* name;
  uint64_t block_elements;
  uint64_t block_bytes;
};
constexpr TypeTraits kTypeTraits[] = {
    {0, "F32", 1, 4},           {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},      {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},        {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},      {9, "Q8_1", 32, 40},
    {10, "Q2_K", 256, 84},      {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},   {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},     {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98},   {19, "IQ1_S", 256, 50},   {20, "IQ4_NL", 32, 18},   {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},     {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},         {25, "I16", 1, 2},
    {26, "I32", 1, 4},          {27, "I64", 1, 8},        {28, "F64", 1, 8},        {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},         {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},   {39, "MXFP4", 32, 17},
};

const TypeTraits* find_type(uint32_t id) {
  for (const TypeTraits& traits : kTypeTraits)
    if (traits.id == id) return &traits;
  return nullptr;
}

// GGUF KV value types (gguf spec, "gguf_type").
enum KvType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

const char* kv_type_name(uint32_t type) {
  static const char* const kNames[] = {"u8",  "i8",     "u16",   "i16", "u32", "i32", "f32",
                                       "bool", "string", "array", "u64", "i64", "f64"};
  return type <= kF64 ? kNames[type] : "unknown";
}

// The fewest bytes one value of `type` occupies; lets an array length be checked before reading it.
uint64_t min_encoded_size(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    case kString: return 8;   // u64 length, then the bytes
    case kArray: return 12;   // u32 element type, u64 count
    default: return 0;
  }
}

std::string value_kind(const GgufValue& value) {
  static const char* const kKinds[] = {"unsigned integer", "signed integer", "float", "bool", "string", "array"};
  return kKinds[value.value.index()];
}

// Reads little-endian fields from the mapping; `context` names what is being read for error messages.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), data_(data), size_(size) {}

  std::string context = "header";

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what + " (in " + context + ")"); }

  void need(uint64_t bytes) const {
    if (bytes > remaining()) throw Error(path_ + ": truncated GGUF (while reading " + context + ")");
  }

  template <typename T>
  T read() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, data_ + pos_, sizeof(T));  // the format is little-endian, as is every host we build for
    pos_ += sizeof(T);
    return value;
  }

  // `max_length` caps names; values are bounded by the file only.
  std::string read_string(uint64_t max_length = std::numeric_limits<uint64_t>::max()) {
    const uint64_t length = read<uint64_t>();
    if (length > max_length)
      fail("string length " + std::to_string(length) + " is over the " + std::to_string(max_length) + "-byte limit");
    if (length > remaining())
      fail("string length " + std::to_string(length) + " runs past the end of the file");
    std::string text(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return text;
  }

  // Reads an array count and refuses one that cannot fit in the remaining bytes or would take the
  // file's array elements past kMaxArrayElements.
  uint64_t read_array_count(uint32_t element_type) {
    const uint64_t count = read<uint64_t>();
    const uint64_t element_bytes = min_encoded_size(element_type);
    if (element_bytes == 0) fail("unknown GGUF value type " + std::to_string(element_type) + " in array");
    if (count > remaining() / element_bytes)
      fail("array of " + std::to_string(count) + " " + kv_type_name(element_type) +
           " values cannot fit in the remaining " + std::to_string(remaining()) + " bytes");
    if (count > kMaxArrayElements - array_elements_)
      fail("array of " + std::to_string(count) + " values takes the file past its limit of " +
           std::to_string(kMaxArrayElements) + " array elements in all");
    array_elements_ += count;
    return count;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  uint64_t array_elements_ = 0;  // read so far, over all arrays
};

// One scalar or string value; arrays are handled by the caller so nesting stays bounded.
GgufValue read_scalar(Cursor& cursor, uint32_t type) {
  GgufValue out;
  switch (type) {
    case kU8: out.value = uint64_t{cursor.read<uint8_t>()}; break;
    case kI8: out.value = int64_t{cursor.read<int8_t>()}; break;
    case kU16: out.value = uint64_t{cursor.read<uint16_t>()}; break;
    case kI16: out.value = int64_t{cursor.read<int16_t>()}; break;
    case kU32: out.value = uint64_t{cursor.read<uint32_t>()}; break;
    case kI32: out.value = int64_t{cursor.read<int32_t>()}; break;
    case kF32: out.value = double{cursor.read<float>()}; break;
    case kBool: out.value = cursor.read<uint8_t>() != 0; break;
    case kString: out.value = cursor.read_string(); break;
    case kU64: out.value = cursor.read<uint64_t>(); break;
    case kI64: out.value = cursor.read<int64_t>(); break;
    case kF64: out.value = cursor.read<double>(); break;
    default: cursor.fail("unknown GGUF value type " + std::to_string(type));
  }
  return out;
}

// Arrays of scalars, or arrays of arrays of scalars (the deepest nesting real files use); deeper
// nesting is refused rather than followed, so no recursion depth is controlled by the file.
GgufValue read_value(Cursor& cursor, uint32_t type) {
  if (type != kArray) return read_scalar(cursor, type);
  const uint32_t element_type = cursor.read<uint32_t>();
  const uint64_t count = cursor.read_array_count(element_type);
  GgufValue::Array items;
  items.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    if (element_type != kArray) {
      items.push_back(read_scalar(cursor, element_type));
      continue;
    }
    const uint32_t inner_type = cursor.read<uint32_t>();
    if (inner_type == kArray) cursor.fail("arrays nested more than two levels deep are not supported");
    const uint64_t inner_count = cursor.read_array_count(inner_type);
    GgufValue::Array inner;
    inner.reserve(inner_count);
    for (uint64_t j = 0; j < inner_count; ++j) inner.push_back(read_scalar(cursor, inner_type));
    GgufValue nested;
    nested.value = std::move(inner);
    items.push_back(std::move(nested));
  }
  GgufValue out;
  out.value = std::move(items);
  return out;
}

uint64_t alignment_from(const std::map<std::string, GgufValue>& kv, const std::string& path) {
  const auto found = kv.find("general.alignment");
  if (found == kv.end()) return kDefaultAlignment;
  const int64_t alignment = found->second.as_int("general.alignment");
  if (alignment <= 0 || alignment > static_cast<int64_t>(kMaxAlignment) || (alignment & (alignment - 1)) != 0)
    throw Error(path + ": general.alignment " + std::to_string(alignment) +
                " must be a power of two between 1 and " + std::to_string(kMaxAlignment));
  return static_cast<uint64_t>(alignment);
}

GgufTensorInfo read_tensor_info(Cursor& cursor) {
  GgufTensorInfo info{};
  info.name = cursor.read_string(kMaxNameBytes);
  cursor.context += " '" + info.name + "'";
  const uint32_t n_dims = cursor.read<uint32_t>();
  if (n_dims == 0 || n_dims > kMaxDims)
    cursor.fail("tensor has " + std::to_string(n_dims) + " dimensions, expected 1 to " + std::to_string(kMaxDims));
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t dim = cursor.read<uint64_t>();
    if (dim == 0) cursor.fail("tensor dimension " + std::to_string(d) + " is 0");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / numel)
      cursor.fail("tensor element count overflows");
    numel *= dim;
    info.dims.push_back(dim);
  }
  info.type = cursor.read<uint32_t>();
  info.offset = cursor.read<uint64_t>();
  const TypeTraits* traits = find_type(info.type);
  if (traits == nullptr) cursor.fail("tensor has unknown ggml type id " + std::to_string(info.type));
  // ggml stores whole blocks per row: the fastest dimension must be a multiple of the block size.
  if (info.dims[0] % traits->block_elements != 0)
    cursor.fail("row length " + std::to_string(info.dims[0]) + " is not a multiple of the " + traits->name +
                " block size " + std::to_string(traits->block_elements));
  const uint64_t blocks = numel / traits->block_elements;
  if (blocks > std::numeric_limits<uint64_t>::max() / traits->block_bytes) cursor.fail("tensor byte size overflows");
  info.nbytes = blocks * traits->block_bytes;
  return info;
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  const TypeTraits* traits = find_type(type);
  return traits != nullptr ? traits->name : "type " + std::to_string(type);
}

int64_t GgufValue::as_int(const std::string& key) const {
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error(key + ": GGUF integer " + std::to_string(*u) + " is out of range");
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  throw Error(key + ": expected an integer GGUF value, got " + value_kind(*this));
}

double GgufValue::as_float(const std::string& key) const {
  if (const auto* f = std::get_if<double>(&value)) return *f;
  if (std::holds_alternative<uint64_t>(value) || std::holds_alternative<int64_t>(value))
    return static_cast<double>(as_int(key));
  throw Error(key + ": expected a number GGUF value, got " + value_kind(*this));
}

bool GgufValue::as_bool(const std::string& key) const {
  if (const auto* b = std::get_if<bool>(&value)) return *b;
  throw Error(key + ": expected a bool GGUF value, got " + value_kind(*this));
}

const std::string& GgufValue::as_string(const std::string& key) const {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  throw Error(key + ": expected a string GGUF value, got " + value_kind(*this));
}

const GgufValue::Array& GgufValue::as_array(const std::string& key) const {
  if (const auto* a = std::get_if<Array>(&value)) return *a;
  throw Error(key + ": expected an array GGUF value, got " + value_kind(*this));
}

GgufFile::~GgufFile() = default;

std::unique_ptr<GgufFile> GgufFile::open(const std::string& path) {
  auto mapping = std::make_unique<MappedFile>(path);
  std::unique_ptr<GgufFile> file = parse(path, mapping->data(), mapping->size());
  file->mapping_ = std::move(mapping);
  return file;
}

std::unique_ptr<GgufFile> GgufFile::parse(const std::string& path, const uint8_t* bytes, uint64_t size) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  Cursor cursor(file->path_, bytes, size);

  cursor.context = "magic";
  cursor.need(4);
  if (std::memcmp(bytes, "GGUF", 4) != 0) throw Error(path + ": not a GGUF file (bad magic, expected \"GGUF\")");
  cursor.read<uint32_t>();  // step over the magic just checked
  cursor.context = "version";
  const uint32_t version = cursor.read<uint32_t>();
  if (version != 2 && version != 3)
    throw Error(path + ": unsupported GGUF version " + std::to_string(version) + " (expected 2 or 3)");
  cursor.context = "tensor count";
  const uint64_t tensor_count = cursor.read<uint64_t>();
  if (tensor_count > kMaxTensorCount)
    cursor.fail("absurd tensor count " + std::to_string(tensor_count) + " (limit " + std::to_string(kMaxTensorCount) + ")");
  cursor.context = "KV count";
  const uint64_t kv_count = cursor.read<uint64_t>();
  if (kv_count > kMaxKvCount)
    cursor.fail("absurd KV count " + std::to_string(kv_count) + " (limit " + std::to_string(kMaxKvCount) + ")");
  // A KV takes at least 13 bytes (key length, type, one-byte value), a tensor info at least 32 (name
  // length, n_dims, one dim, type, offset): counts that cannot fit are refused before any allocation.
  if (kv_count * 13 + tensor_count * 32 > cursor.remaining())
    throw Error(path + ": truncated GGUF (" + std::to_string(kv_count) + " KVs and " + std::to_string(tensor_count) +
                " tensor infos cannot fit in the remaining " + std::to_string(cursor.remaining()) + " bytes)");

  for (uint64_t i = 0; i < kv_count; ++i) {
    cursor.context = "KV " + std::to_string(i);
    std::string key = cursor.read_string(kMaxNameBytes);
    cursor.context += " '" + key + "'";
    const uint32_t type = cursor.read<uint32_t>();
    if (min_encoded_size(type) == 0) cursor.fail("unknown GGUF value type " + std::to_string(type));
    GgufValue value = read_value(cursor, type);
    if (!file->kv_.emplace(std::move(key), std::move(value)).second) cursor.fail("duplicate key");
  }

  std::set<std::string> names;
  file->tensors_.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    cursor.context = "tensor info " + std::to_string(i);
    GgufTensorInfo info = read_tensor_info(cursor);
    if (!names.insert(info.name).second) cursor.fail("duplicate tensor name");
    file->tensors_.push_back(std::move(info));
  }

  // Tensor data starts at the next multiple of general.alignment after the tensor infos.
  const uint64_t alignment = alignment_from(file->kv_, path);
  const uint64_t data_start = (cursor.position() + alignment - 1) / alignment * alignment;
  if (!file->tensors_.empty() && data_start > size)
    throw Error(path + ": truncated GGUF (tensor data section starts at " + std::to_string(data_start) +
                ", past the end of the " + std::to_string(size) + "-byte file)");
  const uint64_t data_size = file->tensors_.empty() ? 0 : size - data_start;

  std::vector<const GgufTensorInfo*> by_offset;
  for (GgufTensorInfo& info : file->tensors_) {
    if (info.offset % alignment != 0)
      throw Error(path + ": tensor " + info.name + " offset " + std::to_string(info.offset) +
                  " is not a multiple of the alignment " + std::to_string(alignment));
    if (info.offset > data_size || info.nbytes > data_size - info.offset)
      throw Error(path + ": tensor " + info.name + " data [" + std::to_string(info.offset) + ", +" +
                  std::to_string(info.nbytes) + ") runs past the end of the file (data section holds " +
                  std::to_string(data_size) + " bytes)");
    info.data = bytes + data_start + info.offset;
    by_offset.push_back(&info);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i)
    if (by_offset[i - 1]->offset + by_offset[i - 1]->nbytes > by_offset[i]->offset)
      throw Error(path + ": tensors " + by_offset[i - 1]->name + " and " + by_offset[i]->name + " overlap");
  return file;
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const auto found = kv_.find(key);
  if (found == kv_.end()) throw Error(path_ + ": missing GGUF key " + key);
  return found->second;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  for (const GgufTensorInfo& info : tensors_)
    if (info.name == name) return &info;
  return nullptr;
}

}  // namespace runllm
