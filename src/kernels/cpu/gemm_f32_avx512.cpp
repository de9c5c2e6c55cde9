// AVX-512 microkernel, 8 x 32: 16 accumulators (enough to cover the FMA
// latency twice over), 2 B vectors and a broadcast of A. Rows come in
// multiples of 8, which fits CNN channel counts exactly. Compiled with
// -mavx512f -mfma (CMakeLists.txt); called only when the CPU has them.
#include <immintrin.h>

#include "kernels/cpu/gemm_f32_microkernels.h"
#include "kernels/cpu/gemm_f32_tile.h"

namespace kiln {
namespace {

struct Avx512 {
  using T = __m512;
  static constexpr int kAccumulators = 24;
  static constexpr int kLanes = 16;
  static T zero() { return _mm512_setzero_ps(); }
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
};

void run_8x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha, float beta) {
  gemm_f32_tile<Avx512, 8, 2>(kc, a, b, c, ldc, alpha, beta);
}

void run_rows(int m, int64_t kc, const float* a, int64_t lda, const float* b, int64_t panels, float* c, int64_t ldc,
              float alpha, float beta) {
  gemm_f32_rows_dispatch<Avx512, 8, 2>(m, kc, a, lda, b, panels, c, ldc, alpha, beta);
}

}  // namespace

const GemmF32Microkernel gemm_f32_avx512_8x32 = {"gemm_f32_avx512_8x32", CpuIsa::kAvx512, 8, 32, run_8x32, run_rows};

}  // namespace kiln
