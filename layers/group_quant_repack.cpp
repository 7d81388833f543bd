#include "layers/group_quant_repack.h"

#include <algorithm>
#include <numeric>

#include "runtime/dtype.h"

namespace runllm {

GroupQuantLayout GroupQuantHostLayout::view() const {
  GroupQuantLayout layout = shape;
  layout.words = words.data();
  layout.scales = scales.data();
  layout.zeros = zeros.data();
  layout.perm = perm.empty() ? nullptr : perm.data();
  layout.group_of = group_of.data();
  return layout;
}

GroupQuantHostLayout repack_for_gpu(const QuantizedMatrix& m) {
  m.validate("repack_for_gpu");
  const int64_t N = m.N, K = m.K, G = m.groups();
  GroupQuantHostLayout out;
  GroupQuantLayout& shape = out.shape;
  shape.bits = m.bits;
  shape.N = N;
  shape.K = K;
  shape.padded_K = (K + 31) / 32 * 32;
  shape.words_per_row = shape.padded_K * m.bits / 32;
  shape.groups = G;
  shape.group_size = m.group_size;

  // Act-order (ExLlama's method): sort the columns by group once, stably, so each group is a
  // contiguous run; the kernels gather the activation's columns through perm.
  std::vector<int32_t> order(static_cast<size_t>(K));
  std::iota(order.begin(), order.end(), 0);
  if (m.has_act_order()) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return m.g_idx[static_cast<size_t>(a)] < m.g_idx[static_cast<size_t>(b)]; });
    out.perm = order;
  }
  out.group_of.resize(static_cast<size_t>(K));
  shape.uniform_groups = true;
  for (int64_t j = 0; j < K; ++j) {
    const int32_t group = m.g_idx[static_cast<size_t>(order[static_cast<size_t>(j)])];
    out.group_of[static_cast<size_t>(j)] = group;
    if (group != j / m.group_size) shape.uniform_groups = false;
  }

  out.words.assign(static_cast<size_t>(N * shape.words_per_row), 0u);
  for (int64_t n = 0; n < N; ++n) {
    uint32_t* row = out.words.data() + n * shape.words_per_row;
    const uint8_t* q = m.q.data() + n * K;
    for (int64_t j = 0; j < K; ++j) {
      const uint64_t value = q[order[static_cast<size_t>(j)]];
      const int64_t bit = m.bits * j;
      const int shift = static_cast<int>(bit % 32);
      row[bit / 32] |= static_cast<uint32_t>(value << shift);
      if (shift + m.bits > 32) row[bit / 32 + 1] |= static_cast<uint32_t>(value >> (32 - shift));
    }
  }
  out.scales.resize(static_cast<size_t>(N * G));
  out.zeros.resize(static_cast<size_t>(N * G));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t n = 0; n < N; ++n) {
      out.scales[static_cast<size_t>(n * G + g)] = float_to_half(m.scales[static_cast<size_t>(g * N + n)]);
      out.zeros[static_cast<size_t>(n * G + g)] = static_cast<uint8_t>(m.zeros[static_cast<size_t>(g * N + n)]);
    }
  return out;
}

}  // namespace runllm
