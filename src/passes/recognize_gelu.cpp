// Recognizes GELU as PyTorch exports it without the Gelu op (opset < 20):
//   y = Mul(Mul(x, Add(Erf(Div(x, 1.4142135)), 1)), 0.5)
// (operands of Add and Mul in either order, Div by sqrt(2) or Mul by
// 1/sqrt(2), the 0.5 applied to x or to the product) and replaces it by one
// Gelu node, which fuse_epilogue can then fold into the MatMul/Add before.
#include <cmath>

#include "ir/op.h"
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln::passes {

namespace {

bool near(double a, double b) { return std::fabs(a - b) <= 1e-5 * std::fabs(b); }

// If n is the binary op `op` with one input a constant close to `c`, the
// other input; else nullptr.
Value* other_operand(const Node* n, const char* op, double c) {
  if (!n || n->op_type != op || !n->domain.empty() || n->inputs.size() != 2 || !n->inputs[0] || !n->inputs[1])
    return nullptr;
  double v;
  if (scalar_constant(n->inputs[1], &v) && near(v, c)) return n->inputs[0];
  if (scalar_constant(n->inputs[0], &v) && near(v, c)) return n->inputs[1];
  return nullptr;
}

// The one node reading v (and v is no graph output), else nullptr.
Node* sole_reader(const Graph& g, const Value* v) {
  if (v->consumers.size() != 1 || !only_read_by(g, v, v->consumers[0])) return nullptr;
  return v->consumers[0];
}

Value* operand_besides(const Node* mul, const Value* v) {
  if (!mul || mul->op_type != "Mul" || mul->inputs.size() != 2) return nullptr;
  return mul->inputs[0] == v ? mul->inputs[1] : mul->inputs[1] == v ? mul->inputs[0] : nullptr;
}

bool match_at_erf(Graph& g, Node& erf) {
  Value* e = erf.outputs[0];
  Node* scaled = erf.inputs[0]->producer;
  Value* x = other_operand(scaled, "Div", std::sqrt(2.0));
  if (!x) x = other_operand(scaled, "Mul", 1 / std::sqrt(2.0));
  if (!x || !only_read_by(g, erf.inputs[0], &erf) || x->type.dtype != DType::kFloat32) return false;
  Node* add = sole_reader(g, e);
  if (!add || other_operand(add, "Add", 1.0) != e) return false;
  Node* mul = sole_reader(g, add->outputs[0]);
  Value* lhs = operand_besides(mul, add->outputs[0]);
  if (!lhs) return false;
  Node* last = nullptr;
  std::vector<Node*> matched = {scaled, &erf, add, mul};
  if (lhs == x) {  // (x * (1 + erf)) * 0.5
    last = sole_reader(g, mul->outputs[0]);
    if (other_operand(last, "Mul", 0.5) != mul->outputs[0]) return false;
    matched.push_back(last);
  } else {  // (x * 0.5) * (1 + erf)
    Node* half = lhs->producer;
    if (other_operand(half, "Mul", 0.5) != x || !only_read_by(g, lhs, mul)) return false;
    last = mul;
    matched.push_back(half);
  }
  Value* y = last->outputs[0];
  for (Node* n : matched) detach_node(g, n);
  Node* gelu = add_node(g, "Gelu", erf.name + ".gelu", {x}, {y}, 20);
  gelu->attrs["approximate"] = string_attr("none");
  return true;
}

}  // namespace

bool recognize_gelu(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();  // nodes added below are not revisited
  for (size_t i = 0; i < count; ++i) {
    Node& n = *g.nodes[i];
    if (n.op_type == "Erf" && n.domain.empty() && n.has_input(0) && n.has_output(0)) changed |= match_at_erf(g, n);
  }
  return changed;
}

}  // namespace kiln::passes
