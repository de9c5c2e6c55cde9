// LayerNormalization (17), RMSNormalization (23), GroupNormalization (18, 21):
// standardise blocks of the input, then scale (and shift).
//
// Statistics are computed in double (at least the precision any stash_type
// asks for) and each output is rounded once.
#include <cmath>

#include "ops/reduce_util.h"

namespace kiln {

namespace {

bool is_float_dtype_code(int64_t t) {
  return t == static_cast<int64_t>(DType::kFloat32) || t == static_cast<int64_t>(DType::kFloat64) ||
         t == static_cast<int64_t>(DType::kFloat16) || t == static_cast<int64_t>(DType::kBFloat16);
}

std::string check_stash_type(const Node& n) {
  int64_t st = n.attr_int("stash_type", 1);
  return is_float_dtype_code(st) ? std::string() : "stash_type " + std::to_string(st) + " is not a float type";
}

// ------------------------------------------------------- LayerNormalization

void layer_norm_infer(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  DType stash = static_cast<DType>(ctx.node().attr_int("stash_type", 1));
  ctx.set_output(0, x);
  std::optional<DimVector> stat_shape;
  if (x.shape) {
    int64_t axis = normalize_axis(ctx.node().attr_int("axis", -1), x.rank(), ctx.node());
    stat_shape = *x.shape;
    for (size_t d = static_cast<size_t>(axis); d < stat_shape->size(); ++d) (*stat_shape)[d] = Dim::known(1);
  }
  ctx.set_output(1, stash, stat_shape);
  ctx.set_output(2, stash, stat_shape);
}

void layer_norm_compute(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  int64_t axis = normalize_axis(node.attr_int("axis", -1), x.rank(), node);
  double eps = node.attr_float("epsilon", 1e-5f);
  DType stash = static_cast<DType>(node.attr_int("stash_type", 1));
  AxisView v = flatten_view(x.shape(), axis);
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> scale = expand_doubles(ctx, ctx.input(1), x.shape(), "Scale");
  std::vector<double> bias = ctx.has_input(2) ? expand_doubles(ctx, ctx.input(2), x.shape(), "B")
                                              : std::vector<double>(xv.size(), 0.0);
  std::vector<double> y(xv.size()), mean(static_cast<size_t>(v.outer)), inv(static_cast<size_t>(v.outer));
  for (int64_t o = 0; o < v.outer; ++o) {
    size_t base = static_cast<size_t>(o * v.n);
    double m = 0, var = 0;
    for (int64_t k = 0; k < v.n; ++k) m += xv[base + static_cast<size_t>(k)];
    m /= static_cast<double>(v.n);
    for (int64_t k = 0; k < v.n; ++k) {
      double d = xv[base + static_cast<size_t>(k)] - m;
      var += d * d;
    }
    var /= static_cast<double>(v.n);
    double is = 1.0 / std::sqrt(var + eps);
    for (int64_t k = 0; k < v.n; ++k) {
      size_t i = base + static_cast<size_t>(k);
      y[i] = (xv[i] - m) * is * scale[i] + bias[i];
    }
    mean[static_cast<size_t>(o)] = m;
    inv[static_cast<size_t>(o)] = is;
  }
  store_doubles(ctx, 0, x.dtype(), x.shape(), y);
  Shape stat_shape = x.shape();
  for (size_t d = static_cast<size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
  if (ctx.has_output(1)) store_doubles(ctx, 1, stash, stat_shape, mean);
  if (ctx.has_output(2)) store_doubles(ctx, 2, stash, stat_shape, inv);
}

// --------------------------------------------------------- RMSNormalization

void rms_norm_compute(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& s = ctx.input(1);
  const Node& node = ctx.node();
  int64_t axis = normalize_axis(node.attr_int("axis", -1), x.rank(), node);
  double eps = node.attr_float("epsilon", 1e-5f);
  AxisView v = flatten_view(x.shape(), axis);
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> scale = expand_doubles(ctx, s, x.shape(), "scale");
  std::vector<double> y(xv.size());
  for (int64_t o = 0; o < v.outer; ++o) {
    size_t base = static_cast<size_t>(o * v.n);
    double ms = 0;
    for (int64_t k = 0; k < v.n; ++k) ms += xv[base + static_cast<size_t>(k)] * xv[base + static_cast<size_t>(k)];
    ms /= static_cast<double>(v.n);
    double rms = std::sqrt(ms + eps);
    for (int64_t k = 0; k < v.n; ++k) {
      size_t i = base + static_cast<size_t>(k);
      y[i] = xv[i] / rms * scale[i];
    }
  }
  store_doubles(ctx, 0, s.dtype(), x.shape(), y);  // Y takes scale's type (V)
}

// ------------------------------------------------------- GroupNormalization

// Opset 18: scale and bias hold one value per group; 21: one per channel.
void group_norm_compute(KernelContext& ctx, bool per_channel) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  double eps = node.attr_float("epsilon", 1e-5f);
  int64_t groups = node.attr_int("num_groups", 0);
  if (x.rank() < 2) throw ctx.error("X must have rank >= 2 (N x C x ...), got " + shape_str(x.shape()));
  int64_t n = x.dim(0), c = x.dim(1);
  if (groups <= 0 || c % groups != 0)
    throw ctx.error("num_groups " + std::to_string(groups) + " must be positive and divide the channel count " +
                    std::to_string(c));
  int64_t want = per_channel ? c : groups;
  for (size_t i = 1; i <= 2; ++i)
    if (ctx.input(i).numel() != want)
      throw ctx.error(std::string(i == 1 ? "scale" : "bias") + " must have " + std::to_string(want) +
                      (per_channel ? " (channels)" : " (num_groups)") + " elements, got shape " +
                      shape_str(ctx.input(i).shape()));
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> scale = to_doubles(ctx.input(1), node.op_type);
  std::vector<double> bias = to_doubles(ctx.input(2), node.op_type);
  int64_t spatial = c == 0 ? 0 : x.numel() / std::max<int64_t>(n * c, 1);
  int64_t cpg = c / groups;  // channels per group
  int64_t group_size = cpg * spatial;
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t g = 0; g < groups; ++g) {
      size_t base = static_cast<size_t>((b * groups + g) * group_size);
      double m = 0, var = 0;
      for (int64_t k = 0; k < group_size; ++k) m += xv[base + static_cast<size_t>(k)];
      m /= static_cast<double>(group_size);
      for (int64_t k = 0; k < group_size; ++k) {
        double d = xv[base + static_cast<size_t>(k)] - m;
        var += d * d;
      }
      var /= static_cast<double>(group_size);
      double is = 1.0 / std::sqrt(var + eps);
      for (int64_t k = 0; k < group_size; ++k) {
        size_t i = base + static_cast<size_t>(k);
        size_t p = static_cast<size_t>(per_channel ? g * cpg + k / spatial : g);
        y[i] = (xv[i] - m) * is * scale[p] + bias[p];
      }
    }
  }
  store_doubles(ctx, 0, x.dtype(), x.shape(), y);
}

}  // namespace

