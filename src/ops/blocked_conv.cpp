// kiln.BlockedConv (ops/blocked.h): convolutions on the channel-blocked
// layout, on oneDNN, or on kiln's Winograd F(4x4, 3x3) where
// ops/conv_select.h ranks it first (kernels/cpu/winograd_f32.h). Primitives
// depend on the input's N, H and W, so the kernel keeps the ones it built per
// input shape (batch chunks bound their number); weights are reordered into
// the layout oneDNN chose once per such layout, not per run, or come packed
// from an engine.
#include "ops/blocked.h"

#include "ir/epilogue.h"
#include "ir/op_facts.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/winograd_f32.h"
#include "ops/blocked_util.h"
#include "ops/conv_select.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

using namespace blocked;

// ---- BlockedConv ------------------------------------------------------------------

// Everything oneDNN needs to know about one conv on one input shape.
struct ConvSetup {
  int64_t n = 1, c = 1, h = 1, w = 1, m = 1, kh = 1, kw = 1, group = 1, block = 8;
  bool plain_src = false, has_bias = false;
  WindowGeometry g;
};

std::string conv_setup(const Node& conv, const Shape& w_shape, int64_t n, int64_t h, int64_t w, bool plain_src,
                       int64_t block, ConvSetup* s) {
  if (w_shape.size() != 4) return "W must be 4-D";
  s->n = n;
  s->h = h;
  s->w = w;
  s->m = w_shape[0];
  s->group = conv.attr_int("group", 1);
  if (s->group <= 0 || s->m % s->group != 0) return "invalid group";
  s->c = w_shape[1] * s->group;
  s->kh = w_shape[2];
  s->kw = w_shape[3];
  s->plain_src = plain_src;
  s->block = block;
  s->has_bias = conv.has_input(2);
  if (conv.has_attr("kernel_shape") && conv.attr_ints("kernel_shape") != Shape{s->kh, s->kw})
    return "kernel_shape does not match W";
  return window_geometry(conv, {h, w}, {s->kh, s->kw}, false, &s->g);
}

memory::desc conv_weights_desc(const ConvSetup& s, Tag tag) {
  if (s.group == 1) return memory::desc({s.m, s.c, s.kh, s.kw}, kF32, tag);
  return memory::desc({s.group, s.m / s.group, s.c / s.group, s.kh, s.kw}, kF32,
                      tag == Tag::any ? Tag::any : Tag::goihw);
}

memory::desc conv_src_desc(const ConvSetup& s) {
  return memory::desc({s.n, s.c, s.h, s.w}, kF32, s.plain_src ? Tag::nchw : dnnl_glue::blocked_tag(s.block));
}

memory::desc conv_dst_desc(const ConvSetup& s) {
  return memory::desc({s.n, s.m, s.g.out[0], s.g.out[1]}, kF32, dnnl_glue::blocked_tag(s.block));
}

dnnl::convolution_forward::primitive_desc conv_pd(const ConvSetup& s, const dnnl::primitive_attr& attr) {
  const memory::dims strides = {s.g.strides[0], s.g.strides[1]};
  const memory::dims dil = {s.g.dilations[0] - 1, s.g.dilations[1] - 1};
  const memory::dims pl = {s.g.pads_begin[0], s.g.pads_begin[1]}, pr = {s.g.pads_end[0], s.g.pads_end[1]};
  const memory::desc bias = s.has_bias ? memory::desc({s.m}, kF32, Tag::a) : memory::desc();
  dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                    conv_src_desc(s), conv_weights_desc(s, Tag::any), bias, conv_dst_desc(s), strides,
                                    dil, pl, pr);
  return dnnl::convolution_forward::primitive_desc(d, attr, dnnl_glue::engine());
}

