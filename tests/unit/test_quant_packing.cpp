// Packing of AWQ gemm and GPTQ (2/3/4/8-bit, v1/v2 zeros, act-order) and the AWQ -> GPTQ conversion.
// The packers here are written independently from the format text (FORMATS.md §3-§5,
// FORMATS-REFERENCE.md §2.3 and §3.3), never by calling pack_*, so the layer is checked against the
// formats rather than against itself.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "layers/quant_packing.h"
#include "layers/quantized_matrix.h"
#include "runtime/dtype.h"
#include "runtime/error.h"
#include "tests/catch.h"
#include "tests/test_support.h"

using namespace runllm;
using test::require_error;

namespace {

int32_t word_of(uint32_t bits) { return static_cast<int32_t>(bits); }  // two's complement reinterpretation

// Inverse of AWQ's [0,2,4,6,1,3,5,7]: output column 8c + j lives in nibble kAwqNibbleOfColumn[j]
// (FORMATS-REFERENCE.md §2.3 "REV").
constexpr int kAwqNibbleOfColumn[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// AWQ gemm: values [rows, N] (rows = K for qweight, G for qzeros) -> [rows, N / 8] words.
std::vector<int32_t> awq_pack_rows(const std::vector<uint32_t>& values, int64_t rows, int64_t N) {
  std::vector<int32_t> words(static_cast<size_t>(rows * N / 8), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n) {
      uint32_t& word = reinterpret_cast<uint32_t&>(words[static_cast<size_t>(r * (N / 8) + n / 8)]);
      word |= values[static_cast<size_t>(r * N + n)] << (4 * kAwqNibbleOfColumn[n % 8]);
    }
  return words;
}

// AutoGPTQ's pack loop for one stream of values (a column of q along K, or a group row of zeros along
// N), word by word, as `qlinear_cuda_old.pack` writes it: plain order for 2/4/8 bits, the
// 32-values-in-3-words table for 3 bits. `values` are uint32 as AutoGPTQ casts them, so a v1 "-1"
// is 0xFFFFFFFF and its shift sets every higher bit of the word (the old writers' defect).
std::vector<uint32_t> autogptq_pack_stream(const std::vector<uint32_t>& v, int bits) {
  std::vector<uint32_t> out;
  size_t i = 0;
  while (i < v.size()) {
    if (bits != 3) {
      uint32_t word = 0;
      for (int j = 0; j < 32 / bits; ++j) word |= v[i + j] << (bits * j);
      out.push_back(word);
      i += 32 / bits;
      continue;
    }
    uint32_t w0 = 0, w1 = 0, w2 = 0;
    for (int j = 0; j < 10; ++j) w0 |= v[i + j] << (3 * j);  // rows 0..9
    w0 |= v[i + 10] << 30;                                    // row 10: bits 0-1 -> w0 bits 30-31
    w1 |= (v[i + 10] >> 2) & 1u;                              //         bit 2    -> w1 bit 0
    for (int j = 0; j < 10; ++j) w1 |= v[i + 11 + j] << (3 * j + 1);  // rows 11..20
    w1 |= v[i + 21] << 31;                                    // row 21: bit 0    -> w1 bit 31
    w2 |= (v[i + 21] >> 1) & 3u;                              //         bits 1-2 -> w2 bits 0-1
    for (int j = 0; j < 10; ++j) w2 |= v[i + 22 + j] << (3 * j + 2);  // rows 22..31
    out.push_back(w0);
    out.push_back(w1);
    out.push_back(w2);
    i += 32;
  }
  return out;
}

// GPTQ qweight [K * bits / 32, N] from q [N, K] (each column packed along K).
std::vector<int32_t> gptq_pack_qweight(const QuantizedMatrix& m) {
  const int64_t rows = m.K * m.bits / 32;
  std::vector<int32_t> words(static_cast<size_t>(rows * m.N));
  for (int64_t n = 0; n < m.N; ++n) {
    std::vector<uint32_t> column(m.q.begin() + n * m.K, m.q.begin() + (n + 1) * m.K);
    const std::vector<uint32_t> packed = autogptq_pack_stream(column, m.bits);
    for (int64_t r = 0; r < rows; ++r) words[static_cast<size_t>(r * m.N + n)] = word_of(packed[static_cast<size_t>(r)]);
  }
  return words;
}

// GPTQ qzeros [G, N * bits / 32]; v1 writes zero - 1 as AutoGPTQ does (as uint32, unmasked).
std::vector<int32_t> gptq_pack_qzeros(const QuantizedMatrix& m, GptqZeros convention) {
  std::vector<int32_t> words;
  for (int64_t g = 0; g < m.groups(); ++g) {
    std::vector<uint32_t> row;
    for (int64_t n = 0; n < m.N; ++n) {
      const int32_t zero = m.zeros[static_cast<size_t>(g * m.N + n)];
      row.push_back(static_cast<uint32_t>(convention == GptqZeros::V1 ? zero - 1 : zero));
    }
    for (uint32_t word : autogptq_pack_stream(row, m.bits)) words.push_back(word_of(word));
  }
  return words;
}

float random_fp16_scale(std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(1e-3f, 5e-2f);
  return half_to_float(float_to_half(dist(rng)));
}

// A random matrix; zeros in [zero_min, maxq]; g_idx k / g, or a random permutation of it (act-order:
// every group keeps its size, as GPTQ's desc_act produces).
QuantizedMatrix random_matrix(std::mt19937& rng, int bits, int64_t N, int64_t K, int64_t group_size, bool act_order,
                              int zero_min = 0) {
  QuantizedMatrix m;
  m.bits = bits;
  m.N = N;
  m.K = K;
  m.group_size = group_size == -1 ? K : group_size;
  const int maxq = (1 << bits) - 1;
  std::uniform_int_distribution<int> value(0, maxq), zero(zero_min, maxq);
  for (int64_t i = 0; i < N * K; ++i) m.q.push_back(static_cast<uint8_t>(value(rng)));
  for (int64_t i = 0; i < m.groups() * N; ++i) {
    m.zeros.push_back(zero(rng));
    m.scales.push_back(random_fp16_scale(rng));
  }
  for (int64_t k = 0; k < K; ++k) m.g_idx.push_back(static_cast<int32_t>(k / m.group_size));
  if (act_order) std::shuffle(m.g_idx.begin(), m.g_idx.end(), rng);
  return m;
}

void require_same(const QuantizedMatrix& a, const QuantizedMatrix& b) {
  REQUIRE(a.bits == b.bits);
  REQUIRE(a.N == b.N);
  REQUIRE(a.K == b.K);
  REQUIRE(a.group_size == b.group_size);
  REQUIRE(a.q == b.q);
  REQUIRE(a.zeros == b.zeros);
  REQUIRE(a.scales == b.scales);
  REQUIRE(a.g_idx == b.g_idx);
}

// W[n, k] = (q - z[g_idx[k], n]) * s[g_idx[k], n], computed here from the definition.
void require_dequantized(const QuantizedMatrix& truth, const QuantizedMatrix& unpacked) {
  const std::vector<float> weight = unpacked.dequantize();
  for (int64_t n = 0; n < truth.N; ++n)
    for (int64_t k = 0; k < truth.K; ++k) {
      const size_t gi = static_cast<size_t>(truth.g_idx[static_cast<size_t>(k)] * truth.N + n);
      const float expected =
          static_cast<float>(static_cast<int>(truth.q[static_cast<size_t>(n * truth.K + k)]) - truth.zeros[gi]) *
          truth.scales[gi];
      REQUIRE(weight[static_cast<size_t>(n * truth.K + k)] == expected);  // bit for bit
    }
}

AwqTensors awq_tensors_of(const QuantizedMatrix& m) {
  AwqTensors t;
  t.N = m.N;
  t.K = m.K;
  t.group_size = m.group_size;
  std::vector<uint32_t> q_kn(static_cast<size_t>(m.K * m.N));  // AWQ is [in, out]
  for (int64_t n = 0; n < m.N; ++n)
    for (int64_t k = 0; k < m.K; ++k) q_kn[static_cast<size_t>(k * m.N + n)] = m.q[static_cast<size_t>(n * m.K + k)];
  t.qweight = awq_pack_rows(q_kn, m.K, m.N);
  t.qzeros = awq_pack_rows(std::vector<uint32_t>(m.zeros.begin(), m.zeros.end()), m.groups(), m.N);
  t.scales = m.scales;
  return t;
}

GptqTensors gptq_tensors_of(const QuantizedMatrix& m, GptqZeros convention) {
  GptqTensors t;
  t.bits = m.bits;
  t.N = m.N;
  t.K = m.K;
  t.group_size = m.group_size;
  t.qweight = gptq_pack_qweight(m);
  t.qzeros = gptq_pack_qzeros(m, convention);
  t.scales = m.scales;
  t.g_idx = m.g_idx;
  return t;
}

}  // namespace

TEST_CASE("AWQ packs columns 0..7 in the nibble order 0,2,4,6,1,3,5,7", "[quant]") {
  // Columns 0..7 hold the values 0..7. Nibble i holds column ORDER[i] = 0,2,4,6,1,3,5,7, so reading the
  // word from nibble 7 (top hex digit) down to nibble 0: 7,5,3,1,6,4,2,0 -> 0x75316420.
  AwqTensors t;
  t.N = 8;
  t.K = 1;
  t.group_size = 1;
  t.qweight = {word_of(0x75316420u)};
  t.qzeros = {word_of(0x75316420u)};
  t.scales = std::vector<float>(8, 1.0f);
  const QuantizedMatrix m = unpack_awq(t);
  for (int n = 0; n < 8; ++n) {
    CHECK(m.q[static_cast<size_t>(n)] == n);
    CHECK(m.zeros[static_cast<size_t>(n)] == n);
  }
  const AwqTensors repacked = pack_awq(m);
  CHECK(repacked.qweight == t.qweight);
  CHECK(repacked.qzeros == t.qzeros);
}

TEST_CASE("GPTQ 2/4/8-bit words pack input rows in plain order", "[quant]") {
  // 4-bit, rows 0..7 = 0..7: nibble r holds row r -> 0x76543210.
  // 2-bit, rows 0..15 = r % 4: each byte is 3,2,1,0 from the top two bits down -> 0b11100100 = 0xE4.
  // 8-bit, rows 0..3 = 1,2,3,4: byte r holds row r -> 0x04030201.
  const struct {
    int bits;
    uint32_t word;
  } cases[] = {{4, 0x76543210u}, {2, 0xE4E4E4E4u}, {8, 0x04030201u}};
  for (const auto& c : cases) {
    const int per_word = 32 / c.bits;
    GptqTensors t;
    t.bits = c.bits;
    t.N = per_word;  // zeros need whole words along N too
    t.K = per_word;
    t.group_size = per_word;
    t.qweight.assign(static_cast<size_t>(t.N), 0);
    t.qweight[0] = word_of(c.word);  // column 0 only
    t.qzeros = {word_of(c.word)};    // zeros use the same plain order along N
    t.scales.assign(static_cast<size_t>(t.N), 1.0f);
    const QuantizedMatrix m = unpack_gptq(t, GptqZeros::V2);
    for (int r = 0; r < per_word; ++r) {
      const int expected = c.bits == 4 ? r : c.bits == 2 ? r % 4 : r + 1;
      CHECK(m.q[static_cast<size_t>(r)] == expected);  // q[n = 0, k = r]
      CHECK(m.zeros[static_cast<size_t>(r)] == expected);
    }
    CHECK(pack_gptq(m, GptqZeros::V2).qweight == t.qweight);
  }
}

TEST_CASE("GPTQ 3-bit values 10 and 21 straddle words", "[quant]") {
  // Rows 10 = 5 (0b101) and 21 = 6 (0b110) of column 0, everything else 0 (FORMATS-REFERENCE §3.3):
  // row 10 bits 0-1 (01) -> w0 bits 30-31 = 0x40000000, bit 2 (1) -> w1 bit 0 = 0x00000001;
  // row 21 bit 0 (0) -> w1 bit 31 = 0, bits 1-2 (11) -> w2 bits 0-1 = 0x00000003.
  GptqTensors t;
  t.bits = 3;
  t.N = 32;
  t.K = 32;
  t.group_size = 32;
  t.qweight.assign(3 * 32, 0);
  t.qweight[0 * 32] = word_of(0x40000000u);
  t.qweight[1 * 32] = word_of(0x00000001u);
  t.qweight[2 * 32] = word_of(0x00000003u);
  t.qzeros = {word_of(0x40000000u), word_of(0x00000001u), word_of(0x00000003u)};
  t.scales.assign(32, 1.0f);
  const QuantizedMatrix m = unpack_gptq(t, GptqZeros::V2);
  for (int r = 0; r < 32; ++r) {
    const int expected = r == 10 ? 5 : r == 21 ? 6 : 0;
    CHECK(m.q[static_cast<size_t>(r)] == expected);
    CHECK(m.zeros[static_cast<size_t>(r)] == expected);
  }
  const GptqTensors repacked = pack_gptq(m, GptqZeros::V2);
  CHECK(repacked.qweight == t.qweight);
  CHECK(repacked.qzeros == t.qzeros);
}

TEST_CASE("hand-packed AWQ and GPTQ matrices unpack and dequantize bit for bit", "[quant]") {
  std::mt19937 rng(1234);
  SECTION("AWQ gemm") {
    const QuantizedMatrix truth = random_matrix(rng, 4, 24, 32, 8, false);
    const AwqTensors tensors = awq_tensors_of(truth);
    const QuantizedMatrix m = unpack_awq(tensors);
    require_same(truth, m);
    require_dequantized(truth, m);
    const AwqTensors repacked = pack_awq(m);
    CHECK(repacked.qweight == tensors.qweight);
    CHECK(repacked.qzeros == tensors.qzeros);
  }
  for (int bits : {2, 3, 4, 8})
    for (bool act_order : {false, true})
      for (GptqZeros convention : {GptqZeros::V1, GptqZeros::V2}) {
        DYNAMIC_SECTION("GPTQ " << bits << "-bit act_order " << act_order << " v"
                                << (convention == GptqZeros::V1 ? 1 : 2)) {
          // v1 cannot hold a true zero of 0 (tested below), so its zeros start at 1 here.
          const int zero_min = convention == GptqZeros::V1 ? 1 : 0;
          const QuantizedMatrix truth = random_matrix(rng, bits, 64, 96, 32, act_order, zero_min);
          const GptqTensors tensors = gptq_tensors_of(truth, convention);
          const QuantizedMatrix m = unpack_gptq(tensors, convention);
          require_same(truth, m);
          require_dequantized(truth, m);
          CHECK(m.has_act_order() == act_order);
          const GptqTensors repacked = pack_gptq(m, convention);
          CHECK(repacked.qweight == tensors.qweight);
          CHECK(repacked.qzeros == tensors.qzeros);
          CHECK(repacked.g_idx == tensors.g_idx);
        }
      }
}

TEST_CASE("GPTQ without g_idx groups input columns as k / g, with a partial last group", "[quant]") {
  std::mt19937 rng(7);
  const QuantizedMatrix truth = random_matrix(rng, 4, 16, 40, 16, false);  // G = ceil(40 / 16) = 3
  REQUIRE(truth.groups() == 3);
  GptqTensors tensors = gptq_tensors_of(truth, GptqZeros::V2);
  tensors.g_idx.clear();
  const QuantizedMatrix m = unpack_gptq(tensors, GptqZeros::V2);
  require_same(truth, m);
  CHECK_FALSE(m.has_act_order());
}

TEST_CASE("GPTQ v1 zeros: stored zero - 1, read (stored + 1) & mask, sym words 0x77777777", "[quant]") {
  GptqTensors t;
  t.bits = 4;
  t.N = 8;
  t.K = 8;
  t.group_size = 8;
  t.qweight.assign(8, 0);
  t.scales.assign(8, 1.0f);
  SECTION("symmetric 4-bit: v1 0x77777777 and v2 0x88888888 both mean zero 8") {
    t.qzeros = {word_of(0x77777777u)};
    for (int32_t zero : unpack_gptq(t, GptqZeros::V1).zeros) CHECK(zero == 8);
    // v1 -> v2 adds 1 to every field: 0x77777777 + 0x11111111.
    t.qzeros = {word_of(0x77777777u + 0x11111111u)};
    for (int32_t zero : unpack_gptq(t, GptqZeros::V2).zeros) CHECK(zero == 8);
  }
  SECTION("an old writer's -1 in a low field corrupts the fields above it") {
    // True zeros 5, 9, 0, 3, 7, 2, 1, 4. AutoGPTQ writes zero - 1 = 4, 8, -1, ... as uint32 and ORs
    // value << 4i: 0xFFFFFFFF << 8 sets bits 8..31, so the word is 0xFFFFFF84 whatever fields 3..7 held.
    const std::vector<uint32_t> stored = {4, 8, 0xFFFFFFFFu, 2, 6, 1, 0, 3};
    const std::vector<uint32_t> word = autogptq_pack_stream(stored, 4);
    REQUIRE(word.size() == 1);
    REQUIRE(word[0] == 0xFFFFFF84u);
    t.qzeros = {word_of(word[0])};
    const std::vector<int32_t> zeros = unpack_gptq(t, GptqZeros::V1).zeros;
    // AutoGPTQ's reader, per field: ((word >> 4i) + 1) & 15. Fields below the -1 are intact; the -1 field
    // reads its true 0; every field above reads 0xF + 1 masked = 0 (the stored 3, 7, 2, 1, 4 are gone from
    // the file, so no reader can recover them: we read what AutoGPTQ read when it evaluated the model).
    for (int i = 0; i < 8; ++i) {
      const int32_t autogptq = static_cast<int32_t>(((word[0] >> (4 * i)) + 1u) & 15u);
      CHECK(zeros[static_cast<size_t>(i)] == autogptq);
    }
    CHECK(zeros == std::vector<int32_t>{5, 9, 0, 0, 0, 0, 0, 0});
    // An add-1-without-mask kernel (exllama) would read field 2 as 16, not 0.
    CHECK(((word[0] >> 8) & 15u) + 1u == 16u);
  }
}

TEST_CASE("pack_gptq v1 refuses a true zero of 0; v2 stores it", "[quant]") {
  std::mt19937 rng(3);
  QuantizedMatrix m = random_matrix(rng, 4, 16, 32, 16, false, 1);
  m.zeros[static_cast<size_t>(1 * 16 + 5)] = 0;  // group 1, output column 5
  CHECK(any_zero_is_zero(m));
  require_error([&] { pack_gptq(m, GptqZeros::V1); }, {"v1", "zero of 0", "group 1", "column 5", "gptq_v2"});
  const GptqTensors v2 = pack_gptq(m, GptqZeros::V2);
  require_same(m, unpack_gptq(v2, GptqZeros::V2));
}

TEST_CASE("pack/unpack round trips for every bit width and group size", "[quant]") {
  std::mt19937 rng(99);
  for (int64_t group_size : {32, 64, 128, -1}) {
    const QuantizedMatrix awq = random_matrix(rng, 4, 64, 256, group_size, false);
    require_same(awq, unpack_awq(pack_awq(awq)));
    for (int bits : {2, 3, 4, 8})
      for (bool act_order : {false, true}) {
        INFO("bits " << bits << " group " << group_size << " act_order " << act_order);
        const QuantizedMatrix v2 = random_matrix(rng, bits, 64, 256, group_size, act_order);
        require_same(v2, unpack_gptq(pack_gptq(v2, GptqZeros::V2), GptqZeros::V2));
        const QuantizedMatrix v1 = random_matrix(rng, bits, 64, 256, group_size, act_order, 1);
        require_same(v1, unpack_gptq(pack_gptq(v1, GptqZeros::V1), GptqZeros::V1));
      }
  }
}

TEST_CASE("awq_to_gptq is exact for every zero, 0 and 15 included", "[quant]") {
  std::mt19937 rng(2024);
  QuantizedMatrix awq = random_matrix(rng, 4, 32, 128, 64, false);
  awq.zeros[0] = 0;
  awq.zeros[1] = 15;
  awq.zeros[static_cast<size_t>(awq.N + 7)] = 0;
  const AwqTensors packed = awq_tensors_of(awq);
  const GptqTensors gptq = awq_to_gptq(packed);
  // The words themselves are the GPTQ layout with true zeros: compare with the independent packer.
  CHECK(gptq.qweight == gptq_pack_qweight(awq));
  CHECK(gptq.qzeros == gptq_pack_qzeros(awq, GptqZeros::V2));
  CHECK(gptq.scales == awq.scales);
  require_same(unpack_awq(packed), unpack_gptq(gptq, GptqZeros::V2));

  // lorax/TGI fast_awq_to_gptq stores (zero - 1) & 0xF and its exllama kernel adds 1 without a mask:
  // an AWQ zero of 0 becomes 15 + 1 = 16 (GPTQModel#2350), while 15 survives. Ours reads 0.
  const auto lorax_read = [](int32_t zero) { return static_cast<int32_t>((static_cast<uint32_t>(zero - 1) & 15u) + 1u); };
  CHECK(lorax_read(0) == 16);
  CHECK(lorax_read(15) == 15);
  const QuantizedMatrix ours = unpack_gptq(gptq, GptqZeros::V2);
  CHECK(ours.zeros[0] == 0);
  CHECK(ours.zeros[1] == 15);
  CHECK(ours.zeros[static_cast<size_t>(awq.N + 7)] == 0);
}

TEST_CASE("unpack and pack refuse inconsistent tensors by name", "[quant]") {
  std::mt19937 rng(5);
  const QuantizedMatrix m = random_matrix(rng, 4, 32, 64, 32, false);
  AwqTensors awq = awq_tensors_of(m);
  awq.qzeros.pop_back();
  require_error([&] { unpack_awq(awq); }, {"qzeros", "[2, 4]"});
  awq = awq_tensors_of(m);
  awq.group_size = 48;
  require_error([&] { unpack_awq(awq); }, {"in_features 64", "group_size 48"});

  GptqTensors gptq = gptq_tensors_of(m, GptqZeros::V2);
  gptq.qweight.resize(5);
  require_error([&] { unpack_gptq(gptq, GptqZeros::V2); }, {"qweight", "[8, 32]"});
  gptq = gptq_tensors_of(m, GptqZeros::V2);
  gptq.g_idx[3] = 2;  // G = 2
  require_error([&] { unpack_gptq(gptq, GptqZeros::V2); }, {"g_idx[3]", "[0, 2)"});
  gptq = gptq_tensors_of(m, GptqZeros::V2);
  gptq.bits = 3;  // K = 64 is a multiple of 32, N = 32 too, but the word counts are wrong now
  require_error([&] { unpack_gptq(gptq, GptqZeros::V2); }, {"qweight"});

  QuantizedMatrix act_order = random_matrix(rng, 4, 32, 64, 32, true);
  require_error([&] { pack_awq(act_order); }, {"act-order"});
  QuantizedMatrix three_bit = random_matrix(rng, 3, 32, 64, 32, false);
  require_error([&] { pack_awq(three_bit); }, {"4-bit"});
  QuantizedMatrix bad = m;
  bad.scales[0] = 0.1f;  // not an fp16 value
  require_error([&] { pack_awq(bad); }, {"scale [0, 0]", "fp16"});
}
