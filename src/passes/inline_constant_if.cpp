// An If whose condition is a constant is replaced by the nodes of the branch
// it would take (models exported with a branch per sample rate or per input
// rank: once shapes are known the condition folds, and the chosen branch
// then gets the fusions and layouts of the graph around it). Branch values
// keep their names, so nested bodies that read them by name still find
// them; a branch defining a name already in scope is left as it is.
#include <algorithm>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// The branch `n` takes, or nullptr when its condition is not a constant.
std::shared_ptr<Graph> taken_branch(const Node& n) {
  if (n.op_type != "If" || !n.domain.empty() || !n.has_input(0)) return nullptr;
  const Tensor* cond = constant_of(n.inputs[0]);
  if (!cond || cond->numel() != 1 || cond->dtype() != DType::kBool) return nullptr;
  const char* name = cond->data<bool>()[0] ? "then_branch" : "else_branch";
  auto it = n.attrs.find(name);
  if (it == n.attrs.end() || it->second.kind != Attribute::Kind::kGraph || !it->second.g) return nullptr;
  std::shared_ptr<Graph> branch = it->second.g;
  if (!branch->inputs.empty() || branch->outputs.size() != n.outputs.size()) return nullptr;
  return branch;
}

// Where a body of g finds the outer value `name`: g's own, or one further
// out; nullptr when no enclosing graph defines it.
const Value* outer_definition(const Graph& g, const std::string& name) {
  if (const Value* v = g.find(name)) return v;
  return g.parent ? g.parent->find_in_scope(name) : nullptr;
}

// The value of g that an outer reference of a body of g names: g's own, or
// an outer placeholder in g for a value further out.
Value* resolve_outer(Graph& g, const Value& ref) {
  if (Value* v = g.find(ref.name)) return v;
  const Value* further = outer_definition(g, ref.name);
  if (!further) return nullptr;
  Value* v = g.add_value(ref.name);
  v->is_outer = true;
  v->type = further->type;
  return v;
}

bool inline_branch(Graph& g, Node& n, Graph& branch) {
  for (const auto& v : branch.values)
    if (!v->is_outer && g.find_in_scope(v->name)) return false;
  for (const auto& v : branch.values)
    if (v->is_outer && !outer_definition(g, v->name)) return false;

  // Values: outer references become g's, the branch's own move into g.
  std::unordered_map<const Value*, Value*> to_g;
  for (auto& v : branch.values) {
    if (v->is_outer) {
      to_g[v.get()] = resolve_outer(g, *v);
      continue;
    }
    v->index = static_cast<int>(g.values.size());
    g.by_name[v->name] = v.get();
    to_g[v.get()] = v.get();
    g.values.push_back(std::move(v));
  }
  auto mapped = [&](Value* v) { return v ? to_g.at(v) : nullptr; };
  for (auto& node : branch.nodes) {
    for (Value*& in : node->inputs) in = mapped(in);
    for (Value*& out : node->outputs) out = mapped(out);
    for (auto& [name, attr] : node->attrs) {
      (void)name;
      if (attr.g) attr.g->parent = &g;
      for (auto& sub : attr.graphs) sub->parent = &g;
    }
    g.add_node(std::move(node));
  }
  // The If's outputs keep their names (graph outputs, nested readers): each
  // is now an Identity of the branch's output, which eliminate_identity
  // removes where it can.
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (!n.outputs[i]) continue;
    auto id = std::make_unique<Node>();
    id->name = n.name + "/output_" + std::to_string(i);
    id->op_type = "Identity";
    id->opset = n.opset;
    id->origins = n.origin_names();
    id->inputs = {mapped(branch.outputs[i])};
    id->outputs = {n.outputs[i]};
    g.add_node(std::move(id));
  }
  branch.nodes.clear();
  branch.values.clear();
  branch.by_name.clear();
  detach_node(g, &n);
  n.attrs.clear();
  return true;
}

}  // namespace

bool inline_constant_if(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();  // inlined nodes are appended; the manager sorts after
  for (size_t i = 0; i < count; ++i) {
    Node& n = *g.nodes[i];
    std::shared_ptr<Graph> branch = taken_branch(n);
    if (branch && inline_branch(g, n, *branch)) changed = true;
  }
  if (changed) g.relink();
  return changed;
}

}  // namespace kiln::passes
