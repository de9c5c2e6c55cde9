// Graph -> ModelProto, mirroring import.cpp: opset imports, initializers
// (inline or external), graph inputs/outputs, value_info for every typed
// intermediate value, nodes with all attribute kinds, and subgraphs
// recursively (outer-scope references are plain names, as in ONNX).
#include "onnx/export.h"

#include <algorithm>
#include <climits>
#include <unordered_set>

#include "core/file.h"
#include "kiln/error.h"
#include "onnx/tensor_proto.h"

namespace kiln {

namespace {

// The domain of the one-node functions that give a node its own opset (see
// Exporter::add_node_with_own_opset).
constexpr const char* kOpsetFunctionDomain = "kiln.opset";

// A node of another domain that carries kiln's own attributes (an epilogue
// fused into it: "kiln.epilogue") is not valid ONNX under its own name
// (onnx.checker: "Unrecognized attribute"). It is written as kiln:Fused<Op>,
// with its domain and opset in kiln.fused_domain / kiln.fused_opset, as ONNX
// Runtime writes com.microsoft:FusedConv; the importer turns it back
// (onnx/import.cpp).
bool written_as_fused(const Node& n) {
  if (n.domain == kKilnDomain) return false;
  return std::any_of(n.attrs.begin(), n.attrs.end(), [](const auto& a) { return a.first.rfind("kiln.", 0) == 0; });
}

// A function parameter's name: x<i> for input i, y<i> for output i. (Built
// by appending: GCC 12 warns falsely on "x" + std::to_string(i).)
std::string param(char kind, size_t i) {
  std::string s(1, kind);
  s += std::to_string(i);
  return s;
}

bool has_data(const Tensor& t) { return t.raw() != nullptr || t.nbytes() == 0; }

void set_type(const ValueType& t, onnx::TypeProto* tp) {
  onnx::TypeProto_Tensor* tensor = nullptr;
  switch (t.kind) {
    case ValueKind::kTensor:
      if (t.dtype == DType::kUndefined && !t.shape) return;  // no type: the importer leaves it to inference
      tensor = tp->mutable_tensor_type();
      break;
    case ValueKind::kSequence: tensor = tp->mutable_sequence_type()->mutable_elem_type()->mutable_tensor_type(); break;
    case ValueKind::kOptional: tensor = tp->mutable_optional_type()->mutable_elem_type()->mutable_tensor_type(); break;
  }
  if (t.dtype != DType::kUndefined) tensor->set_elem_type(static_cast<int>(t.dtype));
  if (t.kind != ValueKind::kTensor || !t.shape) return;  // the importer reads shapes of plain tensors only
  auto* shape = tensor->mutable_shape();                 // present even for rank 0: a scalar, not an unknown rank
  for (const Dim& d : *t.shape) {
    auto* dim = shape->add_dim();
    if (d.is_known())
      dim->set_dim_value(d.value);
    else if (!d.symbol.empty())
      dim->set_dim_param(d.symbol);
  }
}

void set_value_info(const Value& v, onnx::ValueInfoProto* vi) {
  vi->set_name(v.name);
  set_type(v.type, vi->mutable_type());
}

class Exporter {
 public:
  Exporter(const Model& model, const OnnxExportOptions& options, onnx::ModelProto* mp)
      : model_(model), options_(options), mp_(*mp) {}

  void run() {
    if (!model_.graph) throw Error(model_.source + ": the model has no graph to export");
    mp_.set_ir_version(options_.ir_version ? options_.ir_version : std::max<int64_t>(model_.ir_version, 8));
    mp_.set_producer_name(model_.producer_name.empty() ? "kiln" : model_.producer_name);
    mp_.set_producer_version(model_.producer_name.empty() ? KILN_VERSION : model_.producer_version);
    opsets_ = model_.opsets;
    collect_domains(*model_.graph);
    add_graph(*model_.graph, mp_.mutable_graph());
    for (const auto& [domain, version] : opsets_) {
      auto* o = mp_.add_opset_import();
      o->set_domain(domain);
      o->set_version(version);
    }
  }

 private:
  void collect_domains(const Graph& g);
  bool needs_own_opset(const Node& n) const;
  void add_graph(const Graph& g, onnx::GraphProto* gp);
  void add_node(const Node& n, onnx::NodeProto* np, bool formal_names = false);
  void add_node_with_own_opset(const Node& n, onnx::NodeProto* call);
  void add_attribute(const std::string& name, const Attribute& a, const Node& n, onnx::AttributeProto* ap);
  void add_initializer(const Value& v, onnx::TensorProto* tp);

