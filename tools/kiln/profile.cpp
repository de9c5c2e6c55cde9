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
#include "core/thread_pool.h"

namespace kiln::cli {

namespace {

struct ProfileArgs : SessionFlags {
  int warmup = 3;
  int iterations = 20;
  std::string format = "table";
  std::string trace;
  int top = 0;             // table: only the N slowest nodes (0: all)
  double peak_gflops = 0;  // 0: measure
};

struct NodeRow {
  size_t index;
  double median_ms;
  double mean_ms;
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
  f << nlohmann::json{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ms"}}.dump();
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
  // Measured after the runs so that the FMA loop's heat does not slow them.
  const int threads = a.threads > 0 ? a.threads : physical_core_count();
  const double peak = a.peak_gflops > 0 ? a.peak_gflops : machine_peak_gflops(threads, 0.1);

  const auto& nodes = s.executed_nodes();
  std::vector<NodeRow> rows;
  // Medians per node resist outliers but do not add up to the median run;
  // means do (a run is the sum of its nodes plus the executor's own time), so
  // the accounting check uses them: node_mean_sum / run mean.
  double node_sum = 0, node_mean_sum = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::vector<double> ms;
    for (const auto& r : runs) ms.push_back((r.end_us[i] - r.start_us[i]) / 1e3);
    double sum = 0;
    for (double m : ms) sum += m;
    rows.push_back({i, median(ms), sum / static_cast<double>(ms.size())});
    node_sum += rows.back().median_ms;
    node_mean_sum += rows.back().mean_ms;
  }
  std::vector<double> totals;
  double total_sum = 0;
  for (const auto& r : runs) {
    totals.push_back(r.total_us / 1e3);
    total_sum += r.total_us / 1e3;
  }
  const double total_ms = median(totals), total_mean_ms = total_sum / static_cast<double>(totals.size());
  std::map<std::string, OpRow> by_op;
  int64_t total_flops = 0;
  for (const NodeRow& r : rows) {
    const auto& n = nodes[r.index];
    OpRow& o = by_op[n.op];
    o.op = n.op;
    ++o.nodes;
    o.ms += r.median_ms;
    if (n.flops >= 0) {
      o.flops += n.flops;
      total_flops += n.flops;
    } else {
      o.all_counted = false;
    }
  }
  std::vector<OpRow> ops;
  for (auto& [k, v] : by_op) ops.push_back(v);
  std::sort(ops.begin(), ops.end(), [](const OpRow& x, const OpRow& y) { return x.ms > y.ms; });
  const auto share = [&](double ms) { return node_sum > 0 ? 100 * ms / node_sum : 0.0; };
  // GFLOP/s of `flops` in `ms`; negative when unknown (no count, or too short to time).
  const auto gflops = [](int64_t flops, double ms) { return flops > 0 && ms > 0 ? flops / (ms * 1e6) : -1.0; };

