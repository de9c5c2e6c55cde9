// ConvTranspose: the gradient of Conv with respect to its input. W is
// [C, M/group, k...]; output_padding, output_shape (pads then derived),
// auto_pad, dilations and group are supported. Opset 1 and 11+ share
// semantics (11 only clarified pads for auto_pad), so one schema covers all.
// Kernels: float32 with a constant W runs on oneDNN's deconvolution (its
// JIT backward-data convolution in a blocked layout, the input and output
// reordered from and to the plain layout around it, W reordered once).
// Everything else (other types, a W computed at run time, a geometry oneDNN
// refuses) runs the reference: per
// column block, col = W^T * X with gemm_acc, then scatter-add (col2im) into Y.
#include <memory>

#include "ir/epilogue.h"
#include "ir/op_facts.h"
#include "kernels/cpu/dnnl_glue.h"
#include "ops/dnnl_plain.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

struct TransposeGeometry {
  Shape in, kernel, strides, dilations, pads_begin, out;
};

// Computes the output spatial shape and begin pads; in dims may be -1 (unknown).
std::string transpose_geometry(const Node& node, const Shape& in, const Shape& kernel, TransposeGeometry* g) {
  const size_t r = in.size();
  const std::string rs = std::to_string(r);
  g->in = in;
  g->kernel = kernel;
  if (kernel.size() != r) return "kernel has " + std::to_string(kernel.size()) + " spatial dims, input has " + rs;
  Shape pads, out_pad, out_shape;
  if (!window_attr(node, "strides", r, 1, &g->strides)) return "strides must have " + rs + " values";
  if (!window_attr(node, "dilations", r, 1, &g->dilations)) return "dilations must have " + rs + " values";
  if (!window_attr(node, "pads", 2 * r, 0, &pads)) return "pads must have " + std::to_string(2 * r) + " values";
  if (!window_attr(node, "output_padding", r, 0, &out_pad)) return "output_padding must have " + rs + " values";
  if (node.has_attr("output_shape")) {
    out_shape = node.attr_ints("output_shape");
    if (out_shape.size() == r + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    if (out_shape.size() != r) return "output_shape must have " + rs + " values";
  }
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    return "auto_pad '" + auto_pad + "' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER";
  g->pads_begin.assign(r, 0);
  g->out.assign(r, -1);
  for (size_t d = 0; d < r; ++d) {
    const int64_t s = g->strides[d], dil = g->dilations[d], k = kernel[d];
    if (s <= 0 || dil <= 0) return "strides and dilations must be positive";
    if (pads[d] < 0 || pads[d + r] < 0 || out_pad[d] < 0) return "pads and output_padding must be non-negative";
    if (k <= 0 && k != -1) return "kernel dims must be positive";
    if (in[d] < 0 || k < 0) {
      if (!out_shape.empty()) g->out[d] = out_shape[d];
      continue;
    }
    const int64_t full = s * (in[d] - 1) + out_pad[d] + (k - 1) * dil + 1;
    if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t out = !out_shape.empty() ? out_shape[d] : in[d] * s;
      if (out < 0) return "output_shape must be non-negative";
      // A larger output than the full result gets its extra at the end.
      const int64_t total = std::max<int64_t>(0, full - out);
      g->pads_begin[d] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      g->out[d] = out;
    } else if (auto_pad == "VALID") {
      g->out[d] = full;
    } else {
      g->pads_begin[d] = pads[d];
      g->out[d] = full - pads[d] - pads[d + r];
      if (g->out[d] < 0) return "pads are larger than the output along spatial axis " + std::to_string(d);
    }
  }
  return "";
}

void infer_conv_transpose(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  const ValueType& w = ctx.input_type(1);
  if (x.dtype != w.dtype) throw ctx.error("X and W types differ");
  std::optional<DimVector> dims;
  if (x.shape) {
    if (x.shape->size() < 3) throw ctx.error("X must have rank >= 3");
    const size_t r = x.shape->size() - 2;
    Shape in, kernel;
    for (size_t d = 0; d < r; ++d) in.push_back((*x.shape)[d + 2].is_known() ? (*x.shape)[d + 2].value : -1);
    if (ctx.node().has_attr("kernel_shape")) {
      kernel = ctx.node().attr_ints("kernel_shape");
    } else if (w.shape && w.shape->size() == r + 2) {
      for (size_t d = 0; d < r; ++d) kernel.push_back((*w.shape)[d + 2].is_known() ? (*w.shape)[d + 2].value : -1);
    } else {
      kernel.assign(r, -1);
    }
    TransposeGeometry g;
    std::string err = transpose_geometry(ctx.node(), in, kernel, &g);
    if (!err.empty()) throw ctx.error(err);
    Dim m = Dim::unknown();
    if (w.shape && w.shape->size() >= 2 && (*w.shape)[1].is_known())
      m = Dim::known((*w.shape)[1].value * ctx.node().attr_int("group", 1));
    dims = DimVector{(*x.shape)[0], m};
    for (int64_t v : g.out) dims->push_back(v >= 0 ? Dim::known(v) : Dim::unknown());
  }
  ctx.set_output(0, x.dtype, dims);
}