// The node's epilogue as post-ops; with `sum` (the layout of the sum input,
// input 3), y = epilogue(conv + sum): a binary add first, reading the sum
// while the conv stores. Steps oneDNN has no post-op for (an activation that
// brought its own step, kernels/cpu/epilogue.h) are left out of the
// attributes: then steps_fused is false and the kernel applies the whole
// epilogue after the primitive.
dnnl::primitive_attr conv_attr(const Node& conv, const memory::desc* sum = nullptr, bool* steps_fused = nullptr) {
  dnnl::primitive_attr attr = dnnl_glue::attr_for_concurrent_runs();
  dnnl::post_ops po;
  if (sum) po.append_binary(dnnl::algorithm::binary_add, *sum);
  dnnl::post_ops steps;
  const bool fused = dnnl_glue::post_ops_for(epilogue_of(conv), &steps);
  if (steps_fused) *steps_fused = fused;
  for (int i = 0; fused && i < steps.len(); ++i) {
    float scale, alpha, beta;
    dnnl::algorithm alg;
    steps.get_params_eltwise(i, scale, alg, alpha, beta);
    po.append_eltwise(scale, alg, alpha, beta);
  }
  attr.set_post_ops(po);
  return attr;
}

// Whether a BlockedConv node has a sum input (input 3).
bool has_sum(const Node& conv) { return conv.has_input(3); }

// W's shape as [M, C/group, kH, kW]. With weights_io (1x1 convs made from a
// Linear layer, passes/blocked_channels_last.cpp) W is the Linear layer's
// [C, M] matrix as it was, read by oneDNN as "iohw" instead of transposed
// while optimizing; {} when W's shape fits neither.
Shape logical_weight_shape(const Node& conv, const Shape& w) {
  if (conv.attr_int("weights_io", 0) == 0) return w.size() == 4 ? w : Shape{};
  return w.size() == 2 ? Shape{w[1], w[0], 1, 1} : Shape{};
}

void infer_blocked_conv(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  const ValueType& w = ctx.input_type(1);
  const int64_t block = block_attr(ctx.node());
  if (x.dtype != DType::kFloat32 || (x.rank() != 4 && x.rank() != 5))
    throw ctx.error("expects a float32 4-D or 5-D input");
  const Shape ws = w.is_static() ? logical_weight_shape(ctx.node(), w.static_shape()) : Shape{};
  if (ws.empty()) throw ctx.error("W must have a static 4-D shape (2-D with weights_io)");
  const DimVector& d = *x.shape;
  auto known = [](const Dim& v) { return v.is_known() ? v.value : -1; };
  WindowGeometry g;
  std::string err = window_geometry(ctx.node(), {known(d[2]), known(d[3])}, {ws[2], ws[3]}, false, &g);
  if (!err.empty()) throw ctx.error(err);
  auto out = [](int64_t v) { return v >= 0 ? Dim::known(v) : Dim::unknown(); };
  const DimVector y{d[0], Dim::known(ceil_div(ws[0], block)), out(g.out[0]), out(g.out[1]), Dim::known(block)};
  if (ctx.has_input(3)) {
    const ValueType& sum = ctx.input_type(3);
    bool ok = sum.dtype == DType::kFloat32 && sum.rank() == 5;
    for (size_t i = 0; ok && i < 5; ++i)
      ok = !(*sum.shape)[i].is_known() || !y[i].is_known() || (*sum.shape)[i].value == y[i].value;
    if (!ok) throw ctx.error("the sum input " + sum.str() + " does not match the output");
  }
  ctx.set_output(0, x.dtype, y);
}

