// kiln profile MODEL: where a run's time goes, per executed node (after the
// optimizer's fusions) and per op type, like ONNX Runtime's profiler; each
// node's place on the machine's roofline (analysis/roofline.h: compute- or
// memory-bound, and the fraction of that roof it reaches; --below lists the
// nodes far under theirs); and a Chrome trace-event file (Perfetto,
// chrome://tracing) of every timed run. docs/profiling.md.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "analysis/flops.h"
#include "analysis/roofline.h"
#include "cli.h"
#include "core/thread_pool.h"
#include "engine/engine_file.h"
#include "ir/infer.h"
#include "onnx/import.h"
#include "pipeline/load_engine.h"
#include "pipeline/prepare.h"
#include "pipeline/session_impl.h"

namespace kiln::cli {

namespace {

struct ProfileArgs : SessionFlags {
  int warmup = 3;
  int iterations = 20;
  std::string format = "table";
  std::string trace;
  int top = 0;             // table: only the N slowest nodes (0: all)
  double peak_gflops = 0;  // 0: measure
  double l2_gbps = 0;      // 0: measure
  double dram_gbps = 0;    // 0: measure
  std::string below_text;  // --below as given
  double below = -1;       // list only the nodes under this fraction of their roof (< 0: all nodes)
};

// --below: a finite fraction >= 0; kiln::Error otherwise.
double parse_below(const std::string& text) {
  double v = -1;
  size_t used = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (text.empty() || used != text.size() || !std::isfinite(v) || v < 0)
    throw Error("--below must be a fraction >= 0 (e.g. 0.3 for 30% of the roof), got '" + text + "'");
  return v;
}

struct NodeRow {
  size_t index;
  double median_ms;
  double mean_ms;
  RooflinePoint roofline;
};

// What the executed node reads and writes, from the optimized graph.
struct NodeIo {
  int64_t flops = -1;                    // the session's count, else the graph's at the fed shapes
  int64_t bytes = -1;                    // analysis/roofline.h's bytes moved
  std::vector<std::string> input_types;  // "float[1x3x32x32]"
  std::string shapes;                    // "1x3x32x32, 16x3x3x3, 16 -> 1x16x32x32"
};

struct OpRow {
  std::string op;
  int nodes = 0;
  double ms = 0;
  int64_t flops = 0;
  bool all_counted = true;  // every node of the op has a FLOP count
};

// Chrome trace-event format ("X" complete events, microseconds): one event
// per node per run, runs laid end to end as they happened.
void write_trace(const std::string& path, const Session& s, const std::vector<Session::RunProfile>& runs,
                 const std::vector<double>& run_start_us) {
  const auto& nodes = s.executed_nodes();
  nlohmann::json events = nlohmann::json::array();
  for (size_t r = 0; r < runs.size(); ++r) {
    events.push_back({{"name", "run " + std::to_string(r)},
                      {"cat", "run"},
                      {"ph", "X"},
                      {"pid", 1},
                      {"tid", 0},
                      {"ts", run_start_us[r]},
                      {"dur", runs[r].total_us}});
    for (size_t i = 0; i < nodes.size(); ++i) {
      nlohmann::json args = {{"op", nodes[i].op}, {"outputs", nodes[i].output_types}, {"origins", nodes[i].origins}};
      events.push_back({{"name", nodes[i].name.empty() ? nodes[i].op : nodes[i].name},
                        {"cat", nodes[i].op},
                        {"ph", "X"},
                        {"pid", 1},
                        {"tid", 1},
                        {"ts", run_start_us[r] + runs[r].start_us[i]},
                        {"dur", runs[r].end_us[i] - runs[r].start_us[i]},
                        {"args", std::move(args)}});
    }
  }
  std::ofstream f(path);
  if (!f) throw Error(path + ": cannot open for writing");
  f << json_text(nlohmann::json{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}}, -1);
  if (!f) throw Error(path + ": write failed");
}

// "Conv+BatchNormalization+Relu"-style: the ops of a node's origins are not
// known here (only names), so list the names, shortened for the table.
std::string origins_str(const Session::ExecutedNode& n, size_t max_chars) {
  if (n.origins.size() <= 1) return "";
  std::string s = std::to_string(n.origins.size()) + ": ";
  for (size_t i = 0; i < n.origins.size(); ++i) s += (i ? ", " : "") + n.origins[i];
  if (max_chars && s.size() > max_chars) s = s.substr(0, max_chars - 3) + "...";
  return s;
}

// "1x3x32x32" ("?" for an unknown rank or dim, "scalar" for rank 0).
std::string dims_str(const Value* v) {
  if (!v) return "-";
  if (!v->type.has_rank()) return "?";
  if (v->type.shape->empty()) return "scalar";
  std::string s;
  for (const Dim& d : *v->type.shape) s += (s.empty() ? "" : "x") + d.str();
  return s;
}

NodeIo describe_io(const Node& n) {
  NodeIo io;
  io.bytes = node_bytes_moved(n);
  for (const Value* v : n.inputs) {
    io.input_types.push_back(v ? v->type.str() : "");
    io.shapes += (io.shapes.empty() ? "" : ", ") + dims_str(v);
  }
  io.shapes += " ->";
  for (size_t i = 0; i < n.outputs.size(); ++i) io.shapes += (i ? ", " : " ") + dims_str(n.outputs[i]);
  return io;
}

// "1x3x32x32" of "float[1x3x32x32]" ("scalar" for rank 0, "-" for an
// omitted input), as dims_str writes a value's.
std::string dims_of_type(const std::string& type) {
  if (type.empty()) return "-";
  const size_t open = type.find('['), close = type.rfind(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return "?";
  const std::string dims = type.substr(open + 1, close - open - 1);
  return dims.empty() ? "scalar" : dims;
}

// The bytes and shapes of every executed node. The session's own description
// has them when its shapes were static at load. Otherwise (an engine with
// dynamic dims) the graph is prepared again with the same options (its
// stored graph, its dynamic dims bound to the fed shapes) and matched to the
// executed nodes by position, name and op; if they differ, the bytes stay
// unknown, with a warning.
std::vector<NodeIo> executed_node_io(const std::string& path, const SessionOptions& opts, const Session& s,
                                     const Feed& feed) {
  const auto& executed = s.executed_nodes();
  std::vector<NodeIo> io(executed.size());
  for (size_t i = 0; i < executed.size(); ++i) io[i].flops = executed[i].flops;
  const bool known =
      std::all_of(executed.begin(), executed.end(), [](const Session::ExecutedNode& e) { return e.bytes >= 0; });
  if (known) {
    for (size_t i = 0; i < executed.size(); ++i) {
      const Session::ExecutedNode& e = executed[i];
      io[i].bytes = e.bytes;
      io[i].input_types = e.input_types;
      for (const std::string& t : e.input_types) io[i].shapes += (io[i].shapes.empty() ? "" : ", ") + dims_of_type(t);
      io[i].shapes += " ->";
      for (size_t k = 0; k < e.output_types.size(); ++k)
        io[i].shapes += (k ? ", " : " ") + dims_of_type(e.output_types[k]);
    }
    return io;
  }
  Model model;
  std::unique_ptr<Session::Impl> engine_impl;
  if (engine::is_engine_file(path)) {
    engine_impl = load_engine(engine::EngineFile::open(path), opts);
    model.graph = engine_impl->model.graph;
    bool symbolic = false;
    for (const Value* in : model.graph->inputs) symbolic |= !in->type.is_static();
    if (symbolic) {
      std::map<std::string, Shape> shapes;
      for (const auto& [name, t] : feed) shapes[name] = t.shape();
      bind_input_shapes(*model.graph, shapes);
      std::vector<std::string> unsupported;
      infer_graph(*model.graph, &unsupported);
    }
  } else {
    model = load_onnx_file(path);
    prepare_graph(model, opts);
  }
  const Graph& g = *model.graph;
  bool same = g.nodes.size() == executed.size();
  for (size_t i = 0; same && i < executed.size(); ++i) {
    const Node& n = *g.nodes[i];
    const std::string op = n.domain.empty() || n.domain == "ai.onnx" ? n.op_type : n.domain + "." + n.op_type;
    same = n.name == executed[i].name && op == executed[i].op;
  }
  if (!same) {
    std::fprintf(stderr, "kiln: warning: %s: the graph prepared again differs from the session's; bytes unknown\n",
                 path.c_str());
    return io;
  }
  for (size_t i = 0; i < executed.size(); ++i) {
    const int64_t flops = io[i].flops;
    io[i] = describe_io(*g.nodes[i]);
    io[i].flops = flops;
    if (flops < 0) {
      const NodeCost cost = node_cost(*g.nodes[i]);
      if (cost.known) io[i].flops = cost.flops;
    }
  }
  return io;
}

// The roofs of this run: given on the command line, else measured (after the
// timed runs, so that the loops' heat does not slow them).
struct Roofs {
  MachineRoofs machine;
  bool peak_measured = false, bandwidth_measured = false;
  MemoryBandwidth bandwidth;  // when measured
};

Roofs measure_roofs(const ProfileArgs& a, int threads) {
  Roofs r;
  r.peak_measured = a.peak_gflops <= 0;
  r.machine.peak_gflops = r.peak_measured ? machine_peak_gflops(threads, 0.1) : a.peak_gflops;
  r.bandwidth_measured = a.l2_gbps <= 0 || a.dram_gbps <= 0;
  if (r.bandwidth_measured) r.bandwidth = measure_memory_bandwidth(threads);
  r.machine.l2_gbps = a.l2_gbps > 0 ? a.l2_gbps : r.bandwidth.l2_gbps();
  r.machine.dram_gbps = a.dram_gbps > 0 ? a.dram_gbps : r.bandwidth.dram_gbps();
  r.machine.llc_bytes = cache_sizes().llc_bytes;
  return r;
}

// Everything the printers show.
// A node inside a control-flow body (Session::RunProfile::body_nodes): its
// time per run (summed over its calls) and calls per run, medians.
struct BodyRow {
  Session::RunProfile::BodyNode node;
  double median_ms = 0;
  double calls = 0;
};

struct Profile {
  const ProfileArgs* args = nullptr;
  const std::vector<Session::ExecutedNode>* nodes = nullptr;
  std::vector<NodeRow> rows;       // in execution order
  std::vector<BodyRow> body_rows;  // depth-first, as RunProfile lists them
  std::vector<NodeIo> io;          // parallel to rows
  std::vector<OpRow> ops;          // slowest first
  Roofs roofs;
  int threads = 0;
  double node_sum = 0, node_mean_sum = 0;  // of the per-node medians, means
  double total_ms = 0, total_mean_ms = 0;  // median and mean run
  int64_t total_flops = 0;

  double share(double ms) const { return node_sum > 0 ? 100 * ms / node_sum : 0.0; }
  double peak() const { return roofs.machine.peak_gflops; }
};

// GFLOP/s of `flops` in `ms`; negative when unknown (no count, or too short to time).
double gflops(int64_t flops, double ms) { return flops > 0 && ms > 0 ? flops / (ms * 1e6) : -1.0; }

// --below: the nodes under the threshold, slowest first; `unknown` counts the
// nodes without a roof fraction (never listed).
std::vector<const NodeRow*> below_rows(const Profile& p, size_t* unknown) {
  std::vector<const NodeRow*> out;
  *unknown = 0;
  for (const NodeRow& r : p.rows) {
    if (r.roofline.fraction < 0)
      ++*unknown;
    else if (r.roofline.fraction < p.args->below)
      out.push_back(&r);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const NodeRow* x, const NodeRow* y) { return x->median_ms > y->median_ms; });
  return out;
}

// "compute", "mem L2", "mem DRAM" or "-".
std::string bound_str(const RooflinePoint& rp) {
  if (rp.bound == Bound::kCompute) return "compute";
  if (rp.bound == Bound::kMemory) return std::string("mem ") + memory_level_name(rp.level);
  return "-";
}

const char* roof_unit(const RooflinePoint& rp) { return rp.bound == Bound::kCompute ? "GFLOP/s" : "GB/s"; }

nlohmann::json null_if_negative(double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); }