  if (a.format == "json") {
    nlohmann::json j;
    j["model"] = a.model;
    j["iterations"] = a.iterations;
    j["threads"] = threads;
    j["run_ms"] = {{"median", total_ms}, {"mean", total_mean_ms}};
    j["node_ms_sum"] = node_sum;            // of the per-node medians
    j["node_mean_ms_sum"] = node_mean_sum;  // of the per-node means: compare with run_ms.mean
    j["peak_gflops"] = peak;
    j["flops"] = total_flops;
    const auto null_if_negative = [](double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
    j["nodes"] = nlohmann::json::array();
    for (const NodeRow& r : rows) {
      const auto& n = nodes[r.index];
      const double g = gflops(n.flops, r.median_ms);
      j["nodes"].push_back({{"index", r.index},
                            {"name", n.name},
                            {"op", n.op},
                            {"origins", n.origins},
                            {"outputs", n.output_types},
                            {"median_ms", r.median_ms},
                            {"mean_ms", r.mean_ms},
                            {"share", share(r.median_ms) / 100},
                            {"macs", n.macs < 0 ? nlohmann::json(nullptr) : nlohmann::json(n.macs)},
                            {"flops", n.flops < 0 ? nlohmann::json(nullptr) : nlohmann::json(n.flops)},
                            {"gflops", null_if_negative(g)},
                            {"peak_fraction", null_if_negative(g < 0 ? g : g / peak)}});
    }
    j["ops"] = nlohmann::json::array();
    for (const OpRow& o : ops) {
      const double g = o.all_counted ? gflops(o.flops, o.ms) : -1.0;
      j["ops"].push_back({{"op", o.op},
                          {"nodes", o.nodes},
                          {"ms", o.ms},
                          {"share", share(o.ms) / 100},
                          {"flops", o.all_counted ? nlohmann::json(o.flops) : nlohmann::json(nullptr)},
                          {"gflops", null_if_negative(g)},
                          {"peak_fraction", null_if_negative(g < 0 ? g : g / peak)}});
    }
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  if (a.format == "csv") {
    std::printf("index,name,op,outputs,median_ms,share,flops,gflops,peak_fraction,origins\n");
    for (const NodeRow& r : rows) {
      const auto& n = nodes[r.index];
      std::string outs, origins;
      for (const auto& t : n.output_types) outs += (outs.empty() ? "" : ";") + t;
      for (const auto& o : n.origins) origins += (origins.empty() ? "" : ";") + o;
      const double g = gflops(n.flops, r.median_ms);
      std::printf("%zu,%s,%s,%s,%.4f,%.4f,%s,%s,%s,%s\n", r.index, csv_field(n.name).c_str(), n.op.c_str(),
                  csv_field(outs).c_str(), r.median_ms, share(r.median_ms) / 100,
                  n.flops < 0 ? "" : std::to_string(n.flops).c_str(), g < 0 ? "" : std::to_string(g).c_str(),
                  g < 0 ? "" : std::to_string(g / peak).c_str(), csv_field(origins).c_str());
    }
    return;
  }
  std::printf(
      "model %s: %zu executed nodes, median run %.3f ms over %d runs (sum of node medians %.3f ms; "
      "node means add up to %.1f%% of the mean run)\n",
      a.model.c_str(), nodes.size(), total_ms, a.iterations, node_sum,
      total_mean_ms > 0 ? 100 * node_mean_sum / total_mean_ms : 0.0);
  std::printf("%.3g GFLOP per run, %.1f GFLOP/s; peak %.1f GFLOP/s on %d thread%s (measured FMA loop, kiln device)\n\n",
              total_flops * 1e-9, std::max(0.0, gflops(total_flops, total_ms)), peak, threads, threads == 1 ? "" : "s");
  std::vector<NodeRow> shown = rows;
  if (a.top > 0) {
    std::sort(shown.begin(), shown.end(), [](const NodeRow& x, const NodeRow& y) { return x.median_ms > y.median_ms; });
    shown.resize(std::min(shown.size(), static_cast<size_t>(a.top)));
  }
  const auto rate_cols = [&](int64_t flops, double ms) {
    const double g = gflops(flops, ms);
    char buf[32];
    if (g < 0) return std::string("        -      -");
    std::snprintf(buf, sizeof buf, "%9.1f %5.0f%%", g, 100 * g / peak);
    return std::string(buf);
  };
  std::printf("%5s  %-28s %-22s %10s %7s %9s %6s  %-24s %s\n", "#", "name", "op", "median ms", "share", "GFLOP/s",
              "peak", "output", "fused from");
  for (const NodeRow& r : shown) {
    const auto& n = nodes[r.index];
    std::string name = n.name.size() > 28 ? "…" + n.name.substr(n.name.size() - 27) : n.name;
    std::printf("%5zu  %-28s %-22s %10.3f %6.1f%% %s  %-24s %s\n", r.index, name.c_str(), n.op.c_str(), r.median_ms,
                share(r.median_ms), rate_cols(n.flops, r.median_ms).c_str(),
                n.output_types.empty() ? "" : n.output_types[0].c_str(), origins_str(n, 80).c_str());
  }
  std::printf("\n%-22s %6s %10s %7s %9s %6s\n", "op", "nodes", "ms", "share", "GFLOP/s", "peak");
  for (const OpRow& o : ops)
    std::printf("%-22s %6d %10.3f %6.1f%% %s\n", o.op.c_str(), o.nodes, o.ms, share(o.ms),
                rate_cols(o.all_counted ? o.flops : -1, o.ms).c_str());
}

}  // namespace

void add_profile_command(CLI::App& app) {
  auto a = std::make_shared<ProfileArgs>();
  CLI::App* cmd = app.add_subcommand("profile", "Time each executed node of a model (after optimization)");
  add_session_flags(cmd, *a, kRunFlags);
  cmd->add_option("--warmup", a->warmup, "Untimed runs first")->check(CLI::Range(0, 1000000))->capture_default_str();
  cmd->add_option("--iterations,-n", a->iterations, "Timed runs")->check(CLI::Range(1, 1000000))->capture_default_str();
  cmd->add_option("--format", a->format, "table, json or csv")->capture_default_str();
  cmd->add_option("--trace", a->trace, "Write a Chrome trace-event JSON (Perfetto, chrome://tracing)");
  cmd->add_option("--top", a->top, "Table: only the N slowest nodes")->check(CLI::Range(0, 1000000));
  cmd->add_option("--peak-gflops", a->peak_gflops,
                  "The machine's peak GFLOP/s for the threads used (0: measure it with an FMA loop, ~0.3 s)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([a] { profile_main(*a); });
}

}  // namespace kiln::cli
