// QuantizeLinear / DequantizeLinear (per-tensor; per-axis from opset 13;
// blocked with block_size from 21) for 8/16-bit integer and int32 types, and
// DynamicQuantizeLinear. Float8/int4/int2 types are not supported by kiln's
// tensors. Rounding is to nearest even, as the spec says.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/quant_util.h"

namespace kiln {

namespace {

// Maps each element of x to its scale/zero-point index.
struct ScaleIndex {
  int64_t inner = 1, dim = 1, scale_dim = 1, block = 0;
  bool per_tensor = true;
  int64_t operator()(int64_t i) const {
    if (per_tensor) return 0;
    const int64_t outer = i / (inner * dim), d = (i / inner) % dim, in = i % inner;
    if (block == 0) return d;
    return (outer * scale_dim + d / block) * inner + in;
  }
};

ScaleIndex scale_index(const KernelContext& ctx, const Shape& x, const Shape& scale) {
  const Node& node = ctx.node();
  ScaleIndex s;
  const int64_t block = node.opset >= 21 ? node.attr_int("block_size", 0) : 0;
  if (block < 0) throw ctx.error("block_size must be non-negative");
  const int64_t numel = shape_numel(scale);
  if (block == 0 && (scale.empty() || (numel == 1 && scale.size() == 1))) return s;
  if (node.opset < 13) throw ctx.error("the scale must be a scalar before opset 13, got " + shape_str(scale));
  const int64_t rank = static_cast<int64_t>(x.size());
  const int64_t axis = normalize_axis(node.attr_int("axis", 1), rank, node);
  s.per_tensor = false;
  s.dim = x[static_cast<size_t>(axis)];
  for (int64_t d = axis + 1; d < rank; ++d) s.inner *= x[static_cast<size_t>(d)];
  if (block == 0) {
    if (scale.size() != 1 || scale[0] != s.dim)
      throw ctx.error("per-axis scale " + shape_str(scale) + " must have " + std::to_string(s.dim) +
                      " elements (axis " + std::to_string(axis) + " of " + shape_str(x) + ")");
    return s;
  }
  s.block = block;
  Shape want = x;
  want[static_cast<size_t>(axis)] = scale.size() == x.size() ? scale[static_cast<size_t>(axis)] : -1;
  s.scale_dim = want[static_cast<size_t>(axis)];
  if (scale != want || s.scale_dim * block < s.dim || (s.scale_dim - 1) * block >= std::max<int64_t>(s.dim, 1))
    throw ctx.error("blocked scale " + shape_str(scale) + " does not fit input " + shape_str(x) + " with block_size " +
                    std::to_string(block) + " on axis " + std::to_string(axis));
  return s;
}

void check_zero_point(const KernelContext& ctx, const Tensor& scale, const Tensor* zp) {
  if (zp && zp->shape() != scale.shape() && !(zp->numel() == 1 && scale.numel() == 1))
    throw ctx.error("zero point " + shape_str(zp->shape()) + " must have the scale's shape " +
                    shape_str(scale.shape()));
}

DType quantize_out_type(const Node& node, DType zp_type, bool has_zp) {
  int64_t od = node.opset >= 21 ? node.attr_int("output_dtype", 0) : 0;
  if (has_zp) return zp_type;
  return od ? static_cast<DType>(od) : DType::kUInt8;
}

void compute_quantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  check_zero_point(ctx, scale, zp);
  const DType out_type = quantize_out_type(ctx.node(), zp ? zp->dtype() : DType::kUInt8, zp != nullptr);
  if (zp && ctx.node().attr_int("output_dtype", 0) != 0 &&
      ctx.node().attr_int("output_dtype", 0) != static_cast<int>(zp->dtype()))
    throw ctx.error("output_dtype differs from the zero point's type");
  ScaleIndex si = scale_index(ctx, x.shape(), scale.shape());
  const std::vector<float> sc = float_values(scale, ctx, "y_scale");
  const std::vector<int32_t> z = zp ? quant_values(*zp, ctx, "y_zero_point") : std::vector<int32_t>(sc.size(), 0);
  std::vector<float> xv;
  if (x.dtype() == DType::kInt32) {
    for (int64_t i = 0; i < x.numel(); ++i) xv.push_back(static_cast<float>(x.data<int32_t>()[i]));
  } else {
    xv = float_values(x, ctx, "x");
  }
  Tensor& y = ctx.output(0, out_type, x.shape());
  store_quantized(y, [&](int64_t i) {
    const size_t k = static_cast<size_t>(si(i));
    return static_cast<double>(std::nearbyint(xv[static_cast<size_t>(i)] / sc[k])) + z[k];
  });
}

void compute_dequantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& scale = ctx.input(1);
  const Tensor* zp = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  check_zero_point(ctx, scale, zp);
  if (zp && zp->dtype() != x.dtype()) throw ctx.error("zero point type differs from x's");
  ScaleIndex si = scale_index(ctx, x.shape(), scale.shape());
  const std::vector<float> sc = float_values(scale, ctx, "x_scale");
  const std::vector<int32_t> z = zp ? quant_values(*zp, ctx, "x_zero_point") : std::vector<int32_t>(sc.size(), 0);
  const std::vector<int32_t> xv = quant_values(x, ctx, "x");
  int64_t od = ctx.node().opset >= 23 ? ctx.node().attr_int("output_dtype", 0) : 0;
  const DType out_type = od ? static_cast<DType>(od) : scale.dtype();
  dispatch<TypeList<float, Float16, BFloat16>>(out_type, "DequantizeLinear output", [&]<typename T>() {
    Tensor& y = ctx.output(0, out_type, x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const size_t k = static_cast<size_t>(si(i));
      // int32 differences can exceed float's exact range; subtract in int64.
      const int64_t diff = static_cast<int64_t>(xv[static_cast<size_t>(i)]) - z[k];
      y.data<T>()[i] = static_cast<T>(static_cast<float>(diff) * sc[k]);
    }
  });
}

