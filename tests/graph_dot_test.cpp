// kiln graph's DOT (analysis/graph_dot.h): one DOT node per graph node,
// inputs, outputs and the legend on their own ids, weights folded into the
// node that reads them, shapes on every edge, fused nodes marked, clusters
// from name paths, names escaped.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>

#include "analysis/graph_dot.h"
#include "ir/infer.h"
#include "model_builder.h"
#include "onnx/import.h"
#include "pipeline/prepare.h"

namespace kiln::test {

namespace {

Model load(const onnx::ModelProto& proto) {
  const std::string bytes = bytes_of(proto);
  Model m = load_onnx_bytes(bytes.data(), bytes.size());
  infer_supported(*m.graph, "test model");
  return m;
}

// The DOT statements that define nodes: id -> the statement's text.
std::map<std::string, std::string> node_statements(const std::string& dot) {
  std::map<std::string, std::string> out;
  static const std::regex def(R"(^\s*(n\d+|in\d+|out\d+|legend) \[(.*)\];$)");
  std::istringstream lines(dot);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line)) {
    if (!std::regex_match(line, m, def)) continue;
    EXPECT_EQ(out.count(m[1]), 0u) << "node defined twice: " << m[1];
    out[m[1]] = m[2];
  }
  return out;
}

std::vector<std::string> edge_statements(const std::string& dot) {
  std::vector<std::string> out;
  std::istringstream lines(dot);
  std::string line;
  while (std::getline(lines, line))
    if (line.find(" -> ") != std::string::npos) out.push_back(line);
  return out;
}

// Exactly one DOT node per graph node (n0..), per drawn input and output,
// and the legend; nothing else (initializers have no node of their own).
void expect_one_element_per_node(const Graph& g, const std::string& dot, const DotStats& st) {
  const auto defs = node_statements(dot);
  size_t inputs = 0;
  for (const Value* v : g.inputs) inputs += v->initializer ? 0 : 1;
  EXPECT_EQ(defs.size(), g.nodes.size() + inputs + g.outputs.size() + 1);
  for (size_t i = 0; i < g.nodes.size(); ++i) EXPECT_EQ(defs.count("n" + std::to_string(i)), 1u) << i;
  EXPECT_EQ(defs.count("legend"), 1u);
  EXPECT_EQ(st.nodes, static_cast<int>(g.nodes.size()));
  EXPECT_EQ(st.inputs, static_cast<int>(inputs));
  EXPECT_EQ(st.outputs, static_cast<int>(g.outputs.size()));
  EXPECT_EQ(st.legend, 1);
}

}  // namespace

TEST(GraphDot, ImportedGraphHasOneElementPerNodeAndShapedEdges) {
  Model m = load(conv_chain_model(3));
  const Graph& g = *m.graph;
  DotStats st;
  const std::string dot = graph_to_dot(g, DotOptions{}, &st);
  expect_one_element_per_node(g, dot, st);
  EXPECT_EQ(st.fused, 0);
  EXPECT_EQ(dot.find("peripheries=2"), std::string::npos);
  // Weights are lines of their node's label, not nodes.
  const auto defs = node_statements(dot);
  bool conv_seen = false;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i]->op_type != "Conv") continue;
    const std::string& s = defs.at("n" + std::to_string(i));
    EXPECT_NE(s.find("W 8x8x3x3"), std::string::npos) << s;
    EXPECT_NE(s.find("B 8"), std::string::npos) << s;
    EXPECT_NE(s.find("k3x3 p1"), std::string::npos) << s;
    conv_seen = true;
  }
  EXPECT_TRUE(conv_seen);
  EXPECT_EQ(dot.find("\"w0\""), std::string::npos);
  // Every edge carries its value's type and shape.
  const auto edges = edge_statements(dot);
  EXPECT_EQ(static_cast<int>(edges.size()), st.edges);
  const std::regex shaped(R"(label="float 2(x[0-9]+)+")");
  for (const std::string& e : edges) EXPECT_TRUE(std::regex_search(e, shaped)) << e;
  EXPECT_NE(dot.find("in0 -> n0 [label=\"float 2x8x16x16\""), std::string::npos);
  // The Flatten produces the output: an edge to out0 with the output's shape.
  EXPECT_NE(dot.find("-> out0 [label=\"float 2x8\""), std::string::npos);
}

TEST(GraphDot, OptimizedGraphMarksFusedNodes) {
  Model m = load(conv_chain_model(3));
  Graph& g = *m.graph;
  DotOptions o;
  for (const auto& n : g.nodes) o.origin_ops[n->name] = n->op_type;
  optimize_graph(g, SessionOptions{});
  DotStats st;
  const std::string dot = graph_to_dot(g, o, &st);
  expect_one_element_per_node(g, dot, st);
  const auto defs = node_statements(dot);
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = *g.nodes[i];
    const std::string& s = defs.at("n" + std::to_string(i));
    if (n.origins.size() > 1) {
      ++fused;
      EXPECT_NE(s.find("peripheries=2"), std::string::npos) << s;
      EXPECT_NE(s.find("fused: Conv"), std::string::npos) << s;
      EXPECT_NE(s.find("Relu"), std::string::npos) << s;  // as an origin or the epilogue
      if (!n.attr_strings("kiln.epilogue").empty()) {
        EXPECT_NE(s.find("epilogue: Relu"), std::string::npos) << s;
      }
    } else {
      EXPECT_EQ(s.find("peripheries=2"), std::string::npos) << s;
    }
  }
  EXPECT_GE(fused, 3);  // each Conv + Relu
  EXPECT_EQ(st.fused, fused);
  EXPECT_NE(dot.find("double border: fused node"), std::string::npos);
}

