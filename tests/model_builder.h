// Builds small ONNX models in tests through protobuf, so the importer's real
// path is exercised.
#pragma once
#include <onnx/onnx_pb.h>

#include <random>
#include <string>
#include <vector>

namespace kiln::test {

inline onnx::ValueInfoProto tensor_info(const std::string& name, int elem_type, std::vector<int64_t> dims,
                                        std::vector<std::string> symbols = {}) {
  onnx::ValueInfoProto v;
  v.set_name(name);
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  auto* s = t->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = s->add_dim();
    if (dims[i] >= 0)
      d->set_dim_value(dims[i]);
    else if (i < symbols.size())
      d->set_dim_param(symbols[i]);
  }
  return v;
}

inline onnx::NodeProto make_node(const std::string& op, std::vector<std::string> in, std::vector<std::string> out,
                                 const std::string& name = "", const std::string& domain = "") {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  n.set_domain(domain);
  for (auto& s : in) n.add_input(s);
  for (auto& s : out) n.add_output(s);
  return n;
}

inline onnx::TensorProto float_tensor(const std::string& name, std::vector<int64_t> dims, std::vector<float> v,
                                      bool raw = true) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (auto d : dims) t.add_dims(d);
  if (raw)
    t.set_raw_data(v.data(), v.size() * sizeof(float));
  else
    for (float f : v) t.add_float_data(f);
  return t;
}

inline onnx::ModelProto make_model(int opset = 17, int64_t ir = 8) {
  onnx::ModelProto m;
  m.set_ir_version(ir);
  m.set_producer_name("kiln-test");
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

inline std::string bytes_of(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}

inline onnx::TensorProto int64_tensor(const std::string& name, std::vector<int64_t> v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(v.size()));
  for (int64_t x : v) t.add_int64_data(x);
  return t;
}

// A small static-shape conv net: x float[2, C, H, W] through `layers` of
// Conv 3x3 (pad 1) + Relu; the middle layer's output also goes through two
// Reshapes (views) to an Add after the last layer, so its memory must outlive
// its views; then GlobalAveragePool and Flatten to y float[2, C]. Weights are
// a fixed pseudo-random sequence.
inline onnx::ModelProto conv_chain_model(int layers, int64_t c = 8, int64_t hw = 16) {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, c, hw, hw});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, c});
  uint32_t seed = 12345;
  auto next = [&] {
    seed = seed * 1664525u + 1013904223u;
    return static_cast<float>(seed >> 8) / static_cast<float>(1u << 24) - 0.5f;
  };
  std::string cur = "x";
  for (int i = 0; i < layers; ++i) {
    std::string id = std::to_string(i);
    std::vector<float> wv(static_cast<size_t>(c * c * 9)), bv(static_cast<size_t>(c));
    for (float& v : wv) v = next() * 0.5f;
    for (float& v : bv) v = next() * 0.1f;
    *g->add_initializer() = float_tensor("w" + id, {c, c, 3, 3}, wv);
    *g->add_initializer() = float_tensor("b" + id, {c}, bv);
    onnx::NodeProto conv = make_node("Conv", {cur, "w" + id, "b" + id}, {"conv" + id}, "conv" + id);
    auto* pads = conv.add_attribute();
    pads->set_name("pads");
    pads->set_type(onnx::AttributeProto::INTS);
    for (int k = 0; k < 4; ++k) pads->add_ints(1);
    *g->add_node() = conv;
    *g->add_node() = make_node("Relu", {"conv" + id}, {"relu" + id}, "relu" + id);
    cur = "relu" + id;
    if (i == layers / 2) {
      *g->add_initializer() = int64_tensor("flat_shape", {2, c * hw * hw});
      *g->add_initializer() = int64_tensor("back_shape", {2, c, hw, hw});
      *g->add_node() = make_node("Reshape", {cur, "flat_shape"}, {"flat"}, "flatten_view");
      *g->add_node() = make_node("Reshape", {"flat", "back_shape"}, {"skip"}, "unflatten_view");
    }
  }
  *g->add_node() = make_node("Add", {cur, "skip"}, {"sum"}, "skip_add");
  *g->add_node() = make_node("GlobalAveragePool", {"sum"}, {"pooled"}, "pool");
  *g->add_node() = make_node("Flatten", {"pooled"}, {"y"}, "flatten");
  return m;
}

// x float[N, 16, 16, 16] -> conv 3x3 + relu -> conv 3x3, + x (residual),
// relu -> conv 1x1 stride 2 -> global average pool -> flatten -> gemm 10.
// N is symbolic. Convs of 16 channels on 16x16 maps take Winograd, the 1x1
// oneDNN: both packed-weight paths of the engine.
inline onnx::ModelProto residual_conv_model() {
  onnx::ModelProto m = test::make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 16, 16, 16}, {"N"});
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {-1, 10}, {"N"});
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  auto weights = [&](const std::string& name, std::vector<int64_t> dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = u(rng);
    *g->add_initializer() = float_tensor(name, dims, v);
  };
  auto conv = [&](const std::string& name, const std::string& in, int64_t k, int64_t m_out, int64_t stride) {
    weights(name + "_w", {m_out, 16, k, k});
    weights(name + "_b", {m_out});
    onnx::NodeProto n = make_node("Conv", {in, name + "_w", name + "_b"}, {name}, name);
    auto* pads = n.add_attribute();
    pads->set_name("pads");
    pads->set_type(onnx::AttributeProto::INTS);
    for (int i = 0; i < 4; ++i) pads->add_ints(k / 2);
    auto* strides = n.add_attribute();
    strides->set_name("strides");
    strides->set_type(onnx::AttributeProto::INTS);
    for (int i = 0; i < 2; ++i) strides->add_ints(stride);
    *g->add_node() = n;
  };
  conv("c1", "x", 3, 16, 1);
  *g->add_node() = make_node("Relu", {"c1"}, {"r1"}, "relu1");
  conv("c2", "r1", 3, 16, 1);
  *g->add_node() = make_node("Add", {"c2", "x"}, {"sum"}, "residual");
  *g->add_node() = make_node("Relu", {"sum"}, {"r2"}, "relu2");
  conv("c3", "r2", 1, 32, 2);
  *g->add_node() = make_node("GlobalAveragePool", {"c3"}, {"pooled"}, "pool");
  *g->add_node() = make_node("Flatten", {"pooled"}, {"flat"}, "flatten");
  weights("fc_w", {10, 32});
  weights("fc_b", {10});
  onnx::NodeProto fc = make_node("Gemm", {"flat", "fc_w", "fc_b"}, {"y"}, "fc");
  auto* tb = fc.add_attribute();
  tb->set_name("transB");
  tb->set_type(onnx::AttributeProto::INT);
  tb->set_i(1);
  *g->add_node() = fc;
  return m;
}

}  // namespace kiln::test
