#include "analysis/flops.h"

#include "ir/epilogue.h"
#include "ir/op_facts.h"
#include "kiln/error.h"

namespace kiln {

namespace {

// A fused epilogue (ir/epilogue.h): each step costs what its op would.
int64_t epilogue_flops(const Node& n) {
  int64_t per_element = 0;
  for (const EpilogueStep& step : epilogue_of(n)) per_element = cost::add(per_element, step.fn->flops);
  return per_element ? cost::mul(cost::out_numel(n), per_element) : 0;
}

}  // namespace

NodeCost node_cost(const Node& node) {
  NodeCost c;
  const OpFacts* facts = op_facts(node);
  if (!facts || !facts->cost) {
    c.why = "no counting rule for " +
            (node.domain.empty() || node.domain == "ai.onnx" ? node.op_type : node.domain + "." + node.op_type);
    return c;
  }
  try {
    const OpCost base = facts->cost(node);
    c.macs = base.macs;
    c.flops = cost::add(base.flops, epilogue_flops(node));
    c.known = true;
  } catch (const CostUnknown& u) {
    c = NodeCost{};
    c.why = u.why;
  } catch (const Error& e) {  // an attribute of the wrong kind, a malformed epilogue
    c = NodeCost{};
    c.why = e.what();
  }
  return c;
}

bool is_parameter(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kInt16:
    case DType::kUInt16: return true;
    default: return false;
  }
}

int64_t node_params(const Node& node) {
  int64_t n = 0;
  for (const Value* in : node.inputs)
    if (in && in->initializer && is_parameter(*in->initializer)) n += in->initializer->numel();
  return n;
}

}  // namespace kiln
