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
#include "kernels/cpu/winograd_f32.h"
#include "ops/conv_select.h"
#include "ops/dnnl_plain.h"
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

// Float32 convs with constant weights that run on oneDNN between plain
// tensors: 3-D convs (video models: R(2+1)D, MC3, S3D; kiln's blocked layout
// and conv2d_f32 are 2-D), and 2-D grouped convs whose groups are not whole
// channel blocks (RegNet's 24-wide groups at AVX-512's 16-channel block),
// which oneDNN's brgemm kernels take at any group width in its own layout:
// 2-3x kiln's per-group GEMMs (docs/kernels.md). A 2-D conv for which oneDNN
// has only its GEMM or reference kernels, other ranks and types take
// ConvKernel.
class DnnlPlainConvKernel : public Kernel {
 public:
  explicit DnnlPlainConvKernel(const Node& node)
      : node_(node),
        group_(node.attr_int("group", 1)),
        weights_(*node.inputs[1]->initializer),
        bias_(node.has_input(2) ? *node.inputs[2]->initializer : Tensor()),
        packed_(weights_.raw()),
        fallback_(node) {
    dnnl::post_ops po;
    attr_ = dnnl_glue::attr_for_concurrent_runs();
    if (dnnl_glue::post_ops_for(epilogue_of(node), &po))
      attr_.set_post_ops(po);
    else
      steps_ = epilogue_of(node);
  }

  static bool accepts(const Node& node) {
    const Value* x = node.inputs[0];
    const Value* w = node.inputs[1];
    if (x->type.dtype != DType::kFloat32 || !w->initializer || w->initializer->dtype() != DType::kFloat32 ||
        !w->initializer->raw())
      return false;
    const int64_t rank = w->initializer->rank();
    if ((rank != 4 && rank != 5) || (x->type.has_rank() && x->type.rank() != rank)) return false;
    const int64_t group = node.attr_int("group", 1);
    if (group < 1 || w->initializer->dim(0) % group != 0) return false;
    if (rank == 4 && !plain_grouped_conv_on_onednn(group, w->initializer->dim(1) * group, w->initializer->dim(0)))
      return false;
    return !node.has_input(2) ||
           (node.inputs[2]->initializer && node.inputs[2]->initializer->dtype() == DType::kFloat32 &&
            node.inputs[2]->initializer->raw());
  }

