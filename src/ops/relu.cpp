// Relu: y = max(x, 0). The template for a unary op: schema, inference and
// the naive kernel in one place.
#include "ir/op_facts.h"
#include "ops/elementwise.h"

namespace kiln {

KILN_OP(Relu) {
  return OpSchema{
      .name = "Relu",
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt8, DType::kInt16,
                DType::kInt32, DType::kInt64},
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            unary_elementwise<SignedTypes>(ctx, [](auto x) { return x > decltype(x)(0) ? x : decltype(x)(0); });
          },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Relu) {
  return {.op = "Relu",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(1),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = epilogue_step_of(kEpilogueRelu)};
}

}  // namespace kiln
