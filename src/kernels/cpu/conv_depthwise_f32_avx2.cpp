// depthwise_channel_f32 built for AVX2 + FMA (CMakeLists.txt).
#include "kernels/cpu/conv_depthwise_f32.h"

namespace kiln {

void depthwise_channel_f32_avx2(const float* x, int64_t H, int64_t W, const float* w, int64_t KH, int64_t KW,
                                int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float bias,
                                float* y, int64_t OH, int64_t OW) {
  depthwise_channel_f32(x, H, W, w, KH, KW, sh, sw, ph, pw, dh, dw, bias, y, OH, OW);
}

}  // namespace kiln
