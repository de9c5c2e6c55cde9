#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

// Resolves every node's schema and infers the type and shape of every value,
// in topological order, recursing into subgraphs. Nodes kiln cannot run are
// appended to *unsupported ("node 'x' (Foo-13): reason") rather than thrown,
// so that a model's whole list can be reported at once. Shape errors throw.
void infer_graph(Graph& g, std::vector<std::string>* unsupported);

// Infers the output types of one resolved node again, keeping what is
// already known where the new inference knows less. For passes that make
// inputs constant while they sweep the graph in order (constant folding), so
// that downstream shapes become static in the same sweep.
void reinfer_node(Node& node);

}  // namespace kiln
