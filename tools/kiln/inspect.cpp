// kiln inspect MODEL: what is in a model and what it costs, without running
// it: the file's header (IR version, producer, opsets, inputs and outputs,
// parameters by type), an op histogram, the nodes kiln cannot run and why,
// and a per-node table of shapes, parameters, MACs and FLOPs
// (src/analysis/flops.h; conventions in docs/flops.md). --optimized shows the
// table for the graph after kiln's passes. The JSON, YAML and CSV layouts are
// documented in docs/flops.md and kept stable.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "analysis/flops.h"
#include "cli.h"
#include "engine/engine_file.h"
#include "engine/meta.h"
#include "ir/infer.h"
#include "onnx/import.h"
#include "passes/pass_manager.h"
#include "pipeline/prepare.h"

namespace kiln::cli {

namespace {

// Keys in the order they are written: the report reads top-down (header,
// histogram, unsupported, nodes, totals) in JSON and YAML alike.
using json = nlohmann::ordered_json;

struct InspectArgs : SessionFlags {
  std::string format = "table";
  bool optimized = false;
};

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

// Refuses inputs whose dims --shapes left open: the per-node counts need
// numbers, and kiln does not guess them (complete_feed refuses the same way).
void require_static_inputs(const Graph& g) {
  std::vector<TensorInfo> open;
  for (const Value* in : g.inputs) {
    if (in->initializer || in->type.is_static()) continue;
    open.push_back(info_of(*in));
  }
  if (!open.empty()) throw Error(unresolved_dims_message(open));
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

json inspect(const InspectArgs& a) {
  Model m = load_onnx_file(a.model);
  Graph& g = *m.graph;
  const auto shapes = parse_shapes(a.shapes);
  std::vector<ValueType> declared_in, declared_out;
  for (const Value* v : g.inputs) declared_in.push_back(v->type);
  for (const Value* v : g.outputs) declared_out.push_back(v->type);
  bind_input_shapes(g, shapes);
  require_static_inputs(g);
  std::vector<UnsupportedNode> unsupported;
  infer_graph(g, &unsupported);
  // Folding needs a graph kiln supports.
  if (!a.optimized && unsupported.empty()) adopt_folded_shapes(g, a.model, shapes);

  json j;
  j["model"] = a.model;
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
  if (a.optimized && unsupported.empty()) {
    passes::optimize(g, passes::PassOptions::from_env(2, {}));
    j["graph"] = "optimized";
  } else if (a.optimized) {
    std::fprintf(stderr, "kiln inspect: --optimized ignored: the optimizer needs a model kiln supports\n");
  }
  json nodes, totals;
  nodes_json(g, &nodes, &totals);
  j["nodes"] = std::move(nodes);
  j["totals"] = std::move(totals);
  return j;
}

// ------------------------------------------------------------------ output

// YAML through yaml-cpp, mirroring the JSON: strings double-quoted so that a
// node named "1" or "yes" reads back as a string.
void emit_yaml(YAML::Emitter& out, const json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (const auto& [k, v] : j.items()) {
      out << YAML::Key << YAML::DoubleQuoted << k << YAML::Value;
      emit_yaml(out, v);
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    // A list of scalars (a shape, a list of types) on one line.
    const bool flat = std::none_of(j.begin(), j.end(), [](const json& v) { return v.is_structured(); });
    if (flat) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& v : j) emit_yaml(out, v);
    out << YAML::EndSeq;
  } else if (j.is_null()) {
    out << YAML::Null;
  } else if (j.is_boolean()) {
    out << j.get<bool>();
  } else if (j.is_number_integer()) {
    out << j.get<int64_t>();
  } else if (j.is_number()) {
    out << j.get<double>();
  } else {
    out << YAML::DoubleQuoted << j.get<std::string>();
  }
}

// Shapes of the CSV and the table: "1x64x56x56", several joined by ";"; "?"
// for an unknown rank. `sep` joins the dims.
std::string shapes_text(const json& shapes, const char* sep = "x") {
  std::string s;
  for (const json& d : shapes) {
    if (!s.empty()) s += ";";
    if (d.is_null()) {
      s += "?";
      continue;
    }
    std::string one;
    for (const json& x : d) one += (one.empty() ? "" : sep) + (x.is_string() ? x.get<std::string>() : x.dump());
    s += one;
  }
  return s;
}

std::string number_or_empty(const json& v) { return v.is_null() ? "" : v.dump(); }

void print_csv(const json& j) {
  std::printf("index,name,op,input_shapes,output_shapes,params,macs,flops\n");
  for (const json& n : j["nodes"])
    std::printf("%s,%s,%s,%s,%s,%s,%s,%s\n", n["index"].dump().c_str(), csv_field(n["name"].get<std::string>()).c_str(),
                csv_field(n["op"].get<std::string>()).c_str(), csv_field(shapes_text(n["input_shapes"])).c_str(),
                csv_field(shapes_text(n["output_shapes"])).c_str(), n["params"].dump().c_str(),
                number_or_empty(n["macs"]).c_str(), number_or_empty(n["flops"]).c_str());
}

// 4.11 G, 25.6 M, 812 k: counts for people.
std::string human(double v) {
  const char* units[] = {"", " k", " M", " G", " T", " P"};
  int u = 0;
  while (v >= 1000 && u < 5) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
  return buf;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string io_line(const json& v) {
  std::string shape = v["shape"].is_null() ? "?" : shapes_text(json::array({v["shape"]}), " x ");
  std::string line = v["name"].get<std::string>() + ": " + v["dtype"].get<std::string>() + "[" + shape + "]";
  if (v["analysis_shape"] != v["shape"] && !v["analysis_shape"].is_null())
    line += "  (analysed as " + shapes_text(json::array({v["analysis_shape"]})) + ")";
  return line;
}

std::string clip_left(const std::string& s, size_t width) {
  return s.size() <= width ? s : "…" + s.substr(s.size() - (width - 1));
}

void print_table(const json& j) {
  std::printf("model      %s\n", j["model"].get<std::string>().c_str());
  std::printf("IR         %lld, producer %s %s\n", j["ir_version"].get<long long>(),
              j["producer"]["name"].get<std::string>().c_str(), j["producer"]["version"].get<std::string>().c_str());
  std::string opsets;
  for (const auto& [d, v] : j["opsets"].items()) opsets += (opsets.empty() ? "" : ", ") + d + " " + v.dump();
  std::printf("opsets     %s\n", opsets.c_str());
  for (const json& v : j["inputs"]) std::printf("input      %s\n", io_line(v).c_str());
  for (const json& v : j["outputs"]) std::printf("output     %s\n", io_line(v).c_str());
  const json& p = j["parameters"];
  std::string by_type;
  for (const auto& [t, cb] : p["by_dtype"].items())
    by_type += (by_type.empty() ? "" : ", ") + t + " " + human(cb["count"].get<double>()) + " (" +
               human_bytes(cb["bytes"].get<double>()) + ")";
  std::printf("parameters %s (%s)%s%s\n", human(p["count"].get<double>()).c_str(),
              human_bytes(p["bytes"].get<double>()).c_str(), by_type.empty() ? "" : ": ", by_type.c_str());
  std::printf("initializers %lld tensors, %s\n", j["initializers"]["tensors"].get<long long>(),
              human_bytes(j["initializers"]["bytes"].get<double>()).c_str());
  std::printf("nodes      %lld\n\n", j["node_count"].get<long long>());

  std::vector<std::pair<std::string, int>> hist;
  for (const auto& [op, count] : j["op_histogram"].items()) hist.emplace_back(op, count.get<int>());
  std::stable_sort(hist.begin(), hist.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
  std::printf("op histogram\n");
  for (const auto& [op, count] : hist) std::printf("  %-28s %6d\n", op.c_str(), count);

  const json& un = j["unsupported"];
  if (un.empty()) {
    std::printf("\nsupported: every node runs on kiln\n");
  } else {
    std::printf("\nnot supported: %zu node(s)\n", un.size());
    for (const json& u : un) {
      std::string types;
      for (const json& t : u["input_types"]) types += (types.empty() ? "" : ", ") + t.get<std::string>();
      std::printf("  %-24s %s %s-%lld (%s): %s: %s\n", u["name"].get<std::string>().c_str(),
                  u["domain"].get<std::string>().c_str(), u["op"].get<std::string>().c_str(),
                  u["opset"].get<long long>(), types.c_str(), u["reason_kind"].get<std::string>().c_str(),
                  u["reason"].get<std::string>().c_str());
    }
  }

  std::printf("\nnodes (%s graph)\n", j["graph"].get<std::string>().c_str());
  std::printf("%5s  %-28s %-24s %-20s %-20s %10s %10s %10s\n", "#", "name", "op", "input", "output", "params", "MACs",
              "FLOPs");
  for (const json& n : j["nodes"]) {
    std::string op = n["op"].get<std::string>();
    if (n.contains("epilogue"))
      for (const json& e : n["epilogue"]) op += "+" + e.get<std::string>();
    std::string in = n["input_shapes"].empty() ? "" : shapes_text(json::array({n["input_shapes"][0]}));
    std::string out = n["output_shapes"].empty() ? "" : shapes_text(json::array({n["output_shapes"][0]}));
    const json& macs = n["macs"];
    const json& flops = n["flops"];
    std::printf("%5s  %-28s %-24s %-20s %-20s %10s %10s %10s\n", n["index"].dump().c_str(),
                clip_left(n["name"].get<std::string>(), 28).c_str(), clip_left(op, 24).c_str(),
                clip_left(in, 20).c_str(), clip_left(out, 20).c_str(), human(n["params"].get<double>()).c_str(),
                macs.is_null() ? "?" : human(macs.get<double>()).c_str(),
                flops.is_null() ? "?" : human(flops.get<double>()).c_str());
  }
  const json& t = j["totals"];
  std::printf("\ntotal      %s MACs, %s FLOPs, %s parameters over %lld nodes", human(t["macs"].get<double>()).c_str(),
              human(t["flops"].get<double>()).c_str(), human(t["params"].get<double>()).c_str(),
              t["nodes"].get<long long>());
  if (t["uncounted_nodes"].get<int64_t>() > 0)
    std::printf(" (%lld not counted: shape unknown or no rule, see docs/flops.md)",
                t["uncounted_nodes"].get<long long>());
  std::printf("\n");
  for (const json& n : j["nodes"]) {
    if (!n.contains("bodies")) continue;
    for (const json& b : n["bodies"])
      std::printf("  in %s (%s) %-14s %lld nodes, %s parameters, %s MACs per pass%s\n",
                  n["name"].get<std::string>().c_str(), n["op"].get<std::string>().c_str(),
                  b["attribute"].get<std::string>().c_str(), b["nodes"].get<long long>(),
                  human(b["params"].get<double>()).c_str(), human(b["macs"].get<double>()).c_str(),
                  b["uncounted_nodes"].get<int64_t>() > 0
                      ? (" (" + std::to_string(b["uncounted_nodes"].get<int64_t>()) + " not counted)").c_str()
                      : "");
  }
}

// An engine file (kiln build): its header, profiles and the kernel each node
// runs, from the metadata; inputs and outputs from loading it.
json inspect_engine(const InspectArgs& a) {
  auto file = engine::EngineFile::open(a.model);
  const json meta = engine::parse_meta(*file);
  Session s = Session::load(a.model);
  json j;
  j["engine"] = a.model;
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
  j["inputs"] = io(s.inputs());
  j["outputs"] = io(s.outputs());
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

void print_engine_table(const json& j) {
  std::printf("engine       %s (%s, format version %u)\n", j["engine"].get<std::string>().c_str(),
              human_bytes(j["file_bytes"].get<double>()).c_str(), j["format_version"].get<unsigned>());
  std::printf("built by     kiln %s from %s\n", j["kiln_version"].get<std::string>().c_str(),
              j["source"].get<std::string>().c_str());
  std::string features;
  for (const auto& f : j["cpu_features"]) features += (features.empty() ? "" : " ") + f.get<std::string>();
  std::printf("kernels for  %s (needs %s); opt level %d, tuned for %d thread(s) (0 = all cores)\n",
              j["isa"].get<std::string>().c_str(), features.c_str(), j["build"]["opt_level"].get<int>(),
              j["build"]["threads"].get<int>());
  for (const char* io : {"inputs", "outputs"})
    for (const auto& v : j[io])
      std::printf("%-12s %s %s\n", io == std::string("inputs") ? "input" : "output",
                  v["name"].get<std::string>().c_str(), v["type"].get<std::string>().c_str());
  for (size_t p = 0; p < j["profiles"].size(); ++p) {
    const json& prof = j["profiles"][p];
    std::printf("profile %zu   ", p);
    for (const auto& [name, r] : prof["inputs"].items())
      std::printf(" %s: min %s, opt %s, max %s;", name.c_str(), shapes_text(json::array({r["min"]})).c_str(),
                  shapes_text(json::array({r["opt"]})).c_str(), shapes_text(json::array({r["max"]})).c_str());
    std::printf(" memory plan %s\n", human_bytes(prof["arena_bytes"].get<double>()).c_str());
  }
  std::printf("packed       %s of weights packed for the kernels\n\n",
              human_bytes(j["packed_bytes"].get<double>()).c_str());
  std::printf("%-5s %-40s %-22s %-10s %10s\n", "#", "node", "op", "kernel", "packed");
  for (size_t i = 0; i < j["nodes"].size(); ++i) {
    const json& n = j["nodes"][i];
    std::printf("%-5zu %-40s %-22s %-10s %10s\n", i, clip_left(n["name"].get<std::string>(), 40).c_str(),
                n["op"].get<std::string>().c_str(), n["implementation"].get<std::string>().c_str(),
                n.contains("packed") ? human_bytes(n["packed"]["bytes"].get<double>()).c_str() : "");
  }
}

void inspect_main(const InspectArgs& a) {
  const bool is_engine = engine::is_engine_file(a.model);
  json j;
  try {
    j = is_engine ? inspect_engine(a) : inspect(a);
  } catch (const Error& e) {
    const std::string msg = e.what();
    throw Error(msg.rfind(a.model, 0) == 0 ? msg : a.model + ": " + msg);
  }
  if (a.format == "json") {
    std::printf("%s\n", json_text(j).c_str());
  } else if (a.format == "yaml") {
    YAML::Emitter out;
    emit_yaml(out, j);
    std::printf("%s\n", out.c_str());
  } else if (is_engine) {
    print_engine_table(j);  // csv too: an engine's per-node table is the table's
  } else if (a.format == "csv") {
    print_csv(j);
  } else {
    print_table(j);
  }
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect",
      "Show a model's inputs, parameters, ops, unsupported nodes and per-node MACs/FLOPs (without running it)");
  add_session_flags(cmd, *a, kModelFlag | kShapesFlag);
  cmd->add_option("--format", a->format, "table, json, csv (the per-node table) or yaml")
      ->check(CLI::IsMember({"table", "json", "csv", "yaml"}))
      ->capture_default_str();
  cmd->add_flag("--optimized", a->optimized, "Count the graph after kiln's optimizer (fusions, folded BatchNorm)");
  cmd->callback([a] { inspect_main(*a); });
}

}  // namespace kiln::cli