// Whether a oneDNN layout read from an engine file, which oneDNN itself does
// not check, is a plain blocked f32 one of W's dims (split by group when
// grouped) whose every access, whatever its strides say, stays inside `bytes`
// of data.
bool packed_layout_fits(const dnnl_memory_desc_t& d, const Shape& w, int64_t group, size_t bytes) {
  // The enums as the ints they are stored as: loading a value outside an
  // enum as the enum is undefined behaviour.
  auto as_int = [](const auto& field) {
    static_assert(sizeof field == sizeof(int));
    int v;
    std::memcpy(&v, &field, sizeof v);
    return v;
  };
  if (d.ndims != (group > 1 ? 5 : 4) || as_int(d.data_type) != dnnl_f32 || as_int(d.format_kind) != dnnl_blocked ||
      d.offset0 != 0 || d.extra.flags != 0)
    return false;
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  if (b.inner_nblks < 0 || b.inner_nblks > DNNL_MAX_NDIMS) return false;
  int64_t block[DNNL_MAX_NDIMS];
  std::fill(block, block + DNNL_MAX_NDIMS, int64_t{1});
  int64_t inner = 1;  // elements in one innermost block
  for (int k = 0; k < b.inner_nblks; ++k) {
    if (b.inner_blks[k] < 1 || b.inner_blks[k] > 64 || b.inner_idxs[k] < 0 || b.inner_idxs[k] >= d.ndims) return false;
    block[b.inner_idxs[k]] *= b.inner_blks[k];
    inner *= b.inner_blks[k];
    if (inner > (1 << 16)) return false;
  }
  const uint64_t limit = bytes / sizeof(float);
  uint64_t farthest = static_cast<uint64_t>(inner - 1);  // the last element any access reads
  for (int i = 0; i < d.ndims; ++i) {
    if (d.dims[i] <= 0 || d.padded_dims[i] < d.dims[i] || d.padded_dims[i] >= (int64_t{1} << 31) ||
        d.padded_offsets[i] != 0 || d.padded_dims[i] % block[i] != 0 || b.strides[i] < 0)
      return false;
    const uint64_t outer = static_cast<uint64_t>(d.padded_dims[i] / block[i]);
    if (farthest >= limit) return false;
    if (outer > 1 && static_cast<uint64_t>(b.strides[i]) > (limit - farthest) / (outer - 1)) return false;
    farthest += (outer - 1) * static_cast<uint64_t>(b.strides[i]);
  }
  if (farthest >= limit) return false;
  const int lead = d.ndims - 4;  // the group dim, when there is one
  if (lead == 1 && (d.dims[0] != group || d.dims[0] * d.dims[1] != w[0])) return false;
  if (lead == 0 && d.dims[0] != w[0]) return false;
  for (int i = 1; i < 4; ++i)
    if (d.dims[lead + i] != w[static_cast<size_t>(i)]) return false;
  return true;
}

