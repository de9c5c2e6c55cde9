// Inference of subgraphs whose inputs declare no element type: the owning
// Scan/Loop types them from what it feeds. Regression test for the
// linear_attention *_expanded models, whose Scan body declared untyped inputs
// and failed to load with "MatMul: A and B types differ".
#include <gtest/gtest.h>

#include <random>

#include "kiln/session.h"
#include "model_builder.h"

namespace kiln::test {

namespace {

onnx::ValueInfoProto untyped(const std::string& name) {
  onnx::ValueInfoProto v;
  v.set_name(name);
  return v;
}

// Scan over xs [T, 2] with state s [2, 2]; the body's inputs are untyped:
//   xf = Cast(x_t, float); r = MatMul(xf, s); s' = s + s
// so the scan output is r_t = x_t @ (2^t * s0) and the final state 2^T * s0.
onnx::ModelProto scan_model(int64_t T) {
  onnx::ModelProto m = make_model(17);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("s0", onnx::TensorProto::FLOAT, {2, 2});
  *g->add_input() = tensor_info("xs", onnx::TensorProto::FLOAT, {T, 2});
  *g->add_output() = tensor_info("s_final", onnx::TensorProto::FLOAT, {2, 2});
  *g->add_output() = tensor_info("rs", onnx::TensorProto::FLOAT, {T, 2});
  onnx::GraphProto body;
  body.set_name("body");
  *body.add_input() = untyped("s");
  *body.add_input() = untyped("x_t");
  *body.add_output() = untyped("s_out");
  *body.add_output() = untyped("r");
  onnx::NodeProto cast = make_node("Cast", {"x_t"}, {"xf"}, "cast");
  auto* to = cast.add_attribute();
  to->set_name("to");
  to->set_type(onnx::AttributeProto::INT);
  to->set_i(onnx::TensorProto::FLOAT);
  *body.add_node() = cast;
  // MatMul reads a typed value (xf) and an untyped body input (s): it must
  // wait for Scan to type s instead of failing in the first pass.
  *body.add_node() = make_node("MatMul", {"xf", "s"}, {"r"}, "matmul");
  *body.add_node() = make_node("Add", {"s", "s"}, {"s_out"}, "add");
  onnx::NodeProto scan = make_node("Scan", {"s0", "xs"}, {"s_final", "rs"}, "scan");
  auto* b = scan.add_attribute();
  b->set_name("body");
  b->set_type(onnx::AttributeProto::GRAPH);
  *b->mutable_g() = body;
  auto* n = scan.add_attribute();
  n->set_name("num_scan_inputs");
  n->set_type(onnx::AttributeProto::INT);
  n->set_i(1);
  *g->add_node() = scan;
  return m;
}

}  // namespace

TEST(SubgraphInference, ScanBodyWithUntypedInputsLoadsAndRuns) {
  const int64_t T = 3;
  std::string bytes = bytes_of(scan_model(T));
  Session s = Session::load_bytes(bytes.data(), bytes.size());
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor s0(DType::kFloat32, {2, 2}), xs(DType::kFloat32, {T, 2});
  for (int i = 0; i < 4; ++i) s0.data<float>()[i] = u(rng);
  for (int i = 0; i < T * 2; ++i) xs.data<float>()[i] = u(rng);
  auto out = s.run({{"s0", s0}, {"xs", xs}});
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[1].dtype(), DType::kFloat32);
  ASSERT_EQ(out[1].shape(), (Shape{T, 2}));
  double scale = 1;
  for (int64_t t = 0; t < T; ++t, scale *= 2)
    for (int j = 0; j < 2; ++j) {
      double want = 0;
      for (int k = 0; k < 2; ++k) want += xs.data<float>()[t * 2 + k] * scale * s0.data<float>()[k * 2 + j];
      EXPECT_NEAR(out[1].data<float>()[t * 2 + j], want, 1e-5);
    }
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[0].data<float>()[i], scale * s0.data<float>()[i], 1e-5);
}

}  // namespace kiln::test
