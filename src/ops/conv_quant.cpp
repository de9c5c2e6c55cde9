// ConvInteger (int32 result of zero-point adjusted uint8/int8 convolution)
// and QLinearConv (the same, requantized with scales and a zero point). Both
// run conv_core in int32; padding contributes zero after the zero-point
// adjustment, as the spec's padding with the zero point does.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/nn_util.h"
#include "ops/quant_util.h"

namespace kiln {

namespace {

struct QConv {
  WindowGeometry g;
  int64_t N = 0, Cin = 0, M = 0, group = 1;
  Shape out_shape;
};

QConv plan_qconv(const KernelContext& ctx, const Tensor& x, const Tensor& w) {
  const Node& node = ctx.node();
  QConv q;
  if (x.rank() < 3) throw ctx.error("x must have rank >= 3, got " + shape_str(x.shape()));
  if (w.rank() != x.rank())
    throw ctx.error("w " + shape_str(w.shape()) + " must have the rank of x " + shape_str(x.shape()));
  q.group = node.attr_int("group", 1);
  q.N = x.dim(0);
  q.Cin = x.dim(1);
  q.M = w.dim(0);
  if (q.group <= 0 || q.Cin % q.group != 0 || w.dim(1) * q.group != q.Cin || q.M % q.group != 0)
    throw ctx.error("x " + shape_str(x.shape()) + " and w " + shape_str(w.shape()) + " do not fit group " +
                    std::to_string(q.group));
  Shape in(x.shape().begin() + 2, x.shape().end()), kernel(w.shape().begin() + 2, w.shape().end());
  if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != kernel)
    throw ctx.error("kernel_shape does not match w " + shape_str(w.shape()));
  std::string err = window_geometry(node, in, kernel, false, &q.g);
  if (!err.empty()) throw ctx.error(err);
  q.out_shape = {q.N, q.M};
  q.out_shape.insert(q.out_shape.end(), q.g.out.begin(), q.g.out.end());
  return q;
}

// x - x_zp and w - w_zp[m] as int32.
void adjusted(const KernelContext& ctx, const Tensor& x, const Tensor* xzp, const Tensor& w, const Tensor* wzp,
              int64_t M, std::vector<int32_t>* xv, std::vector<int32_t>* wv) {
  *xv = quant_values(x, ctx, "x");
  *wv = quant_values(w, ctx, "w");
  if (xzp) {
    std::vector<int32_t> z = quant_values(*xzp, ctx, "x_zero_point");
    if (z.size() != 1) throw ctx.error("x_zero_point must be a scalar");
    for (int32_t& v : *xv) v -= z[0];
  }
  if (wzp) {
    std::vector<int32_t> z = quant_values(*wzp, ctx, "w_zero_point");
    if (z.size() != 1 && static_cast<int64_t>(z.size()) != M)
      throw ctx.error("w_zero_point must have 1 or " + std::to_string(M) + " values");
    const int64_t per = M ? w.numel() / M : 0;
    for (int64_t i = 0; i < w.numel(); ++i)
      (*wv)[static_cast<size_t>(i)] -= z[z.size() == 1 ? 0 : static_cast<size_t>(i / per)];
  }
}

void compute_conv_integer(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  QConv q = plan_qconv(ctx, x, w);
  std::vector<int32_t> xv, wv;
  adjusted(ctx, x, ctx.has_input(2) ? &ctx.input(2) : nullptr, w, ctx.has_input(3) ? &ctx.input(3) : nullptr, q.M, &xv,
           &wv);
  Tensor& y = ctx.output(0, DType::kInt32, q.out_shape);
  if (y.numel() == 0) return;
  conv_core<int32_t>(q.g, q.N, q.Cin, q.M, q.group, xv.data(), wv.data(), nullptr, y.data<int32_t>());
}

void compute_qlinear_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(3);
  QConv q = plan_qconv(ctx, x, w);
  std::vector<int32_t> xv, wv;
  adjusted(ctx, x, &ctx.input(2), w, &ctx.input(5), q.M, &xv, &wv);
  const std::vector<float> sx = float_values(ctx.input(1), ctx, "x_scale");
  const std::vector<float> sw = float_values(ctx.input(4), ctx, "w_scale");
  const std::vector<float> sy = float_values(ctx.input(6), ctx, "y_scale");
  if (sx.size() != 1 || sy.size() != 1) throw ctx.error("x_scale and y_scale must be scalars");
  if (sw.size() != 1 && static_cast<int64_t>(sw.size()) != q.M)
    throw ctx.error("w_scale must have 1 or " + std::to_string(q.M) + " values");
  std::vector<int32_t> bias;
  if (ctx.has_input(8)) {
    const Tensor& b = ctx.input(8);
    if (b.dtype() != DType::kInt32 || b.numel() != q.M)
      throw ctx.error("B must be int32 with " + std::to_string(q.M) + " values");
    bias.assign(b.data<int32_t>(), b.data<int32_t>() + q.M);
  }
  const Tensor& yzp = ctx.input(7);
  const int32_t zy = quant_values(yzp, ctx, "y_zero_point").at(0);
  std::vector<int32_t> acc(static_cast<size_t>(shape_numel(q.out_shape)));
  if (!acc.empty())
    conv_core<int32_t>(q.g, q.N, q.Cin, q.M, q.group, xv.data(), wv.data(), bias.empty() ? nullptr : bias.data(),
                       acc.data());
  Tensor& y = ctx.output(0, yzp.dtype(), q.out_shape);
  const int64_t per = q.M ? y.numel() / (q.N * q.M) : 0;
  store_quantized(y, [&](int64_t i) {
    const int64_t m = (i / per) % q.M;
    const float scale = sx[0] * sw[sw.size() == 1 ? 0 : static_cast<size_t>(m)] / sy[0];
    return static_cast<double>(std::nearbyint(static_cast<float>(acc[static_cast<size_t>(i)]) * scale)) + zy;
  });
}