  bool applies_epilogue() const override { return true; }
  std::string implementation() const override { return "onednn"; }

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t M = weights_.dim(0);
    WindowGeometry g;
    const bool valid = x.rank() == weights_.rank() && x.dim(1) == weights_.dim(1) * group_ &&
                       (!bias_.defined() || bias_.numel() == M) &&
                       window_geometry(node_, Shape(x.shape().begin() + 2, x.shape().end()),
                                       Shape(weights_.shape().begin() + 2, weights_.shape().end()), false, &g)
                           .empty();
    std::shared_ptr<const Plan> plan;
    if (valid) {
      const int threads = blocked::threads_of(ctx);
      plan = calls_.get(x.shape(), [&]() -> Plan {
        dnnl_glue::use_threads(threads);
        try {
          if (auto frames = prepare_frames(x.shape(), M, g)) return Plan{nullptr, std::move(frames)};
          return Plan{prepare(x.shape(), M, g), nullptr};
        } catch (const dnnl::error&) {
          return Plan{};
        }
      });
    }
    if (!plan || (!plan->call && !plan->frames) ||
        std::any_of(g.out.begin(), g.out.end(), [](int64_t o) { return o <= 0; })) {
      fallback_.run(ctx);  // validates and reports, or computes what oneDNN does not
      return;
    }
    Shape y_shape = {x.dim(0), M};
    y_shape.insert(y_shape.end(), g.out.begin(), g.out.end());
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, y_shape);
    if (y.numel() == 0) return;
    if (plan->frames) {
      plan->frames->run(ctx, x.data<float>(), y.data<float>(), x.dim(0));
      return;
    }
    plan->call->run(ctx, x.raw(), y.raw(), blocked::threads_of(ctx));
    if (!steps_.empty()) apply_epilogue(steps_, y, ctx.thread_pool());
  }

 private:
  // A 3-D conv whose kernel is one frame deep (1 x k x k, stride 1 and no
  // padding in time: the spatial half of R(2+1)D's and S3D's separable
  // convs) is a 2-D conv of every frame: it runs as one, on Winograd where
  // the 2-D rule picks it (3x3, ops/conv_select.h), its N x D frames as the
  // images of the blocked layout. Each batch item is reordered once in and
  // once out (oneDNN reorders, [C, D, H, W] <-> [D][C/b][H][W][b]), as
  // oneDNN's own 3-D conv reorders between the plain and its blocked layout.
  struct FramesCall {
    std::unique_ptr<dnnl_glue::Call> in, out;  // one batch item
    std::shared_ptr<const WinogradF32Conv> conv;
    WinogradF32Geometry g;                  // N = the frames of one batch item
    int64_t in_floats = 0, out_floats = 0;  // blocked, one batch item
    int64_t x_item = 0, y_item = 0;         // plain floats per batch item

    void run(KernelContext& ctx, const float* x, float* y, int64_t batch) const {
      ThreadPool* pool = ctx.thread_pool();
      const int threads = blocked::threads_of(ctx);
      const size_t xb = size_t(in_floats) * 4, yb = size_t(out_floats) * 4, wb = conv->workspace_bytes(g, pool);
      auto* scratch = static_cast<std::byte*>(ctx.scratch(xb + yb + wb + 128));
      auto* bx = reinterpret_cast<float*>(scratch);
      auto* by = reinterpret_cast<float*>(scratch + (xb + 63) / 64 * 64);
      void* ws = scratch + (xb + 63) / 64 * 64 + (yb + 63) / 64 * 64;
      for (int64_t n = 0; n < batch; ++n) {
        in->run({x + n * x_item, bx}, threads, nullptr);
        conv->run(g, bx, by, pool, nullptr, ws);
        out->run({by, y + n * y_item}, threads, nullptr);
      }
    }
  };
  struct Plan {
    std::shared_ptr<dnnl_plain::PlainCall> call;
    std::shared_ptr<const FramesCall> frames;
  };

  std::shared_ptr<const FramesCall> prepare_frames(const Shape& x_shape, int64_t M, const WindowGeometry& g) const {
    if (x_shape.size() != 5 || group_ != 1 || weights_.dim(2) != 1 || g.strides[0] != 1 || g.pads_begin[0] != 0 ||
        g.pads_end[0] != 0 || !WinogradF32Conv::available())
      return nullptr;
    ConvProblem p;
    const int64_t D = x_shape[2], C = x_shape[1];
    p.n = D, p.c = C, p.m = M, p.group = 1, p.h = x_shape[3], p.w = x_shape[4];
    p.kh = weights_.dim(3), p.kw = weights_.dim(4);
    p.strides = {g.strides[1], g.strides[2]}, p.dilations = {g.dilations[1], g.dilations[2]};
    p.pads_begin = {g.pads_begin[1], g.pads_begin[2]}, p.pads_end = {g.pads_end[1], g.pads_end[2]};
    p.out_h = g.out[1], p.out_w = g.out[2];
    p.blocked = true, p.block = WinogradF32Conv::block();
    if (rank_conv_algorithms(p, winograd_mode())[0] != ConvAlgo::kWinograd) return nullptr;
    auto f = std::make_shared<FramesCall>();
    {
      std::lock_guard<std::mutex> lock(frames_mutex_);
      if (!winograd_)  // [M, C, 1, 3, 3] is [M, C, 3, 3]
        winograd_ = std::make_shared<const WinogradF32Conv>(
            weights_.data<float>(), bias_.defined() ? bias_.data<float>() : nullptr, C, M, epilogue_of(node_));
      f->conv = winograd_;
    }
    f->g.N = D, f->g.H = p.h, f->g.W = p.w, f->g.pad_top = p.pads_begin[0], f->g.pad_left = p.pads_begin[1];
    f->g.OH = p.out_h, f->g.OW = p.out_w;
    const int64_t B = p.block, OHW = p.out_h * p.out_w, HW = p.h * p.w;
    f->in_floats = D * ((C + B - 1) / B) * B * HW;
    f->out_floats = D * ((M + B - 1) / B) * B * OHW;
    f->x_item = C * D * HW;
    f->y_item = M * D * OHW;
    using dnnl::memory;
    const auto frames = [&](int64_t ch, int64_t h, int64_t w) {  // [D, ch, h, w] of a plain [ch, D, h, w]
      return memory::desc({D, ch, h, w}, dnnl_plain::kF32, memory::dims{h * w, D * h * w, w, 1});
    };
    const auto tag = dnnl_glue::blocked_tag(B);
    f->in = dnnl_plain::make_reorder(frames(C, p.h, p.w), memory::desc({D, C, p.h, p.w}, dnnl_plain::kF32, tag));
    f->out = dnnl_plain::make_reorder(memory::desc({D, M, p.out_h, p.out_w}, dnnl_plain::kF32, tag),
                                      frames(M, p.out_h, p.out_w));
    return f;
  }

  std::shared_ptr<dnnl_plain::PlainCall> prepare(const Shape& x_shape, int64_t M, const WindowGeometry& g) const {
    using namespace dnnl_plain;
    const memory::dims src_dims(x_shape.begin(), x_shape.end());
    memory::dims dst_dims = {x_shape[0], M};
    dst_dims.insert(dst_dims.end(), g.out.begin(), g.out.end());
    memory::dims w_dims(weights_.shape().begin(), weights_.shape().end());
    if (group_ > 1) {  // ONNX's [M, C/g, k...] is oneDNN's [g, M/g, C/g, k...], dense
      w_dims[0] = M / group_;
      w_dims.insert(w_dims.begin(), group_);
    }
    memory::dims strides, dil, pl, pr;
    for (size_t d = 0; d < g.out.size(); ++d) {
      strides.push_back(g.strides[d]);
      dil.push_back(g.dilations[d] - 1);
      pl.push_back(g.pads_begin[d]);
      pr.push_back(g.pads_end[d]);
    }
    const memory::desc bias = bias_.defined() ? memory::desc({M}, kF32, Tag::a) : memory::desc();
    dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                      memory::desc(src_dims, kF32, Tag::any), memory::desc(w_dims, kF32, Tag::any),
                                      bias, memory::desc(dst_dims, kF32, Tag::any), strides, dil, pl, pr);
    dnnl::convolution_forward::primitive_desc pd(d, attr_, dnnl_glue::engine());
    // A 2-D conv on oneDNN's GEMM or reference kernel is better off on kiln's.
    const std::string impl = pd.impl_info_str();
    if (x_shape.size() == 4 && (impl.find("ref") != std::string::npos || impl.find("gemm") != std::string::npos))
      return nullptr;
    std::unordered_map<int, memory> fixed = {{DNNL_ARG_WEIGHTS, packed_.get(plain_desc(w_dims), pd.weights_desc())}};
    if (bias_.defined()) fixed.emplace(DNNL_ARG_BIAS, blocked::wrap(bias, bias_.raw()));
    return make_plain_call(pd, dnnl::convolution_forward(pd), plain_desc(src_dims), plain_desc(dst_dims),
                           std::move(fixed));
  }

  const Node& node_;
  int64_t group_;
  Tensor weights_, bias_;
  dnnl::primitive_attr attr_;
  std::vector<EpilogueStep> steps_;  // when oneDNN has no post-op for them
  dnnl_plain::PackedWeights packed_;
  blocked::ShapeCache<Plan> calls_;
  mutable std::mutex frames_mutex_;
  mutable std::shared_ptr<const WinogradF32Conv> winograd_;  // the frames' 2-D conv, made once
  ConvKernel fallback_;
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
      .make_kernel = [](const Node& node, BuildContext&) -> std::unique_ptr<Kernel> {
        if (DnnlPlainConvKernel::accepts(node)) return std::make_unique<DnnlPlainConvKernel>(node);
        return std::make_unique<ConvKernel>(node);
      },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Conv) {
  return {.op = "Conv", .family = OpFamily::kConv, .cost = cost::conv(1), .accepts_epilogue = true};
}

}  // namespace kiln
