// Moves an activation into the element-wise epilogue (ir/epilogue.h) of the
// GEMM-like node that produces its input: Conv → Relu becomes one Conv that
// writes relu(conv(x)). Handles Relu, Clip with constant bounds (Relu6),
// LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, and SiLU written
// as x * Sigmoid(x). The producer's output must have no other reader.
#include <algorithm>
#include <limits>

#include "ir/epilogue.h"
#include "ir/op.h"
#include "passes/passes.h"
#include "ir/rewrite.h"

namespace kiln::passes {

namespace {

using Kind = EpilogueStep::Kind;

bool clip_bound(const Node& n, size_t input, const char* attr, float def, float* out) {
  *out = n.opset < 11 ? n.attr_float(attr, def) : def;
  if (n.opset < 11 || !n.has_input(input)) return true;
  const Tensor* t = constant_of(n.inputs[input]);
  if (!t || t->numel() != 1 || t->dtype() != DType::kFloat32) return false;
  *out = t->data<float>()[0];
  return true;
}

// The epilogue step computing activation node `a`, if it is one.
bool step_of(const Node& a, EpilogueStep* s) {
  const std::string& op = a.op_type;
  if (!a.domain.empty() || a.outputs.size() != 1) return false;
  if (op == "Relu") *s = {Kind::kRelu};
  else if (op == "Sigmoid") *s = {Kind::kSigmoid};
  else if (op == "Tanh") *s = {Kind::kTanh};
  else if (op == "HardSwish") *s = {Kind::kHardSwish};
  else if (op == "LeakyRelu") *s = {Kind::kLeakyRelu, a.attr_float("alpha", 0.01f)};
  else if (op == "HardSigmoid") *s = {Kind::kHardSigmoid, a.attr_float("alpha", 0.2f), a.attr_float("beta", 0.5f)};
  else if (op == "Gelu") *s = {a.attr_string("approximate", "none") == "tanh" ? Kind::kGeluTanh : Kind::kGelu};
  else if (op == "Clip") {
    *s = {Kind::kClip};
    return clip_bound(a, 1, "min", std::numeric_limits<float>::lowest(), &s->alpha) &&
           clip_bound(a, 2, "max", std::numeric_limits<float>::max(), &s->beta);
  } else {
    return false;
  }
  return true;
}

// Producer p of value x takes over `last`'s output; `absorbed` nodes go.
void absorb(Graph& g, Node& p, const EpilogueStep& step, Node& last, std::initializer_list<Node*> absorbed) {
  append_epilogue(p, step);
  Value* out = last.outputs[0];
  for (Node* n : absorbed) {
    p.absorb_origins(*n);
    detach_node(g, n);
  }
  p.outputs[0]->producer = nullptr;
  p.outputs[0] = out;
  out->producer = &p;
}

bool fuse_activation(Graph& g, Node& a) {
  EpilogueStep step;
  if (!a.has_input(0) || !step_of(a, &step)) return false;
  Value* x = a.inputs[0];
  Node* p = x->producer;
  if (!p || !only_read_by(g, x, &a)) return false;
  if (accepts_epilogue(*p)) {
    absorb(g, *p, step, a, {&a});
    return true;
  }
  // Through a Reshape (an element-wise step commutes with it): Gemm →
  // Reshape → Gelu, what fuse_matmul_add makes of a Linear layer on a 3-D
  // input, becomes Gemm+Gelu → Reshape.
  if (p->op_type != "Reshape" || !p->domain.empty() || !p->has_input(0)) return false;
  Value* x0 = p->inputs[0];
  Node* q = x0->producer;
  if (!q || !accepts_epilogue(*q) || !only_read_by(g, x0, p)) return false;
  append_epilogue(*q, step);
  Value* out = a.outputs[0];
  q->absorb_origins(a);
  detach_node(g, &a);
  p->outputs[0]->producer = nullptr;
  p->outputs[0] = out;
  out->producer = p;
  return true;
}

// Mul(x, Sigmoid(x)) with x from a GEMM-like node read by just those two.
bool fuse_silu(Graph& g, Node& mul) {
  if (mul.op_type != "Mul" || !mul.domain.empty() || mul.inputs.size() != 2 || !mul.inputs[0] || !mul.inputs[1])
    return false;
  for (int i = 0; i < 2; ++i) {
    Value* x = mul.inputs[static_cast<size_t>(i)];
    Node* sig = producer_if(mul.inputs[static_cast<size_t>(1 - i)], "Sigmoid");
    if (!sig || sig->inputs[0] != x || !only_read_by(g, sig->outputs[0], &mul)) continue;
    Node* p = x->producer;
    if (!p || !accepts_epilogue(*p) || is_graph_output(g, x)) continue;
    if (std::any_of(x->consumers.begin(), x->consumers.end(), [&](Node* c) { return c != sig && c != &mul; })) continue;
    absorb(g, *p, {Kind::kSilu}, mul, {sig, &mul});
    return true;
  }
  return false;
}

}  // namespace

bool fuse_epilogue(Graph& g) {
  bool changed = false;
  for (auto& n : g.nodes) {
    if (n->outputs.empty() || !n->outputs[0]) continue;  // already absorbed in this sweep
    changed |= fuse_activation(g, *n) || fuse_silu(g, *n);
  }
  return changed;
}

}  // namespace kiln::passes
