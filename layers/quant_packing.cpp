#include "layers/quant_packing.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "runtime/error.h"

namespace runllm {
namespace {

// AWQ packs 8 nibbles in the order 0,2,4,6,1,3,5,7: nibble i of word c holds output column
// 8c + kAwqOrder[i] (FORMATS.md §3).
constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

// int32 on disk, but every shift must act on the unsigned bits (a set top bit is data, not a sign).
uint32_t as_bits(int32_t word) {
  uint32_t bits;
  std::memcpy(&bits, &word, sizeof bits);
  return bits;
}
int32_t as_word(uint32_t bits) {
  int32_t word;
  std::memcpy(&word, &bits, sizeof word);
  return word;
}

std::string dims(int64_t a, int64_t b) { return "[" + std::to_string(a) + ", " + std::to_string(b) + "]"; }

void check_count(const char* what, const char* tensor, size_t actual, int64_t rows, int64_t cols) {
  if (static_cast<int64_t>(actual) != rows * cols)
    throw Error(std::string(what) + ": " + tensor + " holds " + std::to_string(actual) + " values, expected " +
                dims(rows, cols));
}

// The layout rules an AWQ gemm matrix must meet (FORMATS.md §3): bits 4, N % 8 == 0, K % g == 0.
void check_awq_shape(const char* what, int64_t N, int64_t K, int64_t group_size) {
  if (N <= 0 || K <= 0) throw Error(std::string(what) + ": shape " + dims(N, K) + " must be positive");
  if (group_size <= 0)
    throw Error(std::string(what) + ": group_size " + std::to_string(group_size) + " must be positive (-1 = K)");
  if (N % 8 != 0)
    throw Error(std::string(what) + ": out_features " + std::to_string(N) +
                " is not divisible by 8 (AWQ packs 8 output columns per int32)");
  if (K % group_size != 0)
    throw Error(std::string(what) + ": in_features " + std::to_string(K) + " is not divisible by group_size " +
                std::to_string(group_size));
}

void check_awq_tensors(const char* what, const AwqTensors& t) {
  check_awq_shape(what, t.N, t.K, t.group_size);
  const int64_t G = t.K / t.group_size;
  check_count(what, "qweight", t.qweight.size(), t.K, t.N / 8);
  check_count(what, "qzeros", t.qzeros.size(), G, t.N / 8);
  check_count(what, "scales", t.scales.size(), G, t.N);
}

// GPTQ's packed axes are one little-endian bit stream: value i occupies stream bits
// [bits*i, bits*i + bits), and stream bit b is bit b % 32 of word b / 32. For 2/4/8 bits no value
// crosses a word (plain order, FORMATS.md §4); for 3 bits this is exactly AutoGPTQ's 32-values-in-3-words
// table (FORMATS-REFERENCE.md §3.3: value 10 straddles w0/w1 as bits 30-31 + bit 0, value 21 straddles
// w1/w2 as bit 31 + bits 0-1). `stride` is the distance in words between consecutive words of the stream.
uint32_t read_field(const int32_t* words, int64_t stride, int bits, int64_t index) {
  const int64_t bit = bits * index;
  const int64_t word = bit / 32;
  const int shift = static_cast<int>(bit % 32);
  uint64_t window = as_bits(words[word * stride]);
  if (shift + bits > 32) window |= static_cast<uint64_t>(as_bits(words[(word + 1) * stride])) << 32;
  return static_cast<uint32_t>(window >> shift) & ((1u << bits) - 1u);
}

// ORs `value` (already < 2^bits) into the stream; the words start at zero.
void write_field(int32_t* words, int64_t stride, int bits, int64_t index, uint32_t value) {
  const int64_t bit = bits * index;
  const int64_t word = bit / 32;
  const int shift = static_cast<int>(bit % 32);
  const uint64_t window = static_cast<uint64_t>(value) << shift;
  words[word * stride] = as_word(as_bits(words[word * stride]) | static_cast<uint32_t>(window));
  if (shift + bits > 32)
    words[(word + 1) * stride] = as_word(as_bits(words[(word + 1) * stride]) | static_cast<uint32_t>(window >> 32));
}

void check_gptq_shape(const char* what, int bits, int64_t N, int64_t K, int64_t group_size) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error(std::string(what) + ": bits " + std::to_string(bits) + " is not supported (expected 2, 3, 4 or 8)");
  if (N <= 0 || K <= 0) throw Error(std::string(what) + ": shape " + dims(N, K) + " must be positive");
  if (group_size <= 0)
    throw Error(std::string(what) + ": group_size " + std::to_string(group_size) + " must be positive (-1 = K)");
  // qweight packs K * bits / 32 words per column and qzeros N * bits / 32 words per group: both must be
  // whole words (for 3 bits that means multiples of 32).
  if ((K * bits) % 32 != 0)
    throw Error(std::string(what) + ": in_features " + std::to_string(K) + " is not a multiple of " +
                std::to_string(32 / (bits == 3 ? 1 : bits)) + " (GPTQ " + std::to_string(bits) +
                "-bit packs along in_features)");
  if ((N * bits) % 32 != 0)
    throw Error(std::string(what) + ": out_features " + std::to_string(N) + " is not a multiple of " +
                std::to_string(32 / (bits == 3 ? 1 : bits)) + " (GPTQ " + std::to_string(bits) +
                "-bit packs zeros along out_features)");
}

}  // namespace

