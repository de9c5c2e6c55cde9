// The depthwise-conv loop for one channel, written once and compiled per ISA
// (conv_f32.cpp for the baseline, conv_depthwise_f32_avx2.cpp): internal
// linkage and no library calls, for the reason given in gemm_f32_tile.h.
#pragma once
#include <cstdint>

namespace kiln {
namespace {

// The common depthwise shapes (KW = 3 or 5, stride SW = 1 or 2, no column
// dilation): per output row and kernel row, one pass over the row's interior
// columns (every tap inside the image) with the KW taps unrolled, which
// vectorizes with the taps in registers and reads and writes y once per
// kernel row instead of once per tap. Border columns check each tap.
template <int KW, int SW>
inline void depthwise_channel_f32_fixed(const float* __restrict x, int64_t H, int64_t W, const float* __restrict w,
                                        int64_t KH, int64_t sh, int64_t ph, int64_t pw, int64_t dh, float bias,
                                        float* __restrict y, int64_t OH, int64_t OW) {
  // Interior: ow * SW - pw >= 0 and ow * SW - pw + KW - 1 <= W - 1.
  int64_t hi = W - KW + pw < 0 ? 0 : (W - KW + pw) / SW + 1;
  if (hi > OW) hi = OW;
  int64_t lo = (pw + SW - 1) / SW;
  if (lo > hi) lo = hi;
  for (int64_t oh = 0; oh < OH; ++oh) {
    float* __restrict yr = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = bias;
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t ih = oh * sh - ph + kh * dh;
      if (ih < 0 || ih >= H) continue;
      const float* __restrict xr = x + ih * W;
      float wk[KW];
      for (int kw = 0; kw < KW; ++kw) wk[kw] = w[kh * KW + kw];
      auto border = [&](int64_t begin, int64_t end) {
        for (int64_t ow = begin; ow < end; ++ow) {
          float acc = 0;  // in a register: one store per column, not one per tap
          for (int kw = 0; kw < KW; ++kw) {
            const int64_t iw = ow * SW - pw + kw;
            if (iw >= 0 && iw < W) acc += wk[kw] * xr[iw];
          }
          yr[ow] += acc;
        }
      };
      border(0, lo);
      border(hi, OW);
      const float* __restrict xs = xr - pw;
      for (int64_t ow = lo; ow < hi; ++ow) {
        float acc = 0;
        for (int kw = 0; kw < KW; ++kw) acc += wk[kw] * xs[ow * SW + kw];
        yr[ow] += acc;
      }
    }
  }
}

// y[OH x OW] = bias + sum over taps of w[kh, kw] * x[oh * sh - ph + kh * dh, ow * sw - pw + kw * dw].
// Per tap and output row, the valid output columns form one interval, so the
// inner loop has no bounds checks and vectorizes (contiguous when sw == 1).
inline void depthwise_channel_f32(const float* __restrict x, int64_t H, int64_t W, const float* __restrict w,
                                  int64_t KH, int64_t KW, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                                  int64_t dw, float bias, float* __restrict y, int64_t OH, int64_t OW) {
  if (dw == 1 && (sw == 1 || sw == 2) && (KW == 3 || KW == 5)) {
    if (KW == 3 && sw == 1) return depthwise_channel_f32_fixed<3, 1>(x, H, W, w, KH, sh, ph, pw, dh, bias, y, OH, OW);
    if (KW == 3 && sw == 2) return depthwise_channel_f32_fixed<3, 2>(x, H, W, w, KH, sh, ph, pw, dh, bias, y, OH, OW);
    if (KW == 5 && sw == 1) return depthwise_channel_f32_fixed<5, 1>(x, H, W, w, KH, sh, ph, pw, dh, bias, y, OH, OW);
    return depthwise_channel_f32_fixed<5, 2>(x, H, W, w, KH, sh, ph, pw, dh, bias, y, OH, OW);
  }
  for (int64_t oh = 0; oh < OH; ++oh) {
    float* __restrict yr = y + oh * OW;
    for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = bias;
    for (int64_t kh = 0; kh < KH; ++kh) {
      const int64_t ih = oh * sh - ph + kh * dh;
      if (ih < 0 || ih >= H) continue;
      const float* __restrict xr = x + ih * W;
      for (int64_t kw = 0; kw < KW; ++kw) {
        const float wv = w[kh * KW + kw];
        const int64_t off = kw * dw - pw;
        const int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int64_t hi = W - 1 - off < 0 ? 0 : (W - 1 - off) / sw + 1;
        if (hi > OW) hi = OW;
        if (sw == 1) {
          const float* __restrict xs = xr + off;
          for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xs[ow];
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * sw + off];
        }
      }
    }
  }
}

}  // namespace
}  // namespace kiln
