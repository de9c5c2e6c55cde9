// Removes nodes that pass their input through unchanged: Identity, Dropout
// at inference (no mask read, training_mode absent or false), Cast to the
// input's own type, and Reshape/Flatten/Squeeze/Unsqueeze/Expand whose
// static output shape equals the input's. Readers of the output read the
// input instead.
#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

bool same_static_shape(const Value* a, const Value* b) {
  return a->type.is_static() && b->type.is_static() && a->type.static_shape() == b->type.static_shape() &&
         a->type.dtype == b->type.dtype;
}

bool dropout_is_identity(const Graph& g, const Node& n) {
  // A read mask (output 1) would need all-true values; leave it to the kernel.
  if (n.has_output(1) && (!n.outputs[1]->consumers.empty() || is_graph_output(g, n.outputs[1]))) return false;
  if (n.has_input(2)) {
    const Tensor* mode = constant_of(n.inputs[2]);
    if (!mode || mode->numel() != 1 || mode->dtype() != DType::kBool || mode->data<bool>()[0]) return false;
  }
  return n.attr_int("is_test", 1) != 0 || n.opset >= 7;
}

// The value `n` passes through unchanged, or nullptr.
Value* passed_through(const Graph& g, const Node& n) {
  if (!n.domain.empty() || !n.has_input(0) || !n.has_output(0)) return nullptr;
  Value* in = n.inputs[0];
  const std::string& op = n.op_type;
  if (op == "Identity" && in->type.kind == ValueKind::kTensor) return in;
  if (op == "Dropout") return dropout_is_identity(g, n) ? in : nullptr;
  if (op == "Cast")
    return in->type.dtype != DType::kUndefined && n.attr_int("to", 0) == static_cast<int64_t>(in->type.dtype) ? in
                                                                                                              : nullptr;
  if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" || op == "Expand")
    return same_static_shape(in, n.outputs[0]) ? in : nullptr;
  return nullptr;
}

}  // namespace

bool eliminate_identity(Graph& g) {
  bool changed = false;
  for (auto& n : g.nodes) {
    Value* in = passed_through(g, *n);
    if (!in) continue;
    Value* out = n->outputs[0];
    // A graph output produced by a pass-through of a graph input or a
    // constant has to stay a node: the output needs its own name.
    if (replace_uses(g, out, in)) changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