  const Model& model_;
  const OnnxExportOptions& options_;
  onnx::ModelProto& mp_;
  std::map<std::string, int> opsets_;  // what opset_import will say
  int functions_ = 0;
};

// A domain the model does not import (kiln's own, added by passes; or any,
// for a graph built by hand) is written at the highest version its nodes use.
void Exporter::collect_domains(const Graph& g) {
  for (const auto& n : g.nodes) {
    if (written_as_fused(*n) && !model_.opsets.count(kKilnDomain)) {
      int& v = opsets_[kKilnDomain];
      v = std::max(v, 1);
    }
    if (!model_.opsets.count(n->domain)) {
      int& v = opsets_[n->domain];
      v = std::max({v, n->opset, 1});
    }
    for (const auto& [name, a] : n->attrs) {
      if (a.g) collect_domains(*a.g);
      for (const auto& sub : a.graphs) collect_domains(*sub);
    }
  }
}

// One opset version per domain is all a ModelProto graph can say, but a
// pass may make a node at another one (a Gelu-20 in an opset-17 model, a
// Mul-14 from folding a BatchNormalization), and function inlining keeps the
// function's own opsets. Read back at the model's version, such an op could
// mean something else or not exist. kiln's own ops mean the same at every
// version, so they never need this.
bool Exporter::needs_own_opset(const Node& n) const {
  if (n.opset <= 0 || n.domain == kKilnDomain || written_as_fused(n)) return false;
  return n.opset != opsets_.at(n.domain);
}

void Exporter::add_graph(const Graph& g, onnx::GraphProto* gp) {
  gp->set_name(g.name);
  // Passes leave dead values behind in g.values; only values that the graph
  // still reads or defines are written.
  std::unordered_set<const Value*> used(g.inputs.begin(), g.inputs.end());
  std::unordered_set<const Value*> produced, outputs(g.outputs.begin(), g.outputs.end());
  for (const auto& n : g.nodes) {
    for (const Value* v : n->inputs) used.insert(v);
    for (const Value* v : g.implicit_inputs(*n)) used.insert(v);
    for (const Value* v : n->outputs) produced.insert(v);
  }
  used.insert(g.outputs.begin(), g.outputs.end());
  for (const auto& v : g.values)
    if (v->initializer && !v->is_outer && !produced.count(v.get()) && used.count(v.get()))
      add_initializer(*v, gp->add_initializer());
  for (const Value* v : g.inputs) set_value_info(*v, gp->add_input());
  for (const auto& n : g.nodes) {
    if (needs_own_opset(*n))
      add_node_with_own_opset(*n, gp->add_node());
    else
      add_node(*n, gp->add_node());
    for (const Value* v : n->outputs)
      if (v && !outputs.count(v) && v->type.dtype != DType::kUndefined) set_value_info(*v, gp->add_value_info());
  }
  for (const Value* v : g.outputs) set_value_info(*v, gp->add_output());
}

// formal_names: inside a function body, inputs and outputs are the
// function's parameters x<i> / y<i> ("" stays "" for an omitted one).
void Exporter::add_node(const Node& n, onnx::NodeProto* np, bool formal_names) {
  np->set_name(n.name);
  const bool fused = written_as_fused(n);
  np->set_op_type(fused ? "Fused" + n.op_type : n.op_type);
  np->set_domain(fused ? kKilnDomain : n.domain);
  if (fused) {
    onnx::AttributeProto* opset = np->add_attribute();
    opset->set_name(kFusedOpsetAttr);
    opset->set_type(onnx::AttributeProto::INT);
    opset->set_i(n.opset > 0 ? n.opset : opsets_.at(n.domain));
    if (!n.domain.empty()) {
      onnx::AttributeProto* domain = np->add_attribute();
      domain->set_name(kFusedDomainAttr);
      domain->set_type(onnx::AttributeProto::STRING);
      domain->set_s(n.domain);
    }
  }
  for (size_t i = 0; i < n.inputs.size(); ++i)
    np->add_input(!n.inputs[i] ? "" : formal_names ? param('x', i) : n.inputs[i]->name);
  for (size_t i = 0; i < n.outputs.size(); ++i)
    np->add_output(!n.outputs[i] ? "" : formal_names ? param('y', i) : n.outputs[i]->name);
  for (const auto& [name, a] : n.attrs) add_attribute(name, a, n, np->add_attribute());
}

// ONNX's way to mix opset versions: a model-local function imports its own,
// and the importer inlines functions at their opsets. So the node becomes a
// call of a one-node function made for it. The call passes only the inputs
// and outputs that are present, since function parameters bind by position.
void Exporter::add_node_with_own_opset(const Node& n, onnx::NodeProto* call) {
  onnx::FunctionProto* f = mp_.add_functions();
  f->set_name(n.op_type + "_" + std::to_string(n.opset) + "_" + std::to_string(functions_++));
  f->set_domain(kOpsetFunctionDomain);
  auto* o = f->add_opset_import();
  o->set_domain(n.domain);
  o->set_version(n.opset);
  add_node(n, f->add_node(), /*formal_names=*/true);
  call->set_name(n.name);
  call->set_op_type(f->name());
  call->set_domain(kOpsetFunctionDomain);
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    if (!n.inputs[i]) continue;
    f->add_input(param('x', i));
    call->add_input(n.inputs[i]->name);
  }
  for (size_t i = 0; i < n.outputs.size(); ++i) {
    if (!n.outputs[i]) continue;
    f->add_output(param('y', i));
    call->add_output(n.outputs[i]->name);
  }
  opsets_.emplace(kOpsetFunctionDomain, 1);
}

void Exporter::add_attribute(const std::string& name, const Attribute& a, const Node& n, onnx::AttributeProto* ap) {
  using K = Attribute::Kind;
  auto tensor = [&](const Tensor& t, onnx::TensorProto* tp) {
    if (!has_data(t))
      throw Error(model_.source + ": " + n.describe() + " attribute '" + name + "': its tensor has no data");
    tensor_to_proto(t, "", tp);
  };
  ap->set_name(name);
  switch (a.kind) {
    case K::kFloat:
      ap->set_type(onnx::AttributeProto::FLOAT);
      ap->set_f(a.f);
      break;
    case K::kInt:
      ap->set_type(onnx::AttributeProto::INT);
      ap->set_i(a.i);
      break;
    case K::kString:
      ap->set_type(onnx::AttributeProto::STRING);
      ap->set_s(a.s);
      break;
    case K::kTensor:
      ap->set_type(onnx::AttributeProto::TENSOR);
      tensor(a.t, ap->mutable_t());
      break;
    case K::kGraph:
      ap->set_type(onnx::AttributeProto::GRAPH);
      add_graph(*a.g, ap->mutable_g());
      break;
    case K::kFloats:
      ap->set_type(onnx::AttributeProto::FLOATS);
      ap->mutable_floats()->Add(a.floats.begin(), a.floats.end());
      break;
    case K::kInts:
      ap->set_type(onnx::AttributeProto::INTS);
      ap->mutable_ints()->Add(a.ints.begin(), a.ints.end());
      break;
    case K::kStrings:
      ap->set_type(onnx::AttributeProto::STRINGS);
      for (const auto& s : a.strings) ap->add_strings(s);
      break;
    case K::kTensors:
      ap->set_type(onnx::AttributeProto::TENSORS);
      for (const auto& t : a.tensors) tensor(t, ap->add_tensors());
      break;
    case K::kGraphs:
      ap->set_type(onnx::AttributeProto::GRAPHS);
      for (const auto& g : a.graphs) add_graph(*g, ap->add_graphs());
      break;
    case K::kUndefined: throw Error(model_.source + ": " + n.describe() + " attribute '" + name + "' has no value");
  }
}

void Exporter::add_initializer(const Value& v, onnx::TensorProto* tp) {
  const Tensor& t = *v.initializer;
  ExternalRef ref;
  if (t.dtype() != DType::kString && options_.external && options_.external(v, t, &ref)) {
    const auto nbytes = static_cast<int64_t>(t.nbytes());
    if (ref.location.empty() || ref.offset < 0 || ref.length != nbytes)
      throw Error(model_.source + ": initializer '" + v.name + "': the external callback gave location '" +
                  ref.location + "', offset " + std::to_string(ref.offset) + ", length " + std::to_string(ref.length) +
                  " (needs a location and length " + std::to_string(nbytes) + ")");
    tp->set_name(v.name);
    tp->set_data_type(static_cast<int>(t.dtype()));
    for (int64_t d : t.shape()) tp->add_dims(d);
    tp->set_data_location(onnx::TensorProto::EXTERNAL);
    const std::pair<const char*, std::string> keys[] = {
        {"location", ref.location}, {"offset", std::to_string(ref.offset)}, {"length", std::to_string(ref.length)}};
    for (const auto& [key, value] : keys) {
      auto* kv = tp->add_external_data();
      kv->set_key(key);
      kv->set_value(value);
    }
    return;
  }
  if (!has_data(t))
    throw Error(model_.source + ": initializer '" + v.name +
                "' has no data (freed after a kernel packed it); export it through OnnxExportOptions::external");
  tensor_to_proto(t, v.name, tp);
}

}  // namespace

std::string export_onnx(const Model& model, const OnnxExportOptions& options) {
  onnx::ModelProto mp;
  Exporter(model, options, &mp).run();
  if (mp.ByteSizeLong() > static_cast<size_t>(INT_MAX))
    throw Error(model.source +
                ": the exported model is larger than protobuf's 2 GB; store the weights as external "
                "data (OnnxExportOptions::external)");
  std::string bytes;
  if (!mp.SerializeToString(&bytes)) throw Error(model.source + ": serializing the exported model failed");
  return bytes;
}

void save_onnx(const Model& model, const std::string& path, const OnnxExportOptions& options) {
  write_file(path, export_onnx(model, options));
}

}  // namespace kiln
