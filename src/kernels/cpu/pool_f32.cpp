#include "kernels/cpu/pool_f32.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/pool_blocked_f32_body.h"
#include "kernels/cpu/pool_f32_plane.h"
#include "kiln/error.h"

namespace kiln {

void pool_plane_f32_avx2(bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh, int64_t sw,
                         int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, float* y, int64_t OH, int64_t OW);
void divide_by_counts_f32_avx2(float* y, int64_t OH, int64_t OW, const float* count_h, const float* count_w);
void pool_blocked_rows_f32_avx2(int64_t block, bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW,
                                int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init,
                                int64_t oh_begin, int64_t oh_end, float* y, int64_t OW, const float* count_h,
                                const float* count_w);

namespace {

void pool_plane_f32_scalar(bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh,
                           int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, float* y, int64_t OH,
                           int64_t OW) {
  if (max)
    pool_plane_f32<true>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, y, OH, OW);
  else
    pool_plane_f32<false>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, y, OH, OW);
}

void divide_by_counts_f32_scalar(float* y, int64_t OH, int64_t OW, const float* count_h, const float* count_w) {
  divide_by_counts_f32(y, OH, OW, count_h, count_w);
}

void pool_blocked_rows_f32_scalar(int64_t block, bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW,
                                  int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init,
                                  int64_t oh_begin, int64_t oh_end, float* y, int64_t OW, const float* count_h,
                                  const float* count_w) {
  pool_blocked_rows(block, max, x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, oh_begin, oh_end, y, OW, count_h,
                    count_w);
}

}  // namespace

const KernelVariant<PoolF32Fns> kPoolF32Variants[2] = {
    {"pool_f32_avx2", CpuIsa::kAvx2, {pool_plane_f32_avx2, divide_by_counts_f32_avx2, pool_blocked_rows_f32_avx2}},
    {"pool_f32_scalar",
     CpuIsa::kScalar,
     {pool_plane_f32_scalar, divide_by_counts_f32_scalar, pool_blocked_rows_f32_scalar}},
};

namespace {

const PoolF32Fns& pool_fns() { return select_variant(kPoolF32Variants).fn; }

void pool_planes(bool max, const Pool2dF32Shape& s, const float* x, float* y, ThreadPool* pool, const float* count_h,
                 const float* count_w) {
  const auto plane_fn = pool_fns().plane;
  const auto divide_fn = pool_fns().divide_by_counts;
  const float init = max ? std::numeric_limits<float>::lowest() : 0.0f;
  const int64_t in_sp = s.H * s.W, out_sp = s.OH * s.OW;
  parallel_for(pool, s.planes, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      float* yp = y + p * out_sp;
      plane_fn(max, x + p * in_sp, s.H, s.W, s.KH, s.KW, s.stride_h, s.stride_w, s.pad_top, s.pad_left, s.dilation_h,
               s.dilation_w, init, yp, s.OH, s.OW);
      if (!max) divide_fn(yp, s.OH, s.OW, count_h, count_w);
    }
  });
}

// How many of one dimension's taps fall in [lo, hi), per output position.
std::vector<float> tap_counts(int64_t out, int64_t k, int64_t stride, int64_t dilation, int64_t pad, int64_t lo,
                              int64_t hi) {
  std::vector<float> c(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    int64_t n = 0;
    for (int64_t t = 0; t < k; ++t) {
      const int64_t q = o * stride - pad + t * dilation;
      n += q >= lo && q < hi;
    }
    c[static_cast<size_t>(o)] = static_cast<float>(n);
  }
  return c;
}

}  // namespace

void max_pool2d_f32(const Pool2dF32Shape& s, const float* x, float* y, ThreadPool* pool) {
  pool_planes(true, s, x, y, pool, nullptr, nullptr);
}

namespace {
// The average's divisor is the product of a row count and a column count.
struct TapCounts {
  std::vector<float> h, w;
  TapCounts(const Pool2dF32Shape& s, bool count_include_pad) {
    const int64_t top = count_include_pad ? -s.pad_top : 0, bottom = s.H + (count_include_pad ? s.pad_bottom : 0);
    const int64_t left = count_include_pad ? -s.pad_left : 0, right = s.W + (count_include_pad ? s.pad_right : 0);
    h = tap_counts(s.OH, s.KH, s.stride_h, s.dilation_h, s.pad_top, top, bottom);
    w = tap_counts(s.OW, s.KW, s.stride_w, s.dilation_w, s.pad_left, left, right);
  }
};
}  // namespace

void average_pool2d_f32(const Pool2dF32Shape& s, bool count_include_pad, const float* x, float* y, ThreadPool* pool) {
  const TapCounts counts(s, count_include_pad);
  pool_planes(false, s, x, y, pool, counts.h.data(), counts.w.data());
}

void pool2d_blocked_f32(bool max, const Pool2dF32Shape& s, int64_t block, bool count_include_pad, const float* x,
                        float* y, ThreadPool* pool) {
  if (block != 8 && block != 16) throw Error("blocked pool: block must be 8 or 16, got " + std::to_string(block));
  const auto rows_fn = pool_fns().blocked_rows;
  const TapCounts counts = max ? TapCounts(Pool2dF32Shape{}, false) : TapCounts(s, count_include_pad);
  const float init = max ? std::numeric_limits<float>::lowest() : 0.0f;
  const int64_t in_plane = s.H * s.W * block, out_plane = s.OH * s.OW * block;
  // Work items: (plane, band of output rows), so that one image with few
  // channel blocks still splits over the threads.
  const int64_t bands = std::min<int64_t>(s.OH, 4);
  const int64_t band_rows = (s.OH + bands - 1) / bands;
  parallel_for(pool, s.planes * bands, [&](int64_t begin, int64_t end) {
    for (int64_t it = begin; it < end; ++it) {
      const int64_t p = it / bands, oh0 = (it % bands) * band_rows, oh1 = std::min(s.OH, oh0 + band_rows);
      if (oh0 >= oh1) continue;
      rows_fn(block, max, x + p * in_plane, s.H, s.W, s.KH, s.KW, s.stride_h, s.stride_w, s.pad_top, s.pad_left,
              s.dilation_h, s.dilation_w, init, oh0, oh1, y + p * out_plane, s.OW, counts.h.data(), counts.w.data());
    }
  });
}

}  // namespace kiln