KILN_OP(LayerNormalization) {
  OpSchema s;
  s.name = "LayerNormalization";
  s.since = 17;
  s.min_inputs = 2;
  s.max_inputs = 3;
  s.max_outputs = 3;
  s.types = float_dtypes();
  s.check = check_stash_type;
  s.infer = layer_norm_infer;
  s.compute = layer_norm_compute;
  return s;
}

KILN_OP(RMSNormalization) {
  OpSchema s;
  s.name = "RMSNormalization";
  s.since = 23;
  s.min_inputs = s.max_inputs = 2;
  s.max_outputs = 1;
  s.types = float_dtypes();
  s.check = check_stash_type;
  s.infer = [](InferContext& ctx) {
    const ValueType& x = ctx.input_type(0);
    if (x.shape) normalize_axis(ctx.node().attr_int("axis", -1), x.rank(), ctx.node());
    ctx.set_output(0, ctx.input_dtype(1), x.shape);
  };
  s.compute = rms_norm_compute;
  return s;
}

static OpSchema group_norm_schema(int since, int until, bool per_channel) {
  OpSchema s;
  s.name = "GroupNormalization";
  s.since = since;
  s.until = until;
  s.min_inputs = s.max_inputs = 3;
  s.max_outputs = 1;
  s.types = float_dtypes();
  s.check = [](const Node& n) {
    if (!n.has_attr("num_groups")) return std::string("attribute num_groups is required");
    return check_stash_type(n);
  };
  s.infer = [](InferContext& ctx) { infer_same_as_input(ctx); };
  s.compute = [per_channel](KernelContext& ctx) { group_norm_compute(ctx, per_channel); };
  return s;
}
KILN_OP(GroupNormalization_18) { return group_norm_schema(18, 20, false); }
KILN_OP(GroupNormalization_21) { return group_norm_schema(21, INT_MAX, true); }

}  // namespace kiln
