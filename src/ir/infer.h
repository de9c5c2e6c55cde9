#pragma once
#include <map>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "ir/op.h"

namespace kiln {

// A node kiln cannot run, with why: what `kiln inspect` lists and what
// Session::load's UnsupportedError says (one str() per line).
struct UnsupportedNode {
  std::string name;    // the node's name ("" when the file gave none)
  std::string domain;  // "" = ai.onnx
  std::string op;
  int opset = 0;
  std::vector<std::string> input_types;  // per input: "float", "?" (unknown), "_" (omitted)
  SupportIssue issue = SupportIssue::kNone;
  std::string reason;
  // "node 'x' (Foo-13) with input types (float, ?): reason"
  std::string str() const;
};

// Resolves every node's schema and infers the type and shape of every value,
// in topological order, recursing into subgraphs. Nodes kiln cannot run are
// appended to *unsupported ("node 'x' (Foo-13): reason") rather than thrown,
// so that a model's whole list can be reported at once. Shape errors throw.
void infer_graph(Graph& g, std::vector<UnsupportedNode>* unsupported);
// The same with each unsupported node as its str().
void infer_graph(Graph& g, std::vector<std::string>* unsupported);

// Gives graph inputs the shapes the user chose (SessionOptions::input_shapes,
// the CLI's --shapes): each must name an input, match its rank and agree with
// its fixed dims; symbolic dims take the given sizes. The name "" means the
// model's only input that has no default. kiln::Error otherwise.
void bind_input_shapes(Graph& g, const std::map<std::string, Shape>& shapes);

// Infers the output types of one resolved node again, keeping what is
// already known where the new inference knows less. For passes that make
// inputs constant while they sweep the graph in order (constant folding), so
// that downstream shapes become static in the same sweep.
void reinfer_node(Node& node);

}  // namespace kiln
