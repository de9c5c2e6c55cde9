// Removes nodes none of whose outputs is read (by a node, a subgraph or as a
// graph output), then values nothing produces or reads: dropped
// intermediates and unused initializers. Overridable initializers (graph
// inputs) stay: they are part of the model's interface.
#include <algorithm>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// ONNX ops have no effects beyond their outputs, so a node whose outputs
// nobody reads can go, random ones included.
bool is_dead(const Graph& g, const Node& n) {
  for (const Value* out : n.outputs)
    if (out && (!out->consumers.empty() || is_graph_output(g, out))) return false;
  return true;
}

bool remove_dead_nodes(Graph& g) {
  bool changed = false;
  // Reverse order: removing a reader can make its producer dead in the same sweep.
  for (size_t i = g.nodes.size(); i-- > 0;) {
    Node* n = g.nodes[i].get();
    if (!is_dead(g, *n)) continue;
    detach_node(g, n);
    for (Value* v : g.implicit_inputs(*n)) {
      v->consumers.erase(std::remove(v->consumers.begin(), v->consumers.end(), n), v->consumers.end());
    }
    g.nodes.erase(g.nodes.begin() + static_cast<std::ptrdiff_t>(i));
    changed = true;
  }
  return changed;
}

bool remove_unused_values(Graph& g) {
  const size_t before = g.values.size();
  auto unused = [&](const std::unique_ptr<Value>& v) {
    return !v->producer && v->consumers.empty() && !v->is_graph_input && !v->is_outer && !is_graph_output(g, v.get());
  };
  for (const auto& v : g.values)
    if (unused(v)) g.by_name.erase(v->name);
  g.values.erase(std::remove_if(g.values.begin(), g.values.end(), unused), g.values.end());
  for (size_t i = 0; i < g.values.size(); ++i) g.values[i]->index = static_cast<int>(i);
  return g.values.size() != before;
}

}  // namespace

bool eliminate_dead_code(Graph& g) {
  bool changed = remove_dead_nodes(g);
  // Values alone do not count as a change: they do not affect other passes.
  remove_unused_values(g);
  return changed;
}

}  // namespace kiln::passes
