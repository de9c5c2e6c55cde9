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

void depthwise_channel_f32_scalar(const float* x, int64_t H, int64_t W, const float* w, int64_t KH, int64_t KW,
                                  int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float bias,
                                  float* y, int64_t OH, int64_t OW) {
  depthwise_channel_f32(x, H, W, w, KH, KW, sh, sw, ph, pw, dh, dw, bias, y, OH, OW);
}

}  // namespace

const KernelVariant<DepthwiseChannelF32Fn> kDepthwiseChannelF32Variants[2] = {
    {"depthwise_channel_f32_avx2", CpuIsa::kAvx2, depthwise_channel_f32_avx2},
    {"depthwise_channel_f32_scalar", CpuIsa::kScalar, depthwise_channel_f32_scalar},
};

namespace {

void depthwise_conv2d_f32(const Conv2dF32Shape& s, const float* x, const float* w, const float* bias, float* y,
                          ThreadPool* pool, const Conv2dF32Epilogue* epilogue) {
  const DepthwiseChannelF32Fn fn = select_variant(kDepthwiseChannelF32Variants).fn;
  const int64_t in_sp = s.H * s.W, out_sp = s.OH * s.OW, k_sp = s.KH * s.KW;
  parallel_for(pool, s.N * s.C, [&](int64_t begin, int64_t end) {
    for (int64_t nc = begin; nc < end; ++nc) {
      const int64_t c = nc % s.C;
      fn(x + nc * in_sp, s.H, s.W, w + c * k_sp, s.KH, s.KW, s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h,
         s.dilation_w, bias ? bias[c] : 0.0f, y + nc * out_sp, s.OH, s.OW);
      if (epilogue) (*epilogue)(y + nc * out_sp, out_sp);
    }
  });
}

// The im2col matrix of one image's group, packed straight into GEMM panels:
// row (c, kh, kw), column (oh, ow) holds x[c, oh * sh - ph + kh * dh,
// ow * sw - pw + kw * dw], zero where that falls in the padding. Never
// materialized whole, so it costs no extra pass over memory.
class Im2colPacker : public GemmF32PanelPacker {
 public:
  Im2colPacker(const Conv2dF32Shape& s, const float* xg) : s_(s), xg_(xg) {}

  void pack_b(int64_t k0, int64_t kc, int64_t j0, int64_t n, int64_t nr, float* out) const override {
    const Conv2dF32Shape& s = s_;
    for (int64_t k = 0; k < kc; ++k) {
      const int64_t r = k0 + k;
      const int64_t c = r / (s.KH * s.KW), kh = (r / s.KW) % s.KH, kw = r % s.KW;
      const float* xc = xg_ + c * s.H * s.W;
      const int64_t off = kw * s.dilation_w - s.pad_w;
      // Output columns whose input column is inside the image: [lo, hi).
      const int64_t lo = std::min(s.OW, off >= 0 ? 0 : (-off + s.stride_w - 1) / s.stride_w);
      const int64_t hi = std::max(lo, std::min(s.OW, s.W - 1 - off < 0 ? 0 : (s.W - 1 - off) / s.stride_w + 1));
      int64_t oh = j0 / s.OW, ow = j0 % s.OW;
      for (int64_t j = 0; j < n;) {
        // One run: within an output row and within a panel.
        const int64_t len = std::min(s.OW - ow, nr - j % nr);
        const int64_t run = std::min(len, n - j);
        float* d = out + (j / nr) * nr * kc + k * nr + j % nr;
        const int64_t ih = oh * s.stride_h - s.pad_h + kh * s.dilation_h;
        if (ih < 0 || ih >= s.H) {
          std::fill(d, d + run, 0.0f);
        } else {
          const float* xr = xc + ih * s.W + off;
          const int64_t a = std::clamp(lo, ow, ow + run), b = std::clamp(hi, a, ow + run);
          std::fill(d, d + (a - ow), 0.0f);
          if (s.stride_w == 1) {
            std::memcpy(d + (a - ow), xr + a, static_cast<size_t>(b - a) * sizeof(float));
          } else {
            for (int64_t q = a; q < b; ++q) d[q - ow] = xr[q * s.stride_w];
          }
          std::fill(d + (b - ow), d + run, 0.0f);
        }
        j += run;
        ow += run;
        if (ow == s.OW) {
          ow = 0;
          ++oh;
        }
      }
      // Zero-pad the last panel's unused columns.
      if (n % nr) {
        float* d = out + (n / nr) * nr * kc + k * nr;
        std::fill(d + n % nr, d + nr, 0.0f);
      }
    }
  }

