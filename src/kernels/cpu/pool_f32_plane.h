// The pooling loops for one plane, written once and compiled per ISA
// (pool_f32.cpp for the baseline, pool_f32_avx2.cpp): internal linkage and no
// library calls, for the reason given in gemm_f32_tile.h.
#pragma once
#include <cstdint>

namespace kiln {
namespace {

// Output columns [lo, hi) whose input column ow * sw + off lies in [0, W).
inline void valid_columns(int64_t off, int64_t W, int64_t sw, int64_t OW, int64_t* lo, int64_t* hi) {
  *lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
  *hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
  if (*hi > OW) *hi = OW;
  if (*lo > *hi) *lo = *hi;
}

// Per tap and output row, the valid output columns form one interval, so the
// inner loops have no bounds checks and vectorize (contiguous when sw == 1).
// Taps are visited in (kh, kw) order for every output, like the reference
// kernel, so the average pool's sums round the same way.
template <bool kMax>
inline void pool_plane_f32(const float* __restrict x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh,
                           int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, float* __restrict y,
                           int64_t OH, int64_t OW) {
  for (int64_t oh = 0; oh < OH; ++oh) {
    float* __restrict yr = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = init;
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t ih = oh * sh - ph + kh * dh;
      if (ih < 0 || ih >= H) continue;
      const float* __restrict xr = x + ih * W;
      for (int64_t kw = 0; kw < KW; ++kw) {
        const int64_t off = kw * dw - pw;
        int64_t lo, hi;
        valid_columns(off, W, sw, OW, &lo, &hi);
        if (sw == 1) {
          const float* __restrict xs = xr + off;
          if (kMax) {
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] = yr[ow] < xs[ow] ? xs[ow] : yr[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += xs[ow];
          }
        } else {
          if (kMax) {
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] = yr[ow] < xr[ow * sw + off] ? xr[ow * sw + off] : yr[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += xr[ow * sw + off];
          }
        }
      }
    }
  }
}

// y[oh, ow] /= count_h[oh] * count_w[ow], or 0 where that count is 0.
inline void divide_by_counts_f32(float* __restrict y, int64_t OH, int64_t OW, const float* __restrict count_h,
                                 const float* __restrict count_w) {
  for (int64_t oh = 0; oh < OH; ++oh) {
    float* __restrict yr = y + oh * OW;
    const float ch = count_h[oh];
    for (int64_t ow = 0; ow < OW; ++ow) {
      const float c = ch * count_w[ow];
      yr[ow] = c != 0 ? yr[ow] / c : 0.0f;
    }
  }
}

}  // namespace
}  // namespace kiln
