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

onnx::AttributeProto graph_attr(const std::string& name, const onnx::GraphProto& g) {
  onnx::AttributeProto a;
  a.set_name(name);
  a.set_type(onnx::AttributeProto::GRAPH);
  *a.mutable_g() = g;
  return a;
}

// Loop (M = 3) carrying v [2, 2] through untyped body inputs; an If nested in
// the body reads v from the outer scope: v' = iter > 0 ? a @ v : v. So the
// final v is a @ a @ v0, and the If's branches see v untyped in the first pass.
onnx::ModelProto loop_if_model() {
  onnx::ModelProto m = make_model(17);
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("a", onnx::TensorProto::FLOAT, {2, 2});
  *g->add_input() = tensor_info("v0", onnx::TensorProto::FLOAT, {2, 2});
  *g->add_output() = tensor_info("v_final", onnx::TensorProto::FLOAT, {2, 2});
  onnx::TensorProto m3, zero, yes;
  m3.set_name("M");
  m3.set_data_type(onnx::TensorProto::INT64);
  m3.add_int64_data(3);
  zero.set_name("zero");
  zero.set_data_type(onnx::TensorProto::INT64);
  zero.add_int64_data(0);
  yes.set_name("yes");
  yes.set_data_type(onnx::TensorProto::BOOL);
  yes.add_int32_data(1);
  *g->add_initializer() = m3;
  *g->add_initializer() = zero;
  *g->add_initializer() = yes;
  onnx::GraphProto then_g, else_g, body;
  then_g.set_name("then");
  *then_g.add_node() = make_node("MatMul", {"a", "v"}, {"t"}, "then_matmul");
  *then_g.add_output() = untyped("t");
  else_g.set_name("else");
  *else_g.add_node() = make_node("Identity", {"v"}, {"e"}, "else_id");
  *else_g.add_output() = untyped("e");
  body.set_name("body");
  for (const char* in : {"iter", "cond", "v"}) *body.add_input() = untyped(in);
  *body.add_node() = make_node("Identity", {"cond"}, {"cond_out"}, "cond_id");
  *body.add_node() = make_node("Greater", {"iter", "zero"}, {"p"}, "greater");
  onnx::NodeProto if_node = make_node("If", {"p"}, {"v_out"}, "if");
  *if_node.add_attribute() = graph_attr("then_branch", then_g);
  *if_node.add_attribute() = graph_attr("else_branch", else_g);
  *body.add_node() = if_node;
  *body.add_output() = untyped("cond_out");
  *body.add_output() = untyped("v_out");
  onnx::NodeProto loop = make_node("Loop", {"M", "yes", "v0"}, {"v_final"}, "loop");
  *loop.add_attribute() = graph_attr("body", body);
  *g->add_node() = loop;
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

namespace kiln::test {

TEST(SubgraphInference, IfInsideLoopReadsUntypedCarriedValue) {
  std::string bytes = bytes_of(loop_if_model());
  Session s = Session::load_bytes(bytes.data(), bytes.size());
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor a(DType::kFloat32, {2, 2}), v0(DType::kFloat32, {2, 2});
  for (int i = 0; i < 4; ++i) {
    a.data<float>()[i] = u(rng);
    v0.data<float>()[i] = u(rng);
  }
  auto out = s.run({{"a", a}, {"v0", v0}});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].shape(), (Shape{2, 2}));
  double av[4] = {}, aav[4] = {};
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 2; ++k) av[i * 2 + j] += a.data<float>()[i * 2 + k] * v0.data<float>()[k * 2 + j];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 2; ++k) aav[i * 2 + j] += a.data<float>()[i * 2 + k] * av[k * 2 + j];
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[0].data<float>()[i], aav[i], 1e-5);
}

}  // namespace kiln::test
