// Ops that create or mask values: ConstantOfShape, Range, EyeLike, OneHot,
// Trilu, and the cumulative CumSum / CumProd.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// ------------------------------------------------------------ ConstantOfShape

OpSchema constant_of_shape_schema() {
  return OpSchema{
      .name = "ConstantOfShape",
      .since = 9,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = {DType::kInt64},
      .check = [](const Node& n) -> std::string {
        const Tensor* v = n.attr_tensor("value");
        if (v && v->numel() != 1) return "attribute 'value' must have exactly one element";
        if (v && v->dtype() == DType::kString) return "attribute 'value' must not be a string";
        return "";
      },
      .infer =
          [](InferContext& ctx) {
            const Tensor* v = ctx.node().attr_tensor("value");
            DType dt = v ? v->dtype() : DType::kFloat32;
            std::vector<int64_t> shape;
            if (ctx.input_ints(0, &shape)) {
              for (int64_t d : shape)
                if (d < 0) throw ctx.error("shape has negative dim " + std::to_string(d));
              return ctx.set_output(0, dt, dims_of(shape));
            }
            int64_t len = input_length(ctx, 0);
            ctx.set_output(0, dt,
                           len >= 0 ? std::optional<DimVector>(unknown_dims(static_cast<size_t>(len))) : std::nullopt);
          },
      .compute =
          [](KernelContext& ctx) {
            std::vector<int64_t> shape = read_ints(ctx.input(0), ctx, "ConstantOfShape input");
            checked_numel(ctx, shape, "ConstantOfShape input");
            const Tensor* v = ctx.node().attr_tensor("value");
            DType dt = v ? v->dtype() : DType::kFloat32;
            Tensor& out = ctx.output(0, dt, shape);
            if (!v) return;  // zero-filled
            dispatch_by_size(dt, "ConstantOfShape", [&]<typename T>() {
              T value = v->data<T>()[0];
              T* po = out.data<T>();
              for (int64_t i = 0; i < out.numel(); ++i) po[i] = value;
            });
          },
  };
}

// ---------------------------------------------------------------------- Range

OpSchema range_schema() {
  return OpSchema{
      .name = "Range",
      .since = 11,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt16, DType::kInt32,
                DType::kInt64},
      .infer = [](InferContext& ctx) { ctx.set_output(0, ctx.input_dtype(0), DimVector{Dim::unknown()}); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& a = ctx.input(0);
            for (size_t i = 0; i < 3; ++i) {
              if (ctx.input(i).numel() != 1) throw ctx.error("input " + std::to_string(i) + " must be a scalar");
              if (ctx.input(i).dtype() != a.dtype()) throw ctx.error("inputs must have the same type");
            }
            dispatch<TypeList<float, double, Float16, BFloat16, int16_t, int32_t, int64_t>>(
                a.dtype(), "Range", [&]<typename T>() {
                  int64_t n = 0;
                  if constexpr (std::is_integral_v<T>) {
                    int64_t start = ctx.input(0).data<T>()[0], limit = ctx.input(1).data<T>()[0],
                            delta = ctx.input(2).data<T>()[0];
                    if (delta == 0) throw ctx.error("delta is 0");
                    __int128 span = __int128{limit} - start, cnt = 0;
                    if ((span > 0) == (delta > 0) && span != 0) cnt = (span + delta + (delta > 0 ? -1 : 1)) / delta;
                    if (cnt > kMaxDataDrivenElements) throw ctx.error("the range has too many elements");
                    n = static_cast<int64_t>(cnt);
                    Tensor& out = ctx.output(0, a.dtype(), {checked_numel(ctx, {n}, "Range output")});
                    for (int64_t i = 0; i < n; ++i) out.data<T>()[i] = static_cast<T>(start + i * delta);
                  } else {
                    // 16-bit floats compute in float (stash_type=1, the default).
                    double start = double(acc_t<T>(ctx.input(0).data<T>()[0]));
                    double limit = double(acc_t<T>(ctx.input(1).data<T>()[0]));
                    double delta = double(acc_t<T>(ctx.input(2).data<T>()[0]));
                    if (delta == 0 || !std::isfinite(start) || !std::isfinite(limit) || !std::isfinite(delta))
                      throw ctx.error("start, limit and delta must be finite and delta non-zero");
                    double count = std::ceil((limit - start) / delta);
                    if (count > double(kMaxDataDrivenElements)) throw ctx.error("the range has too many elements");
                    n = count > 0 ? static_cast<int64_t>(count) : 0;
                    Tensor& out = ctx.output(0, a.dtype(), {n});
                    using A = acc_t<T>;
                    for (int64_t i = 0; i < n; ++i)
                      out.data<T>()[i] = static_cast<T>(static_cast<A>(A(start) + A(i) * A(delta)));
                  }
                });
          },
  };
}

