#include "pipeline/inspect.h"

#include <algorithm>
#include <set>

#include "analysis/flops.h"
#include "engine/engine_file.h"
#include "engine/meta.h"
#include "ir/infer.h"
#include "onnx/import.h"
#include "passes/pass_manager.h"
#include "pipeline/load_engine.h"
#include "pipeline/prepare.h"

namespace kiln {

namespace {

std::string open_inputs_list(const std::vector<TensorInfo>& open) {
  std::string list;
  for (const TensorInfo& info : open)
    list += "\n  " + info.name + ": " + info.str() + (info.has_shape ? "" : " (rank unknown)");
  return list;
}

}  // namespace

UnresolvedDimsError::UnresolvedDimsError(std::vector<TensorInfo> open)
    : Error("the model has inputs with dims of unknown size, and kiln does not guess them: give their sizes" +
            open_inputs_list(open)),
      inputs(std::move(open)) {}

namespace {

using json = InspectJson;

std::string domain_name(const std::string& domain) { return domain.empty() ? "ai.onnx" : domain; }

std::string op_name(const Node& n) {
  return n.domain.empty() || n.domain == "ai.onnx" ? n.op_type : n.domain + "." + n.op_type;
}

// [1, "batch", 224] for JSON/YAML: known dims as numbers, symbols as
// strings, unknown dims "?"; null for an unknown rank.
json shape_json(const ValueType& t) {
  if (!t.shape) return nullptr;
  json dims = json::array();
  for (const Dim& d : *t.shape) {
    if (d.is_known())
      dims.push_back(d.value);
    else
      dims.push_back(d.symbol.empty() ? "?" : d.symbol);
  }
  return dims;
}

json value_json(const Value& v, const ValueType& declared) {
  return {{"name", v.name},
          {"dtype", dtype_name(declared.dtype)},
          {"shape", shape_json(declared)},
          {"analysis_shape", shape_json(v.type)}};
}

// Refuses inputs whose dims the shapes left open: the per-node counts need
// numbers, and kiln does not guess them.
void require_static_inputs(const Graph& g) {
  std::vector<TensorInfo> open;
  for (const Value* in : g.inputs) {
    if (in->initializer || in->type.is_static()) continue;
    open.push_back(info_of(*in));
  }
  if (!open.empty()) throw UnresolvedDimsError(std::move(open));
}

// Shape inference alone leaves open what an exporter computes at run time
// from Shape nodes (a Reshape to [batch * heads, -1, 64], a Resize to the
// input's size). kiln's shape folding makes those static, but it rewrites the
// graph; so it runs on a second copy of the model and the original graph
// takes the shapes the copy found for the values of the same name.
void adopt_folded_shapes(Graph& g, const std::string& path, const std::map<std::string, Shape>& shapes) {
  Model copy = load_onnx_file(path);
  Graph& c = *copy.graph;
  bind_input_shapes(c, shapes);
  std::vector<UnsupportedNode> unsupported;
  infer_graph(c, &unsupported);
  // Folding only: dead-code elimination would drop folded values whose consumers folded too.
  passes::optimize(c, passes::PassOptions::from_env(
                          1, {"eliminate_identity", "eliminate_common_subexpressions", "eliminate_dead_code"}));
  for (const auto& v : g.values) {
    if (v->type.is_static()) continue;
    const Value* folded = c.find(v->name);
    if (folded && folded->type.is_static() && folded->type.dtype == v->type.dtype) v->type = folded->type;
  }
}

// The header's numbers: every initializer of the top-level graph, and those
// that are parameters (analysis/flops.h: is_parameter) by element type.
json initializers_json(const Graph& g, json* parameters) {
  int64_t tensors = 0, bytes = 0, params = 0, param_bytes = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // count, bytes
  for (const auto& v : g.values) {
    if (!v->initializer) continue;
    const Tensor& t = *v->initializer;
    const int64_t b = static_cast<int64_t>(t.nbytes());
    ++tensors;
    bytes += b;
    if (!is_parameter(t)) continue;
    params += t.numel();
    param_bytes += b;
    auto& [count, dbytes] = by_dtype[dtype_name(t.dtype())];
    count += t.numel();
    dbytes += b;
  }
  json types = json::object();
  for (const auto& [name, cb] : by_dtype) types[name] = {{"count", cb.first}, {"bytes", cb.second}};
  *parameters = {{"count", params}, {"bytes", param_bytes}, {"by_dtype", types}};
  return {{"tensors", tensors}, {"bytes", bytes}};
}

json unsupported_json(const std::vector<UnsupportedNode>& list) {
  json out = json::array();
  for (const UnsupportedNode& u : list)
    out.push_back({{"name", u.name},
                   {"domain", domain_name(u.domain)},
                   {"op", u.op},
                   {"opset", u.opset},
                   {"input_types", u.input_types},
                   {"reason_kind", support_issue_name(u.issue)},
                   {"reason", u.reason}});
  return out;
}

// What an If/Loop/Scan body holds, nested bodies included: its nodes, the
// parameters its nodes read (each initializer once, in `seen`), and the MACs
// and FLOPs of its nodes with a counting rule (one pass through the body: a
// Loop's trip count is not known here).
struct BodyCount {
  int64_t nodes = 0, params = 0, macs = 0, flops = 0, uncounted = 0;
};
void count_body(const Graph& body, std::set<const Value*>& seen, BodyCount* c) {
  for (const auto& n : body.nodes) {
    ++c->nodes;
    const NodeCost cost = node_cost(*n);
    if (cost.known) {
      c->macs += cost.macs;
      c->flops += cost.flops;
    } else if (n->attrs.empty() || std::none_of(n->attrs.begin(), n->attrs.end(),
                                                [](const auto& a) { return a.second.g || !a.second.graphs.empty(); })) {
      ++c->uncounted;
    }
    for (const Value* v : n->inputs)
      if (v && v->initializer && is_parameter(*v->initializer) && seen.insert(v).second)
        c->params += v->initializer->numel();
    for (const auto& [name, a] : n->attrs) {
      if (a.g) count_body(*a.g, seen, c);
      for (const auto& sub : a.graphs) count_body(*sub, seen, c);
    }
  }
}

// A control-flow node's bodies, one entry per graph attribute (If: each
// branch), or null for a node without any.
json bodies_json(const Node& n, std::set<const Value*>& seen, BodyCount* all) {
  json bodies = json::array();
  for (const auto& [name, a] : n.attrs) {
    std::vector<const Graph*> graphs;
    if (a.g) graphs.push_back(a.g.get());
    for (const auto& sub : a.graphs) graphs.push_back(sub.get());
    for (const Graph* body : graphs) {
      BodyCount c;
      count_body(*body, seen, &c);
      bodies.push_back({{"attribute", name},
                        {"nodes", c.nodes},
                        {"params", c.params},
                        {"macs", c.macs},
                        {"flops", c.flops},
                        {"uncounted_nodes", c.uncounted}});
      all->nodes += c.nodes;
      all->params += c.params;
      all->uncounted += c.uncounted;
    }
  }
  return bodies.empty() ? json(nullptr) : bodies;
}

// One row per top-level node, and the totals (parameters counted once per
// initializer, however many nodes read it, inside control-flow bodies too).
void nodes_json(const Graph& g, json* nodes, json* totals) {
  *nodes = json::array();
  int64_t macs = 0, flops = 0, uncounted = 0, params = 0;
  std::set<const Value*> seen;
  BodyCount in_bodies;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = *g.nodes[i];
    const NodeCost c = node_cost(n);
    json in_shapes = json::array(), out_shapes = json::array();
    for (const Value* v : n.inputs) in_shapes.push_back(v ? shape_json(v->type) : json(nullptr));
    for (const Value* v : n.outputs) out_shapes.push_back(v ? shape_json(v->type) : json(nullptr));
    json row = {{"index", i},
                {"name", n.name},
                {"op", op_name(n)},
                {"input_shapes", in_shapes},
                {"output_shapes", out_shapes},
                {"params", node_params(n)},
                {"macs", c.known ? json(c.macs) : json(nullptr)},
                {"flops", c.known ? json(c.flops) : json(nullptr)}};
    if (n.has_attr("kiln.epilogue")) row["epilogue"] = n.attr_strings("kiln.epilogue");
    if (!c.known) row["uncounted_why"] = c.why;
    json bodies = bodies_json(n, seen, &in_bodies);
    if (!bodies.is_null()) row["bodies"] = std::move(bodies);
    nodes->push_back(std::move(row));
    if (c.known) {
      macs += c.macs;
      flops += c.flops;
    } else {
      ++uncounted;
    }
    for (const Value* v : n.inputs)
      if (v && v->initializer && is_parameter(*v->initializer) && seen.insert(v).second)
        params += v->initializer->numel();
  }
  *totals = {{"macs", macs},
             {"flops", flops},
             {"params", params + in_bodies.params},
             {"nodes", g.nodes.size()},
             {"uncounted_nodes", uncounted},
             {"nodes_in_bodies", in_bodies.nodes},
             {"params_in_bodies", in_bodies.params}};
}

}  // namespace

