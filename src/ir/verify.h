// Structural checks of a Graph, run by the pass manager between passes in
// debug builds and tests: a pass that leaves a broken graph is caught at the
// pass that broke it, not three passes later in the executor.
#pragma once
#include "ir/graph.h"

namespace kiln {

// Throws kiln::Error naming the first broken invariant:
//  - Graph::values[i]->index == i and by_name maps each name to its value;
//  - every node input (explicit or a subgraph's implicit input) belongs to
//    this graph and is defined before it is read (graph input, initializer,
//    outer-scope value, or the output of an earlier node): nodes are in
//    topological order;
//  - each value has at most one producer, and initializers and graph inputs
//    have none;
//  - every graph output is defined.
void verify_graph(const Graph& g);

}  // namespace kiln