QuantizedMatrix unpack_awq(const AwqTensors& t) {
  check_awq_tensors("unpack_awq", t);
  QuantizedMatrix m;
  m.bits = 4;
  m.N = t.N;
  m.K = t.K;
  m.group_size = t.group_size;
  const int64_t G = m.groups();
  const int64_t words_per_row = t.N / 8;
  m.q.resize(static_cast<size_t>(t.N * t.K));
  // qweight is [K, N/8] (in, out orientation); q is [N, K] like nn.Linear. The transpose goes in
  // blocks of 64 input rows, so each output row is written a cache line at a time (a plain
  // row-by-row transpose made AWQ load 3.6x slower than GPTQ of the same size).
  constexpr int64_t kBlock = 64;
  for (int64_t k0 = 0; k0 < t.K; k0 += kBlock) {
    const int64_t k1 = std::min(t.K, k0 + kBlock);
    for (int64_t c = 0; c < words_per_row; ++c)
      for (int64_t k = k0; k < k1; ++k) {
        const uint32_t word = as_bits(t.qweight[static_cast<size_t>(k * words_per_row + c)]);
        for (int i = 0; i < 8; ++i)
          m.q[static_cast<size_t>((8 * c + kAwqOrder[i]) * t.K + k)] = static_cast<uint8_t>((word >> (4 * i)) & 15u);
      }
  }
  // Zeros use the same interleave over [G, N]; AWQ stores the true zero (no -1).
  m.zeros.resize(static_cast<size_t>(G * t.N));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < words_per_row; ++c) {
      const uint32_t word = as_bits(t.qzeros[static_cast<size_t>(g * words_per_row + c)]);
      for (int i = 0; i < 8; ++i)
        m.zeros[static_cast<size_t>(g * t.N + 8 * c + kAwqOrder[i])] = static_cast<int32_t>((word >> (4 * i)) & 15u);
    }
  m.scales = t.scales;
  m.g_idx.resize(static_cast<size_t>(t.K));
  for (int64_t k = 0; k < t.K; ++k) m.g_idx[static_cast<size_t>(k)] = static_cast<int32_t>(k / t.group_size);
  m.validate("unpack_awq");
  return m;
}

