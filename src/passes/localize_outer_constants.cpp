// In an If/Loop/Scan body, an outer-scope reference to a constant (a weight
// of the enclosing graph, not an overridable graph input) becomes the body's
// own initializer, sharing the tensor's storage. The body's passes can then
// fold and pack it (an LSTM's weights sliced and re-concatenated inside a
// branch fold to one tensor); the enclosing graph drops it when nothing
// else reads it. A no-op on a top-level graph.
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

bool localize_outer_constants(Graph& g) {
  if (!g.parent) return false;
  bool changed = false;
  for (auto& v : g.values) {
    if (!v->is_outer) continue;
    const Tensor* t = constant_of(g.parent->find_in_scope(v->name));
    if (!t) continue;
    v->initializer = *t;
    v->type = ValueType::tensor(t->dtype(), t->shape());
    v->is_outer = false;
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