TEST(GraphDot, FusedNodeWithoutKnownOriginsCountsThem) {
  Model m = load(conv_chain_model(1));
  Graph& g = *m.graph;
  optimize_graph(g, SessionOptions{});
  DotStats st;
  const std::string dot = graph_to_dot(g, DotOptions{}, &st);
  ASSERT_GT(st.fused, 0);
  EXPECT_TRUE(std::regex_search(dot, std::regex("fused: [0-9]+ nodes")));
}

// Name paths become nested clusters; a node keeps the name's tail.
TEST(GraphDot, NamePathsBecomeClusters) {
  onnx::ModelProto p = make_model();
  auto* gp = p.mutable_graph();
  *gp->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 4});
  *gp->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {1, 4});
  *gp->add_node() = make_node("Relu", {"x"}, {"a"}, "/block1/act/Relu");
  *gp->add_node() = make_node("Sigmoid", {"a"}, {"b"}, "/block1/gate/Sigmoid");
  *gp->add_node() = make_node("Tanh", {"b"}, {"c"}, "/block2/Tanh");
  *gp->add_node() = make_node("Neg", {"c"}, {"y"}, "odd \"name\\");
  Model m = load(p);
  DotStats st;
  std::string dot = graph_to_dot(*m.graph, DotOptions{}, &st);
  expect_one_element_per_node(*m.graph, dot, st);
  // block1 holds two nodes (its act/ and gate/ sub-clusters hold one each
  // and are not framed); block2's single node is not framed either.
  EXPECT_EQ(st.clusters, 1);
  EXPECT_NE(dot.find("label=\"block1\""), std::string::npos);
  EXPECT_EQ(dot.find("label=\"block2\""), std::string::npos);
  EXPECT_NE(dot.find("act/Relu"), std::string::npos);
  EXPECT_NE(dot.find("odd \\\"name\\\\"), std::string::npos) << dot;
  EXPECT_NE(dot.find("class=\"op-activation\""), std::string::npos);
  DotOptions flat;
  flat.cluster_depth = 0;
  dot = graph_to_dot(*m.graph, flat, &st);
  EXPECT_EQ(st.clusters, 0);
  EXPECT_EQ(dot.find("subgraph cluster_"), std::string::npos);
}

// --collapse: of four blocks with the same ops, the first is drawn and the
// other three become one box that the edges go through.
TEST(GraphDot, CollapseDrawsRepeatedBlocksOnce) {
  onnx::ModelProto p = make_model();
  auto* gp = p.mutable_graph();
  *gp->add_input() = tensor_info("x", onnx::TensorProto::FLOAT, {1, 4});
  *gp->add_output() = tensor_info("y", onnx::TensorProto::FLOAT, {1, 4});
  std::string cur = "x";
  for (int b = 0; b < 4; ++b) {
    const std::string path = "/blocks/b" + std::to_string(b);
    *gp->add_node() = make_node("Relu", {cur}, {path + "r"}, path + "/Relu");
    *gp->add_node() = make_node("Sigmoid", {path + "r"}, {path + "s"}, path + "/Sigmoid");
    cur = path + "s";
  }
  *gp->add_node() = make_node("Neg", {cur}, {"y"}, "/head/Neg");
  Model m = load(p);
  const Graph& g = *m.graph;
  DotOptions o;
  o.collapse = true;
  DotStats st;
  const std::string dot = graph_to_dot(g, o, &st);
  EXPECT_EQ(st.collapsed_boxes, 1);
  EXPECT_EQ(st.collapsed, 6);
  EXPECT_EQ(st.nodes, 3);  // b0's two nodes and the head
  const auto defs = node_statements(dot);
  EXPECT_EQ(defs.count("n0") + defs.count("n1") + defs.count("n8"), 3u);
  for (int i = 2; i < 8; ++i) EXPECT_EQ(defs.count("n" + std::to_string(i)), 0u) << i;
  EXPECT_NE(dot.find("c0 [label=\"3 more like b0\\nb1 ... b3\\n(2 nodes each)\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("n1 -> c0"), std::string::npos);
  EXPECT_NE(dot.find("c0 -> n8"), std::string::npos);
  EXPECT_EQ(dot.find("c0 -> c0"), std::string::npos);
  // Without --collapse every node is drawn.
  graph_to_dot(g, DotOptions{}, &st);
  EXPECT_EQ(st.nodes, 9);
  EXPECT_EQ(st.collapsed_boxes, 0);
}

TEST(GraphDot, OpFamilies) {
  Node n;
  n.op_type = "Conv";
  EXPECT_EQ(op_family(n), "conv");
  n.op_type = "ReduceL2";
  EXPECT_EQ(op_family(n), "reduction");
  n.op_type = "LSTM";
  EXPECT_EQ(op_family(n), "recurrent");
  n.op_type = "ToBlocked";
  n.domain = "kiln";
  EXPECT_EQ(op_family(n), "layout");
  n.op_type = "SomethingNew";
  EXPECT_EQ(op_family(n), "other");
}

}  // namespace kiln::test
