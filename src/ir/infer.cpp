#include "ir/infer.h"

#include <algorithm>
#include <unordered_set>

#include "ir/op.h"

namespace kiln {

namespace {

// Keeps what the file declared where inference knows less.
void merge_declared(ValueType& inferred, const ValueType& declared) {
  if (inferred.dtype == DType::kUndefined) inferred.dtype = declared.dtype;
  if (!inferred.shape) {
    inferred.shape = declared.shape;
    return;
  }
  if (declared.shape && declared.shape->size() == inferred.shape->size()) {
    for (size_t i = 0; i < inferred.shape->size(); ++i) {
      Dim& d = (*inferred.shape)[i];
      const Dim& dd = (*declared.shape)[i];
      if (!d.is_known() && (dd.is_known() || (d.symbol.empty() && !dd.symbol.empty()))) d = dd;
    }
  }
}

}  // namespace

std::string UnsupportedNode::str() const {
  std::string types;
  for (size_t i = 0; i < input_types.size(); ++i) types += (i ? ", " : "") + input_types[i];
  std::string full_op = domain.empty() ? op : domain + ":" + op;  // as Node::describe()
  return "node '" + name + "' (" + full_op + "-" + std::to_string(opset) + ") with input types (" + types +
         "): " + reason;
}

void infer_graph(Graph& g, std::vector<std::string>* unsupported) {
  std::vector<UnsupportedNode> nodes;
  infer_graph(g, &nodes);
  for (const UnsupportedNode& u : nodes) unsupported->push_back(u.str());
}

void infer_graph(Graph& g, std::vector<UnsupportedNode>* unsupported) {
  // Values downstream of an unsupported node have no type; nodes reading
  // them are checked for support but not inferred, so that the report lists
  // every unsupported node instead of stopping at a confusing type error.
  std::unordered_set<const Value*> untyped;
  // A subgraph may declare its inputs without an element type (Scan and Loop
  // bodies often do): the node that owns the body fills them in from what it
  // feeds and infers the body again (type_body_inputs in ops/control.cpp).
  // This first pass runs before that, so nodes reading such inputs are left
  // uninferred here, like nodes downstream of an unsupported node; inferring
  // them with an unknown type would throw spurious type errors (MatMul: "A and
  // B types differ") before the owner had a chance to type the body.
  for (const Value* in : g.inputs)
    if (in && in->type.dtype == DType::kUndefined) untyped.insert(in);
  // Likewise outer-scope values not typed yet (a nested If reading such a
  // body input); the owner's second pass reaches nested graphs too.
  for (auto& v : g.values)
    if (v->is_outer)
      if (const Value* outer = g.parent ? g.parent->find_in_scope(v->name) : nullptr) {
        v->type = outer->type;
        if (v->type.dtype == DType::kUndefined) untyped.insert(v.get());
      }
  for (auto& node : g.nodes) {
    std::string why;
    SupportIssue issue = SupportIssue::kNone;
    node->schema = OpRegistry::global().resolve(*node, &why, &issue);
    for (auto& [name, attr] : node->attrs) {
      if (attr.g) infer_graph(*attr.g, unsupported);
      for (auto& sub : attr.graphs) infer_graph(*sub, unsupported);
    }
    bool blocked =
        std::any_of(node->inputs.begin(), node->inputs.end(), [&](const Value* v) { return v && untyped.count(v); });
    if (!node->schema || blocked) {
      for (Value* out : node->outputs)
        if (out) untyped.insert(out);
    }
    if (blocked && node->schema) continue;
    if (!node->schema) {
      UnsupportedNode u{node->name, node->domain, node->op_type, node->opset, {}, issue, why};
      for (const Value* in : node->inputs) {
        DType t = in ? in->type.dtype : DType::kUndefined;
        u.input_types.push_back(!in ? "_" : t == DType::kUndefined ? "?" : dtype_name(t));
      }
      unsupported->push_back(std::move(u));
      continue;
    }
    if (!node->schema->infer) continue;
    std::vector<ValueType> declared;
    for (Value* out : node->outputs) declared.push_back(out ? out->type : ValueType{});
    InferContext ctx(*node);
    if (g.parent) {
      // In a branch or loop body, a node whose shapes do not check (If's
      // untaken branch squeezing a dim of 2) is an error only if it runs: its
      // outputs stay untyped and its kernel checks the real shapes.
      try {
        node->schema->infer(ctx);
      } catch (const Error&) {
        for (Value* out : node->outputs)
          if (out) out->type = ValueType{}, untyped.insert(out);
        continue;
      }
    } else {
      node->schema->infer(ctx);
    }
    for (size_t i = 0; i < node->outputs.size(); ++i)
      if (node->outputs[i]) merge_declared(node->outputs[i]->type, declared[i]);
  }
}

namespace {

// The one input a model must be fed: "--shapes 1x3x224x224" needs no name then.
std::string only_required_input(const Graph& g) {
  std::vector<std::string> required;
  for (const Value* v : g.inputs)
    if (!v->initializer) required.push_back(v->name);
  if (required.size() == 1) return required[0];
  std::string names;
  for (const auto& n : required) names += (names.empty() ? "" : ", ") + n;
  throw Error("a shape without an input name needs a model with one input; this one has " +
              std::to_string(required.size()) + (required.empty() ? "" : ": " + names) + " (write NAME:1x3x224x224)");
}

}  // namespace

void bind_input_shapes(Graph& g, const std::map<std::string, Shape>& shapes) {
  for (const auto& [given_name, shape] : shapes) {
    std::string name = given_name.empty() ? only_required_input(g) : given_name;
    Value* v = g.find(name);
    if (!v || !v->is_graph_input) throw Error("--shapes names '" + name + "', which is not an input of the model");
    if (v->type.shape && v->type.shape->size() != shape.size())
      throw Error("input '" + name + "' has rank " + std::to_string(v->type.shape->size()) + " but the given shape " +
                  shape_str(shape) + " has rank " + std::to_string(shape.size()));
    for (size_t i = 0; v->type.shape && i < shape.size(); ++i) {
      const Dim& d = (*v->type.shape)[i];
      if (d.is_known() && d.value != shape[i])
        throw Error("input '" + name + "' has fixed dim " + std::to_string(i) + " = " + std::to_string(d.value) +
                    ", the given shape " + shape_str(shape) + " disagrees");
    }
    v->type = ValueType::tensor(v->type.dtype, shape);
  }
}

void reinfer_node(Node& node) {
  if (!node.schema || !node.schema->infer) return;
  std::vector<ValueType> declared;
  for (Value* out : node.outputs) declared.push_back(out ? out->type : ValueType{});
  InferContext ctx(node);
  node.schema->infer(ctx);
  for (size_t i = 0; i < node.outputs.size(); ++i)
    if (node.outputs[i]) merge_declared(node.outputs[i]->type, declared[i]);
}

}  // namespace kiln