// -------------------------------------------------------------------- EyeLike

OpSchema eye_like_schema() {
  OpSchema s;
  s.name = "EyeLike";
  s.since = 9;
  s.min_inputs = s.max_inputs = 1;
  s.max_outputs = 1;
  auto out_dtype = [](const Node& n, DType in) {
    return n.has_attr("dtype") ? static_cast<DType>(n.attr_int("dtype", 0)) : in;
  };
  s.check = [](const Node& n) -> std::string {
    if (!n.has_attr("dtype")) return "";
    int64_t d = n.attr_int("dtype", 0);
    DType t = static_cast<DType>(d);
    if (!dtype_is_supported(static_cast<int32_t>(d)) || t == DType::kString)
      return "dtype " + std::to_string(d) + " is not supported";
    return "";
  };
  s.infer = [out_dtype](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    if (in.shape && in.shape->size() != 2) throw ctx.error("input must be 2-D");
    ctx.set_output(0, out_dtype(ctx.node(), in.dtype), in.shape);
  };
  s.compute = [out_dtype](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 2) throw ctx.error("input must be 2-D, got shape " + shape_str(x.shape()));
    DType dt = out_dtype(ctx.node(), x.dtype());
    int64_t k = ctx.node().attr_int("k", 0);
    Tensor& out = ctx.output(0, dt, x.shape());
    dispatch<PodTypes>(dt, "EyeLike", [&]<typename T>() {
      for (int64_t i = 0; i < x.dim(0); ++i) {
        int64_t j = i + k;
        if (j >= 0 && j < x.dim(1)) out.data<T>()[i * x.dim(1) + j] = static_cast<T>(1.0f);
      }
    });
  };
  return s;
}

// --------------------------------------------------------------------- OneHot

OpSchema one_hot_schema(int since, int until) {
  return OpSchema{
      .name = "OneHot",
      .since = since,
      .until = until,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            const ValueType& ix = ctx.input_type(0);
            DType dt = ctx.input_dtype(2);
            if (!ix.shape) return ctx.set_output(0, dt, std::nullopt);
            int64_t r = ix.rank() + 1;
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", -1), r, ctx.node());
            DimVector out = *ix.shape;
            Dim depth = Dim::unknown();
            if (const Tensor* d = ctx.input_constant(1); d && d->numel() == 1) {
              double v = read_scalar(*d);
              if (v >= 1) depth = Dim::known(static_cast<int64_t>(v));
            }
            out.insert(out.begin() + axis, depth);
            ctx.set_output(0, dt, out);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& ix = ctx.input(0);
            const Tensor& dt = ctx.input(1);
            const Tensor& vals = ctx.input(2);
            if (dt.numel() != 1) throw ctx.error("depth must be a scalar");
            if (vals.numel() != 2) throw ctx.error("values must have two elements [off, on]");
            double dv = read_scalar(dt);
            if (!(dv >= 1) || dv > double(kMaxDataDrivenElements))
              throw ctx.error("depth " + std::to_string(dv) + " is invalid");
            int64_t depth = static_cast<int64_t>(dv);
            int64_t r = ix.rank() + 1;
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", -1), r, ctx.node());
            Shape out_shape = ix.shape();
            out_shape.insert(out_shape.begin() + axis, depth);
            checked_numel(ctx, out_shape, "OneHot output");
            // Indices of any numeric type; non-integral values truncate.
            std::vector<int64_t> idx(static_cast<size_t>(ix.numel()));
            dispatch<NumericTypes>(ix.dtype(), "OneHot indices", [&]<typename T>() {
              for (int64_t i = 0; i < ix.numel(); ++i)
                idx[static_cast<size_t>(i)] = static_cast<int64_t>(acc_t<T>(ix.data<T>()[i]));
            });
            int64_t outer = 1, inner = 1;
            for (int64_t d = 0; d < axis; ++d) outer *= ix.shape()[static_cast<size_t>(d)];
            for (int64_t d = axis; d < ix.rank(); ++d) inner *= ix.shape()[static_cast<size_t>(d)];
            dispatch_by_size(vals.dtype(), "OneHot", [&]<typename T>() {
              Tensor& out = ctx.output(0, vals.dtype(), out_shape);
              T off = vals.data<T>()[0], on = vals.data<T>()[1];
              T* po = out.data<T>();
              for (int64_t i = 0; i < out.numel(); ++i) po[i] = off;
              for (int64_t o = 0; o < outer; ++o)
                for (int64_t j = 0; j < inner; ++j) {
                  int64_t v = idx[static_cast<size_t>(o * inner + j)];
                  if (v < 0 && ctx.node().opset >= 11) v += depth;                // opset 9-10: negatives are "off"
                  if (v >= 0 && v < depth) po[(o * depth + v) * inner + j] = on;  // others stay "off"
                }
            });
          },
  };
}

