#include "kernels/cpu/gemm.h"

#include <cblas.h>

namespace runllm::cpu {

void linear_forward(const float* x, const float* weight, const float* bias, int64_t M, int64_t N, int64_t K,
                    float* y) {
  if (M == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(N), static_cast<int>(K), 1.0f, weight,
                static_cast<int>(K), x, 1, 0.0f, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(M), static_cast<int>(N),
                static_cast<int>(K), 1.0f, x, static_cast<int>(K), weight, static_cast<int>(K), 0.0f, y,
                static_cast<int>(N));
  }
  if (bias != nullptr)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) y[m * N + n] += bias[n];
}

}  // namespace runllm::cpu
