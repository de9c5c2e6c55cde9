// MeanVarianceNormalization (9; 13 only adds bfloat16) and LpNormalization
// (1; 22 only adds types). Computed in double, rounded once.
#include <algorithm>
#include <cmath>

#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

// ------------------------------------------------ MeanVarianceNormalization

void mvn_compute(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  std::vector<int64_t> axes = node.attr_ints("axes", {0, 2, 3});
  std::vector<bool> red(static_cast<size_t>(x.rank()), false);
  for (int64_t a : axes) red[static_cast<size_t>(normalize_axis(a, x.rank(), node))] = true;
  Shape keep = x.shape();
  int64_t count = 1;
  for (size_t d = 0; d < keep.size(); ++d)
    if (red[d]) {
      count *= keep[d];
      keep[d] = 1;
    }
  int64_t nk = shape_numel(keep);
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> sum(static_cast<size_t>(nk), 0.0), sq(static_cast<size_t>(nk), 0.0);
  std::vector<std::vector<int64_t>> st = {broadcast_strides(keep, x.shape())};
  for_each_broadcast(x.shape(), st, [&](int64_t i, const int64_t* off) {
    double e = xv[static_cast<size_t>(i)];
    sum[static_cast<size_t>(off[0])] += e;
    sq[static_cast<size_t>(off[0])] += e * e;
  });
  std::vector<double> y(xv.size());
  for_each_broadcast(x.shape(), st, [&](int64_t i, const int64_t* off) {
    double m = sum[static_cast<size_t>(off[0])] / static_cast<double>(count);
    double var = sq[static_cast<size_t>(off[0])] / static_cast<double>(count) - m * m;
    // The ONNX function: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9).
    y[static_cast<size_t>(i)] = (xv[static_cast<size_t>(i)] - m) / (std::sqrt(std::max(var, 0.0)) + 1e-9);
  });
  store_doubles(ctx, 0, x.dtype(), x.shape(), y);
}

// ----------------------------------------------------------- LpNormalization

void lp_norm_compute(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  int64_t p = node.attr_int("p", 2);
  AxisView v =
      x.rank() == 0 ? AxisView{} : axis_view(x.shape(), normalize_axis(node.attr_int("axis", -1), x.rank(), node));
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> y(xv.size());
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      double norm = 0;
      for (int64_t k = 0; k < v.n; ++k) {
        double e = xv[static_cast<size_t>(v.at(o, k, i))];
        norm += p == 1 ? std::fabs(e) : e * e;
      }
      if (p == 2) norm = std::sqrt(norm);
      for (int64_t k = 0; k < v.n; ++k) {
        size_t j = static_cast<size_t>(v.at(o, k, i));
        y[j] = norm == 0 ? 0.0 : xv[j] / norm;  // a zero norm gives zeros
      }
    }
  store_doubles(ctx, 0, x.dtype(), x.shape(), y);
}

void validate_axis_infer(InferContext& ctx, int64_t def) {
  const ValueType& t = ctx.input_type(0);
  if (t.shape && !t.shape->empty()) normalize_axis(ctx.node().attr_int("axis", def), t.rank(), ctx.node());
  infer_same_as_input(ctx);
}

}  // namespace

KILN_OP(MeanVarianceNormalization) {
  return OpSchema{
      .name = "MeanVarianceNormalization",
      .since = 9,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer =
          [](InferContext& ctx) {
            const ValueType& t = ctx.input_type(0);
            if (t.shape)
              for (int64_t a : ctx.node().attr_ints("axes", {0, 2, 3})) normalize_axis(a, t.rank(), ctx.node());
            infer_same_as_input(ctx);
          },
      .compute = mvn_compute,
  };
}

KILN_OP(LpNormalization) {
  return OpSchema{
      .name = "LpNormalization",
      .since = 1,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check =
          [](const Node& n) {
            int64_t p = n.attr_int("p", 2);
            return p == 1 || p == 2 ? std::string() : "p must be 1 or 2, got " + std::to_string(p);
          },
      .infer = [](InferContext& ctx) { validate_axis_infer(ctx, -1); },
      .compute = lp_norm_compute,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(LpNormalization) {
  return {.op = "LpNormalization", .family = OpFamily::kNormalization, .cost = cost::per_element(3)};
}

KILN_OP_FACTS(MeanVarianceNormalization) {
  return {.op = "MeanVarianceNormalization", .family = OpFamily::kNormalization, .cost = cost::per_element(5)};
}

}  // namespace kiln
