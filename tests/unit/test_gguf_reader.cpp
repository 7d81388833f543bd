// GGUF reader and dequantization. Files are built by the small GGUF writer in gguf_test_writer.h
// (independent of the reader), and quantized blocks are packed here from the ggml rules, element by
// element, so the decoder is checked against a second, independent statement of the layout.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"
#include "tests/unit/gguf_test_writer.h"

using namespace runllm;
using namespace runllm::test;

namespace {

std::string open_error(const Bytes& bytes) {
  const std::string path = write_scratch_file("bad.gguf", bytes);
  const std::string message = error_message([&] { GgufFile::open(path); });
  return message.empty() ? "(opened without error)" : message;
}

GgufTensorInfo raw_tensor(uint32_t type, uint64_t numel, const Bytes& data) {
  GgufTensorInfo info{};
  info.name = "t";
  info.dims = {numel};
  info.type = type;
  info.nbytes = data.size();
  info.data = data.data();
  return info;
}

}  // namespace

// ---- dequantization -------------------------------------------------------------------------------

TEST_CASE("gguf_dequantize: F32, F16 and BF16 pass values through", "[gguf]") {
  Bytes f32, f16, bf16;
  const std::vector<float> values = {1.5f, -2.25f, 0.0f, 1024.0f};
  for (float v : values) put(f32, v), put_half(f16, v), put<uint16_t>(bf16, float_to_bf16(v));
  REQUIRE(gguf_dequantize(raw_tensor(0, 4, f32)) == values);
  REQUIRE(gguf_dequantize(raw_tensor(1, 4, f16)) == values);
  REQUIRE(gguf_dequantize(raw_tensor(30, 4, bf16)) == values);
}

TEST_CASE("gguf_dequantize: Q4_0, Q4_1 and Q8_0 blocks", "[gguf]") {
  // Two blocks each, so block strides are checked too.
  std::vector<int> q(64);
  for (int e = 0; e < 64; ++e) q[e] = (e * 5 + 3) % 16;
  Bytes q4_0, q4_1, q8_0;
  std::vector<float> want4_0, want4_1, want8_0;
  for (int blk = 0; blk < 2; ++blk) {
    const float d = blk == 0 ? 0.5f : -0.125f, m = blk == 0 ? -1.5f : 2.0f;
    put_half(q4_0, d);
    put_half(q4_1, d);
    put_half(q4_1, m);
    put_half(q8_0, d);
    // Q4_x: byte j holds element j in its low nibble and element j + 16 in its high nibble.
    for (int j = 0; j < 16; ++j) {
      const uint8_t byte = static_cast<uint8_t>(q[blk * 32 + j] | (q[blk * 32 + j + 16] << 4));
      q4_0.push_back(byte);
      q4_1.push_back(byte);
    }
    for (int e = 0; e < 32; ++e) {
      const int8_t q8 = static_cast<int8_t>((e * 37 + blk * 11) % 256 - 128);
      q8_0.push_back(static_cast<uint8_t>(q8));
      want8_0.push_back(d * q8);
      want4_0.push_back(d * (q[blk * 32 + e] - 8));
      want4_1.push_back(d * q[blk * 32 + e] + m);
    }
  }
  REQUIRE(gguf_dequantize(raw_tensor(2, 64, q4_0)) == want4_0);
  REQUIRE(gguf_dequantize(raw_tensor(3, 64, q4_1)) == want4_1);
  REQUIRE(gguf_dequantize(raw_tensor(8, 64, q8_0)) == want8_0);
}

TEST_CASE("gguf_dequantize: Q5_0 and Q5_1 take the fifth bit of element j from qh bit j", "[gguf]") {
  std::vector<int> q(32);
  for (int e = 0; e < 32; ++e) q[e] = (e * 11 + 7) % 32;
  const float d = 0.25f, m = -3.0f;
  uint32_t qh = 0;
  Bytes qs;
  for (int e = 0; e < 32; ++e) qh |= static_cast<uint32_t>(q[e] >> 4) << e;
  for (int j = 0; j < 16; ++j) qs.push_back(static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4)));
  Bytes q5_0, q5_1;
  put_half(q5_0, d);
  put(q5_0, qh);
  q5_0.insert(q5_0.end(), qs.begin(), qs.end());
  put_half(q5_1, d);
  put_half(q5_1, m);
  put(q5_1, qh);
  q5_1.insert(q5_1.end(), qs.begin(), qs.end());
  std::vector<float> want0, want1;
  for (int e = 0; e < 32; ++e) want0.push_back(d * (q[e] - 16)), want1.push_back(d * q[e] + m);
  REQUIRE(gguf_dequantize(raw_tensor(6, 32, q5_0)) == want0);
  REQUIRE(gguf_dequantize(raw_tensor(7, 32, q5_1)) == want1);
}

