// kiln profile MODEL: where a run's time goes, per executed node (after the
// optimizer's fusions) and per op type, like ONNX Runtime's profiler; and a
// Chrome trace-event file (Perfetto, chrome://tracing) of every timed run.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace kiln::cli {

namespace {

struct ProfileArgs {
  std::string model;
  std::vector<std::string> inputs;
  std::string shapes;
  int threads = 0;
  int warmup = 3;
  int iterations = 20;
  int opt_level = 2;
  std::string format = "table";
  std::string trace;
  int top = 0;  // table: only the N slowest nodes (0: all)
  uint64_t seed = 0;
};

struct NodeRow {
  size_t index;
  double median_ms;
};

struct OpRow {
  std::string op;
  int nodes = 0;
  double ms = 0;
};

// Chrome trace-event format ("X" complete events, microseconds): one event
// per node per run, runs laid end to end as they happened.
void write_trace(const std::string& path, const Session& s, const std::vector<Session::RunProfile>& runs,
                 const std::vector<double>& run_start_us) {
  const auto& nodes = s.executed_nodes();
  nlohmann::json events = nlohmann::json::array();
  for (size_t r = 0; r < runs.size(); ++r) {
    events.push_back({{"name", "run " + std::to_string(r)}, {"cat", "run"}, {"ph", "X"}, {"pid", 1}, {"tid", 0},
                      {"ts", run_start_us[r]}, {"dur", runs[r].total_us}});
    for (size_t i = 0; i < nodes.size(); ++i) {
      nlohmann::json args = {{"op", nodes[i].op}, {"outputs", nodes[i].output_types}};
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
  f << nlohmann::json{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}}.dump();
  if (!f) throw Error(path + ": write failed");
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
  Feed feed = load_input_files(a.inputs);
  complete_feed(s, feed, shapes, a.seed, nullptr);

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

  const auto& nodes = s.executed_nodes();
  std::vector<NodeRow> rows;
  double node_sum = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::vector<double> ms;
    for (const auto& r : runs) ms.push_back((r.end_us[i] - r.start_us[i]) / 1e3);
    rows.push_back({i, median(ms)});
    node_sum += rows.back().median_ms;
  }
  std::vector<double> totals;
  for (const auto& r : runs) totals.push_back(r.total_us / 1e3);
  const double total_ms = median(totals);
  std::map<std::string, OpRow> by_op;
  for (const NodeRow& r : rows) {
    OpRow& o = by_op[nodes[r.index].op];
    o.op = nodes[r.index].op;
    ++o.nodes;
    o.ms += r.median_ms;
  }
  std::vector<OpRow> ops;
  for (auto& [k, v] : by_op) ops.push_back(v);
  std::sort(ops.begin(), ops.end(), [](const OpRow& x, const OpRow& y) { return x.ms > y.ms; });
  const auto share = [&](double ms) { return node_sum > 0 ? 100 * ms / node_sum : 0.0; };

  if (a.format == "json") {
    nlohmann::json j;
    j["model"] = a.model;
    j["iterations"] = a.iterations;
    j["threads"] = a.threads;
    j["run_ms"] = {{"median", total_ms}};
    j["nodes"] = nlohmann::json::array();
    for (const NodeRow& r : rows)
      j["nodes"].push_back({{"index", r.index},
                            {"name", nodes[r.index].name},
                            {"op", nodes[r.index].op},
                            {"outputs", nodes[r.index].output_types},
                            {"median_ms", r.median_ms},
                            {"share", share(r.median_ms) / 100}});
    j["ops"] = nlohmann::json::array();
    for (const OpRow& o : ops)
      j["ops"].push_back({{"op", o.op}, {"nodes", o.nodes}, {"ms", o.ms}, {"share", share(o.ms) / 100}});
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  if (a.format == "csv") {
    std::printf("index,name,op,outputs,median_ms,share\n");
    for (const NodeRow& r : rows) {
      std::string outs;
      for (const auto& t : nodes[r.index].output_types) outs += (outs.empty() ? "" : ";") + t;
      std::string name = nodes[r.index].name;
      std::replace(name.begin(), name.end(), '"', '\'');
      std::printf("%zu,\"%s\",%s,\"%s\",%.4f,%.4f\n", r.index, name.c_str(), nodes[r.index].op.c_str(), outs.c_str(),
                  r.median_ms, share(r.median_ms) / 100);
    }
    return;
  }
  std::printf("model %s: %zu executed nodes, median run %.3f ms over %d runs (sum of node medians %.3f ms)\n\n",
              a.model.c_str(), nodes.size(), total_ms, a.iterations, node_sum);
  std::vector<NodeRow> shown = rows;
  if (a.top > 0) {
    std::sort(shown.begin(), shown.end(), [](const NodeRow& x, const NodeRow& y) { return x.median_ms > y.median_ms; });
    shown.resize(std::min(shown.size(), static_cast<size_t>(a.top)));
  }
  std::printf("%5s  %-28s %-22s %10s %7s  %s\n", "#", "name", "op", "median ms", "share", "output");
  for (const NodeRow& r : shown) {
    const auto& n = nodes[r.index];
    std::string name = n.name.size() > 28 ? "…" + n.name.substr(n.name.size() - 27) : n.name;
    std::printf("%5zu  %-28s %-22s %10.3f %6.1f%%  %s\n", r.index, name.c_str(), n.op.c_str(), r.median_ms,
                share(r.median_ms), n.output_types.empty() ? "" : n.output_types[0].c_str());
  }
  std::printf("\n%-22s %6s %10s %7s\n", "op", "nodes", "ms", "share");
  for (const OpRow& o : ops) std::printf("%-22s %6d %10.3f %6.1f%%\n", o.op.c_str(), o.nodes, o.ms, share(o.ms));
}

}  // namespace

void add_profile_command(CLI::App& app) {
  auto a = std::make_shared<ProfileArgs>();
  CLI::App* cmd = app.add_subcommand("profile", "Time each executed node of a model (after optimization)");
  cmd->add_option("model", a->model, "ONNX model file")->required();
  cmd->add_option("--input,-i", a->inputs, "NAME=FILE input (.npy or TensorProto .pb); repeatable. Missing inputs are random");
  cmd->add_option("--shapes", a->shapes, "Sizes for symbolic input dims: NAME:1x3x224x224,...");
  cmd->add_option("--threads", a->threads, "Intra-op threads (0: the engine's default)")->check(CLI::Range(0, 1024));
  cmd->add_option("--warmup", a->warmup, "Untimed runs first")->check(CLI::Range(0, 1000000))->capture_default_str();
  cmd->add_option("--iterations,-n", a->iterations, "Timed runs")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->add_option("--opt-level", a->opt_level, "Graph optimization level")
      ->check(CLI::IsMember({0, 1, 2}))
      ->capture_default_str();
  cmd->add_option("--format", a->format, "table, json or csv")->capture_default_str();
  cmd->add_option("--trace", a->trace, "Write a Chrome trace-event JSON (Perfetto, chrome://tracing)");
  cmd->add_option("--top", a->top, "Table: only the N slowest nodes")->check(CLI::Range(0, 1000000));
  cmd->add_option("--seed", a->seed, "Seed for random inputs");
  cmd->callback([a] { profile_main(*a); });
}

}  // namespace kiln::cli
