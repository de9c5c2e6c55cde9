// CausalConvWithState (opset 27): depthwise causal 1-D convolution over
// concat(past_state or zeros, input) along the length axis, with an optional
// bias and fused SiLU; present_state is the last k-1 positions of that
// concatenation.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

namespace {

bool use_silu(const Node& n) {
  std::string a = n.attr_string("activation", "none");
  return a == "silu" || a == "swish";
}

void causal_conv(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.input(1);
  if (x.rank() != 3) throw ctx.error("input must be [batch, channels, length], got [" + shape_str(x.shape()) + "]");
  int64_t batch = x.dim(0), ch = x.dim(1), len = x.dim(2);
  if (w.rank() != 3 || w.dim(0) != ch || w.dim(1) != 1 || w.dim(2) < 1)
    throw ctx.error("weight must be [" + std::to_string(ch) + ", 1, k], got [" + shape_str(w.shape()) + "]");
  int64_t k = w.dim(2), pad = k - 1;
  const Tensor* bias = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const Tensor* past = ctx.has_input(3) ? &ctx.input(3) : nullptr;
  if (bias && bias->shape() != Shape{ch})
    throw ctx.error("bias must be [" + std::to_string(ch) + "], got [" + shape_str(bias->shape()) + "]");
  if (past && past->shape() != Shape{batch, ch, pad})
    throw ctx.error("past_state must be [" + shape_str(Shape{batch, ch, pad}) + "], got [" + shape_str(past->shape()) +
                    "]");
  for (const Tensor* t : {&w, bias, past})
    if (t && t->dtype() != x.dtype()) throw ctx.error("all inputs must have the input's type " + dtype_name(x.dtype()));
  bool silu = use_silu(ctx.node());
  dispatch<FloatTypes>(x.dtype(), "CausalConvWithState", [&]<typename T>() {
    using A = acc_t<T>;
    Tensor& y = ctx.output(0, x.dtype(), x.shape());
    Tensor state(x.dtype(), {batch, ch, pad});
    std::vector<A> seq(static_cast<size_t>(pad + len));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t c = 0; c < ch; ++c) {
        for (int64_t i = 0; i < pad; ++i)
          seq[static_cast<size_t>(i)] = past ? A(past->data<T>()[(b * ch + c) * pad + i]) : A(0);
        for (int64_t t = 0; t < len; ++t) seq[static_cast<size_t>(pad + t)] = A(x.data<T>()[(b * ch + c) * len + t]);
        const T* wc = w.data<T>() + c * k;
        for (int64_t t = 0; t < len; ++t) {
          A s = bias ? A(bias->data<T>()[c]) : A(0);
          for (int64_t i = 0; i < k; ++i) s += A(wc[i]) * seq[static_cast<size_t>(t + i)];
          if (silu) s = s / (A(1) + std::exp(-s));
          y.data<T>()[(b * ch + c) * len + t] = static_cast<T>(s);
        }
        for (int64_t i = 0; i < pad; ++i)
          state.data<T>()[(b * ch + c) * pad + i] = static_cast<T>(seq[static_cast<size_t>(len + i)]);
      }
    if (ctx.num_outputs() > 1) ctx.set_output(1, std::move(state));
  });
}

}  // namespace

KILN_OP(CausalConvWithState) {
  return OpSchema{
      .name = "CausalConvWithState",
      .since = 27,
      .min_inputs = 2,
      .max_inputs = 4,
      .max_outputs = 2,
      .types = float_dtypes(),
      .check = [](const Node& n) -> std::string {
        std::string a = n.attr_string("activation", "none");
        if (a != "none" && a != "silu" && a != "swish")
          return "activation must be none, silu or swish, got '" + a + "'";
        return "";
      },
      .infer =
          [](InferContext& ctx) {
            const ValueType& x = ctx.input_type(0);
            ctx.set_output(0, x);
            Dim batch = Dim::unknown(), ch = Dim::unknown(), pad = Dim::unknown();
            if (x.shape && x.shape->size() == 3) {
              batch = (*x.shape)[0];
              ch = (*x.shape)[1];
            }
            const ValueType& w = ctx.input_type(1);
            if (w.shape && w.shape->size() == 3 && (*w.shape)[2].is_known()) pad = Dim::known((*w.shape)[2].value - 1);
            ctx.set_output(1, x.dtype, DimVector{batch, ch, pad});
          },
      .compute = causal_conv,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(CausalConvWithState) {
  return {.op = "CausalConvWithState",
          .family = OpFamily::kConv,
          .cost = cost::not_counted("CausalConvWithState is not counted")};
}

}  // namespace kiln
