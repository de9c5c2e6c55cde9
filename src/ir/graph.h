// kiln's graph IR. A Graph owns its Nodes and Values; Values link to their
// producer and consumers. Subgraphs (If/Loop/Scan bodies) are Graphs owned by
// a Node attribute, with `parent` pointing outward: a Value a subgraph reads
// but does not define is an outer-scope reference, resolved by name.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/tensor.h"

namespace kiln {

// kiln's own op domain: the ops the optimizer introduces (blocked layout,
// fused attention, ...). Such ops also appear in optimized exports and
// engines, so they are checked like any other op when loaded.
inline constexpr const char* kKilnDomain = "kiln";
// A node of another domain that kiln fused something into is written to ONNX
// as kiln:Fused<Op> with these attributes (onnx/export.cpp, import.cpp).
inline constexpr const char* kFusedOpsetAttr = "kiln.fused_opset";
inline constexpr const char* kFusedDomainAttr = "kiln.fused_domain";

struct OpSchema;
struct Graph;

// A dimension: a known size, a named symbol (dim_param), or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string symbol;  // set for symbolic dims
  static Dim known(int64_t v) { return Dim{v, {}}; }
  static Dim named(std::string s) { return Dim{-1, std::move(s)}; }
  static Dim unknown() { return Dim{}; }
  bool is_known() const { return value >= 0; }
  bool operator==(const Dim& o) const { return value == o.value && symbol == o.symbol; }
  std::string str() const { return is_known() ? std::to_string(value) : symbol.empty() ? "?" : symbol; }
};

using DimVector = std::vector<Dim>;

enum class ValueKind { kTensor, kSequence, kOptional };

// The static type of a value: element type plus shape, where the shape may be
// unknown altogether (no rank) or per dim.
struct ValueType {
  ValueKind kind = ValueKind::kTensor;
  DType dtype = DType::kUndefined;
  std::optional<DimVector> shape;  // nullopt: rank unknown

  bool has_rank() const { return shape.has_value(); }
  int rank() const { return shape ? static_cast<int>(shape->size()) : -1; }
  bool is_static() const;
  Shape static_shape() const;  // requires is_static()
  std::string str() const;     // "float[1x3xNx?]"
  static ValueType tensor(DType t, Shape s);
};

struct Node;

struct Value {
  std::string name;
  ValueType type;
  Node* producer = nullptr;
  std::vector<Node*> consumers;
  std::optional<Tensor> initializer;  // a weight or constant
  bool is_graph_input = false;
  bool is_outer = false;  // defined in an enclosing graph
  int index = -1;         // position in Graph::values
};

struct Attribute {
  enum class Kind { kUndefined, kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings, kTensors, kGraphs };
  Kind kind = Kind::kUndefined;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;           // "" for ai.onnx
  int opset = 0;                // opset version of `domain` in effect for this node
  std::vector<Value*> inputs;   // nullptr for an omitted optional input
  std::vector<Value*> outputs;  // nullptr for an omitted optional output
  std::map<std::string, Attribute> attrs;
  const OpSchema* schema = nullptr;
  // Names of the imported nodes whose work this node does, when the optimizer
  // fused several into it or replaced one by it; empty: only itself (`name`).
  // kiln profile and kiln graph report them.
  std::vector<std::string> origins;

  std::string describe() const;
  // `origins`, or {name} when empty.
  std::vector<std::string> origin_names() const;
  // Records that this node now also does `other`'s work.
  void absorb_origins(const Node& other);  // "node 'conv1' (Conv-11)"
  // The names in `origins`, so that absorbing one more node costs O(1)
  // (a chain of 100k activations fused into one node was quadratic);
  // rebuilt by absorb_origins when `origins` was assigned directly.
  std::unordered_set<std::string> origin_index;
  bool has_input(size_t i) const { return i < inputs.size() && inputs[i] != nullptr; }
  bool has_output(size_t i) const { return i < outputs.size() && outputs[i] != nullptr; }
  bool has_attr(const std::string& n) const { return attrs.count(n) != 0; }
  // Typed attribute access with a default; a wrong kind is a kiln::Error.
  int64_t attr_int(const std::string& n, int64_t def) const;
  float attr_float(const std::string& n, float def) const;
  std::string attr_string(const std::string& n, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& n, std::vector<int64_t> def = {}) const;
  std::vector<float> attr_floats(const std::string& n, std::vector<float> def = {}) const;
  std::vector<std::string> attr_strings(const std::string& n) const;
  const Tensor* attr_tensor(const std::string& n) const;
  const Graph* attr_graph(const std::string& n) const;
};

struct Graph {
  std::string name;
  std::vector<std::unique_ptr<Node>> nodes;  // topological order after sort_topologically()
  std::vector<std::unique_ptr<Value>> values;
  std::unordered_map<std::string, Value*> by_name;
  std::vector<Value*> inputs;  // graph inputs that are not initializers-only
  std::vector<Value*> outputs;
  Graph* parent = nullptr;
  std::map<std::string, int> opsets;  // domain -> version

  // Looks up a value by name in this graph only.
  Value* find(const std::string& name) const;
  // Looks up by name here, then in enclosing graphs.
  const Value* find_in_scope(const std::string& name) const;
  Value* add_value(const std::string& name);
  Node* add_node(std::unique_ptr<Node> node);
  // Values of this graph that a node's subgraphs read from the outer scope
  // (its implicit inputs), found recursively.
  std::vector<Value*> implicit_inputs(const Node& node) const;
  // Rebuilds producer/consumer links from the nodes' inputs, implicit inputs
  // and outputs.
  void relink();
  // Orders nodes so that every producer precedes its consumers; throws
  // kiln::Error naming a node on a cycle or an undefined input.
  void sort_topologically();
  // A text dump, one node per line, for debugging and tests.
  std::string dump() const;
};

}  // namespace kiln
