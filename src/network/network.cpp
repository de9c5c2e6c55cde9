// kiln::Network's state, tensors and results; the layers are in
// network_layers.cpp and network_shapes.cpp.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "network/builder.h"
#include "onnx/export.h"

namespace kiln {

// ---------------------------------------------------------------- tensors

const std::string& NetworkTensor::name() const {
  if (!value_) throw Error("NetworkTensor: an empty tensor has no name");
  return value_->name;
}

DType NetworkTensor::dtype() const { return value_ ? value_->type.dtype : DType::kUndefined; }

int NetworkTensor::rank() const { return value_ ? value_->type.rank() : -1; }

Shape NetworkTensor::shape() const {
  Shape s;
  if (value_ && value_->type.shape)
    for (const Dim& d : *value_->type.shape) s.push_back(d.is_known() ? d.value : -1);
  return s;
}

std::vector<NetworkDim> NetworkTensor::dims() const {
  std::vector<NetworkDim> out;
  if (value_ && value_->type.shape)
    for (const Dim& d : *value_->type.shape) {
      NetworkDim nd(d.value);
      nd.symbol = d.symbol;
      out.push_back(nd);
    }
  return out;
}

std::string NetworkTensor::str() const {
  if (!value_) return "<empty>";
  std::string s = dtype_name(value_->type.dtype);
  if (!value_->type.shape) return s + "[?]";
  s += "[";
  for (size_t i = 0; i < value_->type.shape->size(); ++i) s += (i ? " x " : "") + (*value_->type.shape)[i].str();
  return s + "]";
}

// ---------------------------------------------------------- LayerBuilder

LayerBuilder::LayerBuilder(Network::Impl& impl, std::string kind, const std::string& name)
    : impl_(impl), kind_(std::move(kind)) {
  Graph& g = impl_.graph();
  if (name.empty()) {
    // Default names: kind and a counter ("Conv_0"), skipping names in use.
    int& counter = impl_.default_name_counters[kind_];
    do name_ = kind_ + "_" + std::to_string(counter++);
    while (impl_.layer_names.count(name_) || g.find(name_));
  } else {
    name_ = name;
    if (impl_.layer_names.count(name_)) throw error("a layer of that name exists already");
    if (g.find(name_)) throw error("the name is already used by a tensor of the network");
  }
  first_node_ = g.nodes.size();
  first_value_ = g.values.size();
}

LayerBuilder::~LayerBuilder() {
  if (done_) return;
  // Roll back: the nodes and values this layer added are the last ones.
  Graph& g = impl_.graph();
  for (size_t i = first_node_; i < g.nodes.size(); ++i) detach_node(g, g.nodes[i].get());
  g.nodes.resize(first_node_);
  for (size_t i = first_value_; i < g.values.size(); ++i) g.by_name.erase(g.values[i]->name);
  g.values.resize(first_value_);
}

Error LayerBuilder::error(const std::string& message) const {
  return Error("layer '" + name_ + "' (" + kind_ + "): " + message);
}

Value* LayerBuilder::in(const NetworkTensor& t, const char* what) const {
  Value* v = NetworkAccess::value(t);
  if (!v) throw error(std::string(what) + " is an empty NetworkTensor");
  if (NetworkAccess::owner(t) != &impl_) throw error(std::string(what) + " '" + v->name + "' is of another network");
  return v;
}

Value* LayerBuilder::weight(const Tensor& t, const std::string& suffix) {
  if (!t.defined()) throw error(suffix + " is an empty tensor");
  if (t.empty_storage() && t.numel() > 0) throw error(suffix + " has no data");
  return add_constant(impl_.graph(), name_ + "." + suffix, t);
}

Value* LayerBuilder::ints(const std::vector<int64_t>& v, const std::string& suffix) {
  Tensor t(DType::kInt64, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return add_constant(impl_.graph(), name_ + "." + suffix, t);
}

Value* LayerBuilder::scalar(double v, DType dtype, const std::string& suffix) {
  Tensor t(dtype, {});
  if (dtype == DType::kFloat32)
    t.data<float>()[0] = static_cast<float>(v);
  else if (dtype == DType::kFloat64)
    t.data<double>()[0] = v;
  else
    throw error("needs a float or double input, got " + dtype_name(dtype));
  return add_constant(impl_.graph(), name_ + "." + suffix, t);
}

Node* LayerBuilder::node(const std::string& op, std::vector<Value*> inputs, const std::string& part,
                         std::map<std::string, Attribute> attrs, int outputs, const std::string& domain, int opset) {
  Graph& g = impl_.graph();
  if (!domain.empty()) {
    // One opset per domain in a model: the first custom layer of a domain
    // fixes it.
    auto [it, added] = impl_.model.opsets.emplace(domain, opset);
    if (!added && it->second != opset)
      throw error("domain '" + domain + "' is already used at opset " + std::to_string(it->second) + ", not " +
                  std::to_string(opset));
    g.opsets[domain] = opset;
  }
  const std::string node_name = part.empty() ? name_ : name_ + "/" + part;
  std::vector<Value*> outs;
  for (int i = 0; i < outputs; ++i)
    outs.push_back(add_fresh_value(g, outputs == 1 ? node_name : node_name + "/out" + std::to_string(i)));
  Node* n = add_node(g, op, node_name, std::move(inputs), std::move(outs), domain.empty() ? kNetworkOpset : opset);
  n->domain = domain;
  n->attrs = std::move(attrs);
  // Errors of the layer's main node read as the layer's own; those of its
  // inner nodes keep the node's description.
  auto fail = [&](std::string msg) {
    const std::string prefix = n->describe() + ": ";
    if (part.empty() && msg.rfind(prefix, 0) == 0)
      msg = msg.substr(prefix.size());
    else if (msg.rfind(prefix, 0) != 0)
      msg = prefix + msg;
    return error(msg);
  };
  std::string why;
  n->schema = OpRegistry::global().resolve(*n, &why);
  if (!n->schema) throw fail(why);
  try {
    if (n->schema->infer) {
      InferContext ctx(*n);
      n->schema->infer(ctx);
    }
  } catch (const Error& e) {
    throw fail(e.what());
  }
  return n;
}

NetworkTensor LayerBuilder::finish(Value* output) { return finish(std::vector<Value*>{output})[0]; }

std::vector<NetworkTensor> LayerBuilder::finish(const std::vector<Value*>& outputs) {
  done_ = true;
  impl_.layer_names.insert(name_);
  ++impl_.layers;
  std::vector<NetworkTensor> out;
  for (Value* v : outputs) out.push_back(NetworkAccess::make(&impl_, v));
  return out;
}

// --------------------------------------------------------------- helpers

Dim dim_of(const Value* v, int64_t i) {
  if (!v->type.shape) return Dim::unknown();
  const int64_t r = static_cast<int64_t>(v->type.shape->size());
  if (i < 0) i += r;
  if (i < 0 || i >= r) return Dim::unknown();
  return (*v->type.shape)[static_cast<size_t>(i)];
}

Tensor transpose_2d(const Tensor& t) {
  const int64_t rows = t.dim(0), cols = t.dim(1);
  const size_t es = dtype_size(t.dtype());
  Tensor out(t.dtype(), {cols, rows});
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.raw());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst + static_cast<size_t>(c * rows + r) * es, src + static_cast<size_t>(r * cols + c) * es, es);
  return out;
}

