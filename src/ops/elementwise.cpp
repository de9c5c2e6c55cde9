#include "ops/elementwise.h"

namespace kiln {

void infer_binary(InferContext& ctx, bool out_bool) {
  DType t = ctx.input_dtype(0);
  std::optional<DimVector> shape;
  if (ctx.node().opset < 7 && ctx.node().attr_int("broadcast", 0)) {
    if (ctx.input_type(0).shape) shape = ctx.input_type(0).shape;
  } else {
    shape = broadcast_dims(ctx, {0, 1});
  }
  ctx.set_output(0, out_bool ? DType::kBool : t, shape);
}

Tensor legacy_broadcast_rhs(const KernelContext& ctx, const Tensor& a, const Tensor& b) {
  const Node& n = ctx.node();
  if (n.opset >= 7) return b;
  if (!n.attr_int("broadcast", 0)) {
    if (a.shape() != b.shape())
      throw ctx.error("shapes " + shape_str(a.shape()) + " and " + shape_str(b.shape()) + " differ and broadcast=0");
    return b;
  }
  int64_t ra = a.rank(), rb = b.rank();
  int64_t axis = n.has_attr("axis") ? n.attr_int("axis", 0) : ra - rb;
  if (axis < 0) axis += ra;
  if (axis < 0 || axis + rb > ra)
    throw ctx.error("legacy broadcast of " + shape_str(b.shape()) + " onto " + shape_str(a.shape()) + " at axis " +
                    std::to_string(axis) + " is out of range");
  Shape s = b.shape();
  for (int64_t i = axis + rb; i < ra; ++i) s.push_back(1);
  return b.reshaped(s);
}

}  // namespace kiln
