// pool_f32_plane.h built for AVX2 + FMA (CMakeLists.txt).
#include "kernels/cpu/pool_blocked_f32_body.h"
#include "kernels/cpu/pool_f32_plane.h"

namespace kiln {

void pool_plane_f32_avx2(bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh, int64_t sw,
                         int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, float* y, int64_t OH, int64_t OW) {
  if (max)
    pool_plane_f32<true>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, y, OH, OW);
  else
    pool_plane_f32<false>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, y, OH, OW);
}

void divide_by_counts_f32_avx2(float* y, int64_t OH, int64_t OW, const float* count_h, const float* count_w) {
  divide_by_counts_f32(y, OH, OW, count_h, count_w);
}

void pool_blocked_rows_f32_avx2(int64_t block, bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW,
                                int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init,
                                int64_t oh_begin, int64_t oh_end, float* y, int64_t OW, const float* count_h,
                                const float* count_w) {
  pool_blocked_rows(block, max, x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, oh_begin, oh_end, y, OW, count_h,
                    count_w);
}

}  // namespace kiln
