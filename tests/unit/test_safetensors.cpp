// safetensors reading: files are built byte by byte here (an independent writer, not
// SafetensorsWriter) so the reader is checked against the format itself (FORMATS.md §2).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/safetensors.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::require_error;
using Bytes = std::vector<uint8_t>;

namespace {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("runllm-test-safetensors-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string dir() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_text(const std::string& path, const std::string& text) { write_bytes(path, Bytes(text.begin(), text.end())); }

void append_u64_le(Bytes& bytes, uint64_t value) {
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// u64 LE header length (given explicitly, so tests can lie), header text, data section.
void write_raw_safetensors(const std::string& path, uint64_t header_length, const std::string& header,
                           const Bytes& data) {
  Bytes bytes;
  append_u64_le(bytes, header_length);
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  write_bytes(path, bytes);
}

void write_raw_safetensors(const std::string& path, const std::string& header, const Bytes& data) {
  write_raw_safetensors(path, header.size(), header, data);
}

struct TestTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  Bytes bytes;
};

// A valid file: tensors laid out back to back in the order given.
void write_safetensors(const std::string& path, const std::vector<TestTensor>& tensors,
                       const nlohmann::json& metadata = nullptr) {
  nlohmann::json header = nlohmann::json::object();
  Bytes data;
  for (const TestTensor& tensor : tensors) {
    header[tensor.name] = {{"dtype", tensor.dtype},
                           {"shape", tensor.shape},
                           {"data_offsets", {data.size(), data.size() + tensor.bytes.size()}}};
    data.insert(data.end(), tensor.bytes.begin(), tensor.bytes.end());
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  write_raw_safetensors(path, header.dump(), data);
}

template <typename T>
Bytes little_endian_bytes(const std::vector<T>& values) {
  Bytes bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());  // the test host is little-endian, like the format
  return bytes;
}

// Runs `action`, requires a runllm::Error, and checks its message contains every word given.

void require_open_error(const std::string& header, const Bytes& data, std::initializer_list<const char*> words) {
  TempDir temp;
  const std::string path = temp.file("bad.safetensors");
  write_raw_safetensors(path, header, data);
  require_error([&] { SafetensorsFile::open(path); }, words);
}

// F16 bits: 1, -2, 65504 (largest finite), 2^-24 (smallest subnormal).
const std::vector<uint16_t> kHalfBits = {0x3c00, 0xc000, 0x7bff, 0x0001};
const std::vector<float> kHalfValues = {1.0f, -2.0f, 65504.0f, 5.9604644775390625e-8f};
// BF16 bits: 1, 3.140625, -123.5, 2^-133 (subnormal).
const std::vector<uint16_t> kBf16Bits = {0x3f80, 0x4049, 0xc2f7, 0x0001};
const std::vector<float> kBf16Values = {1.0f, 3.140625f, -123.5f, std::ldexp(1.0f, -133)};

}  // namespace

TEST_CASE("a valid file reads back every tensor exactly", "[safetensors]") {
  TempDir temp;
  const std::vector<float> f32 = {0.5f, -1.25f, 3.0e-38f, 123456.789f, -0.0f, 7.0f};
  const std::vector<int8_t> i8 = {-128, -1, 0, 127, 5};
  const std::vector<int32_t> i32 = {INT32_MIN, -7, 0, INT32_MAX};
  const std::vector<TestTensor> tensors = {
      {"b.f16", "F16", {2, 2}, little_endian_bytes(kHalfBits)},
      {"a.f32", "F32", {2, 3}, little_endian_bytes(f32)},
      {"c.bf16", "BF16", {4}, little_endian_bytes(kBf16Bits)},
      {"d.i8", "I8", {5}, little_endian_bytes(i8)},
      {"e.i32", "I32", {1, 4}, little_endian_bytes(i32)},
      {"f.scalar", "F32", {}, little_endian_bytes(std::vector<float>{2.5f})},
      {"g.empty", "F16", {0, 8}, {}},
  };
  write_safetensors(temp.file("model.safetensors"), tensors, {{"format", "pt"}});

  const auto file = SafetensorsFile::open(temp.file("model.safetensors"));
  REQUIRE(file->names() == std::vector<std::string>{"a.f32", "b.f16", "c.bf16", "d.i8", "e.i32", "f.scalar", "g.empty"});
  REQUIRE(file->metadata().at("format") == "pt");
  REQUIRE(file->find("absent") == nullptr);
  for (const TestTensor& expected : tensors) {
    const TensorView* view = file->find(expected.name);
    REQUIRE(view != nullptr);
    CHECK(dtype_name(view->dtype) == expected.dtype);
    CHECK(view->shape == expected.shape);
    REQUIRE(view->nbytes == expected.bytes.size());
    CHECK(Bytes(view->data, view->data + view->nbytes) == expected.bytes);
  }
  CHECK(file->find("a.f32")->numel() == 6);
  CHECK(file->find("a.f32")->shape_string() == "[2, 3]");
  CHECK(file->find("f.scalar")->numel() == 1);
  CHECK(file->find("f.scalar")->shape_string() == "[]");
  CHECK(file->find("g.empty")->numel() == 0);

  const Checkpoint checkpoint = Checkpoint::open_dir(temp.dir());
  CHECK(checkpoint.names() == file->names());
  CHECK(checkpoint.has("d.i8"));
  CHECK_FALSE(checkpoint.has("lm_head.weight"));
  CHECK(checkpoint.read_f32("a.f32", {2, 3}) == f32);
  CHECK(checkpoint.read_f32("f.scalar", {}) == std::vector<float>{2.5f});
  const TensorView& i32_view = checkpoint.get("e.i32");
  std::vector<int32_t> i32_read(4);
  std::memcpy(i32_read.data(), i32_view.data, i32_view.nbytes);
  CHECK(i32_read == i32);
}

TEST_CASE("read_f32 converts F16 and BF16 exactly and checks shape and dtype", "[safetensors]") {
  TempDir temp;
  write_safetensors(temp.file("model.safetensors"),
                    {{"model.layers.3.self_attn.q_proj.weight", "F16", {2, 2}, little_endian_bytes(kHalfBits)},
                     {"norm.weight", "BF16", {4}, little_endian_bytes(kBf16Bits)},
                     {"ids", "I32", {2}, little_endian_bytes(std::vector<int32_t>{1, 2})}});
  const Checkpoint checkpoint = Checkpoint::open_dir(temp.dir());
  CHECK(checkpoint.read_f32("model.layers.3.self_attn.q_proj.weight", {2, 2}) == kHalfValues);
  CHECK(checkpoint.read_f32("norm.weight", {4}) == kBf16Values);

  require_error([&] { checkpoint.read_f32("model.layers.3.self_attn.q_proj.weight", {576, 576}); },
                {"model.layers.3.self_attn.q_proj.weight: expected [576, 576], got F16 [2, 2]"});
  require_error([&] { checkpoint.read_f32("ids", {2}); }, {"ids", "I32", "F32, F16 or BF16"});
  require_error([&] { checkpoint.get("lm_head.weight"); }, {"missing tensor lm_head.weight", temp.dir().c_str()});
}

TEST_CASE("a file shorter than the header length field is rejected", "[safetensors]") {
  TempDir temp;
  write_bytes(temp.file("short.safetensors"), {1, 2, 3, 4, 5});
  require_error([&] { SafetensorsFile::open(temp.file("short.safetensors")); },
                {"short.safetensors", "5 bytes", "too short"});
}

TEST_CASE("a header length past the end of the file is rejected", "[safetensors]") {
  TempDir temp;
  const std::string path = temp.file("past.safetensors");
  write_raw_safetensors(path, 1000, "{}", {});
  require_error([&] { SafetensorsFile::open(path); }, {"past.safetensors", "header length 1000", "past the end"});
}

TEST_CASE("a header length over the 100 MB cap is rejected", "[safetensors]") {
  TempDir temp;
  const std::string path = temp.file("huge.safetensors");
  write_raw_safetensors(path, 100'000'001, "{}", {});
  require_error([&] { SafetensorsFile::open(path); }, {"huge.safetensors", "100000001", "100 MB"});
}

TEST_CASE("a header that is not a JSON object is rejected", "[safetensors]") {
  require_open_error("[1, 2]", {}, {"not a JSON object"});
  require_open_error("{\"a\": ", {}, {"not valid JSON"});
  require_open_error("{\"a\": 5}", {}, {"tensor a", "expected an object"});
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}, \"b\": {}}", {}, {"tensor a", "missing \"data_offsets\""});
  require_open_error("{\"a\": {\"dtype\": 3, \"shape\": [1], \"data_offsets\": [0, 4]}}", Bytes(4),
                     {"tensor a", "\"dtype\" must be a string"});
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", Bytes(4),
                     {"tensor a", "\"shape\" must be an array"});
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", Bytes(4),
                     {"tensor a", "[begin, end]"});
  require_open_error(
      "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
      "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
      Bytes(4), {"duplicate key \"a\""});
}

