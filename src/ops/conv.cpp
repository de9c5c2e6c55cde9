// Conv: N-d grouped, dilated, strided convolution with optional bias. The
// semantics are the same from opset 1 to the latest (later versions only add
// types and inference rules), so one schema covers them all. The kernel is
// im2col + blocked GEMM (conv_core in nn_util.h); float32 1-D/2-D convs take
// the fast path of kernels/cpu/conv_f32.h, with weights packed once when they
// are initializers.
#include <mutex>

#include "ir/epilogue.h"
#include "ir/op_facts.h"
#include "kernels/cpu/conv_f32.h"
#include "ops/conv_select.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

// Kernel spatial shape from W's type (or the kernel_shape attribute); -1 for
// unknown dims. Empty when W's rank is unknown and no attribute is given.
Shape conv_kernel_dims(const InferContext& ctx, size_t x_rank) {
  if (ctx.node().has_attr("kernel_shape")) return ctx.node().attr_ints("kernel_shape");
  const ValueType& w = ctx.input_type(1);
  Shape k;
  if (!w.shape) {
    k.assign(x_rank >= 2 ? x_rank - 2 : 0, -1);
    return k;
  }
  for (size_t d = 2; d < w.shape->size(); ++d) k.push_back((*w.shape)[d].is_known() ? (*w.shape)[d].value : -1);
  return k;
}

void infer_conv(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  const ValueType& w = ctx.input_type(1);
  if (x.dtype != w.dtype) throw ctx.error("X and W types differ");
  std::optional<DimVector> dims;
  if (x.shape) {
    Dim m = w.shape && !w.shape->empty() ? (*w.shape)[0] : Dim::unknown();
    dims = window_infer_dims(ctx, conv_kernel_dims(ctx, x.shape->size()), m, false);
  }
  ctx.set_output(0, x.dtype, dims);
}

void compute_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Node& node = ctx.node();
  if (x.dtype() != w.dtype()) throw ctx.error("X and W types differ");
  if (x.rank() < 3) throw ctx.error("X must have rank >= 3 (N, C, spatial...), got " + shape_str(x.shape()));
  if (w.rank() != x.rank())
    throw ctx.error("W " + shape_str(w.shape()) + " must have the rank of X " + shape_str(x.shape()));
  const int64_t group = node.attr_int("group", 1);
  const int64_t N = x.dim(0), Cin = x.dim(1), M = w.dim(0);
  if (group <= 0) throw ctx.error("group must be positive");
  if (Cin % group != 0 || w.dim(1) * group != Cin)
    throw ctx.error("X has " + std::to_string(Cin) + " channels but W " + shape_str(w.shape()) + " with group " +
                    std::to_string(group) + " expects " + std::to_string(w.dim(1) * group));
  if (M % group != 0) throw ctx.error("W's output channels " + std::to_string(M) + " are not divisible by group");
  Shape in(x.shape().begin() + 2, x.shape().end()), kernel(w.shape().begin() + 2, w.shape().end());
  if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != kernel)
    throw ctx.error("kernel_shape does not match W " + shape_str(w.shape()));
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (b && (b->rank() != 1 || b->dim(0) != M || b->dtype() != x.dtype()))
    throw ctx.error("B must be a 1-D tensor of " + std::to_string(M) + " elements of X's type");
  WindowGeometry g;
  std::string err = window_geometry(node, in, kernel, false, &g);
  if (!err.empty()) throw ctx.error(err);
  Shape out_shape = {N, M};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  dispatch<FloatTypes>(x.dtype(), "Conv", [&]<typename T>() {
    using C = calc_t<T>;
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    if (y.numel() == 0) return;
    run_in_calc_type<T>(x, w, b, y, [&](const C* px, const C* pw, const C* pb, C* py) {
      conv_core<C>(g, N, Cin, M, group, px, pw, pb, py);
    });
  });
}

// The weight when it is a constant of the graph (not an overridable input).
const Tensor* constant_weight(const Node& node) {
  const Value* w = node.inputs.size() > 1 ? node.inputs[1] : nullptr;
  if (!w || !w->initializer || w->is_graph_input) return nullptr;
  if (w->initializer->numel() > 0 && !w->initializer->raw()) return nullptr;  // not stored in an engine
  return &*w->initializer;
}

// Float32 convs with 1 or 2 spatial dims run on conv2d_f32; everything else on
// compute_conv. Weights that are initializers are packed here, once.
class ConvKernel : public Kernel {
 public:
  explicit ConvKernel(const Node& node) : epilogue_(epilogue_of(node)) {
    const Tensor* w = constant_weight(node);
    const int64_t group = node.attr_int("group", 1);
    if (!w || w->dtype() != DType::kFloat32 || w->rank() < 3 || w->rank() > 4 || group <= 0 || w->numel() == 0 ||
        w->dim(0) % group != 0)
      return;
    const int64_t k_per_group = w->numel() / w->dim(0);
    if (w->dim(1) == 1 && w->dim(0) == group) return;  // depthwise: runs directly on w
    weights_ = w->data<float>();
    // With the input's size known, a conv whose taps mostly read padding
    // runs tap by tap (conv_f32.h). With a dynamic size (an engine's profile
    // over batch or image sizes) that depends on the run's shape: the
    // weights are packed per tap too, at the first run that needs them.
    Conv2dF32Shape s;
    const ValueType& xt = node.inputs[0]->type;
    if (w->rank() == 4 && xt.is_static() && xt.rank() == 4 && shape_of(node, xt.static_shape(), w->shape(), &s) &&
        taps_first(s)) {
      packed_ = pack_conv_tap_weights_f32(weights_, s.M, s.C, s.KH, s.KW);
      return;
    }
    packed_ = pack_conv_weights_f32(weights_, w->dim(0), group, k_per_group);
    taps_at_run_ = w->rank() == 4 && !xt.is_static() && group == 1 && w->dim(2) * w->dim(3) > 1;
  }

