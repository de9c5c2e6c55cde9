// The pipeline every path shares: import (onnx/) -> bind input shapes ->
// infer types, refusing what kiln cannot run -> optimize (passes/) ->
// compile (runtime/). Session (api/session.cpp), the engine builder and
// loader (pipeline/build_engine.cpp, load_engine.cpp) and the CLI's tools
// all go through these functions.
#pragma once
#include <memory>
#include <string>

#include "kiln/session.h"
#include "onnx/import.h"
#include "pipeline/session_impl.h"

namespace kiln {

// Binds options.input_shapes, infers types (an UnsupportedError listing every
// node kiln cannot run) and, with `optimize`, runs the graph optimizer at
// options.opt_level. Errors name model.source.
void prepare_graph(Model& model, const SessionOptions& options, bool optimize = true);
// prepare_graph, then compiles the graph into a session's state.
std::unique_ptr<Session::Impl> prepare_session(Model model, const SessionOptions& options);

// The steps on their own, for paths that put something between them (the
// engine builder binds profile dims and annotates batch chunks):
// Infers types; an UnsupportedError listing every node kiln cannot run.
void infer_supported(Graph& g, const std::string& source);
// Runs the graph optimizer at options.opt_level (the passes re-infer types).
void optimize_graph(Graph& g, const SessionOptions& options);
// A value as the API describes it (Session::inputs(): name, dtype, dims;
// has_default is left to the caller).
TensorInfo info_of(const Value& v);
// Fills impl's inputs, outputs and executed nodes from its graph.
void describe_graph(Session::Impl& impl);
// Whether to plan memory (options and KILN_ARENA).
bool memory_planner_on(const SessionOptions& options);

}  // namespace kiln
