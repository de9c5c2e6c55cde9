// SwiGLU (28): Y = A * sigmoid(alpha * A) * B, with A and B of one shape.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

KILN_OP(SwiGLU) {
  return OpSchema{
      .name = "SwiGLU",
      .since = 28,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& a = ctx.input(0);
            const Tensor& b = ctx.input(1);
            if (a.shape() != b.shape() || a.dtype() != b.dtype())
              throw ctx.error("A and B must have the same type and shape (no broadcasting), got " +
                              shape_str(a.shape()) + " and " + shape_str(b.shape()));
            double alpha = ctx.node().attr_float("alpha", 1.0f);
            dispatch<FloatTypes>(a.dtype(), "SwiGLU", [&]<typename T>() {
              Tensor& y = ctx.output(0, a.dtype(), a.shape());
              const T* pa = a.data<T>();
              const T* pb = b.data<T>();
              T* py = y.data<T>();
              for (int64_t i = 0; i < a.numel(); ++i) {
                double x = static_cast<double>(acc_t<T>(pa[i]));
                py[i] = static_cast<T>(x / (1.0 + std::exp(-alpha * x)) * static_cast<double>(acc_t<T>(pb[i])));
              }
            });
          },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(SwiGLU) {
  return {.op = "SwiGLU", .family = OpFamily::kActivation, .cost = cost::not_counted("SwiGLU is not counted")};
}

}  // namespace kiln