void infer_qconv(InferContext& ctx, size_t wi, DType out) {
  const ValueType& x = ctx.input_type(0);
  const ValueType& w = ctx.input_type(wi);
  std::optional<DimVector> dims;
  if (x.shape && w.shape && w.shape->size() == x.shape->size() && x.shape->size() >= 3) {
    Shape k;
    for (size_t d = 2; d < w.shape->size(); ++d) k.push_back((*w.shape)[d].is_known() ? (*w.shape)[d].value : -1);
    dims = window_infer_dims(ctx, k, (*w.shape)[0], false);
  }
  ctx.set_output(0, out, dims);
}

}  // namespace

KILN_OP(ConvInteger) {
  return OpSchema{
      .name = "ConvInteger",
      .since = 10,
      .min_inputs = 2,
      .max_inputs = 4,
      .max_outputs = 1,
      .types = {DType::kUInt8, DType::kInt8},
      .infer = [](InferContext& ctx) { infer_qconv(ctx, 1, DType::kInt32); },
      .compute = compute_conv_integer,
  };
}

KILN_OP(QLinearConv) {
  return OpSchema{
      .name = "QLinearConv",
      .since = 10,
      .min_inputs = 8,
      .max_inputs = 9,
      .max_outputs = 1,
      .types = {DType::kUInt8, DType::kInt8},
      .infer = [](InferContext& ctx) { infer_qconv(ctx, 3, ctx.input_dtype(7)); },
      .compute = compute_qlinear_conv,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(ConvInteger) { return {.op = "ConvInteger", .family = OpFamily::kConv, .cost = cost::conv(1)}; }

KILN_OP_FACTS(QLinearConv) { return {.op = "QLinearConv", .family = OpFamily::kConv, .cost = cost::conv(3)}; }

}  // namespace kiln