InspectJson inspect_model(const std::string& path, const std::map<std::string, Shape>& shapes, bool optimized,
                          std::vector<std::string>* warnings) {
  Model m = load_onnx_file(path);
  Graph& g = *m.graph;
  std::vector<ValueType> declared_in, declared_out;
  for (const Value* v : g.inputs) declared_in.push_back(v->type);
  for (const Value* v : g.outputs) declared_out.push_back(v->type);
  bind_input_shapes(g, shapes);
  require_static_inputs(g);
  std::vector<UnsupportedNode> unsupported;
  infer_graph(g, &unsupported);
  // Folding needs a graph kiln supports.
  if (!optimized && unsupported.empty()) adopt_folded_shapes(g, path, shapes);

  json j;
  j["model"] = path;
  j["ir_version"] = m.ir_version;
  j["producer"] = {{"name", m.producer_name}, {"version", m.producer_version}};
  j["opsets"] = json::object();
  for (const auto& [domain, version] : m.opsets) j["opsets"][domain_name(domain)] = version;
  j["inputs"] = json::array();
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    if (g.inputs[i]->initializer) continue;  // an initializer that may be overridden: not a user input
    j["inputs"].push_back(value_json(*g.inputs[i], declared_in[i]));
  }
  j["outputs"] = json::array();
  for (size_t i = 0; i < g.outputs.size(); ++i) j["outputs"].push_back(value_json(*g.outputs[i], declared_out[i]));
  json parameters;
  j["initializers"] = initializers_json(g, &parameters);
  j["parameters"] = parameters;
  std::map<std::string, int> histogram;
  for (const auto& n : g.nodes) ++histogram[op_name(*n)];
  j["node_count"] = g.nodes.size();
  j["op_histogram"] = histogram;
  j["unsupported"] = unsupported_json(unsupported);

  j["graph"] = "original";
  if (optimized && unsupported.empty()) {
    passes::optimize(g, passes::PassOptions::from_env(2, {}));
    j["graph"] = "optimized";
  } else if (optimized && warnings) {
    warnings->push_back("the optimized graph was not counted: the optimizer needs a model kiln supports");
  }
  json nodes, totals;
  nodes_json(g, &nodes, &totals);
  j["nodes"] = std::move(nodes);
  j["totals"] = std::move(totals);
  return j;
}