nlohmann::json roofs_json(const Profile& p) {
  const Roofs& r = p.roofs;
  nlohmann::json j = {{"threads", p.threads},
                      {"peak_gflops", r.machine.peak_gflops},
                      {"peak_loop", r.peak_measured ? nlohmann::json(peak_loop_name()) : nlohmann::json(nullptr)},
                      {"l2_gbps", r.machine.l2_gbps},
                      {"dram_gbps", r.machine.dram_gbps},
                      {"llc_bytes", r.machine.llc_bytes},
                      {"measured", {{"peak", r.peak_measured}, {"bandwidth", r.bandwidth_measured}}}};
  if (r.bandwidth_measured)
    j["bandwidth"] = {{"l2_read_gbps", r.bandwidth.l2_read_gbps},
                      {"l2_triad_gbps", r.bandwidth.l2_triad_gbps},
                      {"dram_read_gbps", r.bandwidth.dram_read_gbps},
                      {"dram_triad_gbps", r.bandwidth.dram_triad_gbps},
                      {"seconds", r.bandwidth.seconds}};
  return j;
}

nlohmann::json node_json(const Profile& p, const NodeRow& r) {
  const auto& n = (*p.nodes)[r.index];
  const NodeIo& io = p.io[r.index];
  const RooflinePoint& rp = r.roofline;
  const double g = gflops(io.flops, r.median_ms);
  const bool bound = rp.bound != Bound::kUnknown;
  return {{"index", r.index},
          {"name", n.name},
          {"op", n.op},
          {"origins", n.origins},
          {"inputs", io.input_types},
          {"outputs", n.output_types},
          {"median_ms", r.median_ms},
          {"mean_ms", r.mean_ms},
          {"share", p.share(r.median_ms) / 100},
          {"macs", n.macs < 0 ? nlohmann::json(nullptr) : nlohmann::json(n.macs)},
          {"flops", io.flops < 0 ? nlohmann::json(nullptr) : nlohmann::json(io.flops)},
          {"gflops", null_if_negative(g)},
          {"peak_fraction", null_if_negative(g < 0 ? g : g / p.peak())},
          {"bytes", io.bytes < 0 ? nlohmann::json(nullptr) : nlohmann::json(io.bytes)},
          {"gbps", null_if_negative(rp.achieved_gbps)},
          {"intensity", null_if_negative(rp.intensity)},
          {"memory_level", io.bytes > 0 ? nlohmann::json(memory_level_name(rp.level)) : nlohmann::json(nullptr)},
          {"bandwidth_gbps", null_if_negative(rp.bandwidth_gbps)},
          {"ridge", null_if_negative(rp.ridge)},
          {"bound", bound ? nlohmann::json(bound_name(rp.bound)) : nlohmann::json(nullptr)},
          {"roof", null_if_negative(rp.roof)},
          {"roof_unit", bound ? nlohmann::json(roof_unit(rp)) : nlohmann::json(nullptr)},
          {"achieved", null_if_negative(rp.achieved)},
          {"roof_fraction", null_if_negative(rp.fraction)}};
}

