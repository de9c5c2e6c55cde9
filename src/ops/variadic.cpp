// Variadic element-wise ops: Max, Min, Sum, Mean over one or more inputs.
// Opset 1-7 required every input to have the same shape (opset 1-5 also had
// `consumed_inputs`, ignored); from opset 8 the inputs broadcast together.
// NaN propagates through Max and Min as in numpy's maximum/minimum.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

enum class Fold { kMax, kMin, kSum, kMean };

template <typename A>
A fold_one(Fold op, A acc, A x) {
  if constexpr (std::is_floating_point_v<A>) {
    if ((op == Fold::kMax || op == Fold::kMin) && std::isnan(acc)) return acc;
  }
  switch (op) {
    case Fold::kMax: return x > acc || x != x ? x : acc;
    case Fold::kMin: return x < acc || x != x ? x : acc;
    default: return static_cast<A>(acc + x);
  }
}

void variadic_infer(InferContext& ctx) {
  std::vector<size_t> all;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    if (!ctx.has_input(i)) throw ctx.error("input " + std::to_string(i) + " is missing");
    if (ctx.input_dtype(i) != ctx.input_dtype(0) && ctx.input_dtype(i) != DType::kUndefined)
      throw ctx.error("input " + std::to_string(i) + " has type " + dtype_name(ctx.input_dtype(i)) + ", input 0 " +
                      dtype_name(ctx.input_dtype(0)));
    all.push_back(i);
  }
  ctx.set_output(0, ctx.input_dtype(0), broadcast_dims(ctx, all));
}

template <typename List>
void variadic_kernel(KernelContext& ctx, Fold op) {
  std::vector<Shape> shapes;
  DType dt = ctx.input(0).dtype();
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    const Tensor& t = ctx.input(i);
    if (t.dtype() != dt)
      throw ctx.error("input " + std::to_string(i) + " has type " + dtype_name(t.dtype()) + ", input 0 " +
                      dtype_name(dt));
    if (ctx.node().opset < 8 && t.shape() != ctx.input(0).shape())
      throw ctx.error("input " + std::to_string(i) + " has shape " + shape_str(t.shape()) + ", input 0 " +
                      shape_str(ctx.input(0).shape()) + "; broadcasting needs opset 8");
    shapes.push_back(t.shape());
  }
  Shape out_shape = broadcast_shapes(shapes, ctx.node());
  dispatch<List>(dt, ctx.node().op_type, [&]<typename T>() {
    using A = acc_t<T>;
    int64_t n = shape_numel(out_shape);
    std::vector<A> acc(static_cast<size_t>(n));
    for (size_t k = 0; k < ctx.num_inputs(); ++k) {
      const Tensor& t = ctx.input(k);
      const T* p = t.data<T>();
      std::vector<std::vector<int64_t>> st = {broadcast_strides(t.shape(), out_shape)};
      for_each_broadcast(out_shape, st, [&](int64_t i, const int64_t* off) {
        A x = A(p[off[0]]);
        acc[static_cast<size_t>(i)] = k == 0 ? x : fold_one(op, acc[static_cast<size_t>(i)], x);
      });
    }
    Tensor& out = ctx.output(0, dt, out_shape);
    T* po = out.data<T>();
    A count = static_cast<A>(ctx.num_inputs());
    for (int64_t i = 0; i < n; ++i) {
      A v = acc[static_cast<size_t>(i)];
      po[i] = static_cast<T>(op == Fold::kMean ? static_cast<A>(v / count) : v);
    }
  });
}

template <typename List>
OpSchema variadic_schema(const char* name, int since, int until, std::vector<DType> types, Fold op) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 1,
      .max_outputs = 1,
      .types = std::move(types),
      .infer = variadic_infer,
      .compute = [op](KernelContext& ctx) { variadic_kernel<List>(ctx, op); },
  };
}

}  // namespace

// The opset 1-7 and 8+ schemas share the kernel, which checks shapes by opset.
KILN_OP(Max_1) { return variadic_schema<NumericTypes>("Max", 1, 7, numeric_dtypes(), Fold::kMax); }
KILN_OP(Max_8) { return variadic_schema<NumericTypes>("Max", 8, INT_MAX, numeric_dtypes(), Fold::kMax); }
KILN_OP(Min_1) { return variadic_schema<NumericTypes>("Min", 1, 7, numeric_dtypes(), Fold::kMin); }
KILN_OP(Min_8) { return variadic_schema<NumericTypes>("Min", 8, INT_MAX, numeric_dtypes(), Fold::kMin); }
KILN_OP(Sum_1) { return variadic_schema<FloatTypes>("Sum", 1, 7, float_dtypes(), Fold::kSum); }
KILN_OP(Sum_8) { return variadic_schema<FloatTypes>("Sum", 8, INT_MAX, float_dtypes(), Fold::kSum); }
KILN_OP(Mean_1) { return variadic_schema<FloatTypes>("Mean", 1, 7, float_dtypes(), Fold::kMean); }
KILN_OP(Mean_8) { return variadic_schema<FloatTypes>("Mean", 8, INT_MAX, float_dtypes(), Fold::kMean); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Max) {
  return {.op = "Max", .family = OpFamily::kElementwise, .cost = cost::variadic(0), .blocked = BlockedLayout::kBinary};
}

KILN_OP_FACTS(Mean) { return {.op = "Mean", .family = OpFamily::kElementwise, .cost = cost::variadic(1)}; }

KILN_OP_FACTS(Min) {
  return {.op = "Min", .family = OpFamily::kElementwise, .cost = cost::variadic(0), .blocked = BlockedLayout::kBinary};
}

KILN_OP_FACTS(Sum) { return {.op = "Sum", .family = OpFamily::kElementwise, .cost = cost::variadic(0)}; }

}  // namespace kiln
