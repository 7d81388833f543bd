// GPTQ as AutoGPTQ's gptq.py implements it (add_batch, fasterquant), in double precision on the CPU.
// The O(K³) linear algebra (Cholesky, triangular inverse) and the lazy-batch update run through BLAS 3
// so a [576, 1536] down_proj quantizes in a fraction of a second.
#include "model/quantize/gptq.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "runtime/dtype.h"
#include "runtime/error.h"

namespace runllm {

HessianAccumulator::HessianAccumulator(int64_t K) : K_(K) {
  if (K <= 0) throw Error("HessianAccumulator: in_features " + std::to_string(K) + " must be positive");
  hessian_.assign(static_cast<size_t>(K * K), 0.0);
}

void HessianAccumulator::add(const float* x, int64_t M) {
  if (M < 0) throw Error("HessianAccumulator::add: row count " + std::to_string(M) + " is negative");
  if (M == 0) return;
  // AutoGPTQ add_batch: H *= n / (n + m); n += m; H += (sqrt(2 / n) x)ᵀ (sqrt(2 / n) x). The result is
  // 2/n Σ x xᵀ over every row seen, whatever the batching.
  const int64_t total = samples_ + M;
  const double keep = static_cast<double>(samples_) / static_cast<double>(total);
  const double weight = 2.0 / static_cast<double>(total);
  // Only the upper triangle is accumulated (dsyrk) and mirrored at the end; rescale that part here.
  for (int64_t i = 0; i < K_; ++i)
    for (int64_t j = i; j < K_; ++j) hessian_[static_cast<size_t>(i * K_ + j)] *= keep;
  // Rows go through double in chunks: x xᵀ of activations with outliers loses digits in fp32.
  constexpr int64_t kChunkRows = 256;
  std::vector<double> chunk(static_cast<size_t>(std::min(M, kChunkRows) * K_));
  for (int64_t r0 = 0; r0 < M; r0 += kChunkRows) {
    const int64_t rows = std::min(kChunkRows, M - r0);
    for (int64_t i = 0; i < rows * K_; ++i) {
      const float value = x[r0 * K_ + i];
      if (!std::isfinite(value))
        throw Error("HessianAccumulator::add: input [" + std::to_string(r0 + i / K_) + ", " + std::to_string(i % K_) +
                    "] is not finite");
      chunk[static_cast<size_t>(i)] = value;
    }
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(K_), static_cast<int>(rows), weight,
                chunk.data(), static_cast<int>(K_), 1.0, hessian_.data(), static_cast<int>(K_));
  }
  for (int64_t i = 0; i < K_; ++i)
    for (int64_t j = 0; j < i; ++j)
      hessian_[static_cast<size_t>(i * K_ + j)] = hessian_[static_cast<size_t>(j * K_ + i)];
  samples_ = total;
}

namespace {

[[noreturn]] void throw_not_positive_definite(int64_t column, double damp_percent) {
  throw Error("gptq_quantize: the Hessian is not positive definite (pivot " + std::to_string(column) +
              ") even after dampening with damp_percent " + std::to_string(damp_percent) +
              "; use more (or more varied) calibration data or a larger damp_percent");
}

// In-place lower Cholesky factor of the n×n row-major block at a (leading dimension lda), unblocked.
// Returns the first failing pivot, or -1.
int64_t cholesky_unblocked(double* a, int64_t n, int64_t lda) {
  for (int64_t j = 0; j < n; ++j) {
    double diagonal = a[j * lda + j];
    for (int64_t p = 0; p < j; ++p) diagonal -= a[j * lda + p] * a[j * lda + p];
    if (!(diagonal > 0.0) || !std::isfinite(diagonal)) return j;
    const double pivot = std::sqrt(diagonal);
    a[j * lda + j] = pivot;
    for (int64_t i = j + 1; i < n; ++i) {
      double value = a[i * lda + j];
      for (int64_t p = 0; p < j; ++p) value -= a[i * lda + p] * a[j * lda + p];
      a[i * lda + j] = value / pivot;
    }
  }
  return -1;
}

// In-place lower Cholesky factor L (A = L Lᵀ) of the K×K row-major matrix a, blocked left-looking
// (LAPACK dpotrf's scheme) on BLAS 3. The strict upper triangle is zeroed.
void cholesky_lower(std::vector<double>& a, int64_t K, double damp_percent) {
  constexpr int64_t kBlock = 64;
  const int lda = static_cast<int>(K);
  for (int64_t j0 = 0; j0 < K; j0 += kBlock) {
    const int64_t jb = std::min(kBlock, K - j0);
    double* diagonal_block = &a[static_cast<size_t>(j0 * K + j0)];
    if (j0 > 0) {
      // A[j, j] -= L[j, 0:j] L[j, 0:j]ᵀ
      cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, static_cast<int>(jb), static_cast<int>(j0), -1.0,
                  &a[static_cast<size_t>(j0 * K)], lda, 1.0, diagonal_block, lda);
    }
    const int64_t failed = cholesky_unblocked(diagonal_block, jb, K);
    if (failed >= 0) throw_not_positive_definite(j0 + failed, damp_percent);
    const int64_t below = K - j0 - jb;
    if (below > 0) {
      double* panel = &a[static_cast<size_t>((j0 + jb) * K + j0)];
      if (j0 > 0) {
        // A[below, j] -= L[below, 0:j] L[j, 0:j]ᵀ
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(below), static_cast<int>(jb),
                    static_cast<int>(j0), -1.0, &a[static_cast<size_t>((j0 + jb) * K)], lda,
                    &a[static_cast<size_t>(j0 * K)], lda, 1.0, panel, lda);
      }
      // L[below, j] = A[below, j] L[j, j]^-ᵀ
      cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, static_cast<int>(below),
                  static_cast<int>(jb), 1.0, diagonal_block, lda, panel, lda);
    }
  }
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = i + 1; j < K; ++j) a[static_cast<size_t>(i * K + j)] = 0.0;
}

