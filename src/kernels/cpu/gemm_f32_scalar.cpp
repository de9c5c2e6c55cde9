// Portable microkernel, 4 x 8, for CPUs without AVX2 + FMA; the compiler
// vectorizes it with the baseline ISA (SSE2 on x86-64).
#include "kernels/cpu/gemm_f32_microkernels.h"
#include "kernels/cpu/gemm_f32_tile.h"

namespace kiln {
namespace {

struct Scalar {
  using T = float;
  static constexpr int kAccumulators = 16;
  static constexpr int kLanes = 1;
  static T zero() { return 0.0f; }
  static T set1(float x) { return x; }
  static T load(const float* p) { return *p; }
  static void store(float* p, T v) { *p = v; }
  static T fma(T a, T b, T c) { return a * b + c; }
  static T mul(T a, T b) { return a * b; }
  static void prefetch(const void* p) { (void)p; }
};

void run_4x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  gemm_f32_tile<Scalar, 4, 8>(kc, a, b, c, ldc, alpha, beta);
}

void run_rows(int m, int64_t kc, const float* a, int64_t lda, const float* b, int64_t panels, float* c, int64_t ldc,
              float alpha, float beta) {
  gemm_f32_rows_dispatch<Scalar, 4, 8>(m, kc, a, lda, b, panels, c, ldc, alpha, beta);
}

}  // namespace

const GemmF32Microkernel gemm_f32_scalar_4x8 = {"gemm_f32_scalar_4x8", CpuIsa::kScalar, 4, 8, run_4x8, run_rows};

}  // namespace kiln
