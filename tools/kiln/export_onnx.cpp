// kiln export-onnx MODEL -o OUT.onnx: writes a model kiln reads back out as
// ONNX (opset as imported, protobuf through onnx/export.h): as imported (a
// clean round trip: tests compare the outputs of both), or --optimized, the
// graph kiln runs, fused and kiln-domain ops included, to look at in Netron.
#include <cstdio>
#include <filesystem>

#include "cli.h"
#include "engine/engine_file.h"
#include "ir/infer.h"
#include "onnx/export.h"
#include "onnx/import.h"
#include "pipeline/load_engine.h"
#include "pipeline/prepare.h"
#include "pipeline/session_impl.h"

namespace kiln::cli {

namespace {

struct ExportArgs {
  std::string model, output, shapes;
  bool optimized = false;
  int opt_level = 2;
};

// An engine stores no copy of weights its kernels' packed form replaces
// (kiln:packed, docs/engine-format.md): each is rebuilt from the kernel
// holding it, so the ONNX file has every weight. Returns how many.
size_t restore_packed_weights(Session::Impl& engine) {
  Graph& g = *engine.model.graph;
  const CompiledGraph& cg = *engine.compiled;
  if (&cg.graph() != &g) throw Error("engine: the executed graph is not the loaded one");
  size_t restored = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = *g.nodes[i];
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      Value* v = n.inputs[k];
      if (!v || !v->initializer || v->initializer->raw() || v->initializer->numel() == 0) continue;
      Tensor t = cg.kernel(i).original_constant_input(k);
      if (!t.defined() || t.dtype() != v->initializer->dtype() || t.shape() != v->initializer->shape()) continue;
      v->initializer = std::move(t);
      ++restored;
    }
  }
  return restored;
}

void export_main(const ExportArgs& a) {
  if (!std::filesystem::exists(a.model)) throw Error(a.model + ": no such file");
  Model model;
  std::unique_ptr<Session::Impl> engine;  // owns the weights an engine's graph maps
  if (engine::is_engine_file(a.model)) {
    // An engine holds the graph it was optimized to: that is what is written.
    if (!a.shapes.empty()) throw Error(a.model + ": an engine's shapes were fixed when it was built; no --shapes");
    engine = load_engine(engine::EngineFile::open(a.model), SessionOptions{}, /*keep_weights=*/true);
    restore_packed_weights(*engine);
    model = engine->model;
  } else {
    model = load_onnx_file(a.model);
  }
  if (!engine && (a.optimized || !a.shapes.empty())) {
    Graph& g = *model.graph;
    try {
      bind_input_shapes(g, parse_shapes(a.shapes));
    } catch (const Error& e) {
      throw Error(a.model + ": " + e.what());
    }
    infer_supported(g, a.model);
    if (a.optimized) {
      SessionOptions opts;
      opts.opt_level = a.opt_level;
      optimize_graph(g, opts);
    }
  }
  try {
    save_onnx(model, a.output);
  } catch (const Error& e) {
    if (!engine) throw;
    // "initializer 'w' has no data (freed after a kernel packed it); ..."
    std::string what = e.what();
    const size_t at = what.find("initializer '");
    const std::string which = at == std::string::npos ? "" : what.substr(at, what.find('\'', at + 13) + 1 - at);
    throw Error(a.model + ": cannot be written as ONNX: the engine keeps the weights of some nodes only in a " +
                "layout its kernels cannot turn back" + (which.empty() ? "" : " (" + which + ")") +
                "; write the ONNX model it was built from with --optimized instead");
  }
  size_t kiln_ops = 0;
  for (const auto& n : model.graph->nodes) kiln_ops += n->domain == "kiln";
  std::printf(
      "wrote %s: %zu nodes%s\n", a.output.c_str(), model.graph->nodes.size(),
      kiln_ops ? (", " + std::to_string(kiln_ops) + " of them kiln-domain ops (only kiln runs those)").c_str() : "");
}

}  // namespace

void add_export_onnx_command(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  CLI::App* cmd =
      app.add_subcommand("export-onnx", "Write a model back out as ONNX, as imported or as kiln optimized it");
  cmd->add_option("model", a->model, "ONNX model or kiln engine (.kiln: its optimized graph is written)")->required();
  cmd->add_option("--output,-o", a->output, "ONNX file to write")->required();
  cmd->add_flag(
      "--optimized", a->optimized,
      "Write the graph after kiln's optimizer (fusions, blocked layouts: kiln-domain ops that only kiln runs)");
  cmd->add_option("--opt-level", a->opt_level, "--optimized: the optimizer's level")
      ->check(CLI::IsMember({0, 1, 2}))
      ->capture_default_str();
  cmd->add_option("--shapes", a->shapes, "Fix symbolic input dims first: NAME:1x3x224x224,...");
  cmd->callback([a] { export_main(*a); });
}

}  // namespace kiln::cli
