// Moves an activation into the element-wise epilogue (ir/epilogue.h) of the
// GEMM-like node that produces its input: Conv → Relu becomes one Conv that
// writes relu(conv(x)). Handles Relu, Clip with constant bounds (Relu6),
// LeakyRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Gelu, and SiLU written
// as x * Sigmoid(x). The producer's output must have no other reader.
#include <algorithm>

#include "ir/epilogue.h"
#include "ir/op.h"
#include "ir/op_facts.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// The epilogue step computing activation node `a`, if it is one (its op's
// facts say how).
bool step_of(const Node& a, EpilogueStep* s) {
  if (!a.domain.empty() || a.outputs.size() != 1) return false;
  const OpFacts* f = op_facts(a);
  return f && f->epilogue_step && f->epilogue_step(a, s);
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
    absorb(g, *p, {&kEpilogueSilu}, mul, {sig, &mul});
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