TEST_CASE("overlapping tensors are rejected", "[safetensors]") {
  require_open_error(
      "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
      "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
      Bytes(12), {"tensor b", "overlaps tensor a"});
}

TEST_CASE("offsets past the data section are rejected", "[safetensors]") {
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", Bytes(4),
                     {"tensor a", "past the end of the data section", "4 bytes"});
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", Bytes(8),
                     {"tensor a", "end 4 < begin 8"});
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", Bytes(4),
                     {"tensor a", "non-negative integer"});
}

TEST_CASE("a byte range that does not match dtype and shape is rejected", "[safetensors]") {
  require_open_error("{\"w\": {\"dtype\": \"F16\", \"shape\": [2, 3], \"data_offsets\": [0, 8]}}", Bytes(8),
                     {"tensor w", "8 bytes", "F16 [2, 3] needs 12"});
  require_open_error("{\"w\": {\"dtype\": \"F16\", \"shape\": [2, -3], \"data_offsets\": [0, 8]}}", Bytes(8),
                     {"tensor w", "shape dimension", "non-negative integer"});
  require_open_error(
      "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}}", Bytes(8),
      {"tensor w", "too many elements"});
  require_open_error(
      "{\"w\": {\"dtype\": \"F64\", \"shape\": [4611686018427387904], \"data_offsets\": [0, 8]}}", Bytes(8),
      {"tensor w", "too large"});
}

