// The Winograd tile loop (winograd_f32_body.h) for AVX-512F on the nChw16c
// layout: one zmm register holds the 16 channels of a pixel, and one row of
// a 16-column panel of U. Compiled with -mavx512f -mfma (CMakeLists.txt);
// called only when the CPU has them.
// GCC 12 reports its own _mm512_undefined_ps() placeholders inside the
// intrinsics as maybe-uninitialized at -O3 (clang has no such warning).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/cpu/winograd_f32_body.h"

namespace kiln {
namespace {

// P[R x 16 NP] = V[R x K] * NP panels of U (NP = 1 or 2, the second at
// u + panel_stride): R x NP accumulators (24 of the 32 zmm registers at 12
// x 2), two panel loads and R broadcasts per multiply-add of R x NP.
template <int R, int NP>
void gemm_tile(int64_t K, const float* v, int64_t ldv, const float* u, int64_t panel_stride, float* p, int64_t ldp) {
  __m512 acc[R][NP];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    __m512 b[NP];
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q) b[q] = _mm512_load_ps(u + q * panel_stride + k * 16);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(v[r * ldv + k]);
#pragma GCC unroll 2
      for (int q = 0; q < NP; ++q) acc[r][q] = _mm512_fmadd_ps(a, b[q], acc[r][q]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q) _mm512_store_ps(p + r * ldp + q * 16, acc[r][q]);
}

constexpr int kRows = 12;

template <int NP, int R = kRows>
void gemm_rows(int64_t rows, int64_t K, const float* v, int64_t ldv, const float* u, int64_t panel_stride, float* p,
               int64_t ldp) {
  if constexpr (R > 0) {
    if (rows >= R) {
      int64_t r = 0;
      for (; r + R <= rows; r += R) gemm_tile<R, NP>(K, v + r * ldv, ldv, u, panel_stride, p + r * ldp, ldp);
      if (r < rows) gemm_rows<NP, R - 1>(rows - r, K, v + r * ldv, ldv, u, panel_stride, p + r * ldp, ldp);
    } else {
      gemm_rows<NP, R - 1>(rows, K, v, ldv, u, panel_stride, p, ldp);
    }
  }
}

struct Avx512 {
  using V = __m512;
  static constexpr int kLanes = 16;
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
  static V min(V a, V b) { return _mm512_min_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V keep_first(V v, int n) { return _mm512_maskz_mov_ps(__mmask16((1u << n) - 1), v); }
  static void gemm_panels(int64_t rows, int64_t K, const float* v, int64_t ldv, const float* u, int64_t q0, int64_t q1,
                          float* p, int64_t ldp) {
    const int64_t panel = K * 16;
    int64_t q = q0;
    for (; q + 2 <= q1; q += 2) gemm_rows<2>(rows, K, v, ldv, u + q * panel, panel, p + q * 16, ldp);
    if (q < q1) gemm_rows<1>(rows, K, v, ldv, u + q * panel, panel, p + q * 16, ldp);
  }
};

}  // namespace

void winograd_f32_tiles_avx512(const WinogradF32Job& j, int64_t t0, int64_t t1, int64_t q0, int64_t q1,
                               float* scratch) {
  winograd_body::run_tiles<Avx512>(j, t0, t1, q0, q1, scratch);
}

}  // namespace kiln
