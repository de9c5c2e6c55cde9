// Builds small ONNX models in tests through protobuf, so the importer's real
// path is exercised.
#pragma once
#include <onnx/onnx_pb.h>

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
    if (dims[i] >= 0) d->set_dim_value(dims[i]);
    else if (i < symbols.size()) d->set_dim_param(symbols[i]);
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
  if (raw) t.set_raw_data(v.data(), v.size() * sizeof(float));
  else for (float f : v) t.add_float_data(f);
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

}  // namespace kiln::test
