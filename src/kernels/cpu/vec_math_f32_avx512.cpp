// vec_math_f32_body.h built for AVX-512F (CMakeLists.txt): 16 lanes, twice
// AVX2's, for exp, the activations and softmax rows.
// GCC 12 reports its own _mm512_undefined_ps() placeholders inside the
// intrinsics as maybe-uninitialized at -O3 (clang has no such warning).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/cpu/vec_math_f32_body.h"

namespace kiln {
namespace {

struct Avx512 {
  using T = __m512;
  using M = __mmask16;
  static constexpr int kLanes = 16;
  static T set1(float x) { return _mm512_set1_ps(x); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static float hmax(T v) { return _mm512_reduce_max_ps(v); }
  static double hsum(T v) {  // in double
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
  }
  static __mmask16 first(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  static T load_tail(const float* p, int n, float fill) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), first(n), p);
  }
  static void store_tail(float* p, T v, int n) { _mm512_mask_storeu_ps(p, first(n), v); }
  static T round(T a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T pow2(T n) {
    const __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
  }
  static M lt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M is_nan(T a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  static T select(M m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }
  static T abs(T a) {
    return _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(a), _mm512_set1_epi32(0x7fffffff)));
  }
  static T sign(T a) {
    return _mm512_castsi512_ps(_mm512_and_epi32(_mm512_castps_si512(a), _mm512_set1_epi32(int32_t(0x80000000u))));
  }
  static T or_bits(T a, T b) {
    return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
  }
};

}  // namespace

extern constexpr VecMathF32 vec_math_f32_avx512 = make_vec_math<Avx512>();

}  // namespace kiln
