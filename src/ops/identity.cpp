// Identity and Constant. Constant nodes are folded into initializers at
// import; the schema is registered so the support matrix lists it.
#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

KILN_OP(Identity) {
  return OpSchema{
      .name = "Identity",
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute = [](KernelContext& ctx) { ctx.set_output(0, ctx.input(0)); },
  };
}

KILN_OP(Constant) {
  return OpSchema{
      .name = "Constant",
      .min_inputs = 0,
      .max_inputs = 0,
      .max_outputs = 1,
      .compute = [](KernelContext& ctx) { throw ctx.error("Constant nodes are folded at import"); },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Constant) { return {.op = "Constant", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Identity) {
  return {.op = "Identity", .family = OpFamily::kShape, .cost = cost::none(), .blocked = BlockedLayout::kUnary};
}

}  // namespace kiln