// An engine file (kiln build): its header, profiles and the kernel each node
// runs, from the metadata; inputs and outputs from loading it.
InspectJson inspect_engine(const std::string& path) {
  auto file = engine::EngineFile::open(path);
  const json meta = engine::parse_meta(*file);
  const std::unique_ptr<Session::Impl> s = load_engine(file, SessionOptions{});
  json j;
  j["engine"] = path;
  j["format_version"] = file->format_version();
  j["file_bytes"] = file->file_bytes();
  j["sections"] = json::array();
  for (const auto& sec : file->sections())
    j["sections"].push_back({{"name", engine::section_name(sec.kind)}, {"offset", sec.offset}, {"bytes", sec.bytes}});
  for (const char* key : {"kiln_version", "source", "isa", "cpu_features", "build"}) j[key] = meta.at(key);
  auto io = [](const std::vector<TensorInfo>& list) {
    json out = json::array();
    for (const TensorInfo& t : list)
      if (!t.has_default) out.push_back({{"name", t.name}, {"type", t.str()}});
    return out;
  };
  j["inputs"] = io(s->inputs);
  j["outputs"] = io(s->outputs);
  j["profiles"] = json::array();
  for (const json& p : meta.at("profiles"))
    j["profiles"].push_back({{"inputs", p.at("inputs")}, {"arena_bytes", p.at("memory_plan").at("arena_bytes")}});
  std::map<size_t, const json*> packed;
  size_t packed_bytes = 0;
  for (const json& p : meta.at("packed")) packed[p.at("node").get<size_t>()] = &p;
  j["nodes"] = json::array();
  std::map<std::string, int> histogram;
  const json& nodes = meta.at("nodes");
  for (size_t i = 0; i < nodes.size(); ++i) {
    json n = {
        {"name", nodes[i].at("name")}, {"op", nodes[i].at("op")}, {"implementation", nodes[i].at("implementation")}};
    ++histogram[nodes[i].at("op").get<std::string>()];
    if (packed.count(i)) {
      size_t bytes = 0;
      for (const json& b : packed[i]->at("blobs")) bytes += b.at("bytes").get<size_t>();
      packed_bytes += bytes;
      n["packed"] = {{"kernel", packed[i]->at("kernel")}, {"isa", packed[i]->at("isa")}, {"bytes", bytes}};
    }
    j["nodes"].push_back(n);
  }
  j["op_histogram"] = histogram;
  j["packed_bytes"] = packed_bytes;
  return j;
}

}  // namespace kiln