// L⁻¹ of a lower-triangular K×K L, by block columns: column block [c0, c1) of L⁻¹ is zero above c0,
// so each block solves only the trailing triangle (K³/3 flops instead of K³).
std::vector<double> lower_triangular_inverse(const std::vector<double>& lower, int64_t K) {
  constexpr int64_t kBlock = 128;
  std::vector<double> inverse(static_cast<size_t>(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i) inverse[static_cast<size_t>(i * K + i)] = 1.0;
  for (int64_t c0 = 0; c0 < K; c0 += kBlock) {
    const int64_t width = std::min(kBlock, K - c0);
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, static_cast<int>(K - c0),
                static_cast<int>(width), 1.0, &lower[static_cast<size_t>(c0 * K + c0)], static_cast<int>(K),
                &inverse[static_cast<size_t>(c0 * K + c0)], static_cast<int>(K));
  }
  return inverse;
}

// The upper Cholesky factor U of H⁻¹ (H⁻¹ = Uᵀ U), what AutoGPTQ gets from
// cholesky(H) → cholesky_inverse → cholesky(upper=True). With J the reversal permutation and
// J H J = L Lᵀ, U = J L⁻¹ J: it is upper triangular with a positive diagonal and
// Uᵀ U = J L⁻ᵀ L⁻¹ J = J (J H J)⁻¹ J = H⁻¹, so by uniqueness it is the same factor, from one
// factorisation and one triangular inverse instead of three O(K³) steps.
std::vector<double> inverse_upper_cholesky(const std::vector<double>& hessian, int64_t K, double damp_percent) {
  std::vector<double> reversed(static_cast<size_t>(K * K));
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j)
      reversed[static_cast<size_t>(i * K + j)] = hessian[static_cast<size_t>((K - 1 - i) * K + (K - 1 - j))];
  cholesky_lower(reversed, K, damp_percent);
  const std::vector<double> inverse = lower_triangular_inverse(reversed, K);
  std::vector<double> upper(static_cast<size_t>(K * K));
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j)
      upper[static_cast<size_t>(i * K + j)] = inverse[static_cast<size_t>((K - 1 - i) * K + (K - 1 - j))];
  for (int64_t i = 0; i < K; ++i)
    if (!std::isfinite(upper[static_cast<size_t>(i * K + i)]) || !(upper[static_cast<size_t>(i * K + i)] > 0.0))
      throw_not_positive_definite(i, damp_percent);
  return upper;
}

// One row's quantization grid for a group (AutoGPTQ quantizer.find_params, weight=True).
struct GroupParams {
  double scale;
  double zero;
};

