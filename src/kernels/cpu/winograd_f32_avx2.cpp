// The Winograd tile loop (winograd_f32_body.h) for AVX2 + FMA on the nChw8c
// layout: one ymm register holds the 8 channels of a pixel. Compiled with
// -mavx2 -mfma (CMakeLists.txt); called only when the CPU has them.
#include <immintrin.h>

#include "kernels/cpu/winograd_f32_body.h"

namespace kiln {
namespace {

// P[R x 16] = V[R x K] * U-panel[K x 16]: a 6 x 16 register tile. Named
// accumulators: with an array GCC kept them on the stack.
template <int R>
void gemm_rows(int64_t K, const float* v, int64_t ldv, const float* u, float* p, int64_t ldp) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  const float* a0 = v;
  const float* a1 = R > 1 ? v + ldv : v;
  const float* a2 = R > 2 ? v + 2 * ldv : v;
  const float* a3 = R > 3 ? v + 3 * ldv : v;
  const float* a4 = R > 4 ? v + 4 * ldv : v;
  const float* a5 = R > 5 ? v + 5 * ldv : v;
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_load_ps(u + k * 16), b1 = _mm256_load_ps(u + k * 16 + 8);
    __m256 a = _mm256_broadcast_ss(a0 + k);
    c00 = _mm256_fmadd_ps(a, b0, c00);
    c01 = _mm256_fmadd_ps(a, b1, c01);
    if constexpr (R > 1) {
      a = _mm256_broadcast_ss(a1 + k);
      c10 = _mm256_fmadd_ps(a, b0, c10);
      c11 = _mm256_fmadd_ps(a, b1, c11);
    }
    if constexpr (R > 2) {
      a = _mm256_broadcast_ss(a2 + k);
      c20 = _mm256_fmadd_ps(a, b0, c20);
      c21 = _mm256_fmadd_ps(a, b1, c21);
    }
    if constexpr (R > 3) {
      a = _mm256_broadcast_ss(a3 + k);
      c30 = _mm256_fmadd_ps(a, b0, c30);
      c31 = _mm256_fmadd_ps(a, b1, c31);
    }
    if constexpr (R > 4) {
      a = _mm256_broadcast_ss(a4 + k);
      c40 = _mm256_fmadd_ps(a, b0, c40);
      c41 = _mm256_fmadd_ps(a, b1, c41);
    }
    if constexpr (R > 5) {
      a = _mm256_broadcast_ss(a5 + k);
      c50 = _mm256_fmadd_ps(a, b0, c50);
      c51 = _mm256_fmadd_ps(a, b1, c51);
    }
  }
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < R; ++r) {
    _mm256_store_ps(p + r * ldp, acc[r][0]);
    _mm256_store_ps(p + r * ldp + 8, acc[r][1]);
  }
}

void gemm_block(int64_t rows, int64_t K, const float* v, int64_t ldv, const float* u, float* p, int64_t ldp) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6) gemm_rows<6>(K, v + r * ldv, ldv, u, p + r * ldp, ldp);
  switch (rows - r) {
    case 5: gemm_rows<5>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 4: gemm_rows<4>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 3: gemm_rows<3>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 2: gemm_rows<2>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    case 1: gemm_rows<1>(K, v + r * ldv, ldv, u, p + r * ldp, ldp); break;
    default: break;
  }
}

struct Avx2 {
  using V = __m256;
  static constexpr int kLanes = 8;
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm256_min_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V keep_first(V v, int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane)));
  }
  static void gemm_panels(int64_t rows, int64_t K, const float* v, int64_t ldv, const float* u, int64_t q0, int64_t q1,
                          float* p, int64_t ldp) {
    for (int64_t q = q0; q < q1; ++q) gemm_block(rows, K, v, ldv, u + q * K * 16, p + q * 16, ldp);
  }
};

}  // namespace

void winograd_f32_tiles_avx2(const WinogradF32Job& j, int64_t t0, int64_t t1, int64_t q0, int64_t q1, float* scratch) {
  winograd_body::run_tiles<Avx2>(j, t0, t1, q0, q1, scratch);
}

}  // namespace kiln
