#include "kiln/tensor_diff.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/dispatch.h"

namespace kiln {

namespace {

std::vector<double> as_doubles(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  dispatch<PodTypes>(t.dtype(), "compare", [&]<typename T>() {
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(acc_t<T>(p[i]));
  });
  return v;
}

bool numeric(DType d) { return d != DType::kString && d != DType::kUndefined; }

}  // namespace

double max_magnitude(const Tensor& t) {
  if (!numeric(t.dtype())) return 0;
  double m = 0;
  for (double v : as_doubles(t))
    if (std::isfinite(v)) m = std::max(m, std::fabs(v));
  return m;
}

TensorDiff diff_tensors(const Tensor& got, const Tensor& want, double rtol, double atol) {
  TensorDiff d;
  if (got.shape() != want.shape()) {
    d.mismatch = "shape " + shape_str(got.shape()) + " vs reference " + shape_str(want.shape());
    return d;
  }
  d.elements = want.numel();
  if (got.dtype() == DType::kString || want.dtype() == DType::kString) {
    if (got.dtype() != want.dtype()) {
      d.mismatch = "type " + dtype_name(got.dtype()) + " vs reference " + dtype_name(want.dtype());
      return d;
    }
    for (int64_t i = 0; i < d.elements; ++i)
      if (got.data<std::string>()[i] != want.data<std::string>()[i]) {
        if (d.failing++ == 0) d.worst_index = i;
      }
    d.pass = d.failing == 0;
    d.cosine = d.pass ? 1 : 0;
    return d;
  }
  if (!numeric(got.dtype()) || !numeric(want.dtype())) {
    d.mismatch = "type " + dtype_name(got.dtype()) + " vs reference " + dtype_name(want.dtype());
    return d;
  }
  const std::vector<double> a = as_doubles(got), b = as_doubles(want);
  double diff2 = 0, a2 = 0, b2 = 0, ab = 0, worst_excess = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = a[i], y = b[i];
    double err;
    if (std::isnan(x) || std::isnan(y)) {
      err = std::isnan(x) && std::isnan(y) ? 0 : std::numeric_limits<double>::infinity();
    } else if (std::isinf(x) || std::isinf(y)) {
      err = x == y ? 0 : std::numeric_limits<double>::infinity();
    } else {
      err = std::fabs(x - y);
      diff2 += err * err;
      a2 += x * x;
      b2 += y * y;
      ab += x * y;
    }
    d.max_abs = std::max(d.max_abs, err);
    if (y != 0 && !std::isnan(y)) d.max_rel = std::max(d.max_rel, err / std::fabs(y));
    const double allowed = atol + rtol * (std::isfinite(y) ? std::fabs(y) : 0.0);
    if (err > allowed) {
      ++d.failing;
      const double excess = err - allowed;
      if (excess > worst_excess) {
        worst_excess = excess;
        d.worst_index = static_cast<int64_t>(i);
      }
    }
  }
  const double inf = std::numeric_limits<double>::infinity();
  d.rel_l2 = b2 > 0 ? std::sqrt(diff2 / b2) : diff2 > 0 ? inf : 0;
  d.cosine = a2 > 0 && b2 > 0 ? ab / std::sqrt(a2 * b2) : (a2 == 0 && b2 == 0 ? 1 : 0);
  if (d.max_abs == inf) d.rel_l2 = inf;  // a NaN or infinity mismatch is not hidden by the finite sums
  d.pass = d.failing == 0;
  return d;
}

}  // namespace kiln