void compute_dynamic_quantize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const std::vector<float> xv = float_values(x, ctx, "x");
  float lo = 0, hi = 0;
  for (float v : xv) {
    if (std::isnan(v)) continue;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  const float scale = (hi - lo) / 255.0f;
  const float zpf = scale == 0 ? 0.0f : std::clamp(std::nearbyint(0.0f - lo / scale), 0.0f, 255.0f);
  Tensor& y = ctx.output(0, DType::kUInt8, x.shape());
  store_quantized(y, [&](int64_t i) {
    return scale == 0 ? 0.0 : static_cast<double>(std::nearbyint(xv[static_cast<size_t>(i)] / scale)) + zpf;
  });
  ctx.output(1, DType::kFloat32, {}).data<float>()[0] = scale;
  ctx.output(2, DType::kUInt8, {}).data<uint8_t>()[0] = static_cast<uint8_t>(zpf);
}

OpSchema quantize_schema(int since, int until) {
  return OpSchema{
      .name = "QuantizeLinear",
      .since = since,
      .until = until,
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kInt32},
      .check = [](const Node& n) -> std::string {
        if (n.has_input(2)) {
          DType t = n.inputs[2]->type.dtype;
          if (t != DType::kUndefined && t != DType::kInt8 && t != DType::kUInt8 && t != DType::kInt16 &&
              t != DType::kUInt16)
            return "zero point type " + dtype_name(t) + " is unsupported";
        }
        return "";
      },
      .infer =
          [](InferContext& ctx) {
            DType t =
                quantize_out_type(ctx.node(), ctx.has_input(2) ? ctx.input_dtype(2) : DType::kUInt8, ctx.has_input(2));
            ctx.set_output(0, t, ctx.input_type(0).shape);
          },
      .compute = compute_quantize,
  };
}

OpSchema dequantize_schema(int since, int until) {
  return OpSchema{
      .name = "DequantizeLinear",
      .since = since,
      .until = until,
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = {DType::kInt8, DType::kUInt8, DType::kInt16, DType::kUInt16, DType::kInt32},
      .infer =
          [](InferContext& ctx) {
            int64_t od = ctx.node().opset >= 23 ? ctx.node().attr_int("output_dtype", 0) : 0;
            ctx.set_output(0, od ? static_cast<DType>(od) : ctx.input_dtype(1), ctx.input_type(0).shape);
          },
      .compute = compute_dequantize,
  };
}

}  // namespace

KILN_OP(QuantizeLinear_10) { return quantize_schema(10, 12); }
KILN_OP(QuantizeLinear_13) { return quantize_schema(13, INT_MAX); }
KILN_OP(DequantizeLinear_10) { return dequantize_schema(10, 12); }
KILN_OP(DequantizeLinear_13) { return dequantize_schema(13, INT_MAX); }

KILN_OP(DynamicQuantizeLinear) {
  return OpSchema{
      .name = "DynamicQuantizeLinear",
      .since = 11,
      .min_inputs = 1,
      .max_inputs = 1,
      .min_outputs = 3,
      .max_outputs = 3,
      .types = {DType::kFloat32},
      .infer =
          [](InferContext& ctx) {
            ctx.set_output(0, DType::kUInt8, ctx.input_type(0).shape);
            ctx.set_output(1, DType::kFloat32, DimVector{});
            ctx.set_output(2, DType::kUInt8, DimVector{});
          },
      .compute = compute_dynamic_quantize,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(DequantizeLinear) {
  return {.op = "DequantizeLinear", .family = OpFamily::kElementwise, .cost = cost::per_element(2)};
}

KILN_OP_FACTS(DynamicQuantizeLinear) {
  return {.op = "DynamicQuantizeLinear",
          .family = OpFamily::kElementwise,
          .cost = cost::not_counted("DynamicQuantizeLinear is not counted")};
}

KILN_OP_FACTS(QuantizeLinear) {
  return {.op = "QuantizeLinear", .family = OpFamily::kElementwise, .cost = cost::per_element(5)};
}

}  // namespace kiln