Tensor rows_of(const Tensor& t, int64_t begin, int64_t end) {
  Shape s = t.shape();
  s[0] = end - begin;
  Tensor out(t.dtype(), s);
  const size_t row_bytes = t.dim(0) ? t.nbytes() / static_cast<size_t>(t.dim(0)) : 0;
  std::memcpy(out.raw(), static_cast<const char*>(t.raw()) + static_cast<size_t>(begin) * row_bytes,
              static_cast<size_t>(end - begin) * row_bytes);
  return out;
}

// --------------------------------------------------------------- Network

Network::Network(std::string name) : impl_(std::make_unique<Impl>()) {
  Model& m = impl_->model;
  m.ir_version = 8;
  m.producer_name = "kiln-network";
  m.producer_version = version();
  m.opsets[""] = kNetworkOpset;
  m.graph = std::make_shared<Graph>();
  m.graph->name = std::move(name);
  m.graph->opsets = m.opsets;
  m.source = "network '" + m.graph->name + "'";
}

Network::~Network() = default;
Network::Network(Network&&) noexcept = default;
Network& Network::operator=(Network&&) noexcept = default;

const std::string& Network::name() const { return impl_->model.graph->name; }
const Model& Network::model() const { return impl_->model; }
size_t Network::num_layers() const { return impl_->layers; }