 private:
  const Conv2dF32Shape& s_;
  const float* xg_;
};

// One GEMM per image and group, im2col packed on the fly.
void conv2d_f32_im2col(const Conv2dF32Shape& s, const float* x, const float* w, const PackedConvWeightsF32* packed,
                       const float* bias, float* y, ThreadPool* pool) {
  const int64_t in_sp = s.H * s.W, out_sp = s.OH * s.OW;
  const int64_t Cg = s.C / s.group, Mg = s.M / s.group, Kc = Cg * s.KH * s.KW;
  const bool pointwise = s.pointwise();
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t gi = 0; gi < s.group; ++gi) {
      float* yg = y + (n * s.M + gi * Mg) * out_sp;
      const float* xg = x + (n * s.C + gi * Cg) * in_sp;
      if (bias)
        for (int64_t m = 0; m < Mg; ++m) std::fill(yg + m * out_sp, yg + (m + 1) * out_sp, bias[gi * Mg + m]);
      const PackedMatrixF32* pa =
          packed && !packed->groups.empty() ? packed->groups[static_cast<size_t>(gi)].get() : nullptr;
      GemmF32Operand a{w + gi * Mg * Kc, Kc, false, pa};
      const Im2colPacker im2col(s, xg);
      GemmF32Operand b{xg, in_sp, false, nullptr, pointwise ? nullptr : &im2col};
      gemm_f32(Mg, out_sp, Kc, 1.0f, a, b, bias ? 1.0f : 0.0f, yg, out_sp, pool);
    }
  }
}

// The output rectangle [oh0, oh1) x [ow0, ow1) where tap (kh, kw) reads
// inside the image (empty when oh0 >= oh1 or ow0 >= ow1).
struct TapRect {
  int64_t oh0, oh1, ow0, ow1;
  int64_t area() const { return std::max<int64_t>(0, oh1 - oh0) * std::max<int64_t>(0, ow1 - ow0); }
};

// Outputs o in [0, out) with 0 <= o * stride + off < in.
void valid_range(int64_t out, int64_t in, int64_t stride, int64_t off, int64_t* lo, int64_t* hi) {
  *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  *hi = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
  *lo = std::min(*lo, out);
  *hi = std::clamp(*hi, *lo, out);
}

TapRect tap_rect(const Conv2dF32Shape& s, int64_t kh, int64_t kw) {
  TapRect r{};
  valid_range(s.OH, s.H, s.stride_h, kh * s.dilation_h - s.pad_h, &r.oh0, &r.oh1);
  valid_range(s.OW, s.W, s.stride_w, kw * s.dilation_w - s.pad_w, &r.ow0, &r.ow1);
  return r;
}

// Per image: y = bias, then for each tap with outputs inside the image,
// y[:, rect] += W_tap [M, C] x window of x [C, rect], the window gathered
// into scratch; rectangles of whole rows accumulate in place, others go
// through a scratch tile.
// The largest window (C x pixels) and tile (M x pixels) of any tap, in floats.
int64_t taps_scratch_floats(const Conv2dF32Shape& s) {
  int64_t most = 0;
  for (int64_t kh = 0; kh < s.KH; ++kh)
    for (int64_t kw = 0; kw < s.KW; ++kw) most = std::max(most, tap_rect(s, kh, kw).area());
  return (s.C + s.M) * most;
}

void conv2d_f32_by_taps(const Conv2dF32Shape& s, const float* x, const PackedConvWeightsF32& packed, const float* bias,
                        float* y, ThreadPool* pool, float* scratch) {
  const int64_t in_sp = s.H * s.W, out_sp = s.OH * s.OW;
  for (int64_t n = 0; n < s.N; ++n) {
    const float* xn = x + n * s.C * in_sp;
    float* yn = y + n * s.M * out_sp;
    for (int64_t m = 0; m < s.M; ++m) std::fill(yn + m * out_sp, yn + (m + 1) * out_sp, bias ? bias[m] : 0.0f);
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        const TapRect r = tap_rect(s, kh, kw);
        const int64_t rh = r.oh1 - r.oh0, rw = r.ow1 - r.ow0, npix = r.area();
        if (npix == 0) continue;
        float* const win = scratch;  // C x npix, then the tile: M x npix
        float* const tile = scratch + s.C * npix;
        const int64_t ih0 = r.oh0 * s.stride_h - s.pad_h + kh * s.dilation_h;
        const int64_t iw0 = r.ow0 * s.stride_w - s.pad_w + kw * s.dilation_w;
        parallel_for(s.C * npix >= 65536 ? pool : nullptr, s.C, [&](int64_t c0, int64_t c1) {
          for (int64_t c = c0; c < c1; ++c)
            for (int64_t i = 0; i < rh; ++i) {
              const float* src = xn + c * in_sp + (ih0 + i * s.stride_h) * s.W + iw0;
              float* dst = win + c * npix + i * rw;
              if (s.stride_w == 1)
                std::memcpy(dst, src, static_cast<size_t>(rw) * sizeof(float));
              else
                for (int64_t j = 0; j < rw; ++j) dst[j] = src[j * s.stride_w];
            }
        });
        const GemmF32Operand a{nullptr, s.C, false, packed.taps[static_cast<size_t>(kh * s.KW + kw)].get()};
        const GemmF32Operand b{win, npix};
        if (rw == s.OW) {
          gemm_f32(s.M, npix, s.C, 1.0f, a, b, 1.0f, yn + r.oh0 * s.OW, out_sp, pool);
          continue;
        }
        gemm_f32(s.M, npix, s.C, 1.0f, a, b, 0.0f, tile, npix, pool);
        for (int64_t m = 0; m < s.M; ++m)
          for (int64_t i = 0; i < rh; ++i) {
            float* dst = yn + m * out_sp + (r.oh0 + i) * s.OW + r.ow0;
            const float* src = tile + m * npix + i * rw;
            for (int64_t j = 0; j < rw; ++j) dst[j] += src[j];
          }
      }
  }
}

}  // namespace

