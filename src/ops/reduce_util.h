// Helpers shared by the reduction / normalization family (reduce.cpp,
// softmax.cpp, normalization.cpp, ...): axis-set handling for the ReduceX ops
// and the outer x axis x inner view used by ops that work along one axis.
#pragma once
#include <cmath>
#include <limits>
#include <type_traits>

#include "ops/common.h"

namespace kiln {

// A tensor viewed as [outer, n, inner] around one axis (or a trailing block of
// axes when `n` spans several dims).
struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t at(int64_t o, int64_t k, int64_t i) const { return (o * n + k) * inner + i; }
};

// Axis `axis` (already normalised) of `shape`.
inline AxisView axis_view(const Shape& shape, int64_t axis) {
  AxisView v;
  for (int64_t d = 0; d < axis; ++d) v.outer *= shape[static_cast<size_t>(d)];
  v.n = shape.empty() ? 1 : shape[static_cast<size_t>(axis)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < shape.size(); ++d) v.inner *= shape[d];
  return v;
}

// Dims [0, axis) flattened to `outer` and [axis, rank) to `n`; inner = 1.
inline AxisView flatten_view(const Shape& shape, int64_t axis) {
  AxisView v;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d)
    (d < axis ? v.outer : v.n) *= shape[static_cast<size_t>(d)];
  return v;
}

// Float-to-T conversion that never hits undefined behaviour for integers
// (NaN -> 0, out of range saturates).
template <typename T>
T saturate_cast(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    if (v <= static_cast<double>(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(v);
  }
}

// A numeric tensor's values as doubles (the naive normalization kernels
// compute in double and round once at the end).
inline std::vector<double> to_doubles(const Tensor& t, const std::string& what) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch<NumericTypes>(t.dtype(), what, [&]<typename T>() {
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(acc_t<T>(p[i]));
  });
  return v;
}

// Allocates output `i` of the given dtype and shape and fills it from doubles.
inline void store_doubles(KernelContext& ctx, size_t i, DType dtype, const Shape& shape, const std::vector<double>& v) {
  Tensor& out = ctx.output(i, dtype, shape);
  dispatch<NumericTypes>(dtype, ctx.node().op_type, [&]<typename T>() {
    T* p = out.data<T>();
    for (size_t k = 0; k < v.size(); ++k) p[k] = saturate_cast<T>(v[k]);
  });
}

// Values of `t` expanded to `shape` under unidirectional (numpy) broadcasting;
// throws naming the node and `what` when t's shape does not broadcast to it.
inline std::vector<double> expand_doubles(const KernelContext& ctx, const Tensor& t, const Shape& shape,
                                          const std::string& what) {
  bool ok = t.rank() <= static_cast<int>(shape.size());
  for (int d = 0; ok && d < t.rank(); ++d) {
    int64_t td = t.dim(t.rank() - 1 - d), sd = shape[shape.size() - 1 - static_cast<size_t>(d)];
    ok = td == 1 || td == sd;
  }
  if (!ok) throw ctx.error(what + " of shape " + shape_str(t.shape()) + " does not broadcast to " + shape_str(shape));
  std::vector<double> src = to_doubles(t, ctx.node().op_type);
  std::vector<double> out(static_cast<size_t>(shape_numel(shape)));
  for_each_broadcast(shape, {broadcast_strides(t.shape(), shape)}, [&](int64_t i, const int64_t* off) {
    out[static_cast<size_t>(i)] = src[static_cast<size_t>(off[0])];
  });
  return out;
}

}  // namespace kiln
