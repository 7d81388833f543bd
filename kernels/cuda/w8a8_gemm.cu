// The int8 products of W8A8. Few rows: one warp per output channel, 16 int8 weights per lane per
// load, dp4a into an exact int32, and the epilogue in the same kernel. Many rows: cuBLASLt's int8
// tensor-core GEMM (int32 out, the "TN" layout it requires: both operands K-contiguous), then the
// epilogue as its own kernel. The epilogue is the CPU reference's, operation for operation:
// (float(acc) · w_scale[n]) · a_scale[t] (+ bias[n]), each step rounded in fp32 (no FMA contraction),
// then one rounding to T.
#include <string>

#include "kernels/cuda/activation_types.cuh"
#include "kernels/cuda/dependent_launch.cuh"
#include "kernels/cuda/w8a8.h"
#include "runtime/cuda_check.h"

#define CUBLASLT_CHECK(call)                                                                          \
  do {                                                                                                \
    const cublasStatus_t runllm_lt_status_ = (call);                                                  \
    if (runllm_lt_status_ != CUBLAS_STATUS_SUCCESS)                                                   \
      ::runllm::detail::throw_cuda_error(#call, __FILE__, __LINE__, cublasLtGetStatusString(runllm_lt_status_)); \
  } while (0)

namespace runllm::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kMaxTileRows = 4;

template <typename T>
__device__ __forceinline__ T epilogue(int32_t acc, float w_scale, float a_scale, const float* bias, int64_t n) {
  float value = __fmul_rn(__fmul_rn(float(acc), w_scale), a_scale);
  if (bias) value = __fadd_rn(value, bias[n]);
  return from_float<T>(value);
}

__device__ __forceinline__ int dot16(const int4& a, const int4& b, int acc) {
  acc = __dp4a(a.x, b.x, acc);
  acc = __dp4a(a.y, b.y, acc);
  acc = __dp4a(a.z, b.z, acc);
  return __dp4a(a.w, b.w, acc);
}

template <typename T, int MT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32) int8_gemv_kernel(Int8LinearArgs<T> args) {
  wait_for_previous_kernel();
  const int lane = threadIdx.x % 32;
  const int64_t n = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  if (n >= args.N) return;
  const int64_t vectors = args.K / 16;
  const int4* w = reinterpret_cast<const int4*>(args.weight + n * args.K);
  int acc[MT];
#pragma unroll
  for (int m = 0; m < MT; ++m) acc[m] = 0;
  int64_t v = lane;
  for (; v + 32 < vectors; v += 64) {
    const int4 w0 = __ldcs(w + v), w1 = __ldcs(w + v + 32);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m >= args.M) break;
      const int4* x = reinterpret_cast<const int4*>(args.xq + m * args.K);
      acc[m] = dot16(w1, __ldg(x + v + 32), dot16(w0, __ldg(x + v), acc[m]));
    }
  }
  for (; v < vectors; v += 32) {
    const int4 w0 = __ldcs(w + v);
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m >= args.M) break;
      acc[m] = dot16(w0, __ldg(reinterpret_cast<const int4*>(args.xq + m * args.K) + v), acc[m]);
    }
  }
  const float w_scale = args.w_scale[n];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
    if (m >= args.M) break;
    int sum = acc[m];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) args.y[m * args.N + n] = epilogue<T>(sum, w_scale, args.a_scale[m], args.bias, n);
  }
}

template <typename T>
__global__ void int8_epilogue_kernel(const int32_t* acc, Int8LinearArgs<T> args) {
  wait_for_previous_kernel();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= args.M * args.N) return;
  const int64_t t = i / args.N, n = i % args.N;
  args.y[i] = epilogue<T>(acc[i], args.w_scale[n], args.a_scale[t], args.bias, n);
}

}  // namespace

bool int8_gemv_supports(int64_t K, const void* xq, const void* weight) {
  return K > 0 && K % 16 == 0 && reinterpret_cast<uintptr_t>(xq) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(weight) % 16 == 0;
}