template <typename C>
void conv_transpose_core(const TransposeGeometry& g, int64_t N, int64_t Cin, int64_t M, int64_t group, const C* x,
                         const C* w, const C* bias, C* y) {
  const size_t r = g.in.size();
  const int64_t in_sp = shape_numel(g.in), out_sp = shape_numel(g.out), k_sp = shape_numel(g.kernel);
  const int64_t Cg = Cin / group, Mg = M / group, rows = Mg * k_sp;
  std::vector<int64_t> taps(static_cast<size_t>(k_sp) * r);
  for (int64_t kk = 0; kk < k_sp; ++kk) {
    int64_t rem = kk;
    for (size_t d = r; d-- > 0;) {
      taps[static_cast<size_t>(kk) * r + d] = (rem % g.kernel[d]) * g.dilations[d] - g.pads_begin[d];
      rem /= g.kernel[d];
    }
  }
  const int64_t block =
      std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(rows, 1), 16, std::max<int64_t>(in_sp, 16));
  std::vector<C> col(static_cast<size_t>(rows * std::min(block, in_sp)));
  std::vector<int64_t> base(r * static_cast<size_t>(std::min(block, in_sp)));
  // W^T per group: [Mg * k_sp, Cg].
  std::vector<C> wt(static_cast<size_t>(rows * Cg));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      for (int64_t c = 0; c < Cg; ++c)
        for (int64_t row = 0; row < rows; ++row) wt[static_cast<size_t>(row * Cg + c)] = w[(gi * Cg + c) * rows + row];
      C* yg = y + (n * M + gi * Mg) * out_sp;
      const C* xg = x + (n * Cin + gi * Cg) * in_sp;
      for (int64_t m = 0; m < Mg; ++m)
        std::fill(yg + m * out_sp, yg + (m + 1) * out_sp, bias ? bias[gi * Mg + m] : C(0));
      for (int64_t j0 = 0; j0 < in_sp; j0 += block) {
        const int64_t jb = std::min(block, in_sp - j0);
        std::fill(col.begin(), col.begin() + rows * jb, C(0));
        gemm_acc<C>(rows, jb, Cg, wt.data(), Cg, xg + j0, in_sp, col.data(), jb);
        for (int64_t j = 0; j < jb; ++j) {
          int64_t rem = j0 + j;
          for (size_t d = r; d-- > 0;) {
            base[d * static_cast<size_t>(jb) + static_cast<size_t>(j)] = (rem % g.in[d]) * g.strides[d];
            rem /= g.in[d];
          }
        }
        for (int64_t m = 0; m < Mg; ++m) {
          C* ym = yg + m * out_sp;
          for (int64_t kk = 0; kk < k_sp; ++kk) {
            const C* src = col.data() + (m * k_sp + kk) * jb;
            const int64_t* tap = taps.data() + kk * static_cast<int64_t>(r);
            for (int64_t j = 0; j < jb; ++j) {
              int64_t off = 0;
              bool inside = true;
              for (size_t d = 0; d < r; ++d) {
                const int64_t p = base[d * static_cast<size_t>(jb) + static_cast<size_t>(j)] + tap[d];
                if (p < 0 || p >= g.out[d]) {
                  inside = false;
                  break;
                }
                off = off * g.out[d] + p;
              }
              if (inside) ym[off] += src[j];
            }
          }
        }
      }
    }
  }
}

// The checks every kernel makes; returns the output shape.
Shape check_conv_transpose(const KernelContext& ctx, const Tensor& x, const Tensor& w, TransposeGeometry* g) {
  const Node& node = ctx.node();
  if (x.dtype() != w.dtype()) throw ctx.error("X and W types differ");
  if (x.rank() < 3) throw ctx.error("X must have rank >= 3 (N, C, spatial...), got " + shape_str(x.shape()));
  if (w.rank() != x.rank())
    throw ctx.error("W " + shape_str(w.shape()) + " must have the rank of X " + shape_str(x.shape()));
  const int64_t group = node.attr_int("group", 1);
  if (group <= 0) throw ctx.error("group must be positive");
  const int64_t N = x.dim(0), Cin = x.dim(1), M = w.dim(1) * group;
  if (w.dim(0) != Cin || Cin % group != 0)
    throw ctx.error("W " + shape_str(w.shape()) + " must have X's " + std::to_string(Cin) +
                    " channels first, divisible by group " + std::to_string(group));
  Shape in(x.shape().begin() + 2, x.shape().end()), kernel(w.shape().begin() + 2, w.shape().end());
  if (node.has_attr("kernel_shape") && node.attr_ints("kernel_shape") != kernel)
    throw ctx.error("kernel_shape does not match W " + shape_str(w.shape()));
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (b && (b->rank() != 1 || b->dim(0) != M || b->dtype() != x.dtype()))
    throw ctx.error("B must be a 1-D tensor of " + std::to_string(M) + " elements of X's type");
  std::string err = transpose_geometry(node, in, kernel, g);
  if (!err.empty()) throw ctx.error(err);
  Shape out_shape = {N, M};
  out_shape.insert(out_shape.end(), g->out.begin(), g->out.end());
  return out_shape;
}