class BlockedConvKernel : public Kernel {
 public:
  // packed: what an engine saved for this node (null: prepare from W).
  BlockedConvKernel(const Node& node, const PackedState* packed)
      : node_(node), block_(block_attr(node)), chunks_(batch_chunks(node)), prepared_(chunks_.size()) {
    bool steps_fused = true;
    attr_ = conv_attr(node, nullptr, &steps_fused);
    if (!steps_fused) unfused_steps_ = epilogue_of(node);
    const Value* w = node.inputs[1];
    if (!w->initializer) throw Error(node.describe() + ": W must be a constant");
    weights_io_ = node.attr_int("weights_io", 0) != 0;
    const Shape ws = logical_weight_shape(node, w->initializer->shape());
    if (ws.empty()) throw Error(node.describe() + ": W must be 4-D (2-D with weights_io)");
    if (w->initializer->dtype() != DType::kFloat32) throw Error(node.describe() + ": W must be float32");
    weights_ = w->initializer->reshaped(ws);  // shares the initializer's data
    if (node.has_input(2)) {
      if (!node.inputs[2]->initializer) throw Error(node.describe() + ": B must be a constant");
      bias_ = *node.inputs[2]->initializer;
      // Both kernels read M floats of it.
      if (bias_.dtype() != DType::kFloat32 || bias_.numel() != ws[0])
        throw Error(node.describe() + ": B must be float32[" + std::to_string(ws[0]) + "], got " +
                    dtype_name(bias_.dtype()) + "[" + shape_str(bias_.shape()) + "]");
      if (bias_.numel() > 0 && !bias_.raw()) throw Error(node.describe() + ": B has no data");
    }
    const ValueType& x = node.inputs[0]->type;
    winograd_mode_ = winograd_mode();
    // An engine build's timing (src/engine/tactics.cpp) may have chosen.
    const std::string algorithm = node.attr_string("algorithm", "");
    if (algorithm == "winograd" && winograd_mode_ != WinogradMode::kOff)
      winograd_mode_ = WinogradMode::kForce;
    else if (algorithm == "direct")
      winograd_mode_ = WinogradMode::kOff;
    else if (!algorithm.empty())
      throw Error(node.describe() + ": unknown algorithm '" + algorithm + "'");
    // Whether Winograd could run at all (ops/conv_select.h decides per shape).
    winograd_candidate_ = !weights_io_ && winograd_mode_ != WinogradMode::kOff && x.rank() == 5 && weights_.raw() &&
                          weights_.dtype() == DType::kFloat32 && (!bias_.defined() || bias_.dtype() == DType::kFloat32);
    if (packed && adopt(*packed)) return;
    if (!weights_.raw()) throw Error(node.describe() + ": W has no data (an engine without usable packed weights)");
    // With the input's channels and spatial size known, reorder the weights
    // (or transform them for Winograd) now and let go of the originals:
    // other shapes (another batch size: the choice depends on the spatial
    // size only) reorder from this copy, or run Winograd too.
    if (weights_.raw() && x.rank() >= 4 && (*x.shape)[2].is_known() && (*x.shape)[3].is_known()) {
      const bool plain = x.rank() == 4;
      const int64_t n = (*x.shape)[0].is_known() ? (*x.shape)[0].value : 1;
      ConvSetup s;
      if (conv_setup(node_, weights_.shape(), n, (*x.shape)[2].value, (*x.shape)[3].value, plain, block_, &s).empty()) {
        if (use_winograd(s)) {
          winograd();
          winograd_only_ = true;
          weights_ = Tensor::wrap(weights_.dtype(), weights_.shape(), nullptr);
        } else {
          reordered_weights(s, conv_pd(s, attr_).weights_desc());
          winograd_candidate_ = false;
          weights_ = Tensor::wrap(weights_.dtype(), weights_.shape(), nullptr);
        }
      }
    }
  }

