// node_cost / node_params (src/analysis/flops.h) on small hand-built models:
// the docs/flops.md conventions, and "not counted" where shapes or rules are
// missing. Also the reason categories of unsupported nodes.
#include <gtest/gtest.h>

#include "analysis/flops.h"
#include "ir/infer.h"
#include "model_builder.h"
#include "onnx/import.h"

namespace kiln {
namespace {

using test::float_tensor;
using test::make_model;
using test::make_node;
using test::tensor_info;

Model load_inferred(const onnx::ModelProto& m, std::vector<UnsupportedNode>* unsupported = nullptr) {
  const std::string bytes = test::bytes_of(m);
  Model model = load_onnx_bytes(bytes.data(), bytes.size());
  std::vector<UnsupportedNode> local;
  infer_graph(*model.graph, unsupported ? unsupported : &local);
  return model;
}

const Node& node_named(const Model& m, const std::string& name) {
  for (const auto& n : m.graph->nodes)
    if (n->name == name) return *n;
  throw Error("no node " + name);
}

TEST(Flops, ConvGemmMatMulSoftmax) {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, 4, 8, 8});
  // Conv 4 -> 6 channels, 3x3, pad 1, group 2: 2 x 6 x 64 x (2 x 9) MACs.
  *g->add_initializer() = float_tensor("w", {6, 2, 3, 3}, std::vector<float>(6 * 2 * 9, 0.1f));
  auto conv = make_node("Conv", {"x", "w"}, {"c"}, "conv");
  auto* a = conv.add_attribute();
  a->set_name("group"), a->set_type(onnx::AttributeProto::INT), a->set_i(2);
  a = conv.add_attribute();
  a->set_name("pads"), a->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) a->add_ints(1);
  *g->add_node() = conv;
  *g->add_node() = make_node("Relu", {"c"}, {"r"}, "relu");
  *g->add_node() = make_node("Flatten", {"r"}, {"f"}, "flatten");  // [2, 384]
  *g->add_initializer() = float_tensor("b", {384, 10}, std::vector<float>(3840, 0.01f));
  *g->add_node() = make_node("MatMul", {"f", "b"}, {"mm"}, "matmul");
  *g->add_node() = make_node("Softmax", {"mm"}, {"y"}, "softmax");
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {2, 10});
  Model model = load_inferred(m);

  NodeCost c = node_cost(node_named(model, "conv"));
  ASSERT_TRUE(c.known) << c.why;
  EXPECT_EQ(c.macs, 2 * 6 * 64 * 2 * 9);
  EXPECT_EQ(c.flops, 2 * c.macs);
  EXPECT_EQ(node_params(node_named(model, "conv")), 6 * 2 * 9);
  c = node_cost(node_named(model, "relu"));
  EXPECT_EQ(c.macs, 0);
  EXPECT_EQ(c.flops, 2 * 6 * 64);
  c = node_cost(node_named(model, "flatten"));
  EXPECT_TRUE(c.known);
  EXPECT_EQ(c.flops, 0);
  c = node_cost(node_named(model, "matmul"));
  EXPECT_EQ(c.macs, 2 * 10 * 384);
  EXPECT_EQ(c.flops, 2 * c.macs);
  c = node_cost(node_named(model, "softmax"));
  EXPECT_EQ(c.flops, 5 * 20);
}

TEST(Flops, SymbolicShapesAreNotCounted) {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {-1, 16}, {"batch"});
  *g->add_initializer() = float_tensor("w", {16, 4}, std::vector<float>(64, 0.5f));
  *g->add_node() = make_node("MatMul", {"x", "w"}, {"y"}, "matmul");
  *g->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {-1, 4}, {"batch"});
  Model model = load_inferred(m);
  NodeCost c = node_cost(node_named(model, "matmul"));
  EXPECT_FALSE(c.known);
  EXPECT_NE(c.why.find("not static"), std::string::npos) << c.why;

  // With the batch bound, it is.
  const std::string bytes = test::bytes_of(m);
  Model bound = load_onnx_bytes(bytes.data(), bytes.size());
  bind_input_shapes(*bound.graph, {{"x", Shape{3, 16}}});
  std::vector<UnsupportedNode> unsupported;
  infer_graph(*bound.graph, &unsupported);
  c = node_cost(node_named(bound, "matmul"));
  ASSERT_TRUE(c.known) << c.why;
  EXPECT_EQ(c.macs, 3 * 4 * 16);
}

TEST(Flops, UnsupportedReasonKinds) {
  onnx::ModelProto m = make_model();
  auto* g = m.mutable_graph();
  *g->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {2, 3});
  *g->add_input() = tensor_info("i", onnx::TensorProto::INT32, {2, 3});
  *g->add_node() = make_node("NoSuchOp", {"x"}, {"a"}, "unknown");
  *g->add_node() = make_node("Gelu", {"x"}, {"b"}, "gelu");  // opset 20+
  *g->add_node() = make_node("Sigmoid", {"i"}, {"c"}, "sigmoid");
  *g->add_node() = make_node("Relu", {"x"}, {"y"}, "relu");
  for (const char* out : {"a", "b", "c", "y"}) *g->add_output() = tensor_info(out, onnx::TensorProto::FLOAT, {2, 3});
  std::vector<UnsupportedNode> unsupported;
  Model model = load_inferred(m, &unsupported);
  ASSERT_EQ(unsupported.size(), 3u);
  EXPECT_EQ(unsupported[0].issue, SupportIssue::kUnknownOp);
  EXPECT_EQ(unsupported[1].issue, SupportIssue::kOpsetOutOfRange);
  EXPECT_EQ(unsupported[2].issue, SupportIssue::kType);
  EXPECT_EQ(unsupported[2].input_types, std::vector<std::string>{"int32"});
  EXPECT_EQ(unsupported[0].str().rfind("node 'unknown' (NoSuchOp-17) with input types (float): ", 0), 0u)
      << unsupported[0].str();
}

}  // namespace
}  // namespace kiln