TEST_CASE("gaps in the data section are rejected", "[safetensors]") {
  // A hole between two tensors, one before the first, and unused bytes after the last.
  require_open_error(
      "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
      "\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
      Bytes(12), {"gap of 4", "before tensor b", "fully covered"});
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", Bytes(8),
                     {"gap of 4", "offset 0", "before tensor a"});
  require_open_error("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", Bytes(6),
                     {"gap of 2", "end of the data section"});
  require_open_error("{}", Bytes(1), {"gap of 1", "end of the data section"});
}

TEST_CASE("an unknown dtype is rejected by name", "[safetensors]") {
  require_open_error("{\"w\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 1]}}", Bytes(1),
                     {"tensor w", "unsupported dtype", "Q4"});
}

TEST_CASE("__metadata__ must map strings to strings", "[safetensors]") {
  require_open_error("{\"__metadata__\": {\"format\": 1}}", {}, {"__metadata__", "format", "must be a string"});
  require_open_error("{\"__metadata__\": [\"pt\"]}", {}, {"__metadata__", "object of string to string"});
}

TEST_CASE("a header padded with spaces and an empty file body are accepted", "[safetensors]") {
  TempDir temp;
  const std::string path = temp.file("padded.safetensors");
  write_raw_safetensors(path, "{\"__metadata__\": null}   ", {});
  const auto file = SafetensorsFile::open(path);
  CHECK(file->names().empty());
  CHECK(file->metadata().empty());
}

