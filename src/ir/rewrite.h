// Small helpers to read and rewrite a Graph (passes, the network API). They keep the
// producer/consumer links up to date. Passes never delete nodes while they
// iterate: they detach them (erased by the manager after the pass) or leave
// them unread (removed by eliminate_dead_code).
#pragma once
#include <string>

#include "ir/graph.h"

namespace kiln {

// An initializer that cannot change at run time (not an overridable graph
// input, not an outer-scope value): its value is known while optimizing.
const Tensor* constant_of(const Value* v);
bool is_graph_output(const Graph& g, const Value* v);
// True when v's only reader is `reader`, read explicitly, and v is not a
// graph output: the producer of v may then be rewritten freely.
bool only_read_by(const Graph& g, const Value* v, const Node* reader);
// v's producer when it is the default-domain op `op`, else nullptr.
Node* producer_if(const Value* v, const char* op);
// A scalar or one-element float/double constant's value.
bool scalar_constant(const Value* v, double* out);

// Makes every reader of `from` read `to` instead. A graph output `from` is
// kept by renaming `to` to `from`'s name (when `to` is a plain intermediate
// value). Returns false, changing nothing, when that cannot be done: `from`
// is read by a subgraph (by name), or is a graph output `to` cannot take
// over.
bool replace_uses(Graph& g, Value* from, Value* to);

// A fresh value holding `t` as a (non-overridable) initializer; its name is
// `hint`, made unique in the graph.
Value* add_constant(Graph& g, const std::string& hint, Tensor t);
// A fresh untyped value named after `hint`.
Value* add_fresh_value(Graph& g, const std::string& hint);
// Appends a node (the pass manager restores topological order afterwards).
Node* add_node(Graph& g, const std::string& op, const std::string& name, std::vector<Value*> inputs,
               std::vector<Value*> outputs, int opset);
Attribute int_attr(int64_t v);
Attribute float_attr(float v);
Attribute string_attr(std::string v);
Attribute ints_attr(std::vector<int64_t> v);
// Disconnects a node from its inputs and outputs. Used when a node's work
// moved into another node; the pass manager then erases it.
void detach_node(Graph& g, Node* n);
// The imported nodes `nodes` stand for together (Node::origins), for a node
// that replaces them all.
std::vector<std::string> merged_origins(const std::vector<Node*>& nodes);
// Erases the nodes detach_node left (no inputs, no outputs).
void erase_detached_nodes(Graph& g);

}  // namespace kiln