  // The fast path fuses the epilogue into its loops; the reference path
  // applies it after.
  bool applies_epilogue() const override { return true; }

  void run(KernelContext& ctx) const override {
    Conv2dF32Shape s;
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::kFloat32 || (x.rank() != 3 && x.rank() != 4) || !fast_shape(ctx, &s)) {
      compute_conv(ctx);
      apply_epilogue(epilogue_, ctx.output_tensor(0), ctx.thread_pool());
      return;
    }
    const Tensor& w = ctx.input(1);
    const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    Tensor& y = ctx.output(0, DType::kFloat32, x.rank() == 3 ? Shape{s.N, s.M, s.OW} : Shape{s.N, s.M, s.OH, s.OW});
    if (y.numel() == 0) return;
    const PackedConvWeightsF32* packed = w.data<float>() == weights_ ? packed_.get() : nullptr;
    if (packed && taps_at_run_ && x.rank() == 4 && taps_first(s)) packed = tap_weights(s);
    const Conv2dF32Epilogue epilogue = [this](float* p, int64_t n) { apply_epilogue(epilogue_, p, n); };
    const size_t workspace = conv2d_f32_workspace_bytes(s, packed);
    conv2d_f32(s, x.data<float>(), w.data<float>(), packed, b ? b->data<float>() : nullptr, y.data<float>(),
               ctx.thread_pool(), epilogue_.empty() ? nullptr : &epilogue,
               workspace ? ctx.scratch(workspace) : nullptr);
  }

 private:
  // Fills s when the conv is valid and simple enough for conv2d_f32; on
  // anything unusual compute_conv runs and reports it.
  static bool fast_shape(KernelContext& ctx, Conv2dF32Shape* s) {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    if (w.dtype() != DType::kFloat32 || w.rank() != x.rank()) return false;
    if (ctx.has_input(2) &&
        (ctx.input(2).dtype() != DType::kFloat32 || ctx.input(2).rank() != 1 || ctx.input(2).dim(0) != w.dim(0)))
      return false;
    return shape_of(ctx.node(), x.shape(), w.shape(), s);
  }

  // The conv2d_f32 shape of `node` on input x_shape and weights w_shape
  // (rank 3 or 4 each), false when they do not make a valid conv.
  static bool shape_of(const Node& node, const Shape& x_shape, const Shape& w_shape, Conv2dF32Shape* s) {
    const int64_t group = node.attr_int("group", 1);
    if (x_shape.size() != w_shape.size() || x_shape.size() < 3 || x_shape.size() > 4) return false;
    if (group <= 0 || x_shape[1] % group != 0 || w_shape[1] * group != x_shape[1] || w_shape[0] % group != 0)
      return false;
    Shape in(x_shape.begin() + 2, x_shape.end()), kernel(w_shape.begin() + 2, w_shape.end());
    if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != kernel) return false;
    WindowGeometry g;
    if (!window_geometry(node, in, kernel, false, &g).empty()) return false;
    for (int64_t o : g.out)
      if (o < 0) return false;
    const bool two_d = x_shape.size() == 4;
    s->N = x_shape[0];
    s->C = x_shape[1];
    s->M = w_shape[0];
    s->group = group;
    s->H = two_d ? in[0] : 1;
    s->W = in.back();
    s->KH = two_d ? kernel[0] : 1;
    s->KW = kernel.back();
    s->OH = two_d ? g.out[0] : 1;
    s->OW = g.out.back();
    const size_t last = in.size() - 1;
    s->stride_h = two_d ? g.strides[0] : 1;
    s->stride_w = g.strides[last];
    s->pad_h = two_d ? g.pads_begin[0] : 0;
    s->pad_w = g.pads_begin[last];
    s->dilation_h = two_d ? g.dilations[0] : 1;
    s->dilation_w = g.dilations[last];
    return true;
  }

  // Whether ops/conv_select.h ranks the tap-by-tap path first for s.
  static bool taps_first(const Conv2dF32Shape& s) {
    return rank_conv_algorithms(conv_problem(s), WinogradMode::kOff)[0] == ConvAlgo::kTaps;
  }

  // The weights packed per tap, once.
  const PackedConvWeightsF32* tap_weights(const Conv2dF32Shape& s) const {
    std::call_once(taps_once_, [&] { taps_ = pack_conv_tap_weights_f32(weights_, s.M, s.C, s.KH, s.KW); });
    return taps_.get();
  }

  std::vector<EpilogueStep> epilogue_;
  const float* weights_ = nullptr;  // the initializer's data that packed_ holds
  std::shared_ptr<const PackedConvWeightsF32> packed_;
  bool taps_at_run_ = false;  // the input's shape is dynamic: tap by tap when a run's shape is sparse
  mutable std::once_flag taps_once_;
  mutable std::shared_ptr<const PackedConvWeightsF32> taps_;
};

}  // namespace

KILN_OP(Conv) {
  return OpSchema{
      .name = "Conv",
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = infer_conv,
      .compute = compute_conv,
      .make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<ConvKernel>(node); },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Conv) {
  return {.op = "Conv", .family = OpFamily::kConv, .cost = cost::conv(1), .accepts_epilogue = true};
}

}  // namespace kiln
