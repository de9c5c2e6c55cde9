// AVX2 + FMA microkernel, 6 x 16: 12 accumulators, 2 B vectors and one
// broadcast of A use 15 of the 16 ymm registers. Compiled with -mavx2 -mfma
// (CMakeLists.txt); called only when the CPU has them.
#include <immintrin.h>

#include "kernels/cpu/gemm_f32_microkernels.h"
#include "kernels/cpu/gemm_f32_tile.h"

namespace kiln {
namespace {

struct Avx2 {
  using T = __m256;
  static constexpr int kAccumulators = 12;
  static constexpr int kLanes = 8;
  static T zero() { return _mm256_setzero_ps(); }
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
};

void run_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  gemm_f32_tile<Avx2, 6, 2>(kc, a, b, c, ldc, alpha, beta);
}

void run_rows(int m, int64_t kc, const float* a, int64_t lda, const float* b, int64_t panels, float* c, int64_t ldc,
              float alpha, float beta) {
  gemm_f32_rows_dispatch<Avx2, 6, 2>(m, kc, a, lda, b, panels, c, ldc, alpha, beta);
}

}  // namespace

const GemmF32Microkernel gemm_f32_avx2_6x16 = {"gemm_f32_avx2_6x16", CpuIsa::kAvx2, 6, 16, run_6x16, run_rows};

}  // namespace kiln