void compute_conv_transpose(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  TransposeGeometry g;
  const Shape out_shape = check_conv_transpose(ctx, x, w, &g);
  const int64_t group = ctx.node().attr_int("group", 1);
  const int64_t N = x.dim(0), Cin = x.dim(1), M = out_shape[1];
  dispatch<FloatTypes>(x.dtype(), "ConvTranspose", [&]<typename T>() {
    using C = calc_t<T>;
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    if (y.numel() == 0) return;
    run_in_calc_type<T>(x, w, b, y, [&](const C* px, const C* pw, const C* pb, C* py) {
      conv_transpose_core<C>(g, N, Cin, M, group, px, pw, pb, py);
    });
  });
}

// ---- float32 on oneDNN

using namespace dnnl_plain;

// y[n, m, ...] += bias[m] over a plain [N, M, spatial...] tensor.
void add_channel_bias(const float* bias, Tensor& y, ThreadPool* pool) {
  const int64_t planes = y.dim(0) * y.dim(1), m = y.dim(1), sp = planes ? y.numel() / planes : 0;
  float* py = y.data<float>();
  parallel_for(y.numel() >= 65536 ? pool : nullptr, planes, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const float b = bias[p % m];
      float* row = py + p * sp;
      for (int64_t i = 0; i < sp; ++i) row[i] += b;
    }
  });
}

class DnnlConvTransposeKernel : public Kernel {
 public:
  explicit DnnlConvTransposeKernel(const Node& node)
      : group_(node.attr_int("group", 1)),
        weights_(*node.inputs[1]->initializer),
        bias_(node.has_input(2) ? *node.inputs[2]->initializer : Tensor()),
        // The epilogue runs after the primitive, not as post-ops: oneDNN 2.6's
        // deconvolution with an eltwise post-op took 141 ms instead of 29 ms on a
        // [1, 128, 128, 128] -> [1, 32, 256, 256] k4 s2 layer (1 thread, AVX-512).
        steps_(epilogue_of(node)),
        packed_(weights_.raw()) {}

  // Whether the node can run here: float32, constant W (and B), 1 to 3
  // spatial dims.
  static bool accepts(const Node& node) {
    const Value* x = node.inputs[0];
    const Value* w = node.inputs[1];
    if (x->type.dtype != DType::kFloat32 || !w->initializer || w->initializer->dtype() != DType::kFloat32 ||
        !w->initializer->raw())
      return false;
    const int64_t r = w->initializer->rank();
    if (r < 3 || r > 5 || (x->type.has_rank() && x->type.rank() != r)) return false;
    if (node.has_input(2) && (!node.inputs[2]->initializer || node.inputs[2]->initializer->dtype() != DType::kFloat32 ||
                              !node.inputs[2]->initializer->raw()))
      return false;
    return node.attr_int("group", 1) >= 1;
  }