void print_json(const Profile& p) {
  const ProfileArgs& a = *p.args;
  nlohmann::json j;
  j["model"] = a.model;
  j["iterations"] = a.iterations;
  j["threads"] = p.threads;
  j["run_ms"] = {{"median", p.total_ms}, {"mean", p.total_mean_ms}};
  j["node_ms_sum"] = p.node_sum;            // of the per-node medians
  j["node_mean_ms_sum"] = p.node_mean_sum;  // of the per-node means: compare with run_ms.mean
  j["peak_gflops"] = p.peak();
  j["roofs"] = roofs_json(p);
  j["flops"] = p.total_flops;
  j["nodes"] = nlohmann::json::array();
  for (const NodeRow& r : p.rows) j["nodes"].push_back(node_json(p, r));
  j["body_nodes"] = nlohmann::json::array();
  for (const BodyRow& b : p.body_rows)
    j["body_nodes"].push_back({{"node", b.node.node},
                               {"path", b.node.path},
                               {"op", b.node.op},
                               {"depth", b.node.depth},
                               {"median_ms", b.median_ms},
                               {"calls", b.calls},
                               {"share", p.share(b.median_ms) / 100}});
  j["below"] = nullptr;
  if (a.below >= 0) {
    size_t unknown = 0;
    nlohmann::json listed = nlohmann::json::array();
    for (const NodeRow* r : below_rows(p, &unknown)) listed.push_back(r->index);
    j["below"] = {{"threshold", a.below}, {"nodes", std::move(listed)}, {"without_fraction", unknown}};
  }
  j["ops"] = nlohmann::json::array();
  for (const OpRow& o : p.ops) {
    const double g = o.all_counted ? gflops(o.flops, o.ms) : -1.0;
    j["ops"].push_back({{"op", o.op},
                        {"nodes", o.nodes},
                        {"ms", o.ms},
                        {"share", p.share(o.ms) / 100},
                        {"flops", o.all_counted ? nlohmann::json(o.flops) : nlohmann::json(nullptr)},
                        {"gflops", null_if_negative(g)},
                        {"peak_fraction", null_if_negative(g < 0 ? g : g / p.peak())}});
  }
  std::printf("%s\n", json_text(j).c_str());
}

