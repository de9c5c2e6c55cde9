#include "ir/graph.h"

#include <algorithm>
#include <sstream>
#include <unordered_set>

#include "kiln/error.h"

namespace kiln {

bool ValueType::is_static() const {
  if (!shape) return false;
  for (const Dim& d : *shape)
    if (!d.is_known()) return false;
  return true;
}

Shape ValueType::static_shape() const {
  Shape s;
  for (const Dim& d : *shape) s.push_back(d.value);
  return s;
}

std::string ValueType::str() const {
  std::string s = kind == ValueKind::kSequence   ? "seq(" + dtype_name(dtype) + ")"
                  : kind == ValueKind::kOptional ? "optional(" + dtype_name(dtype) + ")"
                                                 : dtype_name(dtype);
  if (!shape) return s + "[?]";
  s += "[";
  for (size_t i = 0; i < shape->size(); ++i) {
    if (i) s += "x";
    s += (*shape)[i].str();
  }
  return s + "]";
}

ValueType ValueType::tensor(DType t, Shape s) {
  ValueType v;
  v.dtype = t;
  v.shape = DimVector{};
  for (int64_t d : s) v.shape->push_back(Dim::known(d));
  return v;
}

std::string Node::describe() const {
  std::string op = domain.empty() ? op_type : domain + ":" + op_type;
  return "node '" + name + "' (" + op + "-" + std::to_string(opset) + ")";
}

namespace {
const Attribute* get_attr(const Node& n, const std::string& name, Attribute::Kind kind) {
  auto it = n.attrs.find(name);
  if (it == n.attrs.end()) return nullptr;
  if (it->second.kind != kind) throw Error(n.describe() + ": attribute '" + name + "' has the wrong type");
  return &it->second;
}
}  // namespace

int64_t Node::attr_int(const std::string& n, int64_t def) const {
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kInt);
  return a ? a->i : def;
}
float Node::attr_float(const std::string& n, float def) const {
  auto it = attrs.find(n);
  if (it != attrs.end() && it->second.kind == Attribute::Kind::kInt) return static_cast<float>(it->second.i);
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kFloat);
  return a ? a->f : def;
}
std::string Node::attr_string(const std::string& n, const std::string& def) const {
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kString);
  return a ? a->s : def;
}
std::vector<int64_t> Node::attr_ints(const std::string& n, std::vector<int64_t> def) const {
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kInts);
  return a ? a->ints : def;
}
std::vector<float> Node::attr_floats(const std::string& n, std::vector<float> def) const {
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kFloats);
  return a ? a->floats : def;
}
std::vector<std::string> Node::attr_strings(const std::string& n) const {
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kStrings);
  return a ? a->strings : std::vector<std::string>{};
}
const Tensor* Node::attr_tensor(const std::string& n) const {
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kTensor);
  return a ? &a->t : nullptr;
}
const Graph* Node::attr_graph(const std::string& n) const {
  const Attribute* a = get_attr(*this, n, Attribute::Kind::kGraph);
  return a ? a->g.get() : nullptr;
}

Value* Graph::find(const std::string& name) const {
  auto it = by_name.find(name);
  return it == by_name.end() ? nullptr : it->second;
}

const Value* Graph::find_in_scope(const std::string& name) const {
  for (const Graph* g = this; g; g = g->parent) {
    Value* v = g->find(name);
    if (v && !v->is_outer) return v;
  }
  return nullptr;
}

Value* Graph::add_value(const std::string& name) {
  if (Value* v = find(name)) return v;
  auto v = std::make_unique<Value>();
  v->name = name;
  v->index = static_cast<int>(values.size());
  Value* raw = v.get();
  values.push_back(std::move(v));
  by_name[name] = raw;
  return raw;
}

std::vector<std::string> Node::origin_names() const {
  if (!origins.empty()) return origins;
  return {name};
}

void Node::absorb_origins(const Node& other) {
  if (&other == this) return;
  if (origins.empty()) origins.push_back(name);
  if (origin_index.size() != origins.size()) origin_index = {origins.begin(), origins.end()};
  auto add = [&](const std::string& n) {
    if (origin_index.insert(n).second) origins.push_back(n);
  };
  if (other.origins.empty()) {
    add(other.name);
  } else {
    for (const std::string& n : other.origins) add(n);
  }
}

