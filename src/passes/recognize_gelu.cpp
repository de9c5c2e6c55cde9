// Recognizes GELU as PyTorch exports it without the Gelu op (opset < 20),
// in its exact (erf) form:
//   y = Mul(Mul(x, Add(Erf(Div(x, 1.4142135)), 1)), 0.5)
// (Div by sqrt(2) or Mul by 1/sqrt(2)) and its tanh form,
// gelu(approximate='tanh'):
//   y = Mul(Mul(x, Add(Tanh(Mul(Add(x, Mul(x^3, 0.044715)), 0.7978846)), 1)), 0.5)
// (x^3 as Pow(x, 3) or x * x * x), operands of Add and Mul in either order
// and the 0.5 applied to x or to the product. Each becomes one Gelu node
// (approximate "none" or "tanh"), which fuse_epilogue can then fold into the
// MatMul/Add before.
#include <cmath>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

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

// The tail both forms share, from e = erf(...) or tanh(...):
//   Mul(Mul(x, Add(e, 1)), 0.5) or Mul(Mul(x, 0.5), Add(e, 1)).
// Appends its nodes to `matched` and returns GELU's output, or nullptr.
Value* match_tail(const Graph& g, Value* e, Value* x, std::vector<Node*>* matched) {
  Node* add = sole_reader(g, e);
  if (!add || other_operand(add, "Add", 1.0) != e) return nullptr;
  Node* mul = sole_reader(g, add->outputs[0]);
  Value* lhs = operand_besides(mul, add->outputs[0]);
  if (!lhs) return nullptr;
  matched->push_back(add);
  matched->push_back(mul);
  if (lhs == x) {  // (x * (1 + e)) * 0.5
    Node* last = sole_reader(g, mul->outputs[0]);
    if (other_operand(last, "Mul", 0.5) != mul->outputs[0]) return nullptr;
    matched->push_back(last);
    return last->outputs[0];
  }
  // (x * 0.5) * (1 + e)
  Node* half = lhs->producer;
  if (other_operand(half, "Mul", 0.5) != x || !only_read_by(g, lhs, mul)) return nullptr;
  matched->push_back(half);
  return mul->outputs[0];
}

void replace_by_gelu(Graph& g, const std::vector<Node*>& matched, const std::string& name, Value* x, Value* y,
                     const char* approximate) {
  for (Node* n : matched) detach_node(g, n);
  Node* gelu = add_node(g, "Gelu", name + ".gelu", {x}, {y}, 20);
  gelu->attrs["approximate"] = string_attr(approximate);
  gelu->origins = merged_origins(matched);
}

bool match_at_erf(Graph& g, Node& erf) {
  Node* scaled = erf.inputs[0]->producer;
  Value* x = other_operand(scaled, "Div", std::sqrt(2.0));
  if (!x) x = other_operand(scaled, "Mul", 1 / std::sqrt(2.0));
  if (!x || !only_read_by(g, erf.inputs[0], &erf) || x->type.dtype != DType::kFloat32) return false;
  std::vector<Node*> matched = {scaled, &erf};
  Value* y = match_tail(g, erf.outputs[0], x, &matched);
  if (!y) return false;
  replace_by_gelu(g, matched, erf.name, x, y, "none");
  return true;
}

// x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x), read only by
// `reader`: x, with the nodes appended to `matched`; else nullptr.
Value* cube_root_of(const Graph& g, Value* cube, const Node* reader, std::vector<Node*>* matched) {
  if (!only_read_by(g, cube, reader)) return nullptr;
  double e;
  if (Node* pow = producer_if(cube, "Pow")) {
    if (pow->inputs.size() != 2 || !scalar_constant(pow->inputs[1], &e) || e != 3.0) return nullptr;
    matched->push_back(pow);
    return pow->inputs[0];
  }
  Node* mul = producer_if(cube, "Mul");
  if (!mul || mul->inputs.size() != 2) return nullptr;
  for (int i = 0; i < 2; ++i) {
    Value* x = mul->inputs[static_cast<size_t>(i)];
    Value* sq = mul->inputs[static_cast<size_t>(1 - i)];
    Node* sq_mul = producer_if(sq, "Mul");
    if (!sq_mul || sq_mul->inputs.size() != 2 || sq_mul->inputs[0] != x || sq_mul->inputs[1] != x) continue;
    if (sq == x || !only_read_by(g, sq, mul)) continue;
    matched->push_back(mul);
    matched->push_back(sq_mul);
    return x;
  }
  return nullptr;
}

bool match_at_tanh(Graph& g, Node& tanh) {
  // Tanh(Mul(Add(x, Mul(x^3, 0.044715)), sqrt(2 / pi)))
  Node* scaled = tanh.inputs[0]->producer;
  Value* inner = other_operand(scaled, "Mul", std::sqrt(2 / M_PI));
  Node* add = inner ? producer_if(inner, "Add") : nullptr;
  if (!add || add->inputs.size() != 2 || !only_read_by(g, tanh.inputs[0], &tanh) || !only_read_by(g, inner, scaled))
    return false;
  for (int i = 0; i < 2; ++i) {
    Value* x = add->inputs[static_cast<size_t>(i)];
    Value* term = add->inputs[static_cast<size_t>(1 - i)];
    Node* coeff = term ? term->producer : nullptr;
    Value* cube = other_operand(coeff, "Mul", 0.044715);
    if (!x || !cube || x->type.dtype != DType::kFloat32 || !only_read_by(g, term, add)) continue;
    std::vector<Node*> matched = {&tanh, scaled, add, coeff};
    if (cube_root_of(g, cube, coeff, &matched) != x) continue;
    Value* y = match_tail(g, tanh.outputs[0], x, &matched);
    if (!y) return false;
    replace_by_gelu(g, matched, tanh.name, x, y, "tanh");
    return true;
  }
  return false;
}

}  // namespace

bool recognize_gelu(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();  // nodes added below are not revisited
  for (size_t i = 0; i < count; ++i) {
    Node& n = *g.nodes[i];
    if (!n.domain.empty() || !n.has_input(0) || !n.has_output(0)) continue;
    if (n.op_type == "Erf")
      changed |= match_at_erf(g, n);
    else if (n.op_type == "Tanh")
      changed |= match_at_tanh(g, n);
  }
  return changed;
}

}  // namespace kiln::passes
