// Helpers for the quantized ops (QuantizeLinear, DequantizeLinear,
// MatMulInteger, ConvInteger, QLinear*): reading small integer and scale
// tensors, and storing saturated values.
#pragma once
#include <cmath>
#include <limits>
#include <vector>

#include "ops/common.h"

namespace kiln {

// The elements of an 8/16/32-bit integer tensor as int32.
inline std::vector<int32_t> quant_values(const Tensor& t, const KernelContext& ctx, const char* what) {
  std::vector<int32_t> v(static_cast<size_t>(t.numel()));
  bool ok = false;
  dispatch<TypeList<int8_t, uint8_t, int16_t, uint16_t, int32_t>>(t.dtype(), what, [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<int32_t>(t.data<T>()[i]);
    ok = true;
  });
  if (!ok) throw ctx.error(std::string(what) + " has an unsupported type");
  return v;
}

// The elements of a float tensor (any float type) as float.
inline std::vector<float> float_values(const Tensor& t, const KernelContext& ctx, const char* what) {
  if (!dtype_is_float(t.dtype()))
    throw ctx.error(std::string(what) + " must be a float tensor, got " + dtype_name(t.dtype()));
  std::vector<float> v(static_cast<size_t>(t.numel()));
  dispatch<FloatTypes>(t.dtype(), what, [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<float>(t.data<T>()[i]);
  });
  return v;
}

// Fills an integer tensor with value(i) (already rounded), saturating to the
// type's range; NaN stores 0.
template <typename F>
void store_quantized(Tensor& y, F value) {
  dispatch<TypeList<int8_t, uint8_t, int16_t, uint16_t, int32_t>>(y.dtype(), "quantized output", [&]<typename T>() {
    const double lo = static_cast<double>(std::numeric_limits<T>::min());
    const double hi = static_cast<double>(std::numeric_limits<T>::max());
    T* p = y.data<T>();
    for (int64_t i = 0, n = y.numel(); i < n; ++i) {
      double v = value(i);
      p[i] = std::isnan(v) ? T(0) : static_cast<T>(std::clamp(v, lo, hi));
    }
  });
}

}  // namespace kiln
