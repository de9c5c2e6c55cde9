// kiln.BlockedPool (ops/blocked.h): max and average pools, global or
// windowed, on the channel-blocked layout with kiln's own vectorized kernels
// (kernels/cpu/pool_f32.h).
#include "ops/blocked.h"

#include "ir/op_facts.h"
#include "kernels/cpu/pool_f32.h"
#include "ops/blocked_util.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

using namespace blocked;

// ---- BlockedPool ------------------------------------------------------------------

// The window of a BlockedPool node on an h x w input (global: the whole plane).
std::string pool_geometry(const Node& node, int64_t h, int64_t w, WindowGeometry* g) {
  if (node.attr_int("global", 0) != 0) {
    g->in = {h, w};
    g->kernel = {h, w};
    g->strides = {1, 1};
    g->dilations = {1, 1};
    g->pads_begin = g->pads_end = {0, 0};
    g->out = {1, 1};
    return "";
  }
  std::string err =
      window_geometry(node, {h, w}, node.attr_ints("kernel_shape"), node.attr_int("ceil_mode", 0) != 0, g);
  if (err.empty() && (g->out[0] < 0 || g->out[1] < 0)) return "invalid output size";
  return err;
}

void infer_blocked_pool(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  if (x.dtype != DType::kFloat32 || x.rank() != 5) throw ctx.error("expects a float32 5-D blocked input");
  const DimVector& d = *x.shape;
  check_block_dim(ctx, d[4]);
  if (d[4].is_known() && d[4].value != block_attr(ctx.node()))
    throw ctx.error("the blocked input's block " + std::to_string(d[4].value) + " differs from the block attribute");
  if (ctx.node().attr_int("global", 0) != 0) {
    ctx.set_output(0, x.dtype, DimVector{d[0], d[1], Dim::known(1), Dim::known(1), d[4]});
    return;
  }
  auto known = [](const Dim& v) { return v.is_known() ? v.value : -1; };
  WindowGeometry g;
  std::string err = window_geometry(ctx.node(), {known(d[2]), known(d[3])}, ctx.node().attr_ints("kernel_shape"),
                                    ctx.node().attr_int("ceil_mode", 0) != 0, &g);
  if (!err.empty()) throw ctx.error(err);
  auto out = [](int64_t v) { return v >= 0 ? Dim::known(v) : Dim::unknown(); };
  ctx.set_output(0, x.dtype, DimVector{d[0], d[1], out(g.out[0]), out(g.out[1]), d[4]});
}

// kiln's own pooling loop (pool_f32.h), not oneDNN's: measured on
// SqueezeNet's 3x3 stride-2 max pools (64 channels, 111x111), oneDNN 2.6's
// jit:avx2 pooling took 0.86 ms where this takes about a tenth of it.
class BlockedPoolKernel : public Kernel {
 public:
  explicit BlockedPoolKernel(const Node& node) : node_(node), block_(block_attr(node)) {
    const std::string mode = node.attr_string("mode", "");
    if (mode != "max" && mode != "avg") throw Error(node.describe() + ": mode must be max or avg");
    max_ = mode == "max";
    count_include_pad_ = node.attr_int("count_include_pad", 0) != 0;
    channels_ = node.attr_int("channels", -1);
    if (channels_ <= 0) throw Error(node.describe() + ": channels must be positive");
  }

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    check_blocked(ctx, x, block_);
    if (ceil_div(channels_, block_) != x.dim(1)) throw ctx.error("channels does not match the blocked input");
    WindowGeometry g;
    std::string err = pool_geometry(node_, x.dim(2), x.dim(3), &g);
    if (!err.empty()) throw ctx.error(err);
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, {x.dim(0), x.dim(1), g.out[0], g.out[1], block_});
    if (y.numel() == 0) return;
    Pool2dF32Shape s;
    s.planes = x.dim(0) * x.dim(1);
    s.H = x.dim(2);
    s.W = x.dim(3);
    s.OH = g.out[0];
    s.OW = g.out[1];
    s.KH = g.kernel[0];
    s.KW = g.kernel[1];
    s.stride_h = g.strides[0];
    s.stride_w = g.strides[1];
    s.dilation_h = g.dilations[0];
    s.dilation_w = g.dilations[1];
    s.pad_top = g.pads_begin[0];
    s.pad_left = g.pads_begin[1];
    s.pad_bottom = g.pads_end[0];
    s.pad_right = g.pads_end[1];
    pool2d_blocked_f32(max_, s, block_, count_include_pad_, x.data<float>(), y.data<float>(), ctx.thread_pool());
  }

 private:
  const Node& node_;
  int64_t block_;
  int64_t channels_ = 0;
  bool max_ = true;
  bool count_include_pad_ = false;
};

// kiln.BlockedPool: a pool's count over the real channels (attribute
// `channels`), not the padded block.
OpCost blocked_pool_cost(const Node& n) {
  const std::vector<int64_t> x = cost::in_dims(n, 0), y = cost::out_dims(n, 0);
  if (x.size() != 5 || y.size() != 5) throw CostUnknown{"unexpected blocked ranks"};
  const int64_t channels = n.attr_int("channels", -1);
  if (channels < 0) throw CostUnknown{"BlockedPool without channels"};
  const bool avg = n.attr_string("mode", "") == "avg";
  const int64_t planes = cost::mul(y[0], channels);
  const int64_t out = cost::mul(planes, cost::mul(y[2], y[3]));
  if (n.attr_int("global", 0) != 0)
    return cost::elementwise(cost::add(cost::mul(planes, cost::mul(x[2], x[3])), avg ? out : 0));
  const int64_t window = cost::product(n.attr_ints("kernel_shape"));
  return cost::elementwise(cost::mul(out, cost::add(window, avg ? 1 : 0)));
}

}  // namespace

KILN_OP(BlockedPool) {
  OpSchema s = kiln_schema("BlockedPool", 1);
  s.infer = infer_blocked_pool;
  s.make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<BlockedPoolKernel>(node); };
  return s;
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(KilnBlockedPool) {
  return {.domain = kKilnDomain, .op = "BlockedPool", .family = OpFamily::kPooling, .cost = blocked_pool_cost};
}

}  // namespace kiln