// A number for CSV: empty when unknown (negative).
std::string csv_number(double v) { return v < 0 ? "" : std::to_string(v); }

void print_csv(const Profile& p) {
  std::printf(
      "index,name,op,outputs,median_ms,share,flops,gflops,peak_fraction,origins,"
      "bytes,gbps,intensity,bound,memory_level,roof,roof_unit,roof_fraction,shapes\n");
  std::vector<const NodeRow*> shown;
  if (p.args->below >= 0) {
    size_t unknown = 0;
    shown = below_rows(p, &unknown);
  } else {
    for (const NodeRow& r : p.rows) shown.push_back(&r);
  }
  for (const NodeRow* r : shown) {
    const auto& n = (*p.nodes)[r->index];
    const NodeIo& io = p.io[r->index];
    const RooflinePoint& rp = r->roofline;
    std::string outs, origins;
    for (const auto& t : n.output_types) outs += (outs.empty() ? "" : ";") + t;
    for (const auto& o : n.origins) origins += (origins.empty() ? "" : ";") + o;
    const double g = gflops(io.flops, r->median_ms);
    const bool bound = rp.bound != Bound::kUnknown;
    std::printf("%zu,%s,%s,%s,%.4f,%.4f,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", r->index, csv_field(n.name).c_str(),
                n.op.c_str(), csv_field(outs).c_str(), r->median_ms, p.share(r->median_ms) / 100,
                io.flops < 0 ? "" : std::to_string(io.flops).c_str(), csv_number(g).c_str(),
                g < 0 ? "" : std::to_string(g / p.peak()).c_str(), csv_field(origins).c_str(),
                io.bytes < 0 ? "" : std::to_string(io.bytes).c_str(), csv_number(rp.achieved_gbps).c_str(),
                csv_number(rp.intensity).c_str(), bound ? bound_name(rp.bound) : "",
                io.bytes > 0 ? memory_level_name(rp.level) : "", csv_number(rp.roof).c_str(),
                bound ? roof_unit(rp) : "", csv_number(rp.fraction).c_str(), csv_field(io.shapes).c_str());
  }
}

