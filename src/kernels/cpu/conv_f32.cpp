#include "kernels/cpu/conv_f32.h"

#include <algorithm>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/cpu/conv_depthwise_f32.h"

namespace kiln {

void depthwise_channel_f32_avx2(const float* x, int64_t H, int64_t W, const float* w, int64_t KH, int64_t KW,
                                int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float bias,
                                float* y, int64_t OH, int64_t OW);

namespace {

using DepthwiseFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, int64_t, int64_t,
                             int64_t, int64_t, int64_t, int64_t, float, float*, int64_t, int64_t);

void depthwise_channel_f32_baseline(const float* x, int64_t H, int64_t W, const float* w, int64_t KH, int64_t KW,
                                    int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                                    float bias, float* y, int64_t OH, int64_t OW) {
  depthwise_channel_f32(x, H, W, w, KH, KW, sh, sw, ph, pw, dh, dw, bias, y, OH, OW);
}

DepthwiseFn depthwise_kernel() {
  static const DepthwiseFn fn = static_cast<int>(cpu_isa_selected()) >= static_cast<int>(CpuIsa::kAvx2)
                                    ? depthwise_channel_f32_avx2
                                    : depthwise_channel_f32_baseline;
  return fn;
}

void depthwise_conv2d_f32(const Conv2dF32Shape& s, const float* x, const float* w, const float* bias, float* y,
                          ThreadPool* pool) {
  const DepthwiseFn fn = depthwise_kernel();
  const int64_t in_sp = s.H * s.W, out_sp = s.OH * s.OW, k_sp = s.KH * s.KW;
  parallel_for(pool, s.N * s.C, [&](int64_t begin, int64_t end) {
    for (int64_t nc = begin; nc < end; ++nc) {
      const int64_t c = nc % s.C;
      fn(x + nc * in_sp, s.H, s.W, w + c * k_sp, s.KH, s.KW, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h,
         s.dilation_w, bias ? bias[c] : 0.0f, y + nc * out_sp, s.OH, s.OW);
    }
  });
}

// Rows [r0, r1) of the im2col matrix of one image's group: row (c, kh, kw)
// holds x[c, oh * sh - ph + kh * dh, ow * sw - pw + kw * dw] over (oh, ow),
// zero where that falls in the padding.
void im2col_rows(const Conv2dF32Shape& s, const float* xg, int64_t r0, int64_t r1, float* col) {
  const int64_t out_sp = s.OH * s.OW;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t c = r / (s.KH * s.KW), kh = (r / s.KW) % s.KH, kw = r % s.KW;
    const float* xc = xg + c * s.H * s.W;
    float* dst = col + r * out_sp;
    const int64_t off = kw * s.dilation_w - s.pad_w;
    const int64_t lo = std::min(s.OW, off >= 0 ? 0 : (-off + s.stride_w - 1) / s.stride_w);
    const int64_t hi = std::max(lo, std::min(s.OW, s.W - 1 - off < 0 ? 0 : (s.W - 1 - off) / s.stride_w + 1));
    for (int64_t oh = 0; oh < s.OH; ++oh) {
      float* d = dst + oh * s.OW;
      const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dilation_h;
      if (ih < 0 || ih >= s.H) {
        std::fill(d, d + s.OW, 0.0f);
        continue;
      }
      const float* xr = xc + ih * s.W;
      std::fill(d, d + lo, 0.0f);
      if (s.stride_w == 1) {
        std::memcpy(d + lo, xr + lo + off, static_cast<size_t>(hi - lo) * sizeof(float));
      } else {
        for (int64_t ow = lo; ow < hi; ++ow) d[ow] = xr[ow * s.stride_w + off];
      }
      std::fill(d + hi, d + s.OW, 0.0f);
    }
  }
}

thread_local std::vector<float> tls_col;

}  // namespace

std::shared_ptr<const PackedConvWeightsF32> pack_conv_weights_f32(const float* w, int64_t M, int64_t group,
                                                                    int64_t k_per_group) {
  auto p = std::make_shared<PackedConvWeightsF32>();
  const int64_t Mg = M / group;
  for (int64_t gi = 0; gi < group; ++gi)
    p->groups.push_back(PackedMatrixF32::pack(PackedMatrixF32::Side::kA, w + gi * Mg * k_per_group, k_per_group,
                                              false, Mg, k_per_group, gemm_f32_default_kernel()));
  return p;
}

void conv2d_f32(const Conv2dF32Shape& s, const float* x, const float* w, const PackedConvWeightsF32* packed,
                const float* bias, float* y, ThreadPool* pool) {
  if (s.depthwise() && s.M == s.C) return depthwise_conv2d_f32(s, x, w, bias, y, pool);
  const int64_t in_sp = s.H * s.W, out_sp = s.OH * s.OW;
  const int64_t Cg = s.C / s.group, Mg = s.M / s.group, Kc = Cg * s.KH * s.KW;
  const bool pointwise = s.pointwise();
  if (!pointwise) tls_col.resize(static_cast<size_t>(Kc * out_sp));
  float* col = tls_col.data();
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t gi = 0; gi < s.group; ++gi) {
      float* yg = y + (n * s.M + gi * Mg) * out_sp;
      const float* xg = x + (n * s.C + gi * Cg) * in_sp;
      if (bias)
        for (int64_t m = 0; m < Mg; ++m) std::fill(yg + m * out_sp, yg + (m + 1) * out_sp, bias[gi * Mg + m]);
      GemmF32Operand a{w + gi * Mg * Kc, Kc, false, packed ? packed->groups[static_cast<size_t>(gi)].get() : nullptr};
      GemmF32Operand b{xg, in_sp, false, nullptr};
      if (!pointwise) {
        parallel_for(pool, Kc, [&](int64_t r0, int64_t r1) { im2col_rows(s, xg, r0, r1, col); });
        b = {col, out_sp, false, nullptr};
      }
      gemm_f32(Mg, out_sp, Kc, 1.0f, a, b, bias ? 1.0f : 0.0f, yg, out_sp, pool);
    }
  }
}

}  // namespace kiln
