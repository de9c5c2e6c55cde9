// Internals of kiln::Network (include/kiln/network.h): the network's state
// and LayerBuilder, the transaction one layer's nodes are added in.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kiln/network.h"
#include "onnx/import.h"

namespace kiln {

// The opset of the default domain every layer writes its nodes for.
constexpr int kNetworkOpset = 17;

struct Network::Impl {
  Model model;
  std::set<std::string> layer_names;
  std::map<std::string, int> default_name_counters;  // per layer kind
  size_t layers = 0;
  Graph& graph() { return *model.graph; }
};

// Reaches NetworkTensor's private parts from the layer code.
struct NetworkAccess {
  static NetworkTensor make(const Network::Impl* owner, Value* v) { return NetworkTensor(owner, v); }
  static Value* value(const NetworkTensor& t) { return t.value_; }
  static const void* owner(const NetworkTensor& t) { return t.owner_; }
};

// Adds one layer: its nodes, constants and output values. Each node is
// resolved against the op registry and its outputs inferred as it is added,
// so that a shape error surfaces at once, named after the layer. Unless
// finish() is reached, the destructor removes everything the layer added:
// a failed add_* leaves the network as it was.
class LayerBuilder {
 public:
  // kind: what the layer is called in errors ("Conv", "MultiHeadAttention");
  // name: the user's, or "" for kind + a counter.
  LayerBuilder(Network::Impl& impl, std::string kind, const std::string& name);
  ~LayerBuilder();
  LayerBuilder(const LayerBuilder&) = delete;
  LayerBuilder& operator=(const LayerBuilder&) = delete;

  const std::string& name() const { return name_; }
  // "layer 'conv1' (Conv): " + message.
  Error error(const std::string& message) const;

  // The value of a tensor argument; an error unless it belongs to this network.
  Value* in(const NetworkTensor& t, const char* what) const;
  // A weight as a constant named `<layer>.<suffix>` (the tensor is shared).
  Value* weight(const Tensor& t, const std::string& suffix);
  Value* ints(const std::vector<int64_t>& v, const std::string& suffix);
  // A scalar of element type `dtype` (a float type).
  Value* scalar(double v, DType dtype, const std::string& suffix);

  // Adds a default-domain node named `<layer>/<part>` (the layer's name
  // itself for part ""), with its outputs named after it, and infers it.
  // `domain` other than the default one: at opset `opset` (custom ops).
  Node* node(const std::string& op, std::vector<Value*> inputs, const std::string& part,
             std::map<std::string, Attribute> attrs = {}, int outputs = 1, const std::string& domain = "",
             int opset = kNetworkOpset);
  // node() with one output, returned.
  Value* op(const std::string& op, std::vector<Value*> inputs, const std::string& part,
            std::map<std::string, Attribute> attrs = {}) {
    return node(op, std::move(inputs), part, std::move(attrs))->outputs[0];
  }

  NetworkTensor finish(Value* output);
  std::vector<NetworkTensor> finish(const std::vector<Value*>& outputs);

 private:
  Network::Impl& impl_;
  std::string kind_, name_;
  size_t first_node_, first_value_;
  bool done_ = false;
};

// "<part>/<sub>", or sub alone for an empty part: how nested parts of a
// layer name their nodes.
inline std::string subpart(const std::string& part, const std::string& sub) {
  return part.empty() ? sub : part + "/" + sub;
}

// Shared pieces of several layers (network_layers.cpp).
// x [..., in] · weightᵀ + bias as Gemm (2-d x) or MatMul + Add.
Value* emit_linear(LayerBuilder& b, Value* x, const Tensor& weight, const Tensor& bias, const std::string& part);
// softmax(q kᵀ scale + mask) v.
Value* emit_attention(LayerBuilder& b, Value* q, Value* k, Value* v, Value* mask, float scale, const std::string& part);

// Dim i of v's shape (negative i from the end), or unknown.
Dim dim_of(const Value* v, int64_t i);
// A 2-d tensor's transpose (weights of linear layers), any element type.
Tensor transpose_2d(const Tensor& t);
// Rows [begin, end) of a tensor along dim 0, copied.
Tensor rows_of(const Tensor& t, int64_t begin, int64_t end);

}  // namespace kiln