TEST_CASE("gguf_dequantize: Q6_K super-blocks", "[gguf]") {
  // Element e of a super-block (6-bit q, scale scales[e / 16]) is stored, for half = e / 128,
  // g = (e % 128) / 32, l = e % 32: low 4 bits in ql[64*half + l + 32*(g & 1)] (low nibble for g < 2,
  // high nibble otherwise), top 2 bits in qh[32*half + l] at bit 2g.
  Bytes data;
  std::vector<float> want;
  for (int sb = 0; sb < 2; ++sb) {
    const float d = sb == 0 ? 0.125f : -0.5f;
    uint8_t ql[128] = {}, qh[64] = {};
    int8_t scales[16];
    for (int s = 0; s < 16; ++s) scales[s] = static_cast<int8_t>((s * 5 + sb) % 17 - 8);
    for (int e = 0; e < 256; ++e) {
      const int q = (e * 29 + sb * 3) % 64;
      const int half = e / 128, g = (e % 128) / 32, l = e % 32;
      ql[64 * half + l + 32 * (g & 1)] |= static_cast<uint8_t>((q & 15) << (g < 2 ? 0 : 4));
      qh[32 * half + l] |= static_cast<uint8_t>((q >> 4) << (2 * g));
      want.push_back(d * scales[e / 16] * (q - 32));
    }
    data.insert(data.end(), ql, ql + 128);
    data.insert(data.end(), qh, qh + 64);
    data.insert(data.end(), reinterpret_cast<uint8_t*>(scales), reinterpret_cast<uint8_t*>(scales) + 16);
    put_half(data, d);
  }
  REQUIRE(data.size() == 2 * 210);
  REQUIRE(gguf_dequantize(raw_tensor(14, 512, data)) == want);
}

TEST_CASE("gguf_dequantize: unsupported types name the tensor and the supported list", "[gguf]") {
  Bytes q4_k(144, 0);
  GgufTensorInfo info = raw_tensor(12, 256, q4_k);
  info.name = "blk.0.attn_q.weight";
  REQUIRE_THROWS_WITH(gguf_dequantize(info), "blk.0.attn_q.weight: GGUF tensor type Q4_K is not supported "
                                             "(supported: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q6_K)");
  REQUIRE(ggml_type_name(12) == "Q4_K");
  REQUIRE(ggml_type_name(99) == "type 99");
}

// ---- reader -------------------------------------------------------------------------------------

TEST_CASE("GgufFile reads keys, arrays and tensor infos", "[gguf]") {
  const Bytes file = tiny_llama(false).builder.build();
  auto gguf = GgufFile::open(write_scratch_file("tiny.gguf", file));
  REQUIRE(gguf->get("general.architecture").as_string("k") == "llama");
  REQUIRE(gguf->get("llama.block_count").as_int("k") == kLayers);
  REQUIRE(gguf->get("llama.rope.freq_base").as_float("k") == 100000.0);
  REQUIRE(gguf->get("tokenizer.ggml.tokens").as_array("k").size() == kVocab);
  REQUIRE_THROWS_WITH(gguf->get("llama.block_count").as_string("llama.block_count"),
                      "llama.block_count: expected a string GGUF value, got unsigned integer");
  REQUIRE_THROWS_WITH(gguf->get("nope"), HAS_SUBSTRING("missing GGUF key nope"));
  const GgufTensorInfo* q = gguf->find_tensor("blk.1.attn_q.weight");
  REQUIRE(q != nullptr);
  REQUIRE(q->dims == std::vector<uint64_t>{kH, kHeads * kHeadDim});
  REQUIRE(q->nbytes == 4u * kH * kHeads * kHeadDim);
  REQUIRE(gguf->tensors().size() == 1 + 9 * kLayers + 2);
}

// A small file with every kind of field (scalars, strings, arrays, nested arrays, two tensors), so
// cutting or corrupting it at every byte stays fast.
static Bytes small_gguf() {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.block_count", 2);
  b.kv_f32("llama.rope.freq_base", 10000.0f);
  b.kv_strings("tokenizer.ggml.tokens", {"a", "bc", "<|x|>"});
  b.kv_i32s("tokenizer.ggml.token_type", {1, 1, 3});
  Bytes nested;
  put<uint32_t>(nested, ARRAY);
  put<uint64_t>(nested, 2);
  for (int i = 0; i < 2; ++i) {
    put<uint32_t>(nested, U32);
    put<uint64_t>(nested, 1);
    put<uint32_t>(nested, 7);
  }
  b.kv_raw("nested", ARRAY, nested);
  b.tensor_f32("a.weight", {4, 2}, pattern(8, 1));
  b.tensor("b.weight", {32}, 8, Bytes(34, 1));
  return b.build();
}

