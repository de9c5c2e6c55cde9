// Float32 row statistics and normalization in portable C++ (ops/layer_norm.cpp),
// used by RMSNormalization and InstanceNormalization (ops/normalization.cpp).
// LayerNormalization, plain and blocked, runs the per-ISA vector rows of
// kernels/cpu/vec_math_f32.h (VecMathF32::layer_norm_rows).
#pragma once
#include <cstdint>

namespace kiln {

// The mean is kept as a float plus the float's own error (mean_error), since
// where the mean is large against the spread that error is not negligible
// next to x - mean.
struct RowStats {
  float mean, mean_error, inv_std;
};

RowStats layer_norm_stats_f32(const float* x, int64_t n, double eps);
// y = (x - mean) * inv_std * scale + bias, scale and bias per element
// (bias may be null).
void layer_norm_row_f32(const float* x, float* y, int64_t n, RowStats st, const float* scale, const float* bias);

}  // namespace kiln