// ---------------------------------------------------------------------- Trilu

OpSchema trilu_schema() {
  return OpSchema{
      .name = "Trilu",
      .since = 14,
      .min_inputs = 1,
      .max_inputs = 2,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            int r = input_rank(ctx, 0);
            if (r >= 0 && r < 2) throw ctx.error("input must have rank >= 2");
            infer_same_as_input(ctx);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            if (x.rank() < 2) throw ctx.error("input must have rank >= 2, got shape " + shape_str(x.shape()));
            int64_t k = 0;
            if (ctx.has_input(1)) {
              auto kv = read_ints(ctx.input(1), ctx, "Trilu k");
              if (kv.size() != 1) throw ctx.error("k must be a scalar");
              k = kv[0];
            }
            bool upper = ctx.node().attr_int("upper", 1) != 0;
            int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
            int64_t mats = rows * cols == 0 ? 0 : x.numel() / (rows * cols);
            Tensor& out = ctx.output(0, x.dtype(), x.shape());
            for (int64_t m = 0; m < mats; ++m)
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) {
                  bool keep = upper ? j - i >= k : j - i <= k;
                  int64_t off = (m * rows + i) * cols + j;
                  if (keep) copy_elements(x, off, out, off, 1);  // the rest stays zero
                }
          },
  };
}

// ------------------------------------------------------------ CumSum/CumProd

template <bool Product>
OpSchema cumulative_schema(const char* name, int since) {
  return OpSchema{
      .name = name,
      .since = since,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            auto av = read_ints(ctx.input(1), ctx, "axis");
            if (av.size() != 1) throw ctx.error("axis must be a scalar");
            int64_t axis = normalize_axis(av[0], x.rank(), ctx.node());
            bool exclusive = ctx.node().attr_int("exclusive", 0) != 0;
            bool reverse = ctx.node().attr_int("reverse", 0) != 0;
            int64_t n = x.rank() ? x.dim(static_cast<int>(axis)) : 1, outer = 1, inner = 1;
            for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<int>(d));
            for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(static_cast<int>(d));
            dispatch<NumericTypes>(x.dtype(), ctx.node().op_type, [&]<typename T>() {
              using A = acc_t<T>;
              Tensor& out = ctx.output(0, x.dtype(), x.shape());
              const T* px = x.data<T>();
              T* po = out.data<T>();
              for (int64_t o = 0; o < outer; ++o)
                for (int64_t j = 0; j < inner; ++j) {
                  A acc = Product ? A(1) : A(0);
                  for (int64_t t = 0; t < n; ++t) {
                    int64_t i = reverse ? n - 1 - t : t;
                    int64_t off = (o * n + i) * inner + j;
                    A v = A(px[off]);
                    if (!exclusive) acc = Product ? A(acc * v) : A(acc + v);
                    po[off] = static_cast<T>(acc);
                    if (exclusive) acc = Product ? A(acc * v) : A(acc + v);
                  }
                }
            });
          },
  };
}

}  // namespace

KILN_OP(ConstantOfShape) { return constant_of_shape_schema(); }
KILN_OP(Range) { return range_schema(); }
KILN_OP(EyeLike) { return eye_like_schema(); }
KILN_OP(OneHot_9) { return one_hot_schema(9, 10); }
KILN_OP(OneHot_11) { return one_hot_schema(11, INT_MAX); }
KILN_OP(Trilu) { return trilu_schema(); }
KILN_OP(CumSum) { return cumulative_schema<false>("CumSum", 11); }
KILN_OP(CumProd) { return cumulative_schema<true>("CumProd", 26); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(ConstantOfShape) { return {.op = "ConstantOfShape", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(CumProd) {
  return {.op = "CumProd", .family = OpFamily::kReduction, .cost = cost::not_counted("CumProd is not counted")};
}

KILN_OP_FACTS(CumSum) { return {.op = "CumSum", .family = OpFamily::kReduction, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(EyeLike) { return {.op = "EyeLike", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(OneHot) { return {.op = "OneHot", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Range) { return {.op = "Range", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Trilu) { return {.op = "Trilu", .family = OpFamily::kShape, .cost = cost::none()}; }

}  // namespace kiln
