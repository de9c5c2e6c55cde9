// DeformConv (opset 19; 22 adds bfloat16, accepted at every version): a
// grouped N-d convolution whose kernel taps are moved by learned offsets.
// For output position o and kernel tap k of offset group g, the tap samples X
// at o * stride - pad_begin + k * dilation + offset[n, g, k, :, o] by
// multilinear interpolation (points outside the input read as zero), scaled by
// mask[n, g, k, o] (default 1). Layouts:
//   X [N, C, D1..Dn], W [oC, C/group, k1..kn], B [oC],
//   offset [N, offset_group * k1*..*kn * n, o1..on] (per tap: one coordinate
//   per spatial axis, axis order), mask [N, offset_group * k1*..*kn, o1..on].
// The kernel samples each (input channel, tap) once per output position into
// a column, then takes the dot products with W: a direct loop nest.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

struct DeformGeometry {
  WindowGeometry win;
  int64_t N = 0, C = 0, M = 0, group = 1, offset_group = 1;
  int64_t taps = 1;      // k1 * .. * kn
  int64_t out_size = 1;  // o1 * .. * on
};

// Validates shapes and attributes; "" or the reason.
std::string deform_geometry(const Node& node, const Shape& x, const Shape& w, const Shape& offset, const Shape* bias,
                            const Shape* mask, DeformGeometry* g) {
  if (x.size() < 3) return "X must have rank >= 3 (N, C, spatial...), got " + shape_str(x);
  const size_t r = x.size() - 2;
  if (w.size() != x.size()) return "W " + shape_str(w) + " must have the rank of X " + shape_str(x);
  g->N = x[0];
  g->C = x[1];
  g->M = w[0];
  g->group = node.attr_int("group", 1);
  g->offset_group = node.attr_int("offset_group", 1);
  if (g->group <= 0) return "group must be positive";
  if (g->offset_group <= 0) return "offset_group must be positive";
  if (g->C % g->group != 0 || g->M % g->group != 0)
    return "channels (" + std::to_string(g->C) + " in, " + std::to_string(g->M) + " out) are not divisible by group " +
           std::to_string(g->group);
  if (w[1] * g->group != g->C)
    return "W has " + std::to_string(w[1]) + " input channels per group, X has " + std::to_string(g->C) +
           " channels in " + std::to_string(g->group) + " groups";
  if (g->C % g->offset_group != 0)
    return "channels (" + std::to_string(g->C) + ") are not divisible by offset_group " +
           std::to_string(g->offset_group);
  Shape kernel(w.begin() + 2, w.end());
  if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != kernel)
    return "kernel_shape " + shape_str(node.attr_ints("kernel_shape")) + " does not match W " + shape_str(w);
  Shape in(x.begin() + 2, x.end());
  std::string err = window_geometry(node, in, kernel, false, &g->win);
  if (!err.empty()) return err;
  g->taps = shape_numel(kernel);
  g->out_size = shape_numel(g->win.out);
  Shape want_offset = {g->N, g->offset_group * g->taps * static_cast<int64_t>(r)};
  want_offset.insert(want_offset.end(), g->win.out.begin(), g->win.out.end());
  if (offset != want_offset) return "offset has shape " + shape_str(offset) + ", expected " + shape_str(want_offset);
  if (bias && *bias != Shape{g->M}) return "B has shape " + shape_str(*bias) + ", expected " + shape_str(Shape{g->M});
  if (mask) {
    Shape want_mask = want_offset;
    want_mask[1] = g->offset_group * g->taps;
    if (*mask != want_mask) return "mask has shape " + shape_str(*mask) + ", expected " + shape_str(want_mask);
  }
  return "";
}

// Multilinear interpolation of plane (spatial dims `in`) at `pos`; corners
// outside the plane count as zero.
template <typename A, typename T>
A sample(const T* plane, const Shape& in, const std::vector<int64_t>& in_strides, const A* pos, size_t r,
         std::vector<int64_t>& lo, std::vector<A>& frac) {
  for (size_t d = 0; d < r; ++d) {
    const A f = std::floor(pos[d]);
    // Far outside: no corner can be inside (also keeps the cast in range).
    if (!(f > A(-2)) || !(f < static_cast<A>(in[d]))) return A(0);
    lo[d] = static_cast<int64_t>(f);
    frac[d] = pos[d] - f;
  }
  A acc = 0;
  for (uint32_t corner = 0; corner < (1u << r); ++corner) {
    A weight = 1;
    int64_t off = 0;
    bool inside = true;
    for (size_t d = 0; d < r && inside; ++d) {
      const bool hi = (corner >> d) & 1u;
      const int64_t i = lo[d] + (hi ? 1 : 0);
      if (i < 0 || i >= in[d]) inside = false;
      weight *= hi ? frac[d] : A(1) - frac[d];
      off += i * in_strides[d];
    }
    if (inside && weight != A(0)) acc += weight * static_cast<A>(plane[off]);
  }
  return acc;
}