GroupParams find_params(const double* values, int64_t count, int bits, bool sym) {
  const int maxq = (1 << bits) - 1;
  double xmin = 0.0, xmax = 0.0;  // the range always contains 0
  for (int64_t i = 0; i < count; ++i) {
    xmin = std::min(xmin, values[i]);
    xmax = std::max(xmax, values[i]);
  }
  if (sym) {
    // FORMATS-REFERENCE.md §3.4: a range symmetric about 0, the mid value as zero (as rtn_quantize).
    xmax = std::max(-xmin, xmax);
    xmin = -xmax;
  }
  if (xmin == 0.0 && xmax == 0.0) {  // an all-zero group: AutoGPTQ uses [-1, 1]
    xmin = -1.0;
    xmax = 1.0;
  }
  // Scales are stored as fp16, so q is computed with the fp16 value that dequantization will use.
  float scale = half_to_float(float_to_half(static_cast<float>((xmax - xmin) / maxq)));
  if (!std::isfinite(scale))
    throw Error("gptq_quantize: a group's scale " + std::to_string((xmax - xmin) / maxq) +
                " overflows fp16 (weights out of fp16 range)");
  if (scale == 0.0f) scale = half_to_float(1);  // a range below fp16's resolution: the smallest subnormal
  GroupParams params;
  params.scale = scale;
  params.zero = sym ? static_cast<double>((maxq + 1) / 2)
                    : std::clamp(std::nearbyint(-xmin / params.scale), 0.0, static_cast<double>(maxq));
  return params;
}

}  // namespace

