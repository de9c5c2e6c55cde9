// Removes data movement that Transposes spell out needlessly:
//   - Transpose(Transpose(x, p1), p2) reads x once with the composed perm
//     p1[p2[i]] (the inner Transpose stays while something else reads it);
//   - a Transpose whose perm is the identity (given, or composed) goes, its
//     readers read its input instead;
//   - a Transpose that only moves size-1 dims, keeping the other dims in
//     order, is a Reshape (a view, no copy) when its output shape is static.
// Exporters write such chains around reshapes and attention heads. The pass
// sweeps the nodes in topological order, so a chain of any length folds in
// one sweep (each Transpose already reads the head of the chain).
#include <algorithm>
#include <numeric>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

bool is_transpose(const Node* n) {
  return n && n->op_type == "Transpose" && n->domain.empty() && n->has_input(0) && n->has_output(0);
}

// n's perm, with the default (reversed dims) spelled out; false when it
// cannot be known (no perm and an input of unknown rank) or is malformed.
bool perm_of(const Node& n, std::vector<int64_t>* perm) {
  const int rank = n.inputs[0]->type.rank();
  if (n.has_attr("perm")) {
    *perm = n.attr_ints("perm");
  } else {
    if (rank < 0) return false;
    perm->resize(static_cast<size_t>(rank));
    std::iota(perm->rbegin(), perm->rend(), 0);
  }
  const int64_t size = static_cast<int64_t>(perm->size());
  if (rank >= 0 && size != rank) return false;
  std::vector<bool> seen(perm->size(), false);
  for (int64_t p : *perm) {
    if (p < 0 || p >= size || seen[static_cast<size_t>(p)]) return false;
    seen[static_cast<size_t>(p)] = true;
  }
  return true;
}

bool is_identity(const std::vector<int64_t>& perm) {
  for (size_t i = 0; i < perm.size(); ++i)
    if (perm[i] != static_cast<int64_t>(i)) return false;
  return true;
}

// Makes transpose `t` read `x` instead of its current input.
void reroute_input(Node& t, Value* x) {
  Value* old = t.inputs[0];
  auto it = std::find(old->consumers.begin(), old->consumers.end(), &t);
  if (it != old->consumers.end()) old->consumers.erase(it);
  t.inputs[0] = x;
  x->consumers.push_back(&t);
}

// True when the transpose only moves dims of size 1: the other dims keep
// their relative order, so the data in memory does not move.
bool moves_only_unit_dims(const Value* x, const std::vector<int64_t>& perm) {
  if (!x->type.has_rank()) return false;
  const DimVector& dims = *x->type.shape;
  int64_t last = -1;
  for (int64_t p : perm) {
    const Dim& d = dims[static_cast<size_t>(p)];
    if (d.is_known() && d.value == 1) continue;
    if (p < last) return false;
    last = p;
  }
  return true;
}

// Rewrites a unit-dim-moving Transpose as Reshape(x, its static output shape).
bool to_reshape(Graph& g, Node& t) {
  Value* y = t.outputs[0];
  if (!y->type.is_static() || t.opset < 5) return false;
  Shape shape = y->type.static_shape();
  Tensor s(DType::kInt64, {static_cast<int64_t>(shape.size())});
  std::copy(shape.begin(), shape.end(), s.data<int64_t>());
  Value* x = t.inputs[0];
  Value* shape_value = add_constant(g, t.name + ".shape", std::move(s));
  detach_node(g, &t);
  add_node(g, "Reshape", t.name, {x, shape_value}, {y}, 14)->origins = t.origin_names();
  return true;
}

bool fold_at(Graph& g, Node& t) {
  std::vector<int64_t> perm;
  if (!perm_of(t, &perm)) return false;
  bool changed = false;
  Node* inner = t.inputs[0]->producer;
  std::vector<int64_t> inner_perm;
  if (is_transpose(inner) && perm_of(*inner, &inner_perm) && inner_perm.size() == perm.size()) {
    std::vector<int64_t> composed(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) composed[i] = inner_perm[static_cast<size_t>(perm[i])];
    reroute_input(t, inner->inputs[0]);
    perm = composed;
    t.attrs["perm"] = ints_attr(perm);
    changed = true;
  }
  if (is_identity(perm)) {
    // A graph output that cannot take the input's place keeps a (copying)
    // Transpose with the identity perm.
    return replace_uses(g, t.outputs[0], t.inputs[0]) || changed;
  }
  if (moves_only_unit_dims(t.inputs[0], perm)) return to_reshape(g, t) || changed;
  return changed;
}

}  // namespace

bool fold_transposes(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();  // Reshapes added below are not revisited
  for (size_t i = 0; i < count; ++i) {
    Node& n = *g.nodes[i];
    if (is_transpose(&n)) changed |= fold_at(g, n);
  }
  return changed;
}

}  // namespace kiln::passes