template <typename T>
void deform_conv(const DeformGeometry& g, const T* x, const T* w, const T* offset, const T* bias, const T* mask, T* y) {
  using A = acc_t<T>;
  const WindowGeometry& win = g.win;
  const size_t r = win.rank();
  const int64_t in_size = shape_numel(win.in);
  const std::vector<int64_t> in_strides = contiguous_strides(win.in);
  const int64_t cg = g.C / g.group, mg = g.M / g.group, c_per_og = g.C / g.offset_group;
  const int64_t rr = static_cast<int64_t>(r);
  std::vector<A> col(static_cast<size_t>(g.C * g.taps));
  std::vector<int64_t> opos(r), kpos(r), lo(r);
  std::vector<A> pos(r), frac(r);
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t o = 0; o < g.out_size; ++o) {
      // Output multi-index.
      for (size_t d = r, rem = static_cast<size_t>(o); d-- > 0;) {
        opos[d] = static_cast<int64_t>(rem % static_cast<size_t>(win.out[d]));
        rem /= static_cast<size_t>(win.out[d]);
      }
      // Sampled columns: col[c * taps + k].
      for (int64_t og = 0; og < g.offset_group; ++og) {
        for (int64_t k = 0; k < g.taps; ++k) {
          for (size_t d = r, rem = static_cast<size_t>(k); d-- > 0;) {
            kpos[d] = static_cast<int64_t>(rem % static_cast<size_t>(win.kernel[d]));
            rem /= static_cast<size_t>(win.kernel[d]);
          }
          for (size_t d = 0; d < r; ++d) {
            const int64_t ch = ((og * g.taps + k) * rr + static_cast<int64_t>(d));
            const A off = static_cast<A>(offset[(n * g.offset_group * g.taps * rr + ch) * g.out_size + o]);
            pos[d] = static_cast<A>(opos[d] * win.strides[d] - win.pads_begin[d] + kpos[d] * win.dilations[d]) + off;
          }
          const A m = mask ? static_cast<A>(mask[((n * g.offset_group + og) * g.taps + k) * g.out_size + o]) : A(1);
          for (int64_t c = og * c_per_og; c < (og + 1) * c_per_og; ++c) {
            const T* plane = x + (n * g.C + c) * in_size;
            col[static_cast<size_t>(c * g.taps + k)] =
                m == A(0) ? A(0) : m * sample<A>(plane, win.in, in_strides, pos.data(), r, lo, frac);
          }
        }
      }
      for (int64_t grp = 0; grp < g.group; ++grp) {
        const A* cols = col.data() + grp * cg * g.taps;
        for (int64_t mo = grp * mg; mo < (grp + 1) * mg; ++mo) {
          const T* wr = w + mo * cg * g.taps;
          A acc = bias ? static_cast<A>(bias[mo]) : A(0);
          for (int64_t i = 0; i < cg * g.taps; ++i) acc += static_cast<A>(wr[i]) * cols[i];
          y[(n * g.M + mo) * g.out_size + o] = static_cast<T>(acc);
        }
      }
    }
  }
}

Shape known_or_minus1(const ValueType& t) {
  Shape s;
  for (const Dim& d : *t.shape) s.push_back(d.is_known() ? d.value : -1);
  return s;
}

void infer_deform_conv(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  const ValueType& w = ctx.input_type(1);
  for (size_t i = 1; i < ctx.num_inputs(); ++i)
    if (ctx.has_input(i) && ctx.input_dtype(i) != DType::kUndefined && x.dtype != DType::kUndefined &&
        ctx.input_dtype(i) != x.dtype)
      throw ctx.error("input " + std::to_string(i) + " is " + dtype_name(ctx.input_dtype(i)) + ", X is " +
                      dtype_name(x.dtype));
  std::optional<DimVector> out;
  if (x.shape && w.shape) {
    if (x.shape->size() < 3 || w.shape->size() != x.shape->size())
      throw ctx.error("X and W must have the same rank >= 3");
    Shape kernel = known_or_minus1(w);
    kernel.erase(kernel.begin(), kernel.begin() + 2);
    if (std::find(kernel.begin(), kernel.end(), -1) == kernel.end()) {
      out = window_infer_dims(ctx, kernel, (*w.shape)[0], false);
    } else {
      out = DimVector(x.shape->size(), Dim::unknown());
      (*out)[0] = (*x.shape)[0];
      (*out)[1] = (*w.shape)[0];
    }
  }
  ctx.set_output(0, x.dtype, out);
}

void compute_deform_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor& offset = ctx.input(2);
  const Tensor* bias = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  const Tensor* mask = ctx.has_input(4) ? &ctx.input(4) : nullptr;
  for (const Tensor* t : {&w, &offset, bias, mask})
    if (t && t->dtype() != x.dtype())
      throw ctx.error("inputs must all be " + dtype_name(x.dtype()) + ", got " + dtype_name(t->dtype()));
  DeformGeometry g;
  std::string err = deform_geometry(ctx.node(), x.shape(), w.shape(), offset.shape(), bias ? &bias->shape() : nullptr,
                                    mask ? &mask->shape() : nullptr, &g);
  if (!err.empty()) throw ctx.error(err);
  if (g.win.rank() > 16) throw ctx.error("more than 16 spatial dims are not supported");
  Shape out_shape = {g.N, g.M};
  out_shape.insert(out_shape.end(), g.win.out.begin(), g.win.out.end());
  Tensor& y = ctx.output(0, x.dtype(), out_shape);
  if (y.numel() == 0) return;
  dispatch<FloatTypes>(x.dtype(), "DeformConv", [&]<typename T>() {
    deform_conv<T>(g, x.data<T>(), w.data<T>(), offset.data<T>(), bias ? bias->data<T>() : nullptr,
                   mask ? mask->data<T>() : nullptr, y.data<T>());
  });
}

}  // namespace

KILN_OP(DeformConv) {
  return OpSchema{
      .name = "DeformConv",
      .since = 19,
      .min_inputs = 3,
      .max_inputs = 5,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check = [](const Node& n) -> std::string {
        if (n.attr_int("group", 1) <= 0) return "group must be positive";
        if (n.attr_int("offset_group", 1) <= 0) return "offset_group must be positive";
        return "";
      },
      .infer = infer_deform_conv,
      .compute = compute_deform_conv,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(DeformConv) { return {.op = "DeformConv", .family = OpFamily::kConv, .cost = cost::conv(1)}; }

}  // namespace kiln
