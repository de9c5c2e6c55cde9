// kiln.ToBlocked / kiln.FromBlocked (ops/blocked.h): oneDNN reorders
// between NCHW and the channel-blocked layout, one primitive per input shape
// (batch chunks bound their number).
#include "ops/blocked.h"

#include "ir/op_facts.h"
#include "ops/blocked_util.h"

namespace kiln {

namespace {

using namespace blocked;

// ---- ToBlocked / FromBlocked: oneDNN reorders ---------------------------------

class ReorderKernel : public Kernel {
 public:
  ReorderKernel(const Node& node, bool to_blocked)
      : to_blocked_(to_blocked), chunks_(batch_chunks(node)), cache_(chunks_.size()) {}

  void run(KernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const int64_t block = to_blocked_ ? block_attr(ctx.node()) : (x.rank() == 5 ? x.dim(4) : 0);
    Shape nchw;
    if (to_blocked_) {
      if (x.dtype() != DType::kFloat32 || x.rank() != 4) throw ctx.error("expects a float32 NCHW tensor");
      nchw = x.shape();
    } else {
      check_blocked(ctx, x, block);
      const int64_t c = ctx.node().attr_int("channels", -1);
      if (c <= 0 || ceil_div(c, block) != x.dim(1)) throw ctx.error("channels does not match the blocked input");
      nchw = {x.dim(0), c, x.dim(2), x.dim(3)};
    }
    Tensor& y = ctx.output_uninitialized(
        0, DType::kFloat32, to_blocked_ ? Shape{nchw[0], ceil_div(nchw[1], block), nchw[2], nchw[3], block} : nchw);
    if (y.numel() == 0) return;
    const size_t x_sample = x.nbytes() / static_cast<size_t>(nchw[0]),
                 y_sample = y.nbytes() / static_cast<size_t>(nchw[0]);
    auto call_for = [&](int64_t n) -> std::shared_ptr<dnnl_glue::Call> {
      const Shape shape = with_batch(nchw, n);
      return *cache_.get(shape, [&] {
        dnnl_glue::use_threads(threads_of(ctx));
        memory::desc plain(shape, kF32, Tag::nchw), blocked(shape, kF32, dnnl_glue::blocked_tag(block));
        const memory::desc& from = to_blocked_ ? plain : blocked;
        const memory::desc& to = to_blocked_ ? blocked : plain;
        const dnnl::reorder::primitive_desc pd(dnnl_glue::engine(), from, dnnl_glue::engine(), to,
                                               dnnl_glue::attr_for_concurrent_runs());
        return std::make_shared<dnnl_glue::Call>(
            dnnl::reorder(pd), pd.scratchpad_desc(),
            std::vector<std::pair<int, memory::desc>>{{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
      });
    };
    std::call_once(all_chunks_, [&] {  // as BlockedConv does
      for (int64_t n : chunks_) call_for(n);
    });
    for_each_batch_chunk(chunks_, nchw[0], [&](int64_t start, int64_t n) {
      const std::shared_ptr<dnnl_glue::Call> call = call_for(n);
      call->run({static_cast<const std::byte*>(x.raw()) + static_cast<size_t>(start) * x_sample,
                 static_cast<std::byte*>(y.raw()) + static_cast<size_t>(start) * y_sample},
                threads_of(ctx), scratchpad_for(*call, ctx));
    });
  }

 private:
  bool to_blocked_;
  std::vector<int64_t> chunks_;
  mutable std::once_flag all_chunks_;
  ShapeCache<std::shared_ptr<dnnl_glue::Call>> cache_;
};

void infer_to_blocked(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  if (x.dtype != DType::kFloat32 || x.rank() != 4) throw ctx.error("expects a float32 rank-4 input");
  ctx.set_output(0, x.dtype, blocked_dims(*x.shape, block_attr(ctx.node())));
}

void infer_from_blocked(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  if (x.dtype != DType::kFloat32 || x.rank() != 5) throw ctx.error("expects a float32 rank-5 blocked input");
  const int64_t c = ctx.node().attr_int("channels", -1);
  if (c <= 0) throw ctx.error("channels must be positive");
  const DimVector& d = *x.shape;
  check_block_dim(ctx, d[4]);
  if (d[4].is_known() && d[1].is_known() && d[1].value != ceil_div(c, d[4].value))
    throw ctx.error("channels " + std::to_string(c) + " does not match the blocked input's " +
                    std::to_string(d[1].value) + " blocks of " + std::to_string(d[4].value));
  ctx.set_output(0, x.dtype, DimVector{d[0], Dim::known(c), d[2], d[3]});
}

}  // namespace

KILN_OP(ToBlocked) {
  OpSchema s = kiln_schema("ToBlocked", 1);
  s.infer = infer_to_blocked;
  s.make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<ReorderKernel>(node, true); };
  return s;
}

KILN_OP(FromBlocked) {
  OpSchema s = kiln_schema("FromBlocked", 1);
  s.infer = infer_from_blocked;
  s.make_kernel = [](const Node& node, BuildContext&) { return std::make_unique<ReorderKernel>(node, false); };
  return s;
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(KilnFromBlocked) {
  return {.domain = kKilnDomain, .op = "FromBlocked", .family = OpFamily::kLayout, .cost = cost::none()};
}

KILN_OP_FACTS(KilnToBlocked) {
  return {.domain = kKilnDomain, .op = "ToBlocked", .family = OpFamily::kLayout, .cost = cost::none()};
}

}  // namespace kiln
