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

}  // namespace kiln
