// kiln inspect MODEL: what is in a model and what it costs, without running
// it: the file's header (IR version, producer, opsets, inputs and outputs,
// parameters by type), an op histogram, the nodes kiln cannot run and why,
// and a per-node table of shapes, parameters, MACs and FLOPs
// (src/pipeline/inspect.h gathers them, src/analysis/flops.h counts;
// conventions in docs/flops.md). --optimized shows the table for the graph
// after kiln's passes. This file prints them: the JSON, YAML and CSV layouts
// are documented in docs/flops.md and kept stable.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli.h"
#include "engine/engine_file.h"
#include "pipeline/inspect.h"

namespace kiln::cli {

namespace {

// The report's keys in the order they are written (pipeline/inspect.h), in
// JSON and YAML alike.
using json = InspectJson;

struct InspectArgs : SessionFlags {
  std::string format = "table";
  bool optimized = false;
};

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
    if (is_engine) {
      j = inspect_engine(a.model);
    } else {
      std::vector<std::string> warnings;
      j = inspect_model(a.model, parse_shapes(a.shapes), a.optimized, &warnings);
      for (const std::string& w : warnings) std::fprintf(stderr, "kiln inspect: --optimized ignored: %s\n", w.c_str());
    }
  } catch (const UnresolvedDimsError& e) {
    throw Error(a.model + ": " + unresolved_dims_message(e.inputs));
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
