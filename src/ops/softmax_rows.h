// The two reductions of a float32 softmax row, shared by Softmax
// (ops/softmax.cpp) and the fused attention (ops/kiln_attention.cpp). Each
// runs in four independent lanes so that neither is one long dependency
// chain.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>

namespace kiln {

// The row's max (NaN skipped, as std::max skips it: `v > m ? v : m` is that
// in a form the compiler vectorizes); -inf for an empty row.
inline float row_max_f32(const float* x, int64_t n) {
  float m4[4];
  for (float& m : m4) m = -std::numeric_limits<float>::infinity();
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int l = 0; l < 4; ++l) m4[l] = x[k + l] > m4[l] ? x[k + l] : m4[l];
  for (; k < n; ++k) m4[0] = x[k] > m4[0] ? x[k] : m4[0];
  return std::max(std::max(m4[0], m4[1]), std::max(m4[2], m4[3]));
}

// The row's sum, accumulated in double.
inline double row_sum_f64(const float* x, int64_t n) {
  double s4[4] = {0, 0, 0, 0};
  int64_t k = 0;
  for (; k + 4 <= n; k += 4)
    for (int l = 0; l < 4; ++l) s4[l] += x[k + l];
  for (; k < n; ++k) s4[0] += x[k];
  return (s4[0] + s4[1]) + (s4[2] + s4[3]);
}

}  // namespace kiln
