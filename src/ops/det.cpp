// Det (11): determinants of the trailing (M, M) matrices of an (*, M, M)
// input, by LU decomposition with partial pivoting in double.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

double determinant(std::vector<double> a, int64_t m) {
  double det = 1;
  for (int64_t c = 0; c < m; ++c) {
    int64_t piv = c;
    for (int64_t r = c + 1; r < m; ++r)
      if (std::fabs(a[static_cast<size_t>(r * m + c)]) > std::fabs(a[static_cast<size_t>(piv * m + c)])) piv = r;
    double pv = a[static_cast<size_t>(piv * m + c)];
    if (pv == 0) return 0.0;
    if (piv != c) {
      for (int64_t k = 0; k < m; ++k) std::swap(a[static_cast<size_t>(c * m + k)], a[static_cast<size_t>(piv * m + k)]);
      det = -det;
    }
    det *= pv;
    for (int64_t r = c + 1; r < m; ++r) {
      double f = a[static_cast<size_t>(r * m + c)] / pv;
      for (int64_t k = c; k < m; ++k) a[static_cast<size_t>(r * m + k)] -= f * a[static_cast<size_t>(c * m + k)];
    }
  }
  return det;
}

void det_compute(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  int r = x.rank();
  if (r < 2 || x.dim(r - 1) != x.dim(r - 2))
    throw ctx.error("input must be (*, M, M) square matrices, got " + shape_str(x.shape()));
  int64_t m = x.dim(r - 1);
  Shape out_shape(x.shape().begin(), x.shape().end() - 2);
  int64_t batch = shape_numel(out_shape);
  std::vector<double> xv = to_doubles(x, ctx.node().op_type);
  std::vector<double> out(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    auto first = xv.begin() + static_cast<std::ptrdiff_t>(b * m * m);
    out[static_cast<size_t>(b)] = determinant(std::vector<double>(first, first + m * m), m);
  }
  store_doubles(ctx, 0, x.dtype(), out_shape, out);
}

}  // namespace

KILN_OP(Det) {
  return OpSchema{
      .name = "Det",
      .since = 11,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer =
          [](InferContext& ctx) {
            const ValueType& t = ctx.input_type(0);
            if (!t.shape) return ctx.set_output(0, t.dtype, std::nullopt);
            if (t.rank() < 2) throw ctx.error("input must have rank >= 2, got " + std::to_string(t.rank()));
            ctx.set_output(0, t.dtype, DimVector(t.shape->begin(), t.shape->end() - 2));
          },
      .compute = det_compute,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Det) {
  return {.op = "Det", .family = OpFamily::kOther, .cost = cost::not_counted("Det is not counted")};
}

}  // namespace kiln