bool conv2d_f32_taps_sparse(const Conv2dF32Shape& s) {
  if (s.group != 1 || s.KH * s.KW == 1) return false;
  int64_t used = 0;
  for (int64_t kh = 0; kh < s.KH; ++kh)
    for (int64_t kw = 0; kw < s.KW; ++kw) used += tap_rect(s, kh, kw).area();
  return 2 * used <= s.KH * s.KW * s.OH * s.OW;
}

std::shared_ptr<const PackedConvWeightsF32> pack_conv_tap_weights_f32(const float* w, int64_t M, int64_t C, int64_t KH,
                                                                      int64_t KW) {
  auto p = std::make_shared<PackedConvWeightsF32>();
  std::vector<float> slice(static_cast<size_t>(M * C));
  for (int64_t t = 0; t < KH * KW; ++t) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < C; ++c) slice[static_cast<size_t>(m * C + c)] = w[(m * C + c) * KH * KW + t];
    p->taps.push_back(
        PackedMatrixF32::pack(PackedMatrixF32::Side::kA, slice.data(), C, false, M, C, gemm_f32_default_kernel()));
  }
  return p;
}

std::shared_ptr<const PackedConvWeightsF32> pack_conv_weights_f32(const float* w, int64_t M, int64_t group,
                                                                  int64_t k_per_group) {
  auto p = std::make_shared<PackedConvWeightsF32>();
  const int64_t Mg = M / group;
  for (int64_t gi = 0; gi < group; ++gi)
    p->groups.push_back(PackedMatrixF32::pack(PackedMatrixF32::Side::kA, w + gi * Mg * k_per_group, k_per_group, false,
                                              Mg, k_per_group, gemm_f32_default_kernel()));
  return p;
}

size_t conv2d_f32_workspace_bytes(const Conv2dF32Shape& s, const PackedConvWeightsF32* packed) {
  if (s.depthwise() && s.M == s.C) return 0;
  if (!packed || packed->taps.empty() || s.group != 1) return 0;
  return static_cast<size_t>(taps_scratch_floats(s)) * sizeof(float);
}

void conv2d_f32(const Conv2dF32Shape& s, const float* x, const float* w, const PackedConvWeightsF32* packed,
                const float* bias, float* y, ThreadPool* pool, const Conv2dF32Epilogue* epilogue, void* workspace) {
  if (s.depthwise() && s.M == s.C) return depthwise_conv2d_f32(s, x, w, bias, y, pool, epilogue);
  if (packed && !packed->taps.empty() && s.group == 1) {
    std::vector<float> own;  // no workspace given (tests, benchmarks): this call's own
    float* scratch = static_cast<float*>(workspace);
    if (!scratch) {
      own.resize(static_cast<size_t>(taps_scratch_floats(s)));
      scratch = own.data();
    }
    conv2d_f32_by_taps(s, x, *packed, bias, y, pool, scratch);
  } else
    conv2d_f32_im2col(s, x, w, packed, bias, y, pool);
  if (!epilogue) return;
  // A separate pass: the GEMM's K blocking leaves no point where a finished
  // tile is still in cache for the caller.
  constexpr int64_t kBlock = 16384;
  const int64_t n = s.N * s.M * s.OH * s.OW;
  parallel_for(n >= 4 * kBlock ? pool : nullptr, (n + kBlock - 1) / kBlock, [&](int64_t begin, int64_t end) {
    const int64_t lo = begin * kBlock;
    (*epilogue)(y + lo, std::min(n, end * kBlock) - lo);
  });
}

}  // namespace kiln