  bool applies_epilogue() const override { return true; }
  bool owns_constant_input(size_t i) const override { return i == 1; }

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const bool plain = x.rank() == 4;
    if (x.dtype() != DType::kFloat32 || (!plain && (x.rank() != 5 || x.dim(4) != block_)))
      throw ctx.error("unexpected input " + shape_str(x.shape()));
    auto prepared = [&](int64_t n) -> std::shared_ptr<const Prepared> {
      return prepared_.get(with_batch(x.shape(), n), [&] {
        dnnl_glue::use_threads(threads_of(ctx));
        return prepare(with_batch(x.shape(), n), plain);
      });
    };
    // Every chunk size at the first run: the memory they hold is then all
    // there after it, not added run by run as new batch sizes arrive.
    std::call_once(all_chunks_, [&] {
      for (int64_t n : chunks_) prepared(n);
    });
    // The output's size from the geometry alone: preparing (a oneDNN
    // primitive) for the whole batch would make one per batch size after
    // all, which batch_chunks is there to bound.
    ConvSetup s;
    const std::string err = conv_setup(node_, weights_.shape(), x.dim(0), x.dim(2), x.dim(3), plain, block_, &s);
    if (!err.empty()) throw ctx.error(err);
    if (s.g.out[0] < 0 || s.g.out[1] < 0) throw ctx.error("invalid output size");
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32,
                                         {x.dim(0), ceil_div(weights_.dim(0), block_), s.g.out[0], s.g.out[1], block_});
    if (y.numel() == 0) return;
    const Tensor* sum = has_sum(node_) ? &ctx.input(3) : nullptr;
    if (sum && (sum->dtype() != DType::kFloat32 || sum->shape() != y.shape()))
      throw ctx.error("the sum input " + shape_str(sum->shape()) + " does not match the output " +
                      shape_str(y.shape()));
    const int64_t x_sample = x.numel() / x.dim(0), y_sample = y.numel() / y.dim(0);
    auto run_chunk = [&](const Prepared& p, int64_t start, int64_t n) {
      const float* xs = x.data<float>() + start * x_sample;
      float* ys = y.data<float>() + start * y_sample;
      const float* sums = sum ? sum->data<float>() + start * y_sample : nullptr;
      if (p.winograd) {
        WinogradF32Geometry g;
        g.N = n;
        g.H = x.dim(2);
        g.W = x.dim(3);
        g.pad_top = p.setup.g.pads_begin[0];
        g.pad_left = p.setup.g.pads_begin[1];
        g.OH = p.setup.g.out[0];
        g.OW = p.setup.g.out[1];
        p.winograd->run(g, xs, ys, ctx.thread_pool(), sums,
                        ctx.scratch(p.winograd->workspace_bytes(g, ctx.thread_pool())));
      } else {
        if (sums)
          p.call->run({xs, ys, sums}, threads_of(ctx), scratchpad_for(*p.call, ctx));
        else
          p.call->run({xs, ys}, threads_of(ctx), scratchpad_for(*p.call, ctx));
        if (!unfused_steps_.empty()) {  // padded lanes get finite values too, as on a blocked input
          Tensor chunk = Tensor::wrap(DType::kFloat32, {n * y_sample}, ys);
          apply_epilogue(unfused_steps_, chunk, ctx.thread_pool());
        }
      }
    };
    for_each_batch_chunk(chunks_, x.dim(0), [&](int64_t start, int64_t n) {
      const std::shared_ptr<const Prepared> p = prepared(n);
      if (!p->per_sample) return run_chunk(*p, start, n);
      const std::shared_ptr<const Prepared> one = prepared(1);
      for (int64_t i = 0; i < n; ++i) run_chunk(*one, start + i, 1);
    });
  }

  PackedState packed_state() const override {
    PackedState st;
    st.isa = cpu_isa_name(cpu_isa_selected());
    std::lock_guard<std::mutex> lock(weights_mutex_);
    if (winograd_only_ && winograd_) {
      // Winograd's U cannot be turned back into W for another kernel: the
      // engine keeps W too.
      st.kernel = "winograd";
      st.blobs.push_back({"u", Tensor::wrap(DType::kFloat32, {static_cast<int64_t>(winograd_->transformed_floats())},
                                            const_cast<float*>(winograd_->transformed()))});
    } else if (!packed_weights_.empty()) {
      // oneDNN's layout (a plain C struct) and the weights in it: any other
      // layout, for another shape or instruction set, reorders from these.
      const memory& w = *packed_weights_.front();
      const dnnl_memory_desc_t& d = w.get_desc().data;
      Tensor desc(DType::kUInt8, {static_cast<int64_t>(sizeof d)});
      std::memcpy(desc.raw(), &d, sizeof d);
      st.kernel = "onednn";
      st.blobs.push_back({"layout", desc});
      st.blobs.push_back({"weights", Tensor::wrap(DType::kUInt8, {static_cast<int64_t>(w.get_desc().get_size())},
                                                  w.get_data_handle())});
      st.replaces_constants = !winograd_candidate_;
    }
    return st;
  }

  std::string implementation() const override {
    std::lock_guard<std::mutex> lock(weights_mutex_);
    return winograd_only_ ? "winograd" : "onednn";
  }

  // W from oneDNN's copy: reordered back to oihw (goihw when grouped), or
  // iohw for weights_io, which is the graph's [C, M] matrix.
  Tensor original_constant_input(size_t i) const override {
    if (i != 1) return {};
    std::lock_guard<std::mutex> lock(weights_mutex_);
    if (packed_weights_.empty()) return {};
    const memory& packed = *packed_weights_.front();
    const memory::dims dims = packed.get_desc().dims();
    const Tag tag = dims.size() == 5 ? Tag::goihw : weights_io_ ? Tag::iohw : Tag::oihw;
    Tensor w(DType::kFloat32, node_.inputs[1]->initializer->shape());
    const memory::desc plain(dims, kF32, tag);
    if (plain.get_size() != w.nbytes()) return {};
    memory dst = wrap(plain, w.raw());
    dnnl_glue::execute(dnnl::reorder(packed, dst), {{DNNL_ARG_FROM, packed}, {DNNL_ARG_TO, dst}}, 1);
    return w;
  }

 private:
  struct Prepared {
    ConvSetup setup;
    dnnl::convolution_forward::primitive_desc pd;
    dnnl::convolution_forward prim;
    std::shared_ptr<memory> weights;            // in the layout pd wants
    std::shared_ptr<dnnl_glue::Call> call;      // prim with its arguments: src, dst per run
    const WinogradF32Conv* winograd = nullptr;  // set instead of the above when it runs
    // oneDNN has only its reference kernel for this batch size but a fast one
    // for a single image (seen: 3x3 convs dilated 12 and 24 on 28x28 at
    // batch 2, 68 s instead of ~0.1 s): run image by image.
    bool per_sample = false;
  };

  // Winograd for this shape when ops/conv_select.h ranks it first; always
  // where it applies once an engine's packed Winograd weights were adopted.
  bool use_winograd(const ConvSetup& s) const {
    if (!winograd_candidate_) return false;
    ConvProblem p;
    p.n = s.n, p.c = s.c, p.m = s.m, p.group = s.group, p.h = s.h, p.w = s.w, p.kh = s.kh, p.kw = s.kw;
    p.strides = s.g.strides, p.dilations = s.g.dilations, p.pads_begin = s.g.pads_begin, p.pads_end = s.g.pads_end;
    p.out_h = s.g.out[0], p.out_w = s.g.out[1];
    p.blocked = true, p.plain_src = s.plain_src, p.block = s.block;
    return rank_conv_algorithms(p, winograd_only_ ? WinogradMode::kForce : winograd_mode_)[0] == ConvAlgo::kWinograd;
  }

  // The weights transformed for Winograd, once.
  const WinogradF32Conv* winograd() const {
    std::lock_guard<std::mutex> lock(weights_mutex_);
    if (!winograd_) {
      winograd_ =
          std::make_unique<WinogradF32Conv>(weights_.data<float>(), bias_.defined() ? bias_.data<float>() : nullptr,
                                            weights_.dim(1), weights_.dim(0), epilogue_of(node_));
    }
    return winograd_.get();
  }

  // Adopts what an engine saved for this node; false when it cannot be used
  // here (Winograd on a CPU without AVX2: W is in the engine for that).
  bool adopt(const PackedState& st) {
    auto owner = [](const Tensor& t) { return std::make_shared<const Tensor>(t); };
    if (st.kernel == "winograd") {
      const Tensor* u = st.blob("u");
      // Only where this process runs Winograd (the engine keeps W for the rest).
      if (!u || u->dtype() != DType::kFloat32 || !winograd_candidate_ || !WinogradF32Conv::available() ||
          block_ != WinogradF32Conv::block())
        return false;
      // The node's own geometry must be one Winograd computes: an engine
      // whose node was edited (dilation 2, stride 2) after its weights were
      // transformed has no other weights to fall back on.
      Shape strides, dilations, pads;
      const int64_t group = node_.attr_int("group", 1);
      if (!window_attr(node_, "strides", 2, 1, &strides) || !window_attr(node_, "dilations", 2, 1, &dilations) ||
          !window_attr(node_, "pads", 4, 0, &pads) || node_.attr_string("auto_pad", "NOTSET") != "NOTSET" ||
          !WinogradF32Conv::supports(weights_.dim(2), weights_.dim(3), strides[0], strides[1], dilations[0],
                                     dilations[1], group, {pads[0], pads[1]}, {pads[2], pads[3]}))
        throw Error(node_.describe() +
                    ": packed Winograd weights, but the node's kernel, strides, dilations, pads "
                    "or group are not a conv Winograd computes (corrupted engine)");
      winograd_ = std::make_unique<WinogradF32Conv>(owner(*u), u->data<float>(), static_cast<size_t>(u->numel()),
                                                    bias_.defined() ? bias_.data<float>() : nullptr, weights_.dim(1),
                                                    weights_.dim(0), epilogue_of(node_));
      winograd_only_ = true;
      weights_ = Tensor::wrap(weights_.dtype(), weights_.shape(), nullptr);
      return true;
    }
    if (st.kernel != "onednn")
      throw Error(node_.describe() + ": packed weights for an unknown kernel '" + st.kernel + "'");
    const Tensor* layout = st.blob("layout");
    const Tensor* w = st.blob("weights");
    dnnl_memory_desc_t d;
    if (!layout || !w || layout->nbytes() != sizeof d || w->dtype() != DType::kUInt8)
      throw Error(node_.describe() + ": packed oneDNN weights are incomplete");
    std::memcpy(&d, layout->raw(), sizeof d);
    if (!packed_layout_fits(d, weights_.shape(), node_.attr_int("group", 1), w->nbytes()))
      throw Error(node_.describe() + ": packed oneDNN weights have an invalid layout");
    const memory::desc desc(d);
    if (desc.get_size() != w->nbytes()) throw Error(node_.describe() + ": packed oneDNN weights have the wrong size");
    packed_weights_.push_back(std::make_shared<memory>(desc, dnnl_glue::engine(), const_cast<void*>(w->raw())));
    packed_owner_ = *w;
    winograd_candidate_ = false;
    weights_ = Tensor::wrap(weights_.dtype(), weights_.shape(), nullptr);
    return true;
  }

  Prepared prepare(const Shape& x, bool plain) const {
    ConvSetup s;
    const int64_t c = plain ? x[1] : -1;
    std::string err = conv_setup(node_, weights_.shape(), x[0], x[2], x[3], plain, block_, &s);
    if (!err.empty()) throw Error(node_.describe() + ": " + err);
    if (plain && c != s.c)
      throw Error(node_.describe() + ": X has " + std::to_string(c) + " channels, W expects " + std::to_string(s.c));
    if (!plain && ceil_div(s.c, block_) != x[1]) throw Error(node_.describe() + ": X's channel blocks do not match W");
    for (int64_t o : s.g.out)
      if (o < 0) throw Error(node_.describe() + ": invalid output size");
    if (use_winograd(s)) return Prepared{s, {}, {}, nullptr, nullptr, winograd()};
    if (!weights_.raw() && packed_weights_.empty() && !winograd_only_)
      throw Error(node_.describe() + ": no weights for this input shape (an engine without usable packed weights)");
    if (winograd_only_ && !weights_.raw())
      throw Error(node_.describe() + ": only Winograd weights are held, and Winograd does not compute this input " +
                  shape_str(x));
    const memory::desc dst = conv_dst_desc(s);
    Prepared p{s, conv_pd(s, has_sum(node_) ? conv_attr(node_, &dst) : attr_), {}, nullptr, nullptr, nullptr};
    if (s.n > 1 && std::string(p.pd.impl_info_str()).rfind("ref", 0) == 0) {
      ConvSetup one;
      if (conv_setup(node_, weights_.shape(), 1, x[2], x[3], plain, block_, &one).empty() &&
          std::string(conv_pd(one, attr_).impl_info_str()).rfind("ref", 0) != 0) {
        p.per_sample = true;
        return p;
      }
    }
    p.prim = dnnl::convolution_forward(p.pd);
    p.weights = reordered_weights(s, p.pd.weights_desc());
    std::unordered_map<int, memory> fixed = {{DNNL_ARG_WEIGHTS, *p.weights}};
    if (bias_.defined()) fixed.emplace(DNNL_ARG_BIAS, wrap(p.pd.bias_desc(), bias_.raw()));
    std::vector<std::pair<int, memory::desc>> args = {{DNNL_ARG_SRC, p.pd.src_desc()}, {DNNL_ARG_DST, p.pd.dst_desc()}};
    if (has_sum(node_)) args.emplace_back(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, dst);
    p.call = std::make_shared<dnnl_glue::Call>(p.prim, p.pd.scratchpad_desc(), std::move(args), std::move(fixed));
    return p;
  }

  // The weights in `layout`, reordered once per layout (every shape of one
  // conv normally gets the same), from the originals or, once those are
  // gone, from the first reordered copy.
  std::shared_ptr<memory> reordered_weights(const ConvSetup& s, const memory::desc& layout) const {
    std::lock_guard<std::mutex> lock(weights_mutex_);
    for (const auto& w : packed_weights_)
      if (w->get_desc() == layout) return w;
    auto w = std::make_shared<memory>(layout, dnnl_glue::engine());
    memory src = weights_.raw() ? wrap(conv_weights_desc(s, weights_io_ ? Tag::iohw : Tag::oihw), weights_.raw())
                                : *packed_weights_.front();
    dnnl_glue::execute(dnnl::reorder(src, *w), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, *w}}, 1);
    packed_weights_.push_back(w);
    return w;
  }

  const Node& node_;
  int64_t block_;
  dnnl::primitive_attr attr_;
  std::vector<EpilogueStep> unfused_steps_;  // the epilogue, when oneDNN runs none of it
  Tensor weights_, bias_;                    // weights_ loses its data once reordered
  std::vector<int64_t> chunks_;              // batch_chunks()
  mutable std::once_flag all_chunks_;
  ShapeCache<Prepared> prepared_;
  mutable std::mutex weights_mutex_;
  mutable std::vector<std::shared_ptr<memory>> packed_weights_;
  Tensor packed_owner_;      // the engine's data behind packed_weights_.front(), when adopted
  bool weights_io_ = false;  // weights_ holds [C, M] data (see logical_weight_shape)
  WinogradMode winograd_mode_ = WinogradMode::kOff;
  bool winograd_candidate_ = false;  // weights_ keeps the originals then...
  bool winograd_only_ = false;       // ...unless the static shape picked Winograd
  mutable std::unique_ptr<WinogradF32Conv> winograd_;
};

}  // namespace