NetworkTensor Network::input(const std::string& name, DType dtype, const std::vector<NetworkDim>& dims) {
  Graph& g = impl_->graph();
  auto fail = [&](const std::string& msg) { return Error("input '" + name + "': " + msg); };
  if (name.empty()) throw Error("an input needs a name");
  if (g.find(name) || impl_->layer_names.count(name)) throw fail("the name is already used in the network");
  if (!dtype_is_supported(static_cast<int32_t>(dtype)) || dtype == DType::kUndefined)
    throw fail("unsupported element type");
  ValueType type;
  type.dtype = dtype;
  type.shape = DimVector{};
  for (const NetworkDim& d : dims) {
    if (!d.symbol.empty())
      type.shape->push_back(Dim::named(d.symbol));
    else if (d.size >= 0)
      type.shape->push_back(Dim::known(d.size));
    else
      throw fail("a dim is negative; name it (\"batch\") to make it dynamic");
  }
  Value* v = g.add_value(name);
  v->type = type;
  v->is_graph_input = true;
  g.inputs.push_back(v);
  return NetworkAccess::make(impl_.get(), v);
}

NetworkTensor Network::constant(const Tensor& value, const std::string& name) {
  LayerBuilder b(*impl_, "Constant", name);
  if (!value.defined()) throw b.error("the tensor is empty");
  Graph& g = impl_->graph();
  // The constant takes the layer's name itself, so that it reads as named.
  Value* v = g.add_value(b.name());
  v->type = ValueType::tensor(value.dtype(), value.shape());
  v->initializer = value;
  return b.finish(v);
}

NetworkTensor Network::constant(float value, const std::string& name) {
  return constant(Tensor::scalar_float(value), name);
}

void Network::mark_output(NetworkTensor t, const std::string& name) {
  Graph& g = impl_->graph();
  Value* v = NetworkAccess::value(t);
  if (!v) throw Error("mark_output: empty NetworkTensor");
  if (NetworkAccess::owner(t) != impl_.get()) throw Error("mark_output: '" + v->name + "' is of another network");
  const std::string out_name = name.empty() ? v->name : name;
  const bool is_output = std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
  if (out_name == v->name && !is_output && v->producer) {
    g.outputs.push_back(v);
    return;
  }
  // A plain layer output takes the new name; inputs, constants and values
  // already marked are passed through an Identity, since their names are
  // needed as they are.
  if (v->producer && !is_output && !g.find(out_name) && !impl_->layer_names.count(out_name)) {
    g.by_name.erase(v->name);
    v->name = out_name;
    g.by_name[out_name] = v;
    g.outputs.push_back(v);
    return;
  }
  LayerBuilder b(*impl_, "Output", out_name);
  Value* y = b.op("Identity", {v}, "");
  g.outputs.push_back(y);
  b.finish(y);
}

std::vector<NetworkTensor> Network::inputs() const {
  std::vector<NetworkTensor> out;
  for (Value* v : impl_->model.graph->inputs) out.push_back(NetworkAccess::make(impl_.get(), v));
  return out;
}

std::vector<NetworkTensor> Network::outputs() const {
  std::vector<NetworkTensor> out;
  for (Value* v : impl_->model.graph->outputs) out.push_back(NetworkAccess::make(impl_.get(), v));
  return out;
}

std::string Network::to_onnx() const {
  if (impl_->model.graph->outputs.empty())
    throw Error(impl_->model.source + " has no outputs: mark them with mark_output");
  return export_onnx(impl_->model);
}

void Network::save_onnx(const std::string& path) const {
  if (impl_->model.graph->outputs.empty())
    throw Error(impl_->model.source + " has no outputs: mark them with mark_output");
  kiln::save_onnx(impl_->model, path);
}

Session Network::session(const SessionOptions& options) const {
  const std::string bytes = to_onnx();
  // load_bytes names its source "<memory>"; the network's name says more.
  const std::string memory = "<memory>: ", source = impl_->model.source + ": ";
  auto renamed = [&](const std::string& msg) {
    return msg.rfind(memory, 0) == 0 ? source + msg.substr(memory.size()) : msg;
  };
  try {
    return Session::load_bytes(bytes.data(), bytes.size(), options);
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(renamed(e.what()));
  } catch (const Error& e) {
    throw Error(renamed(e.what()));
  }
}

BuildReport Network::build_engine(const std::string& engine_path, const BuildOptions& options) const {
  const std::string onnx_path = engine_path + ".onnx";
  save_onnx(onnx_path);
  try {
    BuildReport report = kiln::build_engine(onnx_path, engine_path, options);
    std::remove(onnx_path.c_str());
    return report;
  } catch (...) {
    std::remove(onnx_path.c_str());
    throw;
  }
}

}  // namespace kiln