template <typename T>
void int8_gemv(const Int8LinearArgs<T>& args, cudaStream_t stream) {
  if (args.M <= 0 || args.N <= 0) return;
  if (!int8_gemv_supports(args.K, args.xq, args.weight))
    throw Error("cuda::int8_gemv: K must be a multiple of 16 and the operands 16-byte aligned, got K=" +
                std::to_string(args.K));
  const unsigned blocks = static_cast<unsigned>((args.N + kWarpsPerBlock - 1) / kWarpsPerBlock);
  for (int64_t m0 = 0; m0 < args.M; m0 += kMaxTileRows) {
    Int8LinearArgs<T> tile = args;
    tile.M = std::min<int64_t>(kMaxTileRows, args.M - m0);
    tile.xq = args.xq + m0 * args.K;
    tile.a_scale = args.a_scale + m0;
    tile.y = args.y + m0 * args.N;
    if (tile.M == 1) launch_dependent(int8_gemv_kernel<T, 1>, blocks, kWarpsPerBlock * 32, stream, tile);
    else if (tile.M == 2) launch_dependent(int8_gemv_kernel<T, 2>, blocks, kWarpsPerBlock * 32, stream, tile);
    else launch_dependent(int8_gemv_kernel<T, 4>, blocks, kWarpsPerBlock * 32, stream, tile);
    CUDA_CHECK_LAUNCH(int8_gemv_kernel);
  }
}

void int8_gemm_int32(cublasLtHandle_t handle, const int8_t* xq, const int8_t* weight, int64_t M, int64_t N, int64_t K,
                     int32_t* acc, void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (M <= 0 || N <= 0) return;
  if (K % 4 != 0) throw Error("cuda::int8_gemm_int32: K must be a multiple of 4, got " + std::to_string(K));
  // Column-major view: acc^T [N, M] = weight [K, N]^T · xq^T [K, M], i.e. C = op(A)·B with A = weight
  // (K x N, ld K, transposed) and B = xq (K x M, ld K).
  cublasLtMatmulDesc_t operation = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t preference = nullptr;
  try {
    CUBLASLT_CHECK(cublasLtMatmulDescCreate(&operation, CUBLAS_COMPUTE_32I, CUDA_R_32I));
    const cublasOperation_t transpose = CUBLAS_OP_T;
    CUBLASLT_CHECK(cublasLtMatmulDescSetAttribute(operation, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose));
    CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&a, CUDA_R_8I, K, N, K));
    CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&b, CUDA_R_8I, K, M, K));
    CUBLASLT_CHECK(cublasLtMatrixLayoutCreate(&c, CUDA_R_32I, N, M, N));
    CUBLASLT_CHECK(cublasLtMatmulPreferenceCreate(&preference));
    CUBLASLT_CHECK(cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                        &workspace_bytes, sizeof workspace_bytes));
    cublasLtMatmulHeuristicResult_t heuristic{};
    int found = 0;
    CUBLASLT_CHECK(cublasLtMatmulAlgoGetHeuristic(handle, operation, a, b, c, c, preference, 1, &heuristic, &found));
    if (found == 0) throw Error("cuda::int8_gemm_int32: cuBLASLt has no int8 algorithm for M=" + std::to_string(M) +
                                " N=" + std::to_string(N) + " K=" + std::to_string(K));
    const int32_t one = 1, zero = 0;
    CUBLASLT_CHECK(cublasLtMatmul(handle, operation, &one, weight, a, xq, b, &zero, acc, c, acc, c, &heuristic.algo,
                                  workspace, workspace_bytes, stream));
  } catch (...) {
    cublasLtMatmulPreferenceDestroy(preference);
    cublasLtMatrixLayoutDestroy(c);
    cublasLtMatrixLayoutDestroy(b);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtMatmulDescDestroy(operation);
    throw;
  }
  cublasLtMatmulPreferenceDestroy(preference);
  cublasLtMatrixLayoutDestroy(c);
  cublasLtMatrixLayoutDestroy(b);
  cublasLtMatrixLayoutDestroy(a);
  cublasLtMatmulDescDestroy(operation);
}

template <typename T>
void int8_epilogue(const int32_t* acc, const Int8LinearArgs<T>& args, cudaStream_t stream) {
  const int64_t count = args.M * args.N;
  if (count <= 0) return;
  constexpr int kThreads = 256;
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  if (blocks > 0x7fffffff) throw Error("cuda::int8_epilogue: output too large");
  launch_dependent(int8_epilogue_kernel<T>, static_cast<unsigned>(blocks), kThreads, stream, acc, args);
  CUDA_CHECK_LAUNCH(int8_epilogue_kernel);
}

template void int8_gemv<__half>(const Int8LinearArgs<__half>&, cudaStream_t);
template void int8_gemv<__nv_bfloat16>(const Int8LinearArgs<__nv_bfloat16>&, cudaStream_t);
template void int8_epilogue<__half>(const int32_t*, const Int8LinearArgs<__half>&, cudaStream_t);
template void int8_epilogue<__nv_bfloat16>(const int32_t*, const Int8LinearArgs<__nv_bfloat16>&, cudaStream_t);

}  // namespace runllm::cuda
