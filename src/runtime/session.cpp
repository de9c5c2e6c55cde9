#include "kiln/session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/thread_pool.h"
#include "ir/infer.h"
#include "onnx/import.h"
#include "passes/pass_manager.h"
#include "runtime/executor.h"

namespace kiln {

std::string version() { return KILN_VERSION; }

std::string TensorInfo::str() const {
  std::string s = dtype_name(dtype);
  if (!has_shape) return s + "[?]";
  s += "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += " x ";
    s += shape[i].size >= 0 ? std::to_string(shape[i].size) : shape[i].symbol.empty() ? "?" : shape[i].symbol;
  }
  return s + "]";
}

struct Session::Impl {
  Model model;
  std::shared_ptr<const CompiledGraph> compiled;
  std::vector<TensorInfo> inputs, outputs;
  std::unique_ptr<ThreadPool> pool;
  std::vector<Session::ExecutedNode> executed;
};

namespace {

TensorInfo info_of(const Value& v) {
  TensorInfo info;
  info.name = v.name;
  info.dtype = v.type.dtype;
  info.has_shape = v.type.has_rank();
  if (v.type.shape)
    for (const Dim& d : *v.type.shape) info.shape.push_back({d.is_known() ? d.value : -1, d.symbol});
  return info;
}

// Runs the graph optimizer; the passes re-infer types as they go.
void optimize(Graph& g, const SessionOptions& options) {
  if (options.opt_level < 0 || options.opt_level > 2)
    throw Error("opt level must be 0, 1 or 2, got " + std::to_string(options.opt_level));
  passes::PassReport report =
      passes::optimize(g, passes::PassOptions::from_env(options.opt_level, options.disabled_passes));
  const char* env = std::getenv("KILN_PASS_REPORT");
  if (env && std::string(env) == "1") std::fprintf(stderr, "%s", report.str().c_str());
}

std::unique_ptr<Session::Impl> build(Model model, const SessionOptions& options) {
  auto impl = std::make_unique<Session::Impl>();
  impl->pool = std::make_unique<ThreadPool>(options.threads);
  Graph& g = *model.graph;
  try {
    bind_input_shapes(g, options.input_shapes);
  } catch (const Error& e) {
    throw Error(model.source + ": " + e.what());
  }
  std::vector<std::string> unsupported;
  infer_graph(g, &unsupported);
  if (!unsupported.empty()) {
    std::string msg = model.source + ": " + std::to_string(unsupported.size()) + " node(s) not supported:";
    for (const auto& u : unsupported) msg += "\n  " + u;
    throw UnsupportedError(msg);
  }
  optimize(g, options);
  const char* arena_env = std::getenv("KILN_ARENA");
  bool plan_memory = options.memory_planner && !(arena_env && std::string(arena_env) == "0");
  impl->compiled = CompiledGraph::compile(g, plan_memory, &g);
  for (Value* v : g.inputs) {
    impl->inputs.push_back(info_of(*v));
    impl->inputs.back().has_default = v->initializer.has_value();
  }
  for (Value* v : g.outputs) impl->outputs.push_back(info_of(*v));
  for (const auto& n : g.nodes) {
    Session::ExecutedNode e;
    e.name = n->name;
    e.op = n->domain.empty() || n->domain == "ai.onnx" ? n->op_type : n->domain + "." + n->op_type;
    for (const Value* out : n->outputs) e.output_types.push_back(out ? out->type.str() : "");
    impl->executed.push_back(std::move(e));
  }
  impl->model = std::move(model);
  return impl;
}

void check_input(const Value& v, const Tensor& t) {
  if (t.dtype() != v.type.dtype)
    throw Error("input '" + v.name + "': expected element type " + dtype_name(v.type.dtype) + ", got " +
                dtype_name(t.dtype()));
  if (!v.type.shape) return;
  const DimVector& dims = *v.type.shape;
  if (static_cast<size_t>(t.rank()) != dims.size())
    throw Error("input '" + v.name + "': expected rank " + std::to_string(dims.size()) + " (" + v.type.str() +
                "), got shape " + shape_str(t.shape()));
  for (size_t i = 0; i < dims.size(); ++i)
    if (dims[i].is_known() && dims[i].value != t.shape()[i])
      throw Error("input '" + v.name + "': expected shape " + v.type.str() + ", got " + shape_str(t.shape()) +
                  " (dim " + std::to_string(i) + " differs)");
}

}  // namespace

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