namespace {

// Two shards: "a" and "b" in shard 1, "c" in shard 2, plus an index naming them.
void write_two_shards(const TempDir& temp, const nlohmann::json& weight_map) {
  write_safetensors(temp.file("model-00001-of-00002.safetensors"),
                    {{"a", "F32", {1}, little_endian_bytes(std::vector<float>{1.0f})},
                     {"b", "F32", {2}, little_endian_bytes(std::vector<float>{2.0f, 3.0f})}});
  write_safetensors(temp.file("model-00002-of-00002.safetensors"),
                    {{"c", "F16", {1}, little_endian_bytes(std::vector<uint16_t>{0x4400})}});
  const nlohmann::json index = {{"metadata", {{"total_size", 14}}}, {"weight_map", weight_map}};
  write_text(temp.file("model.safetensors.index.json"), index.dump());
}

const nlohmann::json kValidWeightMap = {{"a", "model-00001-of-00002.safetensors"},
                                        {"b", "model-00001-of-00002.safetensors"},
                                        {"c", "model-00002-of-00002.safetensors"}};

}  // namespace

TEST_CASE("a sharded checkpoint reads every tensor through its index", "[safetensors]") {
  TempDir temp;
  write_two_shards(temp, kValidWeightMap);
  const Checkpoint checkpoint = Checkpoint::open_dir(temp.dir());
  CHECK(checkpoint.names() == std::vector<std::string>{"a", "b", "c"});
  CHECK(checkpoint.read_f32("a", {1}) == std::vector<float>{1.0f});
  CHECK(checkpoint.read_f32("b", {2}) == std::vector<float>{2.0f, 3.0f});
  CHECK(checkpoint.read_f32("c", {1}) == std::vector<float>{4.0f});
  CHECK(checkpoint.get("c").dtype == DType::F16);
}

TEST_CASE("a sharded index naming a missing shard file is rejected", "[safetensors]") {
  TempDir temp;
  nlohmann::json weight_map = kValidWeightMap;
  weight_map["d"] = "model-00003-of-00002.safetensors";
  write_two_shards(temp, weight_map);
  require_error([&] { Checkpoint::open_dir(temp.dir()); },
                {"model.safetensors.index.json", "model-00003-of-00002.safetensors", "does not exist"});
}

TEST_CASE("a tensor absent from the shard its index names is rejected", "[safetensors]") {
  TempDir temp;
  nlohmann::json weight_map = kValidWeightMap;
  weight_map["c"] = "model-00001-of-00002.safetensors";
  write_two_shards(temp, weight_map);
  require_error([&] { Checkpoint::open_dir(temp.dir()); },
                {"tensor c", "not in its shard", "model-00001-of-00002.safetensors"});
}

TEST_CASE("a tensor stored in two shards is rejected", "[safetensors]") {
  TempDir temp;
  write_two_shards(temp, kValidWeightMap);
  write_safetensors(temp.file("model-00002-of-00002.safetensors"),
                    {{"a", "F32", {1}, little_endian_bytes(std::vector<float>{9.0f})},
                     {"c", "F16", {1}, little_endian_bytes(std::vector<uint16_t>{0x4400})}});
  require_error([&] { Checkpoint::open_dir(temp.dir()); }, {"tensor a", "two shards"});
}

TEST_CASE("shard names that leave the checkpoint directory are rejected", "[safetensors]") {
  for (const char* shard : {"../model-00001-of-00002.safetensors", "sub/model.safetensors", "..", ""}) {
    TempDir temp;
    nlohmann::json weight_map = kValidWeightMap;
    weight_map["a"] = shard;
    write_two_shards(temp, weight_map);
    require_error([&] { Checkpoint::open_dir(temp.dir()); }, {"model.safetensors.index.json", "plain file name"});
  }
}

