// Network::custom_layer: a node of a custom op (kiln/custom_op.h) in a
// hand-built network, checked against the registry like any layer.
#include "ir/rewrite.h"
#include "network/builder.h"

namespace kiln {

namespace {

Attribute ir_attribute(const LayerAttribute& a) {
  Attribute out;
  switch (a.kind) {
    case LayerAttribute::Kind::kInt: return int_attr(a.i);
    case LayerAttribute::Kind::kFloat: return float_attr(a.f);
    case LayerAttribute::Kind::kString: return string_attr(a.s);
    case LayerAttribute::Kind::kInts: return ints_attr(a.ints);
    case LayerAttribute::Kind::kFloats:
      out.kind = Attribute::Kind::kFloats;
      out.floats = a.floats;
      return out;
  }
  return out;
}

}  // namespace

std::vector<NetworkTensor> Network::custom_layer(const std::string& domain, const std::string& op,
                                                 const std::vector<NetworkTensor>& inputs,
                                                 const std::map<std::string, LayerAttribute>& attributes,
                                                 int num_outputs, int domain_version, const std::string& name) {
  LayerBuilder b(*impl_, domain + ":" + op, name);
  if (domain.empty() || domain == "ai.onnx")
    throw b.error("custom_layer is for custom ops' domains; standard ops have their own layers");
  if (num_outputs < 1 || num_outputs > 1024) throw b.error("num_outputs must be in 1..1024");
  if (domain_version < 1) throw b.error("domain_version must be >= 1");
  std::vector<Value*> values;
  for (const NetworkTensor& t : inputs) values.push_back(t.valid() ? b.in(t, "input") : nullptr);
  std::map<std::string, Attribute> attrs;
  for (const auto& [k, v] : attributes) attrs[k] = ir_attribute(v);
  Node* n = b.node(op, std::move(values), "", std::move(attrs), num_outputs, domain, domain_version);
  return b.finish(n->outputs);
}

}  // namespace kiln