namespace {
// Every load error names the file, whatever stage raised it.
template <typename F>
Session::Impl* with_source(const std::string& source, F&& f) {
  auto prefixed = [&](const std::string& msg) {
    return msg.rfind(source, 0) == 0 ? msg : source + ": " + msg;
  };
  try {
    return f().release();
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(prefixed(e.what()));
  } catch (const Error& e) {
    throw Error(prefixed(e.what()));
  }
}
}  // namespace

Session Session::load(const std::string& path, const SessionOptions& options) {
  return Session(std::unique_ptr<Impl>(with_source(path, [&] { return build(load_onnx_file(path), options); })));
}

Session Session::load_bytes(const void* data, size_t size, const SessionOptions& options) {
  return Session(std::unique_ptr<Impl>(
      with_source("<memory>", [&] { return build(load_onnx_bytes(data, size), options); })));
}

const std::vector<TensorInfo>& Session::inputs() const { return impl_->inputs; }
const std::vector<TensorInfo>& Session::outputs() const { return impl_->outputs; }

std::vector<Tensor> Session::run(const std::vector<std::pair<std::string, Tensor>>& inputs) const {
  return run(inputs, nullptr);
}

const std::vector<Session::ExecutedNode>& Session::executed_nodes() const { return impl_->executed; }

std::vector<Tensor> Session::run(const std::vector<std::pair<std::string, Tensor>>& inputs,
                                 RunProfile* profile) const {
  const Graph& g = *impl_->model.graph;
  std::vector<Tensor> feed(g.inputs.size());
  for (const auto& input : inputs) {
    const std::string& name = input.first;
    const Tensor& t = input.second;
    auto it = std::find_if(g.inputs.begin(), g.inputs.end(), [&](const Value* v) { return v->name == name; });
    if (it == g.inputs.end()) {
      std::string names;
      for (const auto& i : impl_->inputs)
        if (!i.has_default) names += (names.empty() ? "" : ", ") + i.name;
      throw Error("'" + name + "' is not an input of the model (inputs: " + names + ")");
    }
    size_t pos = static_cast<size_t>(it - g.inputs.begin());
    if (feed[pos].defined()) throw Error("input '" + name + "' is given twice");
    check_input(**it, t);
    feed[pos] = t;
  }
  for (size_t i = 0; i < g.inputs.size(); ++i)
    if (!feed[i].defined() && !g.inputs[i]->initializer)
      throw Error("input '" + g.inputs[i]->name + "' (" + g.inputs[i]->type.str() + ") is required but not given");
  if (!profile) return impl_->compiled->run(feed, nullptr, impl_->pool.get());
  NodeTimes times;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Tensor> out = impl_->compiled->run(feed, nullptr, impl_->pool.get(), &times);
  const int64_t t0_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count();
  profile->total_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  profile->start_us.resize(times.size());
  profile->end_us.resize(times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    profile->start_us[i] = static_cast<double>(times[i].start_ns - t0_ns) / 1e3;
    profile->end_us[i] = static_cast<double>(times[i].end_ns - t0_ns) / 1e3;
  }
  return out;
}

int64_t Session::ir_version() const { return impl_->model.ir_version; }
std::map<std::string, int> Session::opsets() const { return impl_->model.opsets; }
std::string Session::producer() const {
  return impl_->model.producer_name + (impl_->model.producer_version.empty() ? "" : " " + impl_->model.producer_version);
}
size_t Session::num_nodes() const { return impl_->model.graph->nodes.size(); }
size_t Session::arena_bytes() const { return impl_->compiled->memory_stats().arena_bytes; }
size_t Session::planned_bytes() const { return impl_->compiled->memory_stats().planned_bytes; }

}  // namespace kiln
