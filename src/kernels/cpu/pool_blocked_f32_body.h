// The row loop of the blocked-layout pools (pool_f32.h), written once and
// compiled per ISA (pool_f32.cpp for the baseline, pool_f32_avx2.cpp): the
// lane loop has a compile-time length (the channel block), so each tap is one
// vector max or add. Internal linkage, no library calls (see gemm_f32_tile.h).
#pragma once
#include <cstdint>
#include <cstring>

namespace kiln {
namespace {

// Eight floats as one GCC vector: an AVX register where the file is built
// with AVX, two SSE registers otherwise. (Plain lane loops over std::max do
// not vectorize: GCC keeps the scalar NaN ordering.)
typedef float F32x8 __attribute__((vector_size(32)));

inline F32x8 load8(const float* p) {
  F32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// One output row (oh) of one [H, W, kB] plane: y[ow * kB + lane] over ow.
// count_h / count_w: the average's divisors per output row / column
// (null for max).
template <int kB, bool kMax>
inline void pool_blocked_row(const float* __restrict x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh,
                             int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, int64_t oh,
                             float* __restrict y, int64_t OW, const float* count_h, const float* count_w) {
  const int64_t h0 = oh * sh - ph;
  // Taps inside the input: kh in [kh_lo, kh_hi).
  int64_t kh_lo = 0, kh_hi = KH;
  while (kh_lo < KH && h0 + kh_lo * dh < 0) ++kh_lo;
  while (kh_hi > kh_lo && h0 + (kh_hi - 1) * dh >= H) --kh_hi;
  for (int64_t ow = 0; ow < OW; ++ow) {
    const int64_t w0 = ow * sw - pw;
    int64_t kw_lo = 0, kw_hi = KW;
    while (kw_lo < KW && w0 + kw_lo * dw < 0) ++kw_lo;
    while (kw_hi > kw_lo && w0 + (kw_hi - 1) * dw >= W) --kw_hi;
    constexpr int kV = kB / 8;
    F32x8 acc[kV];
    for (int v = 0; v < kV; ++v) acc[v] = F32x8{} + init;
    for (int64_t kh = kh_lo; kh < kh_hi; ++kh) {
      const float* row = x + ((h0 + kh * dh) * W + w0) * kB;
      for (int64_t kw = kw_lo; kw < kw_hi; ++kw) {
        const float* p = row + kw * dw * kB;
        for (int v = 0; v < kV; ++v) {
          const F32x8 in = load8(p + 8 * v);
          if constexpr (kMax)
            acc[v] = in > acc[v] ? in : acc[v];  // std::max(acc, in): one maxps
          else
            acc[v] += in;
        }
      }
    }
    float* out = y + ow * kB;
    if constexpr (!kMax) {
      // Divide, not multiply by the inverse: the same rounding as the NCHW pools.
      const float c = count_h[oh] * count_w[ow];
      for (int v = 0; v < kV; ++v) acc[v] = c > 0 ? acc[v] / c : F32x8{};
    }
    std::memcpy(out, acc, sizeof acc);
  }
}

template <int kB>
inline void pool_blocked_rows(bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh,
                              int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, int64_t oh_begin,
                              int64_t oh_end, float* y, int64_t OW, const float* count_h, const float* count_w) {
  for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
    float* yr = y + oh * OW * kB;
    if (max)
      pool_blocked_row<kB, true>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, oh, yr, OW, nullptr, nullptr);
    else
      pool_blocked_row<kB, false>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, oh, yr, OW, count_h, count_w);
  }
}

// Rows [oh_begin, oh_end) of one plane, for block 8 or 16.
inline void pool_blocked_rows(int64_t block, bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW,
                              int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init,
                              int64_t oh_begin, int64_t oh_end, float* y, int64_t OW, const float* count_h,
                              const float* count_w) {
  if (block == 8)
    pool_blocked_rows<8>(max, x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, oh_begin, oh_end, y, OW, count_h, count_w);
  else
    pool_blocked_rows<16>(max, x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, oh_begin, oh_end, y, OW, count_h,
                          count_w);
}

}  // namespace
}  // namespace kiln