AwqTensors pack_awq(const QuantizedMatrix& m) {
  m.validate("pack_awq");
  if (m.bits != 4) throw Error("pack_awq: AWQ is 4-bit only, the matrix is " + std::to_string(m.bits) + "-bit");
  check_awq_shape("pack_awq", m.N, m.K, m.group_size);
  if (m.has_act_order()) throw Error("pack_awq: AWQ has no g_idx, so an act-order matrix cannot be written as AWQ");
  AwqTensors t;
  t.N = m.N;
  t.K = m.K;
  t.group_size = m.group_size;
  const int64_t G = m.groups();
  const int64_t words_per_row = m.N / 8;
  t.qweight.assign(static_cast<size_t>(m.K * words_per_row), 0);
  for (int64_t k = 0; k < m.K; ++k)
    for (int64_t c = 0; c < words_per_row; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i) word |= static_cast<uint32_t>(m.q[static_cast<size_t>((8 * c + kAwqOrder[i]) * m.K + k)]) << (4 * i);
      t.qweight[static_cast<size_t>(k * words_per_row + c)] = as_word(word);
    }
  t.qzeros.assign(static_cast<size_t>(G * words_per_row), 0);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t c = 0; c < words_per_row; ++c) {
      uint32_t word = 0;
      for (int i = 0; i < 8; ++i)
        word |= static_cast<uint32_t>(m.zeros[static_cast<size_t>(g * m.N + 8 * c + kAwqOrder[i])]) << (4 * i);
      t.qzeros[static_cast<size_t>(g * words_per_row + c)] = as_word(word);
    }
  t.scales = m.scales;
  return t;
}

QuantizedMatrix unpack_gptq(const GptqTensors& t, GptqZeros convention) {
  check_gptq_shape("unpack_gptq", t.bits, t.N, t.K, t.group_size);
  QuantizedMatrix m;
  m.bits = t.bits;
  m.N = t.N;
  m.K = t.K;
  m.group_size = t.group_size;
  const int64_t G = m.groups();
  const int64_t zero_words = t.N * t.bits / 32;
  check_count("unpack_gptq", "qweight", t.qweight.size(), t.K * t.bits / 32, t.N);
  check_count("unpack_gptq", "qzeros", t.qzeros.size(), G, zero_words);
  check_count("unpack_gptq", "scales", t.scales.size(), G, t.N);
  if (!t.g_idx.empty()) check_count("unpack_gptq", "g_idx", t.g_idx.size(), 1, t.K);

  // qweight [K * bits / 32, N]: column n is a stream running down the rows (stride N words).
  m.q.resize(static_cast<size_t>(t.N * t.K));
  for (int64_t n = 0; n < t.N; ++n)
    for (int64_t k = 0; k < t.K; ++k)
      m.q[static_cast<size_t>(n * t.K + k)] = static_cast<uint8_t>(read_field(t.qweight.data() + n, t.N, t.bits, k));

  // qzeros [G, N * bits / 32]: each group row is one stream along N. v1 stores zero - 1 and is read the way
  // AutoGPTQ reads it, (stored + 1) & mask, field by field: a true zero of 0 (stored -1) comes back as 0.
  // Old writers OR'd that -1 as a uint32, setting every higher bit of the word; those higher fields then
  // read (mask + 1) & mask = 0, exactly as AutoGPTQ's own reader sees them. Their original values are
  // lost in the file and cannot be recovered by any reader.
  const uint32_t mask = (1u << t.bits) - 1u;
  m.zeros.resize(static_cast<size_t>(G * t.N));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < t.N; ++n) {
      const uint32_t stored = read_field(t.qzeros.data() + g * zero_words, 1, t.bits, n);
      const uint32_t zero = convention == GptqZeros::V1 ? ((stored + 1u) & mask) : stored;
      m.zeros[static_cast<size_t>(g * t.N + n)] = static_cast<int32_t>(zero);
    }
  m.scales = t.scales;
  if (t.g_idx.empty()) {
    // Files written without g_idx (or loaders that drop it) mean the plain k / g grouping.
    m.g_idx.resize(static_cast<size_t>(t.K));
    for (int64_t k = 0; k < t.K; ++k) m.g_idx[static_cast<size_t>(k)] = static_cast<int32_t>(k / t.group_size);
  } else {
    m.g_idx = t.g_idx;
  }
  m.validate("unpack_gptq");
  return m;
}

