// Identity and Constant. Constant nodes are folded into initializers at
// import; the schema is registered so the support matrix lists it.
#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

KILN_OP(Identity) {
  OpSchema s;
  s.name = "Identity";
  s.min_inputs = s.max_inputs = 1;
  s.max_outputs = 1;
  s.infer = [](InferContext& ctx) { infer_same_as_input(ctx); };
  s.compute = [](KernelContext& ctx) { ctx.set_output(0, ctx.input(0)); };
  return s;
}

KILN_OP(Constant) {
  OpSchema s;
  s.name = "Constant";
  s.min_inputs = s.max_inputs = 0;
  s.max_outputs = 1;
  s.compute = [](KernelContext& ctx) { throw ctx.error("Constant nodes are folded at import"); };
  return s;
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Constant) { return {.op = "Constant", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Identity) {
  return {.op = "Identity", .family = OpFamily::kShape, .cost = cost::none(), .blocked = BlockedLayout::kUnary};
}

}  // namespace kiln
