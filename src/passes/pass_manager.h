// The pass manager: runs the graph optimizer's passes of an opt level, in a
// fixed order, repeatedly until none changes the graph (bounded). Between
// passes it restores topological order and re-infers types, so each pass
// sees a well-formed, typed graph; it can verify the graph after every pass,
// dump it (KILN_DUMP_PASSES=1) and time each pass.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln::passes {

// A pass: a named rewrite that runs from opt level `min_level` upward and
// returns whether it changed the graph.
struct Pass {
  std::string name;
  int min_level = 1;
  std::function<bool(Graph&)> run;
};

// Every pass, in the order the manager runs them.
const std::vector<Pass>& all_passes();

struct PassOptions {
  int opt_level = 2;                  // 0: no passes
  std::vector<std::string> disabled;  // pass names to skip
  bool verify = false;                // verify_graph after each pass
  bool dump = false;                  // Graph::dump() to stderr after each changing pass
  int max_rounds = 8;
  // Defaults: verify in debug builds or with KILN_VERIFY_PASSES=1, dump with
  // KILN_DUMP_PASSES=1.
  static PassOptions from_env(int opt_level, std::vector<std::string> disabled);
};

struct PassStat {
  std::string name;
  int changed = 0;  // rounds in which it changed the graph
  double ms = 0;
};

struct PassReport {
  size_t nodes_before = 0, nodes_after = 0;
  size_t subgraph_nodes_before = 0, subgraph_nodes_after = 0;  // in If/Loop/Scan bodies, all depths
  int rounds = 0;
  std::vector<PassStat> passes;
  std::string str() const;  // one line per pass
};

// Runs the passes on g, then on the bodies of its If/Loop/Scan nodes (each
// a graph of its own whose outer-scope reads are kept). g must have been inferred (infer_graph) and is inferred again
// on return. Throws kiln::Error for an unknown name in `disabled` or a graph a pass broke (when verifying).
PassReport optimize(Graph& g, const PassOptions& options);

}  // namespace kiln::passes