std::string short_name(const std::string& name, size_t width) {
  return name.size() > width ? "…" + name.substr(name.size() - (width - 1)) : name;
}

void print_summary(const Profile& p) {
  const ProfileArgs& a = *p.args;
  const MachineRoofs& m = p.roofs.machine;
  std::printf(
      "model %s: %zu executed nodes, median run %.3f ms over %d runs (sum of node medians %.3f ms; "
      "node means add up to %.1f%% of the mean run)\n",
      a.model.c_str(), p.nodes->size(), p.total_ms, a.iterations, p.node_sum,
      p.total_mean_ms > 0 ? 100 * p.node_mean_sum / p.total_mean_ms : 0.0);
  std::printf("%.3g GFLOP per run, %.1f GFLOP/s\n", p.total_flops * 1e-9,
              std::max(0.0, gflops(p.total_flops, p.total_ms)));
  const std::string peak_how = p.roofs.peak_measured ? peak_loop_name() + " loop, kiln device" : "--peak-gflops";
  const std::string bw_how = p.roofs.bandwidth_measured ? "streamed, kiln device" : "given";
  std::printf(
      "roofs on %d thread%s: peak %.1f GFLOP/s (%s); L2 %.1f GB/s, DRAM %.1f GB/s (%s) for nodes whose bytes "
      "exceed the %.0f MiB last-level cache\n",
      p.threads, p.threads == 1 ? "" : "s", m.peak_gflops, peak_how.c_str(), m.l2_gbps, m.dram_gbps, bw_how.c_str(),
      m.llc_bytes / double(1 << 20));
  std::printf(
      "bytes moved: each node's input and output tensors, weights included (a first-order model, "
      "docs/profiling.md)\n\n");
}

