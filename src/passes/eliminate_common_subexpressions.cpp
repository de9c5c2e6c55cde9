// Common-subexpression elimination: two nodes with the same op, inputs and
// attributes compute the same outputs, so the later one's readers read the
// earlier one's. Small constants with equal contents are merged first, so
// that e.g. Unsqueeze(x, axes=[0]) nodes whose axes come from different
// Constant nodes are recognised as equal too. Random ops and nodes with
// subgraphs are never merged.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

constexpr int64_t kMaxMergedConstant = 64;  // elements; bigger weights are rarely duplicated

bool same_tensor(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape() || a.dtype() == DType::kString) return false;
  return std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

bool same_attr(const Attribute& a, const Attribute& b) {
  if (a.kind != b.kind || a.g || b.g || !a.graphs.empty() || !b.graphs.empty()) return false;
  if (a.f != b.f || a.i != b.i || a.s != b.s || a.ints != b.ints || a.floats != b.floats || a.strings != b.strings)
    return false;
  if (a.kind == Attribute::Kind::kTensor && !same_tensor(a.t, b.t)) return false;
  if (a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i)
    if (!same_tensor(a.tensors[i], b.tensors[i])) return false;
  return true;
}

bool same_node(const Node& a, const Node& b) {
  if (a.op_type != b.op_type || a.domain != b.domain || a.opset != b.opset || a.inputs != b.inputs ||
      a.outputs.size() != b.outputs.size() || a.attrs.size() != b.attrs.size())
    return false;
  for (auto ia = a.attrs.begin(), ib = b.attrs.begin(); ia != a.attrs.end(); ++ia, ++ib)
    if (ia->first != ib->first || !same_attr(ia->second, ib->second)) return false;
  return true;
}

bool mergeable(const Node& n) {
  if (n.op_type.rfind("Random", 0) == 0 || n.op_type == "Multinomial" || n.op_type == "Bernoulli") return false;
  for (const auto& [k, a] : n.attrs)
    if (a.g || !a.graphs.empty()) return false;
  return !n.outputs.empty();
}

// Readers of every output of `dup` read `keep`'s instead; all or nothing.
bool merge_outputs(Graph& g, Node& dup, Node& keep) {
  for (size_t i = 0; i < dup.outputs.size(); ++i) {
    Value* from = dup.outputs[i];
    if (!from) continue;
    if (!keep.outputs[i]) return false;
    if (is_graph_output(g, from) && is_graph_output(g, keep.outputs[i])) return false;
  }
  bool changed = false;
  for (size_t i = 0; i < dup.outputs.size(); ++i)
    if (dup.outputs[i]) changed |= replace_uses(g, dup.outputs[i], keep.outputs[i]);
  return changed;
}

bool merge_constants(Graph& g) {
  bool changed = false;
  std::vector<Value*> seen;
  for (auto& v : g.values) {
    const Tensor* t = constant_of(v.get());
    if (!t || t->numel() > kMaxMergedConstant || v->consumers.empty()) continue;
    auto same = std::find_if(seen.begin(), seen.end(), [&](Value* s) { return same_tensor(*constant_of(s), *t); });
    if (same == seen.end())
      seen.push_back(v.get());
    else if (!is_graph_output(g, v.get()))
      changed |= replace_uses(g, v.get(), *same);
  }
  return changed;
}

}  // namespace

bool eliminate_common_subexpressions(Graph& g) {
  bool changed = merge_constants(g);
  // Buckets by op and first input keep the comparisons few.
  std::unordered_map<std::string, std::vector<Node*>> buckets;
  for (auto& n : g.nodes) {
    if (!mergeable(*n)) continue;
    std::string key = n->op_type + "|" + (n->inputs.empty() || !n->inputs[0] ? "" : n->inputs[0]->name);
    std::vector<Node*>& bucket = buckets[key];
    auto same = std::find_if(bucket.begin(), bucket.end(), [&](Node* b) { return same_node(*n, *b); });
    if (same == bucket.end())
      bucket.push_back(n.get());
    else
      changed |= merge_outputs(g, *n, **same);
  }
  return changed;
}

}  // namespace kiln::passes
