// kiln graph MODEL -o FILE.svg|.png|.dot: a picture of the graph, drawn by
// Graphviz in-process (libgvc), as imported or (--optimized) after kiln's
// passes. The DOT text comes from src/analysis/graph_dot.h; this file parses
// flags, prepares the graph the way a session does and renders.
// docs/graph.md describes the picture.
#include <graphviz/gvc.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "analysis/graph_dot.h"
#include "cli.h"
#include "engine/engine_file.h"
#include "ir/infer.h"
#include "onnx/import.h"
#include "pipeline/load_engine.h"
#include "pipeline/prepare.h"
#include "pipeline/session_impl.h"

namespace kiln::cli {

namespace {

// 9600 pixels at Graphviz's 96 dpi.
constexpr double kLargePngInches = 100;

struct GraphArgs : SessionFlags {
  std::string output;
  std::string format;  // "" = from the output's extension
  bool optimized = false;
  int cluster_depth = 3;
  bool collapse = false;
  bool no_legend = false;
  bool edge_labels = false;
  bool no_edge_labels = false;
};

// The output format: --format, else the output's extension.
std::string output_format(const GraphArgs& a) {
  std::string f = a.format;
  if (f.empty()) {
    f = std::filesystem::path(a.output).extension().string();
    if (!f.empty()) f = f.substr(1);
  }
  if (f == "svg" || f == "png" || f == "dot") return f;
  if (a.format.empty())
    throw Error(a.output + ": unknown picture format '" + f + "' (use .svg, .png or .dot, or --format)");
  throw Error("--format must be svg, png or dot, got '" + f + "'");
}

// The graph to draw and what the picture should say about it. An engine's
// graph is already optimized; an ONNX model's is imported and typed, then
// optimized with --optimized.
struct Prepared {
  Model model;                            // ONNX: owns the graph
  std::unique_ptr<Session::Impl> engine;  // engine: owns the graph
  const Graph* graph = nullptr;
  std::map<std::string, std::string> origin_ops;  // imported node name -> op
  std::string title;
};

Prepared prepare(const GraphArgs& a) {
  Prepared p;
  // The path as given: zoo models are all called model.onnx.
  const std::string& file = a.model;
  if (!std::filesystem::exists(a.model)) throw Error(a.model + ": no such file");
  if (engine::is_engine_file(a.model)) {
    SessionOptions opts;
    opts.input_shapes = parse_shapes(a.shapes);
    p.engine = load_engine(engine::EngineFile::open(a.model), opts);
    p.graph = p.engine->model.graph.get();
    p.title = file + " (engine: optimized graph)";
    return p;
  }
  p.model = load_onnx_file(a.model);
  Graph& g = *p.model.graph;
  try {
    bind_input_shapes(g, parse_shapes(a.shapes));
  } catch (const Error& e) {
    throw Error(a.model + ": " + e.what());
  }
  for (const auto& n : g.nodes) p.origin_ops[n->name] = n->op_type;
  if (a.optimized) {
    infer_supported(g, a.model);
    SessionOptions opts;
    opts.opt_level = a.opt_level;
    optimize_graph(g, opts);
    p.title = file + " (optimized, level " + std::to_string(a.opt_level) + ")";
  } else {
    // Drawn even when kiln cannot run some nodes: they show with what types
    // inference could give them.
    std::vector<std::string> unsupported;
    infer_graph(g, &unsupported);
    p.title = file + " (as imported)";
  }
  p.graph = &g;
  return p;
}

// Lays out and renders DOT text with libgvc; kiln::Error naming `what` when
// Graphviz refuses it.
std::string render(const std::string& dot, const std::string& format, const std::string& what) {
  GVC_t* gvc = gvContext();
  Agraph_t* g = agmemread(dot.c_str());
  if (!g) {
    gvFreeContext(gvc);
    throw Error(what + ": Graphviz could not read the generated DOT");
  }
  if (gvLayout(gvc, g, "dot") != 0) {
    agclose(g);
    gvFreeContext(gvc);
    throw Error(what + ": Graphviz layout failed");
  }
  char* data = nullptr;
  unsigned int length = 0;
  const int rc = gvRenderData(gvc, g, format.c_str(), &data, &length);
  std::string out;
  if (rc == 0 && data) out.assign(data, length);
  if (data) gvFreeRenderData(data);
  gvFreeLayout(gvc, g);
  agclose(g);
  gvFreeContext(gvc);
  if (rc != 0) throw Error(what + ": Graphviz cannot render " + format + " (is its plugin installed?)");
  return out;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open for writing");
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) throw Error(path + ": write failed");
}

void graph_main(const GraphArgs& a) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const std::string format = output_format(a);
  Prepared p = prepare(a);
  DotOptions o;
  o.title = p.title;
  o.origin_ops = std::move(p.origin_ops);
  o.cluster_depth = a.cluster_depth;
  o.collapse = a.collapse;
  // A PNG of a large graph at full size is tens of thousands of pixels
  // high and takes cairo and zlib half a minute (densenet121); SVG has no
  // such limit.
  if (format == "png") o.large_max_inches = kLargePngInches;
  o.legend = !a.no_legend;
  if (a.edge_labels) o.edge_labels = DotOptions::EdgeLabels::kOn;
  if (a.no_edge_labels) o.edge_labels = DotOptions::EdgeLabels::kOff;
  DotStats st;
  const std::string dot = graph_to_dot(*p.graph, o, &st);
  // Fail on an unwritable output before the layout, which is the slow part.
  {
    std::ofstream probe(a.output, std::ios::binary | std::ios::app);
    if (!probe) throw Error(a.output + ": cannot open for writing");
  }
  const auto t1 = clock::now();
  write_file(a.output, format == "dot" ? dot : render(dot, format, a.output));
  const auto t2 = clock::now();
  const auto secs = [](auto d) { return std::chrono::duration<double>(d).count(); };
  if (format == "png" && st.large)
    std::fprintf(stderr,
                 "kiln graph: large graph: the PNG is at most %.0f pixels wide and high; use .svg or "
                 "--collapse for detail\n",
                 kLargePngInches * 96);
  std::string collapsed;
  if (st.collapsed_boxes)
    collapsed =
        " (" + std::to_string(st.collapsed) + " more in " + std::to_string(st.collapsed_boxes) + " collapsed boxes)";
  std::string bodies;
  if (st.bodies)
    bodies = ", " + std::to_string(st.body_nodes) + " more in " + std::to_string(st.bodies) + " control-flow bodies";
  std::fprintf(stderr,
               "kiln graph: wrote %s: %d nodes%s%s (%d fused), %d clusters, %d edges; graph %.2f s, %s %.2f s\n",
               a.output.c_str(), st.nodes, collapsed.c_str(), bodies.c_str(), st.fused, st.clusters, st.edges,
               secs(t1 - t0), format == "dot" ? "write" : "layout+render", secs(t2 - t1));
}

}  // namespace

