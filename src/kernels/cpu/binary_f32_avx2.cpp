// binary_f32_body.h built for AVX2 + FMA (CMakeLists.txt).
#include "kernels/cpu/binary_f32_body.h"

namespace kiln {

void binary_rows_f32_avx2(BinaryOpF32 op, const float* a, int64_t as, int64_t a_row, const float* b, int64_t bs,
                          int64_t b_row, float* y, int64_t n, int64_t rows) {
  binary_rows_f32(op, a, as, a_row, b, bs, b_row, y, n, rows);
}

}  // namespace kiln