Node* Graph::add_node(std::unique_ptr<Node> node) {
  nodes.push_back(std::move(node));
  return nodes.back().get();
}

namespace {
void collect_outer_names(const Graph& sub, std::vector<std::string>* names) {
  for (const auto& v : sub.values)
    if (v->is_outer) names->push_back(v->name);
  for (const auto& n : sub.nodes)
    for (const auto& [k, a] : n->attrs) {
      if (a.g) collect_outer_names(*a.g, names);
      for (const auto& g : a.graphs) collect_outer_names(*g, names);
    }
}
}  // namespace

std::vector<Value*> Graph::implicit_inputs(const Node& node) const {
  std::vector<std::string> names;
  for (const auto& [k, a] : node.attrs) {
    if (a.g) collect_outer_names(*a.g, &names);
    for (const auto& g : a.graphs) collect_outer_names(*g, &names);
  }
  std::vector<Value*> out;
  for (const auto& name : names) {
    Value* v = find(name);
    if (v && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  }
  return out;
}

void Graph::relink() {
  for (auto& v : values) {
    v->producer = nullptr;
    v->consumers.clear();
  }
  for (auto& n : nodes) {
    for (Value* in : n->inputs)
      if (in) in->consumers.push_back(n.get());
    for (Value* in : implicit_inputs(*n)) in->consumers.push_back(n.get());
    for (Value* out : n->outputs)
      if (out) out->producer = n.get();
  }
}

void Graph::sort_topologically() {
  relink();
  // Kahn's algorithm, stable with respect to the file's order.
  std::unordered_map<const Node*, int> pending;
  std::vector<Node*> ready;
  for (auto& n : nodes) {
    int deps = 0;
    for (Value* in : n->inputs)
      if (in && in->producer) ++deps;
    for (Value* in : implicit_inputs(*n))
      if (in->producer) ++deps;
    pending[n.get()] = deps;
  }
  std::vector<std::unique_ptr<Node>> sorted;
  std::unordered_map<const Node*, std::unique_ptr<Node>> owned;
  for (auto& n : nodes) {
    if (pending[n.get()] == 0) ready.push_back(n.get());
    owned[n.get()] = std::move(n);
  }
  size_t head = 0;
  while (head < ready.size()) {
    Node* n = ready[head++];
    sorted.push_back(std::move(owned[n]));
    for (Value* out : n->outputs) {
      if (!out) continue;
      for (Node* c : out->consumers) {
        // A node may read the same value twice; each read was counted.
        if (--pending[c] == 0) ready.push_back(c);
      }
    }
  }
  if (sorted.size() != pending.size()) {
    for (auto& [ptr, node] : owned)
      if (node) {
        std::string name = node->describe();
        // Put everything back before reporting so the graph stays valid.
        for (auto& [p2, n2] : owned)
          if (n2) sorted.push_back(std::move(n2));
        nodes = std::move(sorted);
        throw Error("graph '" + this->name + "' has a cycle through " + name);
      }
  }
  nodes = std::move(sorted);
}

std::string Graph::dump() const {
  std::ostringstream os;
  os << "graph " << name << "\n";
  for (Value* v : inputs) os << "  input " << v->name << ": " << v->type.str() << "\n";
  for (auto& n : nodes) {
    os << "  ";
    for (size_t i = 0; i < n->outputs.size(); ++i)
      os << (i ? ", " : "") << (n->outputs[i] ? n->outputs[i]->name + ": " + n->outputs[i]->type.str() : "_");
    os << " = " << n->op_type;
    // A fused element-wise epilogue (ir/epilogue.h) shows as Conv+Relu.
    auto epilogue = n->attrs.find("kiln.epilogue");
    if (epilogue != n->attrs.end())
      for (const std::string& step : epilogue->second.strings) os << "+" << step;
    os << "(";
    for (size_t i = 0; i < n->inputs.size(); ++i) os << (i ? ", " : "") << (n->inputs[i] ? n->inputs[i]->name : "_");
    os << ")\n";
  }
  for (Value* v : outputs) os << "  output " << v->name << ": " << v->type.str() << "\n";
  return os.str();
}

}  // namespace kiln
