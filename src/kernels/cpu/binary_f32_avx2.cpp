// binary_f32_body.h built for AVX2 + FMA (CMakeLists.txt).
#include "kernels/cpu/binary_f32_body.h"

namespace kiln {

void binary_run_f32_avx2(BinaryOpF32 op, const float* a, int64_t as, const float* b, int64_t bs, float* y,
                         int64_t n) {
  binary_run_f32(op, a, as, b, bs, y, n);
}

}  // namespace kiln