std::string blocked_conv_impl(const Node& conv, int64_t n, int64_t h, int64_t w, bool plain_src, int64_t block,
                              bool with_sum) {
  const Value* wv = conv.inputs.size() > 1 ? conv.inputs[1] : nullptr;
  if (!wv || !wv->initializer) return "";
  ConvSetup s;
  const Shape ws = logical_weight_shape(conv, wv->initializer->shape());
  if (h < 0) h = kConvStandInSize;
  if (w < 0) w = kConvStandInSize;
  if (ws.empty() || !conv_setup(conv, ws, n, h, w, plain_src, block, &s).empty()) return "";
  for (int64_t o : s.g.out)
    if (o <= 0) return "";
  try {
    const memory::desc dst = conv_dst_desc(s);
    return conv_pd(s, conv_attr(conv, with_sum ? &dst : nullptr)).impl_info_str();
  } catch (const std::exception&) {
    return "";
  }
}

KILN_OP(BlockedConv) {
  OpSchema s = kiln_schema("BlockedConv", 4);
  s.min_inputs = 2;
  s.infer = infer_blocked_conv;
  s.make_kernel = [](const Node& node, BuildContext& bc) {
    return std::make_unique<BlockedConvKernel>(node, bc.packed_state(node));
  };
  return s;
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(KilnBlockedConv) {
  return {.domain = kKilnDomain, .op = "BlockedConv", .family = OpFamily::kConv, .cost = cost::conv(1)};
}

}  // namespace kiln