// A rate with about three significant digits: "1234", "97.0", "0.042".
std::string rate_str(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f" : v >= 1 ? "%.1f" : "%.3f", v);
  return buf;
}

void print_below(const Profile& p) {
  size_t unknown = 0;
  std::vector<const NodeRow*> listed = below_rows(p, &unknown);
  const size_t total = listed.size();
  if (p.args->top > 0 && listed.size() > static_cast<size_t>(p.args->top)) listed.resize(p.args->top);
  std::printf("%zu of %zu executed nodes under %g%% of their roof, slowest first", total, p.rows.size(),
              100 * p.args->below);
  if (listed.size() < total) std::printf(" (the first %zu)", listed.size());
  if (unknown) std::printf("; %zu without a roof fraction (FLOPs or bytes unknown, or too short to time)", unknown);
  std::printf("\n");
  if (listed.empty()) return;
  std::printf("%5s  %-28s %-22s %10s %7s %-8s %15s %15s %7s %8s  %s\n", "#", "name", "op", "median ms", "share",
              "bound", "achieved", "roof", "of roof", "FLOP/B", "shapes (inputs -> outputs)");
  for (const NodeRow* r : listed) {
    const auto& n = (*p.nodes)[r->index];
    const RooflinePoint& rp = r->roofline;
    const std::string achieved = rate_str(rp.achieved) + " " + roof_unit(rp);
    const std::string roof = rate_str(rp.roof) + " " + roof_unit(rp);
    std::printf("%5zu  %-28s %-22s %10.3f %6.1f%% %-8s %15s %15s %6.1f%% %8.2f  %s\n", r->index,
                short_name(n.name, 28).c_str(), n.op.c_str(), r->median_ms, p.share(r->median_ms),
                bound_str(rp).c_str(), achieved.c_str(), roof.c_str(), 100 * rp.fraction, rp.intensity,
                p.io[r->index].shapes.c_str());
  }
}

// Inside control-flow bodies: each body node's time per run (included in its
// top-level node's row), slowest first with --top.
void print_body_rows(const Profile& p) {
  if (p.body_rows.empty()) return;
  std::vector<BodyRow> shown = p.body_rows;
  if (p.args->top > 0) {
    std::stable_sort(shown.begin(), shown.end(),
                     [](const BodyRow& x, const BodyRow& y) { return x.median_ms > y.median_ms; });
    shown.resize(std::min(shown.size(), static_cast<size_t>(p.args->top)));
  }
  std::printf("\ninside control-flow bodies (time per run, summed over its calls; counted in the node holding it):\n");
  std::printf("%5s  %-48s %-22s %10s %7s %8s\n", "#", "path", "op", "median ms", "share", "calls");
  for (const BodyRow& b : shown)
    std::printf("%5zu  %-48s %-22s %10.3f %6.1f%% %8.0f\n", b.node.node, short_name(b.node.path, 48).c_str(),
                b.node.op.c_str(), b.median_ms, p.share(b.median_ms), b.calls);
}