GptqTensors pack_gptq(const QuantizedMatrix& m, GptqZeros convention) {
  m.validate("pack_gptq");
  check_gptq_shape("pack_gptq", m.bits, m.N, m.K, m.group_size);
  GptqTensors t;
  t.bits = m.bits;
  t.N = m.N;
  t.K = m.K;
  t.group_size = m.group_size;
  const int64_t G = m.groups();
  const int64_t zero_words = m.N * m.bits / 32;
  const uint32_t mask = (1u << m.bits) - 1u;
  t.qweight.assign(static_cast<size_t>(m.K * m.bits / 32 * m.N), 0);
  for (int64_t n = 0; n < m.N; ++n)
    for (int64_t k = 0; k < m.K; ++k)
      write_field(t.qweight.data() + n, m.N, m.bits, k, m.q[static_cast<size_t>(n * m.K + k)]);
  t.qzeros.assign(static_cast<size_t>(G * zero_words), 0);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < m.N; ++n) {
      const int32_t zero = m.zeros[static_cast<size_t>(g * m.N + n)];
      if (convention == GptqZeros::V1 && zero == 0)
        throw Error("pack_gptq: GPTQ v1 stores zero - 1 and cannot store a true zero of 0 (group " +
                    std::to_string(g) + ", output column " + std::to_string(n) +
                    "); write checkpoint_format gptq_v2 instead");
      // Masked, so the v1 "zero - 1" of a nonzero zero never spills into its neighbours.
      const uint32_t stored = convention == GptqZeros::V1 ? (static_cast<uint32_t>(zero - 1) & mask)
                                                          : static_cast<uint32_t>(zero);
      write_field(t.qzeros.data() + g * zero_words, 1, m.bits, n, stored);
    }
  t.scales = m.scales;
  t.g_idx = m.g_idx;
  return t;
}

bool any_zero_is_zero(const QuantizedMatrix& m) {
  for (int32_t zero : m.zeros)
    if (zero == 0) return true;
  return false;
}

GptqTensors awq_to_gptq(const AwqTensors& awq) {
  check_awq_tensors("awq_to_gptq", awq);
  if (awq.K % 8 != 0)
    throw Error("awq_to_gptq: in_features " + std::to_string(awq.K) +
                " is not a multiple of 8 (GPTQ 4-bit packs 8 input rows per int32)");
  const int64_t N = awq.N, K = awq.K;
  const int64_t G = K / awq.group_size;
  const int64_t words_per_row = N / 8;
  GptqTensors t;
  t.bits = 4;
  t.N = N;
  t.K = K;
  t.group_size = awq.group_size;
  // Weights: AWQ nibble i of word [k, c] is column 8c + order[i]; GPTQ wants q[k, n] at nibble k % 8 of
  // word [k / 8, n] (packed along K, plain order). Moved nibble by nibble, values untouched.
  t.qweight.assign(static_cast<size_t>(K / 8 * N), 0);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < words_per_row; ++c) {
      const uint32_t word = as_bits(awq.qweight[static_cast<size_t>(k * words_per_row + c)]);
      for (int i = 0; i < 8; ++i) {
        const int64_t n = 8 * c + kAwqOrder[i];
        int32_t& target = t.qweight[static_cast<size_t>((k / 8) * N + n)];
        target = as_word(as_bits(target) | (((word >> (4 * i)) & 15u) << (4 * (k % 8))));
      }
    }
  // Zeros stay along N, 8 per word, so only the nibble order changes (interleaved -> plain). The value is
  // the TRUE zero (gptq_v2 semantics): no "zero - 1", which would turn an AWQ zero of 0 into 15 and make
  // an add-1 kernel read 16 (lorax/TGI fast_awq_to_gptq, GPTQModel#2350).
  t.qzeros.assign(static_cast<size_t>(G * words_per_row), 0);
  for (size_t w = 0; w < t.qzeros.size(); ++w) {
    const uint32_t word = as_bits(awq.qzeros[w]);
    uint32_t plain = 0;
    for (int i = 0; i < 8; ++i) plain |= ((word >> (4 * i)) & 15u) << (4 * kAwqOrder[i]);
    t.qzeros[w] = as_word(plain);
  }
  t.scales = awq.scales;
  t.g_idx.resize(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) t.g_idx[static_cast<size_t>(k)] = static_cast<int32_t>(k / awq.group_size);
  return t;
}

}  // namespace runllm
