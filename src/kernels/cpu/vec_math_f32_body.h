// The vector math of vec_math_f32.h, written once over a vector type V and
// instantiated per ISA (vec_math_f32.cpp: scalar, vec_math_f32_avx2.cpp,
// vec_math_f32_avx512.cpp):
// internal linkage and no library calls, for the reason given in
// gemm_f32_tile.h.
//
// V provides: T (a vector or a float), M (a lane mask), kLanes, set1, load,
// store, fma(a, b, c) = a * b + c, min, max (both return b when a lane of a
// is NaN, like x86's minps), round (to nearest even), pow2(n) = 2^n for an
// integral n in [-126, 127], lt(a, b), is_nan(a), select(m, a, b) = m ? a : b,
// abs(a), sign(a) (the sign bit alone) and or_bits(a, b). T has + - * /.
#pragma once
#include <math.h>  // log: a C function, no inline copy to clash (see above)

#include <cstdint>

#include "kernels/cpu/vec_math_f32.h"

namespace kiln {
namespace {

// exp(x) = 2^n e^r with n = round(x / ln 2) and |r| <= ln 2 / 2. ln 2 is split
// in a short head (n * kLn2Hi is exact for |n| < 2^15) and a tail, so r keeps
// its precision. e^r is its Taylor polynomial to degree 7 (truncation error
// below 0.1 ulp for |r| <= 0.35). 2^n is applied as two factors so that
// results near overflow and in the denormal range need no special case.
template <class V>
struct ExpParts {
  typename V::T x, p, s1, s2;  // exp(x) = p * s1 * s2
};

template <class V>
inline ExpParts<V> exp_parts_v(typename V::T x) {
  using T = typename V::T;
  const T xc = V::min(V::max(x, V::set1(-104.0f)), V::set1(89.0f));  // exp(-104) rounds to 0, exp(89) to inf
  const T n = V::round(xc * V::set1(1.44269504f));
  T r = V::fma(n, V::set1(-0.693359375f), xc);
  r = V::fma(n, V::set1(2.12194440e-4f), r);
  T p = V::set1(1.0f / 5040);
  p = V::fma(p, r, V::set1(1.0f / 720));
  p = V::fma(p, r, V::set1(1.0f / 120));
  p = V::fma(p, r, V::set1(1.0f / 24));
  p = V::fma(p, r, V::set1(1.0f / 6));
  p = V::fma(p, r, V::set1(0.5f));
  p = V::fma(p, r, V::set1(1.0f));
  p = V::fma(p, r, V::set1(1.0f));
  const T n1 = V::round(n * V::set1(0.5f));  // n in [-150, 129]: both halves fit in a float exponent
  return {x, p, V::pow2(n1), V::pow2(n - n1)};
}

// m exp(x), with m applied before the scaling so that a product that is
// normal stays exact when exp(x) alone would be denormal (SiLU far left).
template <class V>
inline typename V::T exp_times_v(const ExpParts<V>& e, typename V::T m) {
  using T = typename V::T;
  T y = (m * e.p) * e.s1 * e.s2;
  y = V::select(V::lt(e.x, V::set1(-104.0f)), V::set1(0.0f) * m, y);  // the clamp must not leak a huge m through
  return V::select(V::is_nan(e.x), e.x, y);
}

template <class V>
inline typename V::T exp_v(typename V::T x) {
  return exp_times_v<V>(exp_parts_v<V>(x), V::set1(1.0f));
}

// exp(y) - 1 for y in [0, 19], accurate also for y near 0: 2^n (e^r - 1) +
// (2^n - 1), with e^r - 1 = r + r^2 (1/2 + r/6 + ...) never cancelling.
template <class V>
inline typename V::T expm1_nonnegative_v(typename V::T y) {
  using T = typename V::T;
  const T n = V::round(y * V::set1(1.44269504f));
  T r = V::fma(n, V::set1(-0.693359375f), y);
  r = V::fma(n, V::set1(2.12194440e-4f), r);
  T p = V::set1(1.0f / 40320);
  p = V::fma(p, r, V::set1(1.0f / 5040));
  p = V::fma(p, r, V::set1(1.0f / 720));
  p = V::fma(p, r, V::set1(1.0f / 120));
  p = V::fma(p, r, V::set1(1.0f / 24));
  p = V::fma(p, r, V::set1(1.0f / 6));
  p = V::fma(p, r, V::set1(0.5f));
  const T q = V::fma(p * r, r, r);
  const T s = V::pow2(n);
  return V::fma(q, s, s - V::set1(1.0f));
}

// sigmoid(x) = e / (1 + e) for x < 0 and 1 / (1 + e) otherwise, with
// e = exp(-|x|) <= 1: neither form overflows or cancels.
template <class V>
inline typename V::T sigmoid_v(typename V::T x) {
  const typename V::T e = exp_v<V>(V::abs(x) * V::set1(-1.0f));
  return V::select(V::lt(x, V::set1(0.0f)), e, V::set1(1.0f)) / (e + V::set1(1.0f));
}

// x sigmoid(x) = x e / (1 + e) or x / (1 + e) as above; x e comes from
// exp_times_v, since e alone is denormal for x < -87 while x e is not.
template <class V>
inline typename V::T silu_v(typename V::T x) {
  using T = typename V::T;
  const T minus_abs = V::abs(x) * V::set1(-1.0f);
  const ExpParts<V> parts = exp_parts_v<V>(minus_abs);
  const T e = exp_times_v<V>(parts, V::set1(1.0f)), xe = exp_times_v<V>(parts, x);
  return V::select(V::lt(x, V::set1(0.0f)), xe, x) / (e + V::set1(1.0f));
}

// tanh(|x|) = m / (m + 2) with m = expm1(2 |x|), then x's sign. Above 9.1,
// tanh rounds to 1 in float.
template <class V>
inline typename V::T tanh_v(typename V::T x) {
  using T = typename V::T;
  const T a = V::min(V::abs(x), V::set1(9.1f));
  const T m = expm1_nonnegative_v<V>(a + a);
  const T t = m / (m + V::set1(2.0f));
  return V::select(V::is_nan(x), x, V::or_bits(t, V::sign(x)));
}

// 0.5 x (1 + tanh(u)) = x sigmoid(2 u) = silu(2 u) x / (2 u): no
// cancellation in 1 + tanh(u) for negative x. Far left the result is
// conditioned by u: its rounding error (a few ulp of u) becomes a relative
// error of |2 u| times that in the result, as in any float evaluation.
template <class V>
inline typename V::T gelu_tanh_v(typename V::T x) {
  using T = typename V::T;
  const T u2 = x * V::fma(x * x, V::set1(2 * 0.7978845608f * 0.044715f), V::set1(2 * 0.7978845608f));
  const T minus_abs = V::abs(u2) * V::set1(-1.0f);
  const ExpParts<V> parts = exp_parts_v<V>(minus_abs);
  const T e = exp_times_v<V>(parts, V::set1(1.0f)), xe = exp_times_v<V>(parts, x);
  return V::select(V::lt(u2, V::set1(0.0f)), xe, x) / (e + V::set1(1.0f));
}

// erf(a) = a P(a^2) for 0 <= a < 1 (relative error ~1e-7 in float).
template <class V>
inline typename V::T erf_small_v(typename V::T a) {
  using T = typename V::T;
  const T t = a * a;
  T p = V::set1(0.000105233114f);
  p = V::fma(p, t, V::set1(-0.000886932830f));
  p = V::fma(p, t, V::set1(0.00529419491f));
  p = V::fma(p, t, V::set1(-0.0269159377f));
  p = V::fma(p, t, V::set1(0.112853304f));
  p = V::fma(p, t, V::set1(-0.376128286f));
  p = V::fma(p, t, V::set1(1.12837923f));
  return a * p;
}

// erfc(a) = exp(-a^2) R(1/a) / a for a >= 1, with a^2 = a2_hi + a2_lo given
// exactly (a rounded a^2 would cost |2 a^2| ulp in exp). R's polynomial in
// 1/a - 0.55 is a least-squares fit on [1, 10] (relative error ~1e-7); past
// a = 10.5 erfc is 0 in float. The caller clamps a to 10.5 so that a2_hi
// stays finite.
template <class V>
inline typename V::T erfc_big_v(typename V::T a, typename V::T a2_hi, typename V::T a2_lo) {
  using T = typename V::T;
  const T inv = V::set1(1.0f) / a;
  const T t = inv - V::set1(0.55f);
  T r = V::set1(-0.05863823f);
  r = V::fma(r, t, V::set1(-0.0291614886f));
  r = V::fma(r, t, V::set1(0.110910147f));
  r = V::fma(r, t, V::set1(-0.0740487054f));
  r = V::fma(r, t, V::set1(0.00875313208f));
  r = V::fma(r, t, V::set1(0.0510683805f));
  r = V::fma(r, t, V::set1(-0.0968531147f));
  r = V::fma(r, t, V::set1(0.0983134508f));
  r = V::fma(r, t, V::set1(-0.0203669704f));
  r = V::fma(r, t, V::set1(-0.170034662f));
  r = V::fma(r, t, V::set1(0.50235343f));
  const T m = r * inv;
  // exp(-hi - lo) = exp(-hi) (1 - lo) to first order; |lo| <= ulp(hi) / 2.
  return exp_times_v<V>(exp_parts_v<V>(a2_hi * V::set1(-1.0f)), V::fma(m * V::set1(-1.0f), a2_lo, m));
}

template <class V>
inline typename V::T erf_v(typename V::T x) {
  using T = typename V::T;
  const T a = V::min(V::abs(x), V::set1(10.5f));
  const T hi = a * a, lo = V::fma(a, a, hi * V::set1(-1.0f));
  const T big = V::set1(1.0f) - erfc_big_v<V>(a, hi, lo);
  const T y = V::select(V::lt(a, V::set1(1.0f)), erf_small_v<V>(a), big);
  return V::select(V::is_nan(x), x, V::or_bits(y, V::sign(x)));
}

// 0.5 x (1 + erf(x / sqrt 2)); for x < 0 as 0.5 x erfc(|x| / sqrt 2), which
// does not cancel far left. The erfc's a^2 = x^2 / 2 comes exactly from x.
// Just left of x = -sqrt 2, erfc = 1 - erf(a) with erf(a) near 0.84 loses
// up to 3 bits (the tests allow 10 ulp).
template <class V>
inline typename V::T gelu_erf_v(typename V::T x) {
  using T = typename V::T;
  using M = typename V::M;
  const T xa = V::min(V::abs(x), V::set1(14.8f));  // a <= 10.5
  const T a = xa * V::set1(0.707106781f);
  const T hi = xa * xa, lo = V::fma(xa, xa, hi * V::set1(-1.0f));
  const T half = V::set1(0.5f);
  const T erfc_big = erfc_big_v<V>(a, hi * half, lo * half);
  const T erf_small = erf_small_v<V>(a);
  const M small = V::lt(a, V::set1(1.0f));
  const T erf_a = V::select(small, erf_small, V::set1(1.0f) - erfc_big);
  const T erfc_a = V::select(small, V::set1(1.0f) - erf_small, erfc_big);
  const T y = half * x * V::select(V::lt(x, V::set1(0.0f)), erfc_a, V::set1(1.0f) + erf_a);
  return V::select(V::is_nan(x), x, y);
}

template <class V, typename V::T (*F)(typename V::T)>
inline void map_v(const float* x, float* y, int64_t n) {
  constexpr int L = V::kLanes;
  int64_t i = 0;
  for (; i + L <= n; i += L) V::store(y + i, F(V::load(x + i)));
  // The tail through a full masked vector, so it gets the same results.
  if (i < n) V::store_tail(y + i, F(V::load_tail(x + i, static_cast<int>(n - i), 0.0f)), static_cast<int>(n - i));
}

// Rows go in groups of kGroup, each step for all rows of the group before the
// next: a short row (a 7x7 attention window: 49) is a chain of dependent
// reductions, and the group's independent chains overlap. Each row's tail is
// one masked vector padded with -inf (exp gives 0), kept in a register: built
// in memory float by float, its reload waited on failed store forwarding, as
// did the horizontal sums read back float by float (together 2x the time of
// a row of 49).
template <class V>
inline void softmax_rows_v(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  using T = typename V::T;
  constexpr int L = V::kLanes;
  constexpr int kGroup = 8;
  const float inf = __builtin_huge_valf();
  const int64_t full = n / L * L;
  const int tn = static_cast<int>(n - full);
  for (int64_t r0 = 0; r0 < rows; r0 += kGroup) {
    const int g = static_cast<int>(rows - r0 < kGroup ? rows - r0 : kGroup);
    T tail[kGroup];
    float shift[kGroup];
    double total[kGroup];
    for (int q = 0; q < g; ++q) {
      const float* xr = x + (r0 + q) * n;
      tail[q] = V::load_tail(xr + full, tn, -inf);
      // The max skips NaNs (max returns m for a NaN v); a NaN still makes
      // the whole row NaN through its exp and the sum.
      T m = tail[q];
      for (int64_t i = 0; i < full; i += L) m = V::max(V::load(xr + i), m);
      const float mx = V::hmax(m);
      shift[q] = mx - mx == 0.0f ? mx : 0.0f;  // +-inf shifts by 0, as in the double reference
    }
    for (int q = 0; q < g; ++q) {
      const float* xr = x + (r0 + q) * n;
      float* yr = y + (r0 + q) * n;
      const T sh = V::set1(shift[q]);
      T sum = exp_v<V>(tail[q] - sh);
      if (!log) tail[q] = sum;
      for (int64_t i = 0; i < full; i += L) {
        const T e = exp_v<V>(V::load(xr + i) - sh);
        sum = sum + e;
        if (!log) V::store(yr + i, e);
      }
      total[q] = V::hsum(sum);
    }
    for (int q = 0; q < g; ++q) {
      const float* xr = x + (r0 + q) * n;
      float* yr = y + (r0 + q) * n;
      const T sh = V::set1(shift[q]);
      if (log) {
        const T ls = V::set1(static_cast<float>(::log(total[q])));  // libm, not an inline function
        for (int64_t i = 0; i < full; i += L) V::store(yr + i, (V::load(xr + i) - sh) - ls);
        V::store_tail(yr + full, (tail[q] - sh) - ls, tn);
      } else {
        const T inv = V::set1(static_cast<float>(1.0 / total[q]));
        for (int64_t i = 0; i < full; i += L) V::store(yr + i, V::load(yr + i) * inv);
        V::store_tail(yr + full, tail[q] * inv, tn);
      }
    }
  }
}

// Per row: the sum (the float mean m), then the sums of x - m and of its
// square in one sweep (the mean's error and the variance, in double), then
// one sweep writing y. Tails are masked vectors, filled so that they add 0.
template <class V>
inline void layer_norm_rows_v(const float* x, float* y, int64_t rows, int64_t n, double eps, const float* scale,
                              const float* bias, float* mean, float* inv_std) {
  using T = typename V::T;
  constexpr int L = V::kLanes;
  const int64_t full = n / L * L;
  const int tn = static_cast<int>(n - full);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    T acc = V::load_tail(xr + full, tn, 0.0f);
    for (int64_t i = 0; i < full; i += L) acc = acc + V::load(xr + i);
    const float m = static_cast<float>(V::hsum(acc)) / static_cast<float>(n);
    const T mv = V::set1(m);
    T s1 = V::load_tail(xr + full, tn, m) - mv;
    T s2 = s1 * s1;
    for (int64_t i = 0; i < full; i += L) {
      const T d = V::load(xr + i) - mv;
      s1 = s1 + d;
      s2 = V::fma(d, d, s2);
    }
    const double dm = V::hsum(s1) / static_cast<double>(n);
    double var = V::hsum(s2) / static_cast<double>(n) - dm * dm;
    var = var > 0.0 ? var : 0.0;
    const float is = static_cast<float>(1.0 / __builtin_sqrt(var + eps));
    const T dmv = V::set1(static_cast<float>(dm)), iv = V::set1(is);
    if (bias) {
      for (int64_t i = 0; i < full; i += L)
        V::store(yr + i, V::fma(((V::load(xr + i) - mv) - dmv) * iv, V::load(scale + i), V::load(bias + i)));
      if (tn)
        V::store_tail(yr + full,
                      V::fma(((V::load_tail(xr + full, tn, 0.0f) - mv) - dmv) * iv,
                             V::load_tail(scale + full, tn, 0.0f), V::load_tail(bias + full, tn, 0.0f)),
                      tn);
    } else {
      for (int64_t i = 0; i < full; i += L) V::store(yr + i, ((V::load(xr + i) - mv) - dmv) * iv * V::load(scale + i));
      if (tn)
        V::store_tail(yr + full,
                      ((V::load_tail(xr + full, tn, 0.0f) - mv) - dmv) * iv * V::load_tail(scale + full, tn, 0.0f), tn);
    }
    if (mean) mean[r] = static_cast<float>(static_cast<double>(m) + static_cast<float>(dm));
    if (inv_std) inv_std[r] = is;
  }
}

template <class V>
constexpr VecMathF32 make_vec_math() {
  return {map_v<V, exp_v<V>>,      map_v<V, sigmoid_v<V>>,   map_v<V, silu_v<V>>,
          map_v<V, tanh_v<V>>,     map_v<V, gelu_tanh_v<V>>, map_v<V, erf_v<V>>,
          map_v<V, gelu_erf_v<V>>, softmax_rows_v<V>,        layer_norm_rows_v<V>};
}

}  // namespace
}  // namespace kiln