void print_table(const Profile& p) {
  std::vector<NodeRow> shown = p.rows;
  if (p.args->top > 0) {
    std::sort(shown.begin(), shown.end(), [](const NodeRow& x, const NodeRow& y) { return x.median_ms > y.median_ms; });
    shown.resize(std::min(shown.size(), static_cast<size_t>(p.args->top)));
  }
  const auto number = [](double v, const char* format) {
    char buf[32];
    if (v < 0) return std::string("-");
    std::snprintf(buf, sizeof buf, format, v);
    return std::string(buf);
  };
  std::printf("%5s  %-28s %-22s %10s %7s %9s %8s %7s %-8s %5s  %-24s %s\n", "#", "name", "op", "median ms", "share",
              "GFLOP/s", "GB/s", "FLOP/B", "bound", "roof", "output", "fused from");
  for (const NodeRow& r : shown) {
    const auto& n = (*p.nodes)[r.index];
    const RooflinePoint& rp = r.roofline;
    std::printf("%5zu  %-28s %-22s %10.3f %6.1f%% %9s %8s %7s %-8s %5s  %-24s %s\n", r.index,
                short_name(n.name, 28).c_str(), n.op.c_str(), r.median_ms, p.share(r.median_ms),
                number(gflops(p.io[r.index].flops, r.median_ms), "%.1f").c_str(),
                number(rp.achieved_gbps, "%.1f").c_str(), number(rp.intensity, "%.2f").c_str(), bound_str(rp).c_str(),
                number(rp.fraction < 0 ? -1 : 100 * rp.fraction, "%.0f%%").c_str(),
                n.output_types.empty() ? "" : n.output_types[0].c_str(), origins_str(n, 80).c_str());
  }
  print_body_rows(p);
  std::printf("\n%-22s %6s %10s %7s %9s %6s\n", "op", "nodes", "ms", "share", "GFLOP/s", "peak");
  for (const OpRow& o : p.ops) {
    const double g = o.all_counted ? gflops(o.flops, o.ms) : -1.0;
    std::printf("%-22s %6d %10.3f %6.1f%% %9s %6s\n", o.op.c_str(), o.nodes, o.ms, p.share(o.ms),
                number(g, "%.1f").c_str(), number(g < 0 ? -1 : 100 * g / p.peak(), "%.0f%%").c_str());
  }
}

// Per node: median and mean over the runs, then its roofline point.
void time_nodes(Profile& p, const std::vector<Session::RunProfile>& runs) {
  const auto& nodes = *p.nodes;
  // Medians per node resist outliers but do not add up to the median run;
  // means do (a run is the sum of its nodes plus the executor's own time), so
  // the accounting check uses them: node_mean_sum / run mean.
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::vector<double> ms;
    for (const auto& r : runs) ms.push_back((r.end_us[i] - r.start_us[i]) / 1e3);
    double sum = 0;
    for (double m : ms) sum += m;
    NodeRow row{i, median(ms), sum / static_cast<double>(ms.size()), {}};
    row.roofline = roofline_point(p.io[i].flops, p.io[i].bytes, row.median_ms * 1e-3, p.roofs.machine);
    p.rows.push_back(row);
    p.node_sum += row.median_ms;
    p.node_mean_sum += row.mean_ms;
  }
  const size_t body_count = runs.empty() ? 0 : runs[0].body_nodes.size();
  for (size_t k = 0; k < body_count; ++k) {
    std::vector<double> ms, calls;
    for (const auto& r : runs) {
      ms.push_back(r.body_nodes[k].total_us / 1e3);
      calls.push_back(static_cast<double>(r.body_nodes[k].calls));
    }
    p.body_rows.push_back({runs[0].body_nodes[k], median(ms), median(calls)});
  }
  std::vector<double> totals;
  double total_sum = 0;
  for (const auto& r : runs) {
    totals.push_back(r.total_us / 1e3);
    total_sum += r.total_us / 1e3;
  }
  p.total_ms = median(totals);
  p.total_mean_ms = total_sum / static_cast<double>(totals.size());
  std::map<std::string, OpRow> by_op;
  for (const NodeRow& r : p.rows) {
    const auto& n = nodes[r.index];
    OpRow& o = by_op[n.op];
    o.op = n.op;
    ++o.nodes;
    o.ms += r.median_ms;
    const int64_t flops = p.io[r.index].flops;
    if (flops >= 0) {
      o.flops += flops;
      p.total_flops += flops;
    } else {
      o.all_counted = false;
    }
  }
  for (auto& [k, v] : by_op) p.ops.push_back(v);
  std::sort(p.ops.begin(), p.ops.end(), [](const OpRow& x, const OpRow& y) { return x.ms > y.ms; });
}

