// vec_math_f32_body.h built for AVX2 + FMA (CMakeLists.txt).
#include <immintrin.h>

#include "kernels/cpu/vec_math_f32_body.h"

namespace kiln {
namespace {

struct Avx2 {
  using T = __m256;
  using M = __m256;
  static constexpr int kLanes = 8;
  static T set1(float x) { return _mm256_set1_ps(x); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T round(T a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T pow2(T n) {
    const __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(e, 23));
  }
  static M lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M is_nan(T a) { return _mm256_cmp_ps(a, a, _CMP_UNORD_Q); }
  static T select(M m, T a, T b) { return _mm256_blendv_ps(b, a, m); }
  static T abs(T a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
  static T sign(T a) { return _mm256_and_ps(_mm256_set1_ps(-0.0f), a); }
  static T or_bits(T a, T b) { return _mm256_or_ps(a, b); }
};

}  // namespace

extern constexpr VecMathF32 vec_math_f32_avx2 = make_vec_math<Avx2>();

}  // namespace kiln
