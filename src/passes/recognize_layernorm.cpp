// Recognizes LayerNorm over the last axis as exporters write it without the
// LayerNormalization op (opset < 17, or hand-written):
//   d = Sub(x, ReduceMean(x)); v = ReduceMean(Pow(d, 2));
//   y = Div(d, Sqrt(Add(v, eps))) [* gamma] [+ beta]
// and replaces it by one LayerNormalization node (axis -1).
#include <algorithm>
#include <cmath>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

Node* sole_reader(const Graph& g, const Value* v) {
  if (v->consumers.size() != 1 || !only_read_by(g, v, v->consumers[0])) return nullptr;
  return v->consumers[0];
}

bool is_op(const Node* n, const char* op) { return n && n->op_type == op && n->domain.empty(); }

// ReduceMean over the last axis only, keeping dims.
bool mean_over_last_axis(const Node* n) {
  if (!is_op(n, "ReduceMean") || n->attr_int("keepdims", 1) != 1 || !n->inputs[0]->type.has_rank()) return false;
  std::vector<int64_t> axes = n->attr_ints("axes");
  if (n->opset >= 18) {
    const Tensor* t = n->has_input(1) ? constant_of(n->inputs[1]) : nullptr;
    if (!t || t->dtype() != DType::kInt64) return false;
    axes.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
  }
  const int64_t r = n->inputs[0]->type.rank();
  return axes.size() == 1 && (axes[0] == -1 || axes[0] == r - 1);
}

// The other operand of binary n when `v` is one of them.
Value* other(const Node* n, const Value* v) {
  if (!n || n->inputs.size() != 2) return nullptr;
  return n->inputs[0] == v ? n->inputs[1] : n->inputs[1] == v ? n->inputs[0] : nullptr;
}

// A float32 constant of shape [C].
const Tensor* affine_param(const Value* v, int64_t c) {
  const Tensor* t = constant_of(v);
  if (!t || t->dtype() != DType::kFloat32 || t->rank() != 1 || t->numel() != c) return nullptr;
  return t;
}

bool match_at_sub(Graph& g, Node& sub) {
  Value* x = sub.inputs[0];
  Node* mean = sub.inputs[1]->producer;
  const ValueType& xt = x->type;
  if (!mean_over_last_axis(mean) || mean->inputs[0] != x || xt.dtype != DType::kFloat32 || !xt.has_rank()) return false;
  const Dim& last = xt.shape->back();
  if (!last.is_known() || !only_read_by(g, mean->outputs[0], &sub)) return false;
  Value* d = sub.outputs[0];
  if (d->consumers.size() != 2 || is_graph_output(g, d)) return false;
  Node* pow = is_op(d->consumers[0], "Pow") ? d->consumers[0] : d->consumers[1];
  Node* div = pow == d->consumers[0] ? d->consumers[1] : d->consumers[0];
  double two, eps;
  if (!is_op(pow, "Pow") || pow->inputs[0] != d || !scalar_constant(pow->inputs[1], &two) || two != 2.0) return false;
  if (!is_op(div, "Div") || div->inputs[0] != d) return false;
  Node* var = sole_reader(g, pow->outputs[0]);
  if (!mean_over_last_axis(var)) return false;
  Node* add = sole_reader(g, var->outputs[0]);
  if (!is_op(add, "Add") || !scalar_constant(other(add, var->outputs[0]), &eps)) return false;
  Node* sqrt = sole_reader(g, add->outputs[0]);
  if (!is_op(sqrt, "Sqrt") || sole_reader(g, sqrt->outputs[0]) != div || div->inputs[1] != sqrt->outputs[0])
    return false;
  std::vector<Node*> matched = {mean, &sub, pow, var, add, sqrt, div};
  Value* y = div->outputs[0];
  Value *gamma = nullptr, *beta = nullptr;
  Node* next = sole_reader(g, y);
  if (is_op(next, "Mul") && affine_param(other(next, y), last.value)) {
    gamma = other(next, y);
    matched.push_back(next);
    y = next->outputs[0];
    next = sole_reader(g, y);
  }
  if (is_op(next, "Add") && affine_param(other(next, y), last.value)) {
    beta = other(next, y);
    matched.push_back(next);
    y = next->outputs[0];
  }
  if (!gamma) {
    Tensor ones(DType::kFloat32, {last.value});
    std::fill(ones.data<float>(), ones.data<float>() + last.value, 1.0f);
    gamma = add_constant(g, sub.name + ".ln_scale", std::move(ones));
  }
  for (Node* n : matched) detach_node(g, n);
  std::vector<Value*> inputs = {x, gamma};
  if (beta) inputs.push_back(beta);
  Node* ln = add_node(g, "LayerNormalization", sub.name + ".layernorm", inputs, {y}, 17);
  ln->attrs["axis"] = int_attr(-1);
  ln->origins = merged_origins(matched);
  ln->attrs["epsilon"] = float_attr(static_cast<float>(eps));
  return true;
}

}  // namespace

bool recognize_layernorm(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    Node& n = *g.nodes[i];
    if (is_op(&n, "Sub") && n.inputs.size() == 2 && n.inputs[0] && n.inputs[1] && n.has_output(0))
      changed |= match_at_sub(g, n);
  }
  return changed;
}

}  // namespace kiln::passes
