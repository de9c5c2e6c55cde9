// The float32 row loops of LayerNormalization (ops/layer_norm.cpp), shared
// with the blocked-layout LayerNorm (ops/blocked_layer_norm.cpp) so both give
// the same bits.
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
