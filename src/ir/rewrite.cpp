#include "ir/rewrite.h"

#include <algorithm>

#include "core/dispatch.h"

namespace kiln {

const Tensor* constant_of(const Value* v) {
  if (!v || !v->initializer || v->is_graph_input || v->is_outer) return nullptr;
  return &*v->initializer;
}

bool is_graph_output(const Graph& g, const Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

bool only_read_by(const Graph& g, const Value* v, const Node* reader) {
  if (is_graph_output(g, v)) return false;
  for (const Node* c : v->consumers)
    if (c != reader) return false;
  return std::find(reader->inputs.begin(), reader->inputs.end(), v) != reader->inputs.end();
}

Node* producer_if(const Value* v, const char* op) {
  if (!v || !v->producer || !v->producer->domain.empty() || v->producer->op_type != op) return nullptr;
  return v->producer;
}

bool scalar_constant(const Value* v, double* out) {
  const Tensor* t = constant_of(v);
  if (!t || t->numel() != 1) return false;
  if (t->dtype() == DType::kFloat32)
    *out = t->data<float>()[0];
  else if (t->dtype() == DType::kFloat64)
    *out = t->data<double>()[0];
  else
    return false;
  return true;
}

namespace {
bool read_explicitly_everywhere(const Value* v) {
  for (const Node* c : v->consumers)
    if (std::find(c->inputs.begin(), c->inputs.end(), v) == c->inputs.end()) return false;
  return true;
}

// Unique in scope, so a new value in a subgraph never shadows an outer one
// that a nested body reads by name.
std::string unique_name(const Graph& g, const std::string& hint) {
  if (!g.find_in_scope(hint)) return hint;
  for (int i = 1;; ++i) {
    std::string name = hint + "_" + std::to_string(i);
    if (!g.find_in_scope(name)) return name;
  }
}

void rename(Graph& g, Value* v, const std::string& name) {
  g.by_name.erase(v->name);
  v->name = name;
  g.by_name[name] = v;
}
}  // namespace

bool replace_uses(Graph& g, Value* from, Value* to) {
  if (from == to || !read_explicitly_everywhere(from)) return false;
  if (is_graph_output(g, from)) {
    const bool plain = to->producer && !to->is_graph_input && !to->initializer && !to->is_outer;
    if (!plain || is_graph_output(g, to) || !read_explicitly_everywhere(to)) return false;
    const std::string name = from->name;
    rename(g, from, unique_name(g, name + ".replaced"));
    rename(g, to, name);
    std::replace(g.outputs.begin(), g.outputs.end(), from, to);
  }
  for (Node* c : from->consumers) {
    std::replace(c->inputs.begin(), c->inputs.end(), from, to);
    if (std::find(to->consumers.begin(), to->consumers.end(), c) == to->consumers.end()) to->consumers.push_back(c);
  }
  from->consumers.clear();
  return true;
}

Value* add_fresh_value(Graph& g, const std::string& hint) { return g.add_value(unique_name(g, hint)); }

Value* add_constant(Graph& g, const std::string& hint, Tensor t) {
  Value* v = add_fresh_value(g, hint);
  v->type = ValueType::tensor(t.dtype(), t.shape());
  v->initializer = std::move(t);
  return v;
}

Node* add_node(Graph& g, const std::string& op, const std::string& name, std::vector<Value*> inputs,
               std::vector<Value*> outputs, int opset) {
  auto n = std::make_unique<Node>();
  n->op_type = op;
  n->name = name;
  n->opset = opset;
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  Node* raw = g.add_node(std::move(n));
  for (Value* in : raw->inputs)
    if (in) in->consumers.push_back(raw);
  for (Value* out : raw->outputs)
    if (out) out->producer = raw;
  return raw;
}

Attribute ints_attr(std::vector<int64_t> v) {
  Attribute a;
  a.kind = Attribute::Kind::kInts;
  a.ints = std::move(v);
  return a;
}

Attribute int_attr(int64_t v) {
  Attribute a;
  a.kind = Attribute::Kind::kInt;
  a.i = v;
  return a;
}
Attribute float_attr(float v) {
  Attribute a;
  a.kind = Attribute::Kind::kFloat;
  a.f = v;
  return a;
}
Attribute string_attr(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = std::move(v);
  return a;
}

void detach_node(Graph& g, Node* n) {
  for (Value* in : n->inputs)
    if (in) in->consumers.erase(std::remove(in->consumers.begin(), in->consumers.end(), n), in->consumers.end());
  for (Value* out : n->outputs)
    if (out && out->producer == n) out->producer = nullptr;
  n->inputs.clear();
  n->outputs.clear();
}

std::vector<std::string> merged_origins(const std::vector<Node*>& nodes) {
  if (nodes.empty()) return {};
  Node merged;
  merged.origins = nodes[0]->origin_names();
  for (size_t i = 1; i < nodes.size(); ++i) merged.absorb_origins(*nodes[i]);
  return merged.origins;
}

void erase_detached_nodes(Graph& g) {
  std::erase_if(g.nodes, [](const std::unique_ptr<Node>& n) { return n->inputs.empty() && n->outputs.empty(); });
}

}  // namespace kiln
