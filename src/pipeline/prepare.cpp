// The pipeline every path shares: import (onnx/) -> bind input shapes ->
// infer types, refusing what kiln cannot run -> optimize (passes/) ->
// compile (runtime/). Used by Session, the engine builder and loader, and
// the tools that show or export optimized graphs.
#include "pipeline/prepare.h"

#include <cstdio>
#include <cstdlib>

#include "analysis/flops.h"
#include "analysis/roofline.h"
#include "core/settings.h"
#include "core/thread_pool.h"
#include "ir/infer.h"
#include "passes/pass_manager.h"
#include "runtime/executor.h"

namespace kiln {

TensorInfo info_of(const Value& v) {
  TensorInfo info;
  info.name = v.name;
  info.dtype = v.type.dtype;
  info.has_shape = v.type.has_rank();
  if (v.type.shape)
    for (const Dim& d : *v.type.shape) info.shape.push_back({d.is_known() ? d.value : -1, d.symbol});
  return info;
}

void optimize_graph(Graph& g, const SessionOptions& options) {
  if (options.opt_level < 0 || options.opt_level > 2)
    throw Error("opt level must be 0, 1 or 2, got " + std::to_string(options.opt_level));
  passes::PassReport report =
      passes::optimize(g, passes::PassOptions::from_env(options.opt_level, options.disabled_passes));
  if (settings().pass_report) std::fprintf(stderr, "%s", report.str().c_str());
}

void infer_supported(Graph& g, const std::string& source) {
  std::vector<std::string> unsupported;
  infer_graph(g, &unsupported);
  if (!unsupported.empty()) {
    // One node: one line; several: a list, one node per line.
    if (unsupported.size() == 1) throw UnsupportedError(source + ": not supported: " + unsupported[0]);
    std::string msg = source + ": " + std::to_string(unsupported.size()) + " nodes not supported:";
    for (const auto& u : unsupported) msg += "\n  " + u;
    throw UnsupportedError(msg);
  }
}

namespace {}  // namespace

void prepare_graph(Model& model, const SessionOptions& options, bool optimize) {
  Graph& g = *model.graph;
  try {
    bind_input_shapes(g, options.input_shapes);
  } catch (const Error& e) {
    throw Error(model.source + ": " + e.what());
  }
  infer_supported(g, model.source);
  if (optimize) optimize_graph(g, options);
}

std::unique_ptr<Session::Impl> prepare_session(Model model, const SessionOptions& options) {
  auto impl = std::make_unique<Session::Impl>();
  impl->pool = std::make_unique<ThreadPool>(options.threads);
  prepare_graph(model, options);
  Graph& g = *model.graph;
  impl->compiled = CompiledGraph::compile(g, memory_planner_on(options), &g);
  impl->model = std::move(model);
  describe_graph(*impl);
  return impl;
}

bool memory_planner_on(const SessionOptions& options) { return options.memory_planner && settings().arena; }

void describe_graph(Session::Impl& impl) {
  const Graph& g = *impl.model.graph;
  for (Value* v : g.inputs) {
    impl.inputs.push_back(info_of(*v));
    impl.inputs.back().has_default = v->initializer.has_value();
  }
  for (Value* v : g.outputs) impl.outputs.push_back(info_of(*v));
  for (const auto& n : g.nodes) {
    Session::ExecutedNode e;
    e.name = n->name;
    e.op = n->domain.empty() || n->domain == "ai.onnx" ? n->op_type : n->domain + "." + n->op_type;
    for (const Value* in : n->inputs) e.input_types.push_back(in ? in->type.str() : "");
    for (const Value* out : n->outputs) e.output_types.push_back(out ? out->type.str() : "");
    e.bytes = node_bytes_moved(*n);
    e.origins = n->origin_names();
    const NodeCost cost = node_cost(*n);
    if (cost.known) {
      e.macs = cost.macs;
      e.flops = cost.flops;
    }
    impl.executed.push_back(std::move(e));
  }
}

}  // namespace kiln
