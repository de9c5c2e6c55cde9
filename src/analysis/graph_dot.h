// A Graphviz (DOT) picture of a graph, for `kiln graph` (docs/graph.md):
// one DOT node per graph node, labelled with its op, a short name, its key
// attributes and the weights it reads (initializers are folded into the node
// that reads them instead of being drawn on their own); edges carry the
// shape of the value they stand for; graph inputs and outputs are drawn as
// ellipses. Nodes are coloured by op family and, when their names are paths
// (PyTorch's exporter: "/features/denseblock1/denselayer3/conv1/Conv"),
// grouped into nested clusters so that a large model stays readable.
//
// DOT ids are stable so that tests and tools can find elements in the
// rendered picture: "n<i>" for graph.nodes[i], "in<i>" for graph.inputs[i],
// "out<i>" for graph.outputs[i], "legend" for the legend.
#pragma once
#include <map>
#include <string>

#include "ir/graph.h"

namespace kiln {

struct DotOptions {
  std::string title;  // drawn above the graph ("" for none)
  // Imported node name -> its op type: lets a fused node list the ops it
  // stands for ("fused: Conv+BatchNormalization+Relu"); without an entry the
  // origin is counted but not named.
  std::map<std::string, std::string> origin_ops;
  // Nesting depth of the clusters made from name paths (0: no clusters).
  int cluster_depth = 3;
  // Repeated blocks: of sibling clusters with the same ops in the same order
  // (ViT's encoder layers, a dense block's layers), draw the first and one
  // box "N more like it" for the rest, which edges to and from them go to.
  bool collapse = false;
  bool legend = true;
  // Large graphs only: the largest drawing, in inches (Graphviz "size"; 0:
  // none). kiln graph caps PNGs, whose encoding time grows with their area.
  double large_max_inches = 0;
  // The shape on each edge: kAuto draws them on graphs of up to
  // kEdgeLabelMaxNodes nodes; without them a node lists its outputs' shapes
  // ("-> float 1x64x56x56"). Edge labels multiply dot's layout time on large
  // graphs (docs/graph.md).
  enum class EdgeLabels { kAuto, kOn, kOff };
  EdgeLabels edge_labels = EdgeLabels::kAuto;
};

// Above this many nodes a graph counts as large: no edge labels by default,
// and layout settings that keep dot's time to seconds (straight edges,
// capped crossing minimization and network simplex).
inline constexpr size_t kEdgeLabelMaxNodes = 250;

// What graph_to_dot drew, for callers that report it and for tests.
struct DotStats {
  int nodes = 0;            // DOT nodes for graph nodes (graph.nodes.size() less the collapsed ones)
  int body_nodes = 0;       // DOT nodes for nodes inside If/Loop/Scan bodies (nested ones included)
  int bodies = 0;           // bodies drawn, each a dashed cluster (counted in `clusters` too)
  int collapsed = 0;        // graph nodes drawn as part of a "more like it" box
  int collapsed_boxes = 0;  // those boxes (DOT ids "c<k>")
  int inputs = 0;           // graph inputs drawn (those that are not initializers)
  int outputs = 0;          // graph outputs drawn
  int legend = 0;           // 1 when the legend was drawn
  int fused = 0;            // nodes that do the work of more than one imported node
  int clusters = 0;
  int edges = 0;
  bool edge_labels = false;  // whether edges carry their shapes
  bool large = false;        // drawn with the large-graph layout settings
};

// The op family a node is coloured by: "conv", "matmul", "normalization",
// "activation", "pooling", "elementwise", "shape", "reduction", "recurrent",
// "attention", "layout", "control" or "other".
std::string op_family(const Node& n);

// The DOT text of a graph. The bodies of If/Loop/Scan nodes are drawn too,
// each as a dashed cluster next to its node ("then_branch of If_0 (5
// nodes)"), nested bodies inside theirs: a body's DOT ids are its node's id,
// the attribute and its own ("n3_then_branch_n0", "n3_body_in1",
// "n3_body_out0"), its nodes have the SVG class "body", values it reads from
// the enclosing graphs are edges from their producers there, and each body
// output has a dashed edge into the node.
std::string graph_to_dot(const Graph& g, const DotOptions& options, DotStats* stats = nullptr);

}  // namespace kiln
