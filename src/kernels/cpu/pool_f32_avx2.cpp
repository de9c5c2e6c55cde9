// pool_f32_plane.h built for AVX2 + FMA (CMakeLists.txt).
#include "kernels/cpu/pool_f32_plane.h"

namespace kiln {

void pool_plane_f32_avx2(bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh,
                         int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, float* y, int64_t OH,
                         int64_t OW) {
  if (max) pool_plane_f32<true>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, y, OH, OW);
  else pool_plane_f32<false>(x, H, W, KH, KW, sh, sw, ph, pw, dh, dw, init, y, OH, OW);
}

void divide_by_counts_f32_avx2(float* y, int64_t OH, int64_t OW, const float* count_h, const float* count_w) {
  divide_by_counts_f32(y, OH, OW, count_h, count_w);
}

}  // namespace kiln