void add_graph_command(CLI::App& app) {
  auto a = std::make_shared<GraphArgs>();
  CLI::App* cmd = app.add_subcommand("graph", "Draw a model's graph (SVG, PNG or DOT) with Graphviz");
  add_session_flags(cmd, *a, kModelFlag | kShapesFlag | kOptLevelFlag);
  cmd->add_option("-o,--output", a->output, "Picture to write: FILE.svg, FILE.png or FILE.dot")->required();
  cmd->add_option("--format", a->format, "svg, png or dot (default: from the output's extension)");
  cmd->add_flag("--optimized", a->optimized, "Draw the graph after kiln's optimizer (fused nodes marked)");
  cmd->add_option("--cluster-depth", a->cluster_depth,
                  "Group nodes into nested boxes by the first N parts of their names' paths (0: none)")
      ->check(CLI::Range(0, 16))
      ->capture_default_str();
  cmd->add_flag("--collapse", a->collapse,
                "Draw repeated blocks (sibling clusters with the same ops) once, the repeats as one box");
  cmd->add_flag("--no-legend", a->no_legend, "Leave out the colour legend");
  auto* on = cmd->add_flag("--edge-labels", a->edge_labels,
                           "Shapes on the edges even on large graphs (default: up to " +
                               std::to_string(kEdgeLabelMaxNodes) + " nodes; slow layout above)");
  cmd->add_flag("--no-edge-labels", a->no_edge_labels, "Shapes in the nodes instead of on the edges")->excludes(on);
  cmd->callback([a] { graph_main(*a); });
}

}  // namespace kiln::cli
