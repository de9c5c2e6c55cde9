// ModelProto -> Graph: opsets, initializers, inputs/outputs, value_info,
// Constant nodes (folded to initializers), model-local functions (inlined)
// and subgraph attributes (recursively, with outer-scope references).
#include "onnx/import.h"

#include <fcntl.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <set>

#include "core/file.h"
#include "ir/op.h"
#include "kiln/error.h"
#include "onnx/tensor_proto.h"

namespace kiln {

namespace {

constexpr int64_t kMinIrVersion = 1;
constexpr int64_t kMaxIrVersion = 13;
constexpr int kMaxFunctionDepth = 32;
constexpr int kMaxGraphDepth = 64;
// Nodes function inlining may add to a model: a bound relative to
// the nodes the file spells out (a function called twice per level, 20
// levels deep, is a tiny file that would inline a million nodes), with a
// floor for small models and a ceiling for all.
constexpr int64_t kMinNodeBudget = int64_t{1} << 16;
constexpr int64_t kNodeBudgetPerFileNode = 256;
constexpr int64_t kMaxNodeBudget = int64_t{1} << 22;

int64_t count_nodes(const onnx::GraphProto& g) {
  int64_t n = g.node_size();
  for (const auto& np : g.node())
    for (const auto& a : np.attribute()) {
      if (a.has_g()) n += count_nodes(a.g());
      for (const auto& sub : a.graphs()) n += count_nodes(sub);
    }
  return n;
}

struct FunctionKey {
  std::string domain, name;
  bool operator<(const FunctionKey& o) const { return std::tie(domain, name) < std::tie(o.domain, o.name); }
};

class Importer {
 public:
  Importer(const onnx::ModelProto& m, std::string base_dir, std::string source, const ExternalResolver* resolver)
      : model_(m), base_dir_(std::move(base_dir)), source_(std::move(source)), resolver_(resolver) {
    int64_t file_nodes = count_nodes(m.graph());
    for (const auto& f : m.functions()) {
      functions_[{f.domain(), f.name()}] = &f;
      file_nodes += f.node_size();
    }
    node_budget_ = std::min(kMaxNodeBudget, std::max(kMinNodeBudget, file_nodes * kNodeBudgetPerFileNode));
  }

  std::shared_ptr<Graph> import_graph(const onnx::GraphProto& gp, Graph* parent,
                                      const std::map<std::string, int>& opsets, int depth);
  // The main graph: its initializers' data is freed from the proto once
  // copied into the Graph.
  std::shared_ptr<Graph> import_graph(onnx::GraphProto& gp, Graph* parent, const std::map<std::string, int>& opsets,
                                      int depth) {
    consumable_ = &gp;
    return import_graph(static_cast<const onnx::GraphProto&>(gp), parent, opsets, depth);
  }

 private:
  ValueType value_type(const onnx::TypeProto& tp, const std::string& what);
  Attribute attribute(const onnx::AttributeProto& ap, Graph* owner, const std::map<std::string, int>& opsets,
                      const std::string& what, int depth);
  void add_node(Graph& g, const onnx::NodeProto& np, const std::map<std::string, int>& opsets,
                const std::string& prefix, const std::map<std::string, std::string>& rename,
                const std::map<std::string, const onnx::AttributeProto*>* caller_attrs, int depth);
  void inline_function(Graph& g, const onnx::NodeProto& call, const onnx::FunctionProto& fn,
                       const std::string& outer_prefix, const std::map<std::string, std::string>& rename,
                       const std::map<std::string, const onnx::AttributeProto*>* caller_attrs, int depth);
  Value* lookup(Graph& g, const std::string& name, const std::string& who);
  std::string where(const std::string& s) const { return source_ + ": " + s; }