  bool applies_epilogue() const override { return true; }
  bool owns_constant_input(size_t i) const override { return i == 1; }
  std::string implementation() const override { return "onednn"; }

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    TransposeGeometry g;
    const Shape out_shape = check_conv_transpose(ctx, x, weights_, &g);
    const Tensor* b = bias_.defined() ? &bias_ : nullptr;
    if (b && (b->rank() != 1 || b->dim(0) != out_shape[1]))
      throw ctx.error("B must be a 1-D tensor of " + std::to_string(out_shape[1]) + " elements");
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, out_shape);
    if (y.numel() == 0) return;
    const int threads = blocked::threads_of(ctx);
    const std::shared_ptr<PlainCall> call = *calls_.get(x.shape(), [&]() -> std::shared_ptr<PlainCall> {
      dnnl_glue::use_threads(threads);
      try {
        return prepare(x.shape(), out_shape, g);
      } catch (const dnnl::error&) {
        return nullptr;  // a geometry oneDNN has no implementation for
      }
    });
    if (call) {
      call->run(ctx, x.raw(), y.raw(), threads);
      if (b) add_channel_bias(b->data<float>(), y, ctx.thread_pool());
    } else {
      std::fill(y.data<float>(), y.data<float>() + y.numel(), 0.0f);
      conv_transpose_core<float>(g, x.dim(0), x.dim(1), out_shape[1], group_, x.data<float>(), weights_.data<float>(),
                                 b ? b->data<float>() : nullptr, y.data<float>());
    }
    if (!steps_.empty()) apply_epilogue(steps_, y, ctx.thread_pool());
  }

 private:
  std::shared_ptr<PlainCall> prepare(const Shape& x_shape, const Shape& y_shape, const TransposeGeometry& g) const {
    const size_t r = g.in.size();
    const int64_t C = x_shape[1], M = y_shape[1], Cg = C / group_, Mg = M / group_;
    const memory::dims k_dims(g.kernel.begin(), g.kernel.end());
    // ONNX's W is [C, M/group, k...]: oneDNN's (o, i, k...) read with i outermost.
    const int64_t k_sp = shape_numel(g.kernel);
    memory::dims w_dims, w_strides;
    const memory::dims k_strides = dense_strides(k_dims);
    if (group_ == 1) {
      w_dims = {M, C};
      w_strides = {k_sp, M * k_sp};
    } else {
      w_dims = {group_, Mg, Cg};
      w_strides = {Cg * Mg * k_sp, k_sp, Mg * k_sp};
    }
    w_dims.insert(w_dims.end(), k_dims.begin(), k_dims.end());
    w_strides.insert(w_strides.end(), k_strides.begin(), k_strides.end());
    memory::dims strides, dil, pl, pr;
    for (size_t d = 0; d < r; ++d) {
      strides.push_back(g.strides[d]);
      dil.push_back(g.dilations[d] - 1);
      pl.push_back(g.pads_begin[d]);
      const int64_t full = g.strides[d] * (g.in[d] - 1) + (g.kernel[d] - 1) * g.dilations[d] + 1;
      pr.push_back(full - g.pads_begin[d] - g.out[d]);
    }
    const memory::dims src_dims(x_shape.begin(), x_shape.end()), dst_dims(y_shape.begin(), y_shape.end());
    // No bias argument: oneDNN 2.6's deconvolution adds it in a scalar loop
    // that cost more than the deconvolution (64 -> 32 channels, k2 s2, 64x64:
    // 0.73 ms without, 2.48 ms with); run() adds it in one vector pass.
    const memory::desc bias;
    // Few output channels per group (an image head: 32 -> 3) waste most of a
    // blocked kernel's channel block; oneDNN's GEMM kernel on the plain
    // layout is then 1.4-3x faster (docs/kernels.md), and needs no reorders.
    const bool plain = 2 * Mg < dnnl_glue::channel_block();
    const memory::desc src_any = plain ? plain_desc(src_dims) : memory::desc(src_dims, kF32, Tag::any);
    const memory::desc dst_any = plain ? plain_desc(dst_dims) : memory::desc(dst_dims, kF32, Tag::any);
    dnnl::deconvolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
                                        src_any, memory::desc(w_dims, kF32, Tag::any), bias, dst_any, strides, dil, pl,
                                        pr);
    dnnl::deconvolution_forward::primitive_desc pd(d, dnnl_glue::attr_for_concurrent_runs(), dnnl_glue::engine());
    std::unordered_map<int, memory> fixed = {
        {DNNL_ARG_WEIGHTS, packed_.get(memory::desc(w_dims, kF32, w_strides), pd.weights_desc())}};
    return make_plain_call(pd, dnnl::deconvolution_forward(pd), plain_desc(src_dims), plain_desc(dst_dims),
                           std::move(fixed));
  }

  int64_t group_;
  Tensor weights_, bias_;
  std::vector<EpilogueStep> steps_;  // applied after the primitive
  PackedWeights packed_;
  blocked::ShapeCache<std::shared_ptr<PlainCall>> calls_;
};

class ReferenceConvTransposeKernel : public Kernel {
 public:
  void run(KernelContext& ctx) const override { compute_conv_transpose(ctx); }
  std::string implementation() const override { return "reference"; }
};

std::unique_ptr<Kernel> make_conv_transpose(const Node& node, BuildContext&) {
  if (DnnlConvTransposeKernel::accepts(node)) return std::make_unique<DnnlConvTransposeKernel>(node);
  return std::make_unique<ReferenceConvTransposeKernel>();
}

}  // namespace

KILN_OP(ConvTranspose) {
  return OpSchema{
      .name = "ConvTranspose",
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = infer_conv_transpose,
      .make_kernel = make_conv_transpose,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(ConvTranspose) {
  return {.op = "ConvTranspose", .family = OpFamily::kConv, .cost = cost::conv_transpose(), .accepts_epilogue = true};
}

}  // namespace kiln