TEST_CASE("a malformed index is rejected naming the key", "[safetensors]") {
  TempDir temp;
  write_two_shards(temp, kValidWeightMap);
  write_text(temp.file("model.safetensors.index.json"), "{\"metadata\": {}}");
  require_error([&] { Checkpoint::open_dir(temp.dir()); }, {"missing \"weight_map\""});
  write_text(temp.file("model.safetensors.index.json"), "{\"weight_map\": [\"a\"]}");
  require_error([&] { Checkpoint::open_dir(temp.dir()); }, {"\"weight_map\" must be an object"});
  write_text(temp.file("model.safetensors.index.json"), "{\"weight_map\": {\"a\": 1}}");
  require_error([&] { Checkpoint::open_dir(temp.dir()); }, {"weight_map entry \"a\"", "string"});
  write_text(temp.file("model.safetensors.index.json"), "{\"weight_map\": ");
  require_error([&] { Checkpoint::open_dir(temp.dir()); }, {"model.safetensors.index.json", "not valid JSON"});
}

TEST_CASE("a directory without weights says what was looked for", "[safetensors]") {
  TempDir temp;
  require_error([&] { Checkpoint::open_dir(temp.dir()); },
                {temp.dir().c_str(), "model.safetensors", "model.safetensors.index.json"});
  require_error([&] { Checkpoint::open_dir(temp.file("absent")); }, {"absent", "not a directory"});
}

TEST_CASE("StreamingSafetensorsWriter writes the bytes SafetensorsWriter writes, one tensor at a time", "[safetensors]") {
  const std::string dir = test::make_temp_dir("streaming-safetensors");
  const std::vector<float> a = {1.0f, -2.0f, 0.5f, 3.0f, 4.0f, 5.0f}, b = {0.25f, 7.0f};
  SafetensorsWriter whole;
  whole.set_metadata("format", "pt");
  whole.add_f16("z.weight", {2, 3}, a);
  whole.add_f16("a.bias", {2}, b);
  whole.write(dir + "/whole.safetensors");

  auto f16_bytes = [](const std::vector<float>& values) {
    std::vector<uint8_t> bytes(values.size() * 2);
    for (size_t i = 0; i < values.size(); ++i) {
      const uint16_t half = float_to_half(values[i]);
      std::memcpy(&bytes[2 * i], &half, 2);
    }
    return bytes;
  };
  const std::map<std::string, StreamingSafetensorsWriter::Spec> specs = {{"z.weight", {DType::F16, {2, 3}}},
                                                                          {"a.bias", {DType::F16, {2}}}};
  {
    StreamingSafetensorsWriter streamed(dir + "/streamed.safetensors", specs, {{"format", "pt"}});
    REQUIRE(streamed.order() == std::vector<std::string>{"a.bias", "z.weight"});  // sorted, as the header
    const auto bytes_a = f16_bytes(a), bytes_b = f16_bytes(b);
    test::require_error([&] { streamed.write("z.weight", bytes_a.data(), bytes_a.size()); }, {"out of order", "a.bias"});
    test::require_error([&] { streamed.write("a.bias", bytes_b.data(), 2); }, {"a.bias", "header says 4"});
    streamed.write("a.bias", bytes_b.data(), bytes_b.size());
    CHECK(!std::filesystem::exists(dir + "/streamed.safetensors"));  // only the .partial file until finish()
    streamed.write("z.weight", bytes_a.data(), bytes_a.size());
    streamed.finish();
  }
  CHECK(test::read_file(dir + "/streamed.safetensors") == test::read_file(dir + "/whole.safetensors"));
  CHECK(!std::filesystem::exists(dir + "/streamed.safetensors.partial"));

  {  // an unfinished file is removed, never left looking complete
    StreamingSafetensorsWriter abandoned(dir + "/abandoned.safetensors", specs, {});
    test::require_error([&] { abandoned.finish(); }, {"only 0 of 2 tensors written"});
  }
  CHECK(!std::filesystem::exists(dir + "/abandoned.safetensors"));
  CHECK(!std::filesystem::exists(dir + "/abandoned.safetensors.partial"));
  std::filesystem::remove_all(dir);
}