TEST_CASE("GgufFile: every truncation of a valid file is refused with an error", "[gguf]") {
  const Bytes file = small_gguf();
  REQUIRE(GgufFile::open(write_scratch_file("small.gguf", file))->get("nested").as_array("nested").size() == 2);
  for (size_t cut = 0; cut < file.size(); ++cut) {
    const std::string message = open_error(Bytes(file.begin(), file.begin() + cut));
    INFO("cut at " << cut << ": " << message);
    REQUIRE((message.find("truncated GGUF") != std::string::npos || message.find("past the end") != std::string::npos ||
             message.find("cannot fit") != std::string::npos));
  }
  REQUIRE_THAT(open_error(Bytes(file.begin(), file.begin() + 6)),
               HAS_SUBSTRING("truncated GGUF (while reading version)"));
}

TEST_CASE("GgufFile: corrupt bytes never crash", "[gguf]") {
  const Bytes file = small_gguf();
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    Bytes corrupt = file;
    const size_t at = rng() % file.size();
    corrupt[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
    open_error(corrupt);  // either opens or throws runllm::Error; anything else fails the test
  }
}

TEST_CASE("GgufFile: malformed headers give precise errors", "[gguf]") {
  const Bytes valid = tiny_llama(true).builder.build();
  Bytes bad = valid;
  bad[0] = 'X';
  REQUIRE_THAT(open_error(bad), HAS_SUBSTRING("not a GGUF file (bad magic"));
  bad = valid;
  bad[4] = 1;
  REQUIRE_THAT(open_error(bad), HAS_SUBSTRING("unsupported GGUF version 1"));

  auto header = [](uint64_t tensors, uint64_t kvs) {
    Bytes b = {'G', 'G', 'U', 'F'};
    put<uint32_t>(b, 3);
    put(b, tensors);
    put(b, kvs);
    return b;
  };
  REQUIRE_THAT(open_error(header(uint64_t{1} << 40, 0)), HAS_SUBSTRING("absurd tensor count"));
  REQUIRE_THAT(open_error(header(0, uint64_t{1} << 40)), HAS_SUBSTRING("absurd KV count"));
  REQUIRE_THAT(open_error(header(1000, 1000)), HAS_SUBSTRING("cannot fit"));

  GgufBuilder b;
  b.kv_raw("x", 13, Bytes(8, 0));
  REQUIRE_THAT(open_error(b.build()), HAS_SUBSTRING("unknown GGUF value type 13 (in KV 0 'x')"));
  GgufBuilder long_string;
  Bytes huge_length;
  put<uint64_t>(huge_length, uint64_t{1} << 50);
  long_string.kv_raw("s", STRING, huge_length);
  REQUIRE_THAT(open_error(long_string.build()), HAS_SUBSTRING("string length 1125899906842624 runs past"));
  GgufBuilder long_array;
  Bytes array_header;
  put<uint32_t>(array_header, U32);
  put<uint64_t>(array_header, uint64_t{1} << 40);
  long_array.kv_raw("a", ARRAY, array_header);
  REQUIRE_THAT(open_error(long_array.build()), HAS_SUBSTRING("cannot fit in the remaining"));
  GgufBuilder deep;
  Bytes nested;
  put<uint32_t>(nested, ARRAY);
  put<uint64_t>(nested, 1);
  put<uint32_t>(nested, ARRAY);
  put<uint64_t>(nested, 1);
  deep.kv_raw("n", ARRAY, nested);
  REQUIRE_THAT(open_error(deep.build()), HAS_SUBSTRING("nested more than two levels"));
}

TEST_CASE("GgufFile: bad tensor infos name the tensor", "[gguf]") {
  GgufBuilder unknown;
  unknown.tensor("w", {32}, 99, Bytes(32, 0));
  REQUIRE_THAT(open_error(unknown.build()), HAS_SUBSTRING("unknown ggml type id 99 (in tensor info 0 'w')"));
  GgufBuilder zero;
  zero.tensor("z", {0, 4}, 0, {});
  REQUIRE_THAT(open_error(zero.build()), HAS_SUBSTRING("dimension 0 is 0"));
  GgufBuilder five;
  five.tensor("f", {1, 1, 1, 1, 1}, 0, Bytes(4, 0));
  REQUIRE_THAT(open_error(five.build()), HAS_SUBSTRING("5 dimensions"));
  GgufBuilder overflow;
  overflow.tensor("o", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, {});
  REQUIRE_THAT(open_error(overflow.build()), HAS_SUBSTRING("element count overflows"));
  GgufBuilder partial_block;
  partial_block.tensor("p", {48}, 2, Bytes(36, 0));
  REQUIRE_THAT(open_error(partial_block.build()), HAS_SUBSTRING("not a multiple of the Q4_0 block size 32"));
  GgufBuilder past_end;
  past_end.tensor("big", {64}, 0, Bytes(4 * 32, 0));  // declares 256 bytes, holds 128
  REQUIRE_THAT(open_error(past_end.build()), HAS_SUBSTRING("tensor big data [0, +256) runs past the end"));
}