GptqResult gptq_quantize(const float* weight, int64_t N, int64_t K, const HessianAccumulator& hessian,
                         const GptqOptions& options) {
  const int bits = options.bits;
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    throw Error("gptq_quantize: bits " + std::to_string(bits) + " is not supported (expected 2, 3, 4 or 8)");
  if (N <= 0 || K <= 0)
    throw Error("gptq_quantize: shape [" + std::to_string(N) + ", " + std::to_string(K) + "] must be positive");
  if (hessian.K() != K)
    throw Error("gptq_quantize: the Hessian is " + std::to_string(hessian.K()) + "x" + std::to_string(hessian.K()) +
                " but the weight has in_features " + std::to_string(K));
  if (hessian.samples() == 0) throw Error("gptq_quantize: the Hessian has seen no calibration rows");
  if (options.group_size == 0 || options.group_size < -1)
    throw Error("gptq_quantize: group_size " + std::to_string(options.group_size) + " must be positive or -1");
  if (options.block_size <= 0)
    throw Error("gptq_quantize: block_size " + std::to_string(options.block_size) + " must be positive");
  if (!(options.damp_percent >= 0.0) || !std::isfinite(options.damp_percent))
    throw Error("gptq_quantize: damp_percent " + std::to_string(options.damp_percent) + " must be >= 0");

  const int maxq = (1 << bits) - 1;
  const int64_t g = options.group_size == -1 ? K : options.group_size;

  std::vector<double> W(static_cast<size_t>(N * K));
  for (int64_t i = 0; i < N * K; ++i) {
    if (!std::isfinite(weight[i]))
      throw Error("gptq_quantize: weight [" + std::to_string(i / K) + ", " + std::to_string(i % K) + "] is not finite");
    W[static_cast<size_t>(i)] = weight[i];
  }
  std::vector<double> H = hessian.matrix();

  // group_size -1: AutoGPTQ finds the one group's parameters from the whole weight before anything else
  // (before dead columns are zeroed and before any permutation).
  std::vector<GroupParams> params(static_cast<size_t>(N));
  if (options.group_size == -1)
    for (int64_t n = 0; n < N; ++n)
      params[static_cast<size_t>(n)] = find_params(&W[static_cast<size_t>(n * K)], K, bits, options.sym);

  // Dead inputs (never active in calibration): H[k][k] = 1 keeps H invertible; their weight is irrelevant.
  for (int64_t k = 0; k < K; ++k) {
    if (H[static_cast<size_t>(k * K + k)] == 0.0) {
      H[static_cast<size_t>(k * K + k)] = 1.0;
      for (int64_t n = 0; n < N; ++n) W[static_cast<size_t>(n * K + k)] = 0.0;
    }
  }

  // perm[p] = the original column quantized at position p.
  std::vector<int64_t> perm(static_cast<size_t>(K));
  std::iota(perm.begin(), perm.end(), 0);
  if (options.act_order) {
    // desc_act: most salient (largest H diagonal) columns first, while the most columns remain to
    // absorb their error. Stable, so ties keep their original order (deterministic).
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
      return H[static_cast<size_t>(a * K + a)] > H[static_cast<size_t>(b * K + b)];
    });
    std::vector<double> permuted_w(W.size()), permuted_h(H.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < K; ++p)
        permuted_w[static_cast<size_t>(n * K + p)] = W[static_cast<size_t>(n * K + perm[static_cast<size_t>(p)])];
    for (int64_t p = 0; p < K; ++p)
      for (int64_t r = 0; r < K; ++r)
        permuted_h[static_cast<size_t>(p * K + r)] =
            H[static_cast<size_t>(perm[static_cast<size_t>(p)] * K + perm[static_cast<size_t>(r)])];
    W.swap(permuted_w);
    H.swap(permuted_h);
  }

  double diagonal_sum = 0.0;
  for (int64_t k = 0; k < K; ++k) diagonal_sum += H[static_cast<size_t>(k * K + k)];
  const double damp = options.damp_percent * diagonal_sum / static_cast<double>(K);
  for (int64_t k = 0; k < K; ++k) H[static_cast<size_t>(k * K + k)] += damp;
  const std::vector<double> U = inverse_upper_cholesky(H, K, options.damp_percent);
  H.clear();
  H.shrink_to_fit();

  QuantizedMatrix m;
  m.bits = bits;
  m.N = N;
  m.K = K;
  m.group_size = g;
  const int64_t G = m.groups();
  m.q.resize(static_cast<size_t>(N * K));
  m.zeros.assign(static_cast<size_t>(G * N), 0);
  m.scales.assign(static_cast<size_t>(G * N), 0.0f);
  m.g_idx.resize(static_cast<size_t>(K));
  for (int64_t p = 0; p < K; ++p)
    m.g_idx[static_cast<size_t>(perm[static_cast<size_t>(p)])] = static_cast<int32_t>(p / g);
  auto store_group = [&](int64_t group) {
    for (int64_t n = 0; n < N; ++n) {
      m.scales[static_cast<size_t>(group * N + n)] = static_cast<float>(params[static_cast<size_t>(n)].scale);
      m.zeros[static_cast<size_t>(group * N + n)] = static_cast<int32_t>(params[static_cast<size_t>(n)].zero);
    }
  };
  if (options.group_size == -1) store_group(0);

  double loss = 0.0;
  const int64_t B = options.block_size;
  std::vector<double> block(static_cast<size_t>(N * std::min(B, K)));   // W1: the block, error-updated
  std::vector<double> errors(static_cast<size_t>(N * std::min(B, K)));  // Err1
  std::vector<double> group_values(static_cast<size_t>(std::min(g, K)));
  for (int64_t i1 = 0; i1 < K; i1 += B) {
    const int64_t i2 = std::min(i1 + B, K);
    const int64_t count = i2 - i1;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < count; ++i)
        block[static_cast<size_t>(n * count + i)] = W[static_cast<size_t>(n * K + i1 + i)];
    for (int64_t i = 0; i < count; ++i) {
      const int64_t column = i1 + i;
      if (options.group_size != -1 && column % g == 0) {
        // As AutoGPTQ: the group's range comes from W, which holds the updates of earlier blocks but
        // not those made inside this block (they live in W1 until the block ends).
        const int64_t end = std::min(column + g, K);
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t c = column; c < end; ++c)
            group_values[static_cast<size_t>(c - column)] = W[static_cast<size_t>(n * K + c)];
          params[static_cast<size_t>(n)] = find_params(group_values.data(), end - column, bits, options.sym);
        }
        store_group(column / g);
      }
      const double d = U[static_cast<size_t>(column * K + column)];
      const double* hinv_row = &U[static_cast<size_t>(column * K + i1)];
      const int64_t original = perm[static_cast<size_t>(column)];
      for (int64_t n = 0; n < N; ++n) {
        double* row = &block[static_cast<size_t>(n * count)];
        const double w = row[i];
        const GroupParams& gp = params[static_cast<size_t>(n)];
        const double q = std::clamp(std::nearbyint(w / gp.scale) + gp.zero, 0.0, static_cast<double>(maxq));
        const double dequantized = gp.scale * (q - gp.zero);
        m.q[static_cast<size_t>(n * K + original)] = static_cast<uint8_t>(q);
        const double err = (w - dequantized) / d;
        loss += err * err;
        for (int64_t j = i + 1; j < count; ++j) row[j] -= err * hinv_row[j];
        errors[static_cast<size_t>(n * count + i)] = err;
      }
    }
    // The lazy batch: every later column takes this block's errors at once, W[:, i2:] -= Err1 Hinv[i1:i2, i2:].
    if (i2 < K)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N), static_cast<int>(K - i2),
                  static_cast<int>(count), -1.0, errors.data(), static_cast<int>(count),
                  &U[static_cast<size_t>(i1 * K + i2)], static_cast<int>(K), 1.0, &W[static_cast<size_t>(i2)],
                  static_cast<int>(K));
  }

  GptqResult result;
  result.matrix = std::move(m);
  result.squared_error = loss / 2.0;  // AutoGPTQ: Losses1 / 2 summed
  return result;
}

}  // namespace runllm