  const onnx::ModelProto& model_;
  onnx::GraphProto* consumable_ = nullptr;
  std::string base_dir_;
  std::string source_;
  const ExternalResolver* resolver_;  // null: external data is read from files under base_dir_
  std::map<FunctionKey, const onnx::FunctionProto*> functions_;
  int unique_ = 0;
  int64_t nodes_inlined_ = 0;
  int64_t node_budget_ = kMinNodeBudget;
};

ValueType Importer::value_type(const onnx::TypeProto& tp, const std::string& what) {
  ValueType t;
  const onnx::TypeProto_Tensor* tensor = nullptr;
  if (tp.has_tensor_type()) {
    tensor = &tp.tensor_type();
  } else if (tp.has_sequence_type()) {
    t.kind = ValueKind::kSequence;
    if (tp.sequence_type().elem_type().has_tensor_type()) tensor = &tp.sequence_type().elem_type().tensor_type();
  } else if (tp.has_optional_type()) {
    t.kind = ValueKind::kOptional;
    if (tp.optional_type().elem_type().has_tensor_type()) tensor = &tp.optional_type().elem_type().tensor_type();
  } else if (tp.value_case() == onnx::TypeProto::VALUE_NOT_SET) {
    return t;  // type left for inference
  } else {
    throw Error(where(what + ": only tensor, sequence and optional types are supported"));
  }
  if (!tensor) return t;
  if (tensor->elem_type() != 0 && !dtype_is_supported(tensor->elem_type()))
    throw UnsupportedError(where(what + ": element type " + std::to_string(tensor->elem_type()) + " is not supported"));
  t.dtype = static_cast<DType>(tensor->elem_type());
  if (t.kind == ValueKind::kTensor && tensor->has_shape()) {
    DimVector dims;
    for (const auto& d : tensor->shape().dim()) {
      if (d.has_dim_value()) {
        if (d.dim_value() < 0) throw Error(where(what + ": negative dimension " + std::to_string(d.dim_value())));
        dims.push_back(Dim::known(d.dim_value()));
      } else if (d.has_dim_param() && !d.dim_param().empty()) {
        dims.push_back(Dim::named(d.dim_param()));
      } else {
        dims.push_back(Dim::unknown());
      }
    }
    t.shape = std::move(dims);
  }
  return t;
}

Attribute Importer::attribute(const onnx::AttributeProto& ap, Graph* owner, const std::map<std::string, int>& opsets,
                              const std::string& what, int depth) {
  using K = Attribute::Kind;
  Attribute a;
  std::string w = what + " attribute '" + ap.name() + "'";
  auto type = ap.type();
  if (type == onnx::AttributeProto::UNDEFINED) {
    // IR < 2 files carry no type tag: infer it from the field that is set.
    if (ap.has_f())
      type = onnx::AttributeProto::FLOAT;
    else if (ap.has_i())
      type = onnx::AttributeProto::INT;
    else if (ap.has_s())
      type = onnx::AttributeProto::STRING;
    else if (ap.has_t())
      type = onnx::AttributeProto::TENSOR;
    else if (ap.has_g())
      type = onnx::AttributeProto::GRAPH;
    else if (ap.floats_size())
      type = onnx::AttributeProto::FLOATS;
    else if (ap.ints_size())
      type = onnx::AttributeProto::INTS;
    else if (ap.strings_size())
      type = onnx::AttributeProto::STRINGS;
    else if (ap.tensors_size())
      type = onnx::AttributeProto::TENSORS;
    else if (ap.graphs_size())
      type = onnx::AttributeProto::GRAPHS;
  }
  switch (type) {
    case onnx::AttributeProto::FLOAT:
      a.kind = K::kFloat;
      a.f = ap.f();
      break;
    case onnx::AttributeProto::INT:
      a.kind = K::kInt;
      a.i = ap.i();
      break;
    case onnx::AttributeProto::STRING:
      a.kind = K::kString;
      a.s = ap.s();
      break;
    case onnx::AttributeProto::TENSOR:
      a.kind = K::kTensor;
      a.t = tensor_from_proto(ap.t(), base_dir_, where(w), resolver_);
      break;
    case onnx::AttributeProto::GRAPH:
      a.kind = K::kGraph;
      a.g = import_graph(ap.g(), owner, opsets, depth + 1);
      break;
    case onnx::AttributeProto::FLOATS:
      a.kind = K::kFloats;
      a.floats.assign(ap.floats().begin(), ap.floats().end());
      break;
    case onnx::AttributeProto::INTS:
      a.kind = K::kInts;
      a.ints.assign(ap.ints().begin(), ap.ints().end());
      break;
    case onnx::AttributeProto::STRINGS:
      a.kind = K::kStrings;
      a.strings.assign(ap.strings().begin(), ap.strings().end());
      break;
    case onnx::AttributeProto::TENSORS:
      a.kind = K::kTensors;
      for (const auto& t : ap.tensors()) a.tensors.push_back(tensor_from_proto(t, base_dir_, where(w), resolver_));
      break;
    case onnx::AttributeProto::GRAPHS:
      a.kind = K::kGraphs;
      for (const auto& g : ap.graphs()) a.graphs.push_back(import_graph(g, owner, opsets, depth + 1));
      break;
    default: throw Error(where(w + " has an unsupported type " + std::to_string(static_cast<int>(ap.type()))));
  }
  return a;
}

Value* Importer::lookup(Graph& g, const std::string& name, const std::string& who) {
  if (Value* v = g.find(name)) return v;
  if (g.parent && g.parent->find_in_scope(name)) {
    Value* v = g.add_value(name);
    v->is_outer = true;
    return v;
  }
  throw Error(where(who + ": input '" + name + "' is not defined in the graph"));
}

// Converts a Constant node into the value it defines.
Tensor constant_value(const Node& n) {
  const auto& a = n.attrs;
  if (a.size() != 1) throw Error(n.describe() + ": Constant needs exactly one value attribute");
  const auto& [name, attr] = *a.begin();
  if (name == "value") return attr.t;
  if (name == "value_float") return Tensor::scalar_float(attr.f);
  if (name == "value_int") {
    Tensor t(DType::kInt64, {});
    *t.data<int64_t>() = attr.i;
    return t;
  }
  if (name == "value_floats") {
    Tensor t(DType::kFloat32, {static_cast<int64_t>(attr.floats.size())});
    std::copy(attr.floats.begin(), attr.floats.end(), t.data<float>());
    return t;
  }
  if (name == "value_ints") {
    Tensor t(DType::kInt64, {static_cast<int64_t>(attr.ints.size())});
    std::copy(attr.ints.begin(), attr.ints.end(), t.data<int64_t>());
    return t;
  }
  if (name == "value_string") return Tensor::from_strings({}, {attr.s});
  if (name == "value_strings") return Tensor::from_strings({static_cast<int64_t>(attr.strings.size())}, attr.strings);
  throw Error(n.describe() + ": Constant attribute '" + name + "' is not supported (sparse_value?)");
}

namespace {

// kiln:Fused<Op> (a node kiln fused something into, as onnx/export.cpp writes
// it) back to <Op> of its own domain and opset.
void restore_fused(Node& node, const std::string& who) {
  auto opset = node.attrs.find(kFusedOpsetAttr);
  if (node.domain != kKilnDomain || node.op_type.rfind("Fused", 0) != 0 || opset == node.attrs.end()) return;
  if (opset->second.kind != Attribute::Kind::kInt || opset->second.i < 1 || opset->second.i > 1000)
    throw Error(who + ": attribute " + kFusedOpsetAttr + " must be an opset version (an int from 1 to 1000)");
  auto domain = node.attrs.find(kFusedDomainAttr);
  if (domain != node.attrs.end() && domain->second.kind != Attribute::Kind::kString)
    throw Error(who + ": attribute " + kFusedDomainAttr + " must be a string");
  node.op_type = node.op_type.substr(5);
  node.domain = domain == node.attrs.end() ? "" : domain->second.s;
  node.opset = static_cast<int>(opset->second.i);
  node.attrs.erase(kFusedOpsetAttr);
  node.attrs.erase(kFusedDomainAttr);
  if (node.op_type.empty() || node.domain == kKilnDomain)
    throw Error(who + ": a kiln:Fused node names no op of another domain");
}

}  // namespace

void Importer::add_node(Graph& g, const onnx::NodeProto& np, const std::map<std::string, int>& opsets,
                        const std::string& prefix, const std::map<std::string, std::string>& rename,
                        const std::map<std::string, const onnx::AttributeProto*>* caller_attrs, int depth) {
  auto mapped = [&](const std::string& n) {
    if (n.empty()) return n;
    auto it = rename.find(n);
    return it != rename.end() ? it->second : prefix + n;
  };
  if (caller_attrs && ++nodes_inlined_ > node_budget_)  // a node of a function body
    throw Error(where("node '" + np.name() + "' (" + np.op_type() +
                      "): function inlining expands the model to more than " + std::to_string(node_budget_) +
                      " nodes (the limit, relative to the nodes in the file)"));
  auto fit = functions_.find({np.domain(), np.op_type()});
  if (fit != functions_.end()) {
    // Function formal names are bound to the call's actual names, which are
    // the caller's own (renamed or prefixed) names.
    inline_function(g, np, *fit->second, prefix, rename, caller_attrs, depth);
    return;
  }
  auto node = std::make_unique<Node>();
  node->name = np.name().empty() ? np.op_type() + "_" + std::to_string(g.nodes.size()) : prefix + np.name();
  node->op_type = np.op_type();
  node->domain = np.domain() == "ai.onnx" ? "" : np.domain();
  auto oit = opsets.find(node->domain);
  if (oit == opsets.end()) throw Error(where(node->describe() + ": domain '" + node->domain + "' has no opset_import"));
  node->opset = oit->second;
  std::string who = node->describe();
  for (const auto& ap : np.attribute()) {
    if (!ap.ref_attr_name().empty()) {
      // Attribute reference inside a function body: take the caller's value.
      if (!caller_attrs) throw Error(where(who + ": attribute reference outside a function"));
      auto it = caller_attrs->find(ap.ref_attr_name());
      if (it == caller_attrs->end()) continue;  // not given by the caller: attribute absent
      onnx::AttributeProto copy = *it->second;
      copy.set_name(ap.name());
      node->attrs[ap.name()] = attribute(copy, &g, opsets, who, depth);
    } else {
      node->attrs[ap.name()] = attribute(ap, &g, opsets, who, depth);
    }
  }
  restore_fused(*node, who);
  for (const auto& in : np.input()) node->inputs.push_back(in.empty() ? nullptr : lookup(g, mapped(in), who));
  for (const auto& out : np.output()) {
    if (out.empty()) {
      node->outputs.push_back(nullptr);
      continue;
    }
    Value* v = g.add_value(mapped(out));
    if (v->producer || v->initializer || v->is_graph_input)
      throw Error(where(who + ": output '" + v->name + "' is already defined elsewhere in the graph"));
    if (std::find(node->outputs.begin(), node->outputs.end(), v) != node->outputs.end())
      throw Error(where(who + ": output '" + v->name + "' is listed twice"));
    node->outputs.push_back(v);
  }
  if (node->op_type == "Constant" && node->domain.empty()) {
    if (node->outputs.size() != 1 || !node->outputs[0]) throw Error(where(who + ": Constant needs exactly one output"));
    Value* v = node->outputs[0];
    v->initializer = constant_value(*node);
    v->type = ValueType::tensor(v->initializer->dtype(), v->initializer->shape());
    return;  // folded: no node kept
  }
  Node* raw = g.add_node(std::move(node));
  for (Value* v : raw->outputs)
    if (v) v->producer = raw;
}

void Importer::inline_function(Graph& g, const onnx::NodeProto& call, const onnx::FunctionProto& fn,
                               const std::string& outer_prefix, const std::map<std::string, std::string>& outer_rename,
                               const std::map<std::string, const onnx::AttributeProto*>* outer_attrs, int depth) {
  if (depth > kMaxFunctionDepth)
    throw Error(where("function '" + fn.name() + "' nests deeper than " + std::to_string(kMaxFunctionDepth) +
                      " levels (recursive?)"));
  if (call.input_size() > fn.input_size() || call.output_size() > fn.output_size())
    throw Error(where("call of function '" + fn.name() + "' has more inputs or outputs than the function"));
  // The call's argument names are the caller's: bound the way the caller
  // binds its own names (its rename, else its prefix).
  auto mapped_outer = [&](const std::string& n) {
    if (n.empty()) return n;
    auto it = outer_rename.find(n);
    return it != outer_rename.end() ? it->second : outer_prefix + n;
  };
  std::string prefix = "__" + fn.name() + "_" + std::to_string(unique_++) + "__";
  std::map<std::string, std::string> rename;
  for (int i = 0; i < fn.input_size(); ++i)
    rename[fn.input(i)] = i < call.input_size() ? mapped_outer(call.input(i)) : "";
  for (int i = 0; i < fn.output_size(); ++i)
    rename[fn.output(i)] =
        i < call.output_size() && !call.output(i).empty() ? mapped_outer(call.output(i)) : prefix + fn.output(i);
  std::map<std::string, const onnx::AttributeProto*> attrs;
  for (const auto& a : call.attribute()) {
    if (!a.ref_attr_name().empty() && outer_attrs) {
      auto it = outer_attrs->find(a.ref_attr_name());
      if (it != outer_attrs->end()) attrs[a.name()] = it->second;
    } else {
      attrs[a.name()] = &a;
    }
  }
  std::map<std::string, int> opsets;
  for (const auto& o : fn.opset_import())
    opsets[o.domain() == "ai.onnx" ? "" : o.domain()] = static_cast<int>(o.version());
  for (const auto& o : model_.opset_import())
    opsets.emplace(o.domain() == "ai.onnx" ? "" : o.domain(), static_cast<int>(o.version()));
  for (const auto& np : fn.node()) add_node(g, np, opsets, prefix, rename, &attrs, depth + 1);
}

std::shared_ptr<Graph> Importer::import_graph(const onnx::GraphProto& gp, Graph* parent,
                                              const std::map<std::string, int>& opsets, int depth) {
  if (depth > kMaxGraphDepth) throw Error(where("subgraphs nest too deeply"));
  auto g = std::make_shared<Graph>();
  g->name = gp.name();
  g->parent = parent;
  g->opsets = opsets;
  std::string gname = "graph '" + gp.name() + "'";
  for (int i = 0; i < gp.initializer_size(); ++i) {
    const onnx::TensorProto& tp = gp.initializer(i);
    if (tp.name().empty()) throw Error(where(gname + ": an initializer has no name"));
    Value* v = g->add_value(tp.name());
    if (v->initializer) throw Error(where(gname + ": initializer '" + tp.name() + "' is defined twice"));
    v->initializer = tensor_from_proto(tp, base_dir_, where("initializer '" + tp.name() + "'"), resolver_);
    v->type = ValueType::tensor(v->initializer->dtype(), v->initializer->shape());
    if (&gp == consumable_) {
      onnx::TensorProto* owned = consumable_->mutable_initializer(i);
      onnx::TensorProto().Swap(owned);  // frees the data (Clear() would keep the capacity)
      owned->set_name(v->name);
    }
  }
  if (gp.sparse_initializer_size() > 0) throw Error(where(gname + ": sparse initializers are not supported"));
  for (const auto& vi : gp.input()) {
    Value* v = g->add_value(vi.name());
    if (v->is_graph_input) throw Error(where(gname + ": input '" + vi.name() + "' is listed twice"));
    v->is_graph_input = true;
    ValueType t = value_type(vi.type(), "input '" + vi.name() + "'");
    if (!v->initializer) v->type = t;
    g->inputs.push_back(v);
  }
  for (const auto& vi : gp.value_info()) {
    Value* v = g->add_value(vi.name());
    v->type = value_type(vi.type(), "value_info '" + vi.name() + "'");
  }
  // Nodes may reference each other in any order; resolve after all are read.
  // ONNX requires topological order, but some exporters don't honour it.
  // Inputs must exist when a node is added, so pre-create every node output.
  std::set<std::string> produced;
  for (const auto& np : gp.node())
    for (const auto& out : np.output())
      if (!out.empty()) produced.insert(out);
  for (const auto& name : produced) g->add_value(name);
  for (const auto& np : gp.node()) add_node(*g, np, opsets, "", {}, nullptr, depth);
  for (const auto& vi : gp.output()) {
    Value* v = g->find(vi.name());
    if (!v) {
      if (parent && parent->find_in_scope(vi.name())) {
        v = g->add_value(vi.name());
        v->is_outer = true;
      } else {
        throw Error(where(gname + ": output '" + vi.name() + "' is not produced by any node"));
      }
    }
    ValueType t = value_type(vi.type(), "output '" + vi.name() + "'");
    if (v->type.dtype == DType::kUndefined) v->type = t;
    g->outputs.push_back(v);
  }
  // A pre-created name that no node produced and nothing else defines is an
  // internal error of the file (a node output dropped, e.g. a Constant folded
  // does define it). Values are fine as long as every input resolves.
  g->relink();
  for (auto& n : g->nodes)
    for (Value* in : n->inputs)
      if (in && !in->producer && !in->initializer && !in->is_graph_input && !in->is_outer)
        throw Error(where(n->describe() + ": input '" + in->name + "' is never produced"));
  for (Value* out : g->outputs)
    if (!out->producer && !out->initializer && !out->is_graph_input && !out->is_outer)
      throw Error(where(gname + ": output '" + out->name + "' is never produced"));
  g->sort_topologically();
  return g;
}

}  // namespace

namespace {

void parse_model(google::protobuf::io::ZeroCopyInputStream& raw, const std::string& source, onnx::ModelProto* mp) {
  google::protobuf::io::CodedInputStream in(&raw);
  in.SetTotalBytesLimit(INT_MAX);
  in.SetRecursionLimit(200);
  if (!mp->ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
    throw Error(source + ": not a valid ONNX model (protobuf parse failed: truncated or not a ModelProto)");
}

// The parsed model is consumed: initializer data moves into the Graph and is
// freed from the proto as it goes, so a large model is never held twice.
Model import_model(onnx::ModelProto& mp, const std::string& base_dir, const std::string& source,
                   const ExternalResolver* resolver) {
  if (!mp.has_graph() || !mp.has_ir_version()) throw Error(source + ": not an ONNX model (no graph or no ir_version)");
  if (mp.ir_version() < kMinIrVersion || mp.ir_version() > kMaxIrVersion)
    throw Error(source + ": IR version " + std::to_string(mp.ir_version()) + " is not supported (supported: " +
                std::to_string(kMinIrVersion) + " to " + std::to_string(kMaxIrVersion) + ")");
  Model m;
  m.ir_version = mp.ir_version();
  m.producer_name = mp.producer_name();
  m.producer_version = mp.producer_version();
  m.source = source;
  for (const auto& o : mp.opset_import()) {
    if (o.version() < 1 || o.version() > 1000)
      throw Error(source + ": opset version " + std::to_string(o.version()) + " for domain '" + o.domain() +
                  "' is invalid");
    m.opsets[o.domain() == "ai.onnx" ? "" : o.domain()] = static_cast<int>(o.version());
  }
  if (mp.opset_import_size() == 0) m.opsets[""] = 1;  // IR < 3 files predate opset_import
  // A newer opset may have changed what an op means; running the newest
  // semantics kiln knows would be a silent wrong answer (ONNX Runtime refuses too).
  for (const auto& [domain, version] : m.opsets) {
    const int newest = OpRegistry::global().newest_opset(domain);
    if (newest > 0 && version > newest)
      throw Error(source + ": the model uses opset " + std::to_string(version) + " of domain '" +
                  (domain.empty() ? "ai.onnx" : domain) + "', newer than this kiln implements (up to " +
                  std::to_string(newest) + "); export it at opset " + std::to_string(newest) +
                  " or lower (torch.onnx.export(..., opset_version=" + std::to_string(newest) +
                  ")), or use a newer kiln");
  }
  Importer imp(mp, base_dir, source, resolver);
  m.graph = imp.import_graph(*mp.mutable_graph(), nullptr, m.opsets, 0);
  return m;
}

void parse_bytes(const void* data, size_t size, const std::string& source, onnx::ModelProto* mp) {
  if (size > static_cast<size_t>(INT_MAX))
    throw Error(source + ": file is larger than 2 GB; store the weights as external data");
  google::protobuf::io::ArrayInputStream raw(data, static_cast<int>(size));
  parse_model(raw, source, mp);
}

}  // namespace

Model load_onnx_bytes(const void* data, size_t size, const std::string& base_dir, const std::string& source) {
  onnx::ModelProto mp;
  parse_bytes(data, size, source, &mp);
  return import_model(mp, base_dir, source, nullptr);
}

Model load_onnx_bytes(const void* data, size_t size, const ExternalResolver& resolver, const std::string& source) {
  if (!resolver) throw Error(source + ": load_onnx_bytes was given an empty external data resolver");
  onnx::ModelProto mp;
  parse_bytes(data, size, source, &mp);
  return import_model(mp, "", source, &resolver);
}

Model load_onnx_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not a file");
  // Parsed straight from the file, not from a copy of it in memory.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || st.st_size > static_cast<off_t>(INT_MAX)) {
    ::close(fd);
    throw Error(path + ": file is larger than 2 GB; store the weights as external data");
  }
  onnx::ModelProto mp;
  try {
    google::protobuf::io::FileInputStream raw(fd);
    parse_model(raw, path, &mp);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
  // External data is read beside a model that is a regular file; a model
  // read from a pipe or device (/dev/stdin) has no folder of its own.
  std::string dir;
  if (S_ISREG(st.st_mode)) {
    dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
  }
  return import_model(mp, dir, path, nullptr);
}

}  // namespace kiln