void profile_main(const ProfileArgs& a) {
  if (a.format != "table" && a.format != "json" && a.format != "csv")
    throw Error("--format must be table, json or csv, got '" + a.format + "'");
  SessionOptions opts;
  const auto shapes = parse_shapes(a.shapes);
  opts.input_shapes = shapes;
  if (a.threads > 0) opts.threads = a.threads;
  opts.opt_level = a.opt_level;
  Session s = Session::load(a.model, opts);
  Feed feed = make_feed(s, a, shapes, nullptr);
  // Symbolic dims the user left open take the fed shapes, so that every
  // node's FLOPs are known (they are counted from static shapes at load).
  if (!s.is_engine()) {
    bool symbolic = false;
    for (const TensorInfo& in : s.inputs())
      for (const TensorDim& d : in.shape) symbolic |= d.size < 0 && !shapes.count(in.name);
    if (symbolic) {
      for (const auto& [name, t] : feed) opts.input_shapes[name] = t.shape();
      s = Session::load(a.model, opts);
    }
  }

  for (int i = 0; i < a.warmup; ++i) s.run(feed);
  std::vector<Session::RunProfile> runs(static_cast<size_t>(a.iterations));
  std::vector<double> run_start_us;
  double clock_us = 0;
  for (auto& r : runs) {
    s.run(feed, &r);
    run_start_us.push_back(clock_us);
    clock_us += r.total_us;
  }
  if (!a.trace.empty()) write_trace(a.trace, s, runs, run_start_us);

  Profile p;
  p.args = &a;
  p.nodes = &s.executed_nodes();
  p.threads = a.threads > 0 ? a.threads : physical_core_count();
  p.io = executed_node_io(a.model, opts, s, feed);
  p.roofs = measure_roofs(a, p.threads);
  time_nodes(p, runs);
  if (a.format == "json") return print_json(p);
  if (a.format == "csv") return print_csv(p);
  print_summary(p);
  if (a.below >= 0) return print_below(p);
  print_table(p);
}

}  // namespace

void add_profile_command(CLI::App& app) {
  auto a = std::make_shared<ProfileArgs>();
  CLI::App* cmd = app.add_subcommand(
      "profile", "Time each executed node of a model (after optimization) and place it on the machine's roofline");
  cmd->footer(
      "Roofline (docs/profiling.md), per node: FLOPs from the op's cost rule; bytes moved, a first-order model: the "
      "sizes of the node's input and output tensors, weights included, each value once; arithmetic intensity = "
      "FLOPs / bytes. The roofs, for the threads used: the fp32 FMA peak (a loop as wide as the selected ISA), and "
      "the streaming bandwidth from DRAM when the node's bytes exceed the last-level cache, else from L2. A node is "
      "compute-bound when its intensity reaches the ridge (peak / that bandwidth), and its fraction is achieved "
      "GFLOP/s / peak; else memory-bound, and its fraction is achieved GB/s / bandwidth.");
  add_session_flags(cmd, *a, kRunFlags);
  cmd->add_option("--warmup", a->warmup, "Untimed runs first")->check(CLI::Range(0, 1000000))->capture_default_str();
  cmd->add_option("--iterations,-n", a->iterations, "Timed runs")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->add_option("--format", a->format, "table, json or csv")->capture_default_str();
  cmd->add_option("--trace", a->trace, "Write a Chrome trace-event JSON (Perfetto, chrome://tracing)");
  cmd->add_option("--top", a->top, "Table: only the N slowest nodes")->check(CLI::Range(0, 1000000));
  cmd->add_option("--below", a->below_text,
                  "List only the nodes under this fraction of their roof (0.3: under 30%), slowest first; nodes "
                  "without a fraction (FLOPs or bytes unknown) are not listed. CSV: only those rows; JSON: all "
                  "nodes, and their indices under \"below\"")
      ->type_name("FRACTION");
  cmd->add_option("--peak-gflops", a->peak_gflops,
                  "The machine's peak GFLOP/s for the threads used (0: measure it with an FMA loop as wide as the "
                  "selected ISA, ~0.3 s)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--l2-gbps", a->l2_gbps,
                  "L2 bandwidth in GB/s for the threads used (0: measure it, with the DRAM bandwidth, ~0.2 s)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--dram-gbps", a->dram_gbps, "DRAM bandwidth in GB/s for the threads used (0: measure it)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a, cmd] {
    if (cmd->count("--below")) a->below = parse_below(a->below_text);
    profile_main(*a);
  });
}

}  // namespace kiln::cli
