// Clip and Where.
// Clip: opset 1-10 take `min`/`max` float attributes (opset 1: absent means
// no bound; opset 6: defaults -/+FLT_MAX); from opset 11 they are optional
// scalar inputs of the input's type (integer types from opset 12).
// y = min(max(x, lo), hi), so min > max gives max everywhere, like np.clip.
// Where: select X or Y by a bool condition, all three broadcast together.
#include <cfloat>
#include <limits>

#include "ir/op_facts.h"
#include "ir/rewrite.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

template <typename T>
void clip_apply(KernelContext& ctx, const Tensor& x, std::optional<acc_t<T>> lo, std::optional<acc_t<T>> hi) {
  Tensor& out = ctx.output(0, x.dtype(), x.shape());
  const T* px = x.data<T>();
  T* po = out.data<T>();
  for (int64_t i = 0, n = x.numel(); i < n; ++i) {
    acc_t<T> v = px[i];
    if (lo && v < *lo) v = *lo;
    if (hi && v > *hi) v = *hi;
    po[i] = static_cast<T>(v);
  }
}

void clip_attr_kernel(KernelContext& ctx) {
  const Node& n = ctx.node();
  const Tensor& x = ctx.input(0);
  std::optional<float> lo, hi;
  if (n.has_attr("min"))
    lo = n.attr_float("min", 0);
  else if (n.opset >= 6)
    lo = -FLT_MAX;
  if (n.has_attr("max"))
    hi = n.attr_float("max", 0);
  else if (n.opset >= 6)
    hi = FLT_MAX;
  dispatch<FloatTypes>(x.dtype(), "Clip", [&]<typename T>() {
    using A = acc_t<T>;
    clip_apply<T>(ctx, x, lo ? std::optional<A>(A(*lo)) : std::nullopt, hi ? std::optional<A>(A(*hi)) : std::nullopt);
  });
}

void clip_input_kernel(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  dispatch<NumericTypes>(x.dtype(), "Clip", [&]<typename T>() {
    auto bound = [&](size_t i, const char* what) -> std::optional<acc_t<T>> {
      if (!ctx.has_input(i)) return std::nullopt;
      const Tensor& b = ctx.input(i);
      if (b.dtype() != x.dtype())
        throw ctx.error(std::string(what) + " has type " + dtype_name(b.dtype()) + ", input " + dtype_name(x.dtype()));
      if (b.numel() != 1) throw ctx.error(std::string(what) + " must be a scalar, got shape " + shape_str(b.shape()));
      return acc_t<T>(b.data<T>()[0]);
    };
    clip_apply<T>(ctx, x, bound(1, "min"), bound(2, "max"));
  });
}

}  // namespace

KILN_OP(Clip_1) {
  return OpSchema{
      .name = "Clip",
      .since = 1,
      .until = 10,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute = clip_attr_kernel,
  };
}

KILN_OP(Clip_11) {
  return OpSchema{
      .name = "Clip",
      .since = 11,
      .min_inputs = 1,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .infer =
          [](InferContext& ctx) {
            for (size_t i = 1; i < 3; ++i)
              if (ctx.has_input(i) && ctx.input_dtype(i) != ctx.input_dtype(0) &&
                  ctx.input_dtype(i) != DType::kUndefined)
                throw ctx.error("bound " + std::to_string(i) + " has type " + dtype_name(ctx.input_dtype(i)) +
                                ", input " + dtype_name(ctx.input_dtype(0)));
            infer_same_as_input(ctx);
          },
      .compute = clip_input_kernel,
  };
}

KILN_OP(Where) {
  return OpSchema{
      .name = "Where",
      .since = 9,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = all_dtypes(),
      .type_input = 1,
      .infer =
          [](InferContext& ctx) {
            if (ctx.input_dtype(0) != DType::kBool && ctx.input_dtype(0) != DType::kUndefined)
              throw ctx.error("condition must be bool, got " + dtype_name(ctx.input_dtype(0)));
            if (ctx.input_dtype(1) != ctx.input_dtype(2) && ctx.input_dtype(2) != DType::kUndefined)
              throw ctx.error("X and Y types differ: " + dtype_name(ctx.input_dtype(1)) + " and " +
                              dtype_name(ctx.input_dtype(2)));
            ctx.set_output(0, ctx.input_dtype(1), broadcast_dims(ctx, {0, 1, 2}));
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& c = ctx.input(0);
            const Tensor& x = ctx.input(1);
            const Tensor& y = ctx.input(2);
            if (c.dtype() != DType::kBool) throw ctx.error("condition must be bool, got " + dtype_name(c.dtype()));
            if (x.dtype() != y.dtype())
              throw ctx.error("X and Y types differ: " + dtype_name(x.dtype()) + " and " + dtype_name(y.dtype()));
            Shape out_shape = broadcast_shapes({c.shape(), x.shape(), y.shape()}, ctx.node());
            dispatch<AllTypes>(x.dtype(), "Where", [&]<typename T>() {
              Tensor& out = ctx.output(0, x.dtype(), out_shape);
              const bool* pc = c.data<bool>();
              const T* px = x.data<T>();
              const T* py = y.data<T>();
              T* po = out.data<T>();
              std::vector<std::vector<int64_t>> st = {broadcast_strides(c.shape(), out_shape),
                                                      broadcast_strides(x.shape(), out_shape),
                                                      broadcast_strides(y.shape(), out_shape)};
              for_each_broadcast(out_shape, st,
                                 [&](int64_t i, const int64_t* off) { po[i] = pc[off[0]] ? px[off[1]] : py[off[2]]; });
            });
          },
  };
}

namespace {

// Clip's bound: the attribute below opset 11, else its optional input,
// which must then be a one-element float constant.
bool clip_bound(const Node& n, size_t input, const char* attr, float def, float* out) {
  *out = n.opset < 11 ? n.attr_float(attr, def) : def;
  if (n.opset < 11 || !n.has_input(input)) return true;
  const Tensor* t = constant_of(n.inputs[input]);
  if (!t || t->numel() != 1 || t->dtype() != DType::kFloat32) return false;
  *out = t->data<float>()[0];
  return true;
}

bool clip_step(const Node& n, EpilogueStep* s) {
  *s = {&kEpilogueClip};
  return clip_bound(n, 1, "min", std::numeric_limits<float>::lowest(), &s->alpha) &&
         clip_bound(n, 2, "max", std::numeric_limits<float>::max(), &s->beta);
}

}  // namespace

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Clip) {
  return {.op = "Clip",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(2),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = clip_step};
}

KILN_OP_FACTS(Where) { return {.op = "Where", .family = OpFamily::kElementwise, .cost = cost::none()}; }

}  // namespace kiln
