#include "ir/verify.h"

#include <unordered_set>

#include "kiln/error.h"

namespace kiln {

namespace {

bool owned_by(const Graph& g, const Value* v) {
  return v->index >= 0 && static_cast<size_t>(v->index) < g.values.size() &&
         g.values[static_cast<size_t>(v->index)].get() == v;
}

void check_read(const Graph& g, const Node& n, const Value* v, const std::unordered_set<const Value*>& defined) {
  if (!owned_by(g, v))
    throw Error("graph '" + g.name + "': " + n.describe() + " reads '" + v->name + "', a value not in the graph");
  if (!defined.count(v))
    throw Error("graph '" + g.name + "': " + n.describe() + " reads '" + v->name + "' before it is defined");
}

}  // namespace

void verify_graph(const Graph& g) {
  const std::string where = "graph '" + g.name + "': ";
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value* v = g.values[i].get();
    if (v->index != static_cast<int>(i)) throw Error(where + "value '" + v->name + "' has a stale index");
    if (g.find(v->name) != v) throw Error(where + "value '" + v->name + "' is missing from the name table");
  }
  if (g.by_name.size() != g.values.size()) throw Error(where + "the name table has dangling entries");

  std::unordered_set<const Value*> defined;
  for (const auto& v : g.values)
    if (v->is_graph_input || v->initializer || v->is_outer) defined.insert(v.get());
  for (const auto& n : g.nodes) {
    for (const Value* in : n->inputs)
      if (in) check_read(g, *n, in, defined);
    for (const Value* in : g.implicit_inputs(*n)) check_read(g, *n, in, defined);
    for (const Value* out : n->outputs) {
      if (!out) continue;
      if (!owned_by(g, out))
        throw Error(where + n->describe() + " writes '" + out->name + "', a value not in the graph");
      if (!defined.insert(out).second)
        throw Error(where + "value '" + out->name + "' is defined twice (again by " + n->describe() + ")");
    }
  }
  for (const Value* out : g.outputs) {
    if (!owned_by(g, out)) throw Error(where + "output '" + out->name + "' is not a value of the graph");
    if (!defined.count(out)) throw Error(where + "output '" + out->name + "' is never defined");
  }
}

}  // namespace kiln
