// kiln build: ONNX model -> engine file (docs/engine-format.md).
//
// 1. Import; give each input the dims its profiles fix (a dim that varies
//    stays symbolic); optimize as a session would.
// 2. Split dynamic batches into few sizes (batch_chunks on the blocked ops):
//    primitives per shape stay bounded, so memory does too.
// 3. Compile once: kernels pack their weights; write the graph (weights as
//    external data in the weights section) and what each kernel packed.
// 4. Load that engine like any later load would and, per profile, record one
//    run at its max shapes: the memory plan every run of the profile reuses.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/file.h"
#include "engine/engine_file.h"
#include "engine/meta.h"
#include "ir/infer.h"
#include "onnx/export.h"
#include "ops/blocked.h"
#include "pipeline/load_engine.h"
#include "pipeline/prepare.h"
#include "pipeline/tactics.h"
#include "runtime/arena.h"

namespace kiln {

namespace {

using nlohmann::json;

void report(const BuildOptions& o, const std::string& stage, double fraction) {
  if (o.progress) o.progress(stage, fraction);
}

// The profiles to build: the given ones, or for a static build one whose
// min = opt = max is each input's (bound) static shape.
std::vector<ShapeProfile> resolve_profiles(Graph& g, const BuildOptions& o, const std::string& src) {
  if (!o.profiles.empty()) {
    if (!o.session.input_shapes.empty()) throw Error("give either static shapes or profiles, not both");
    for (size_t p = 0; p < o.profiles.size(); ++p)
      engine::check_profile(o.profiles[p], g, src + ": profile " + std::to_string(p));
    return o.profiles;
  }
  bind_input_shapes(g, o.session.input_shapes);
  ShapeProfile profile;
  std::string dynamic;
  for (const Value* v : g.inputs) {
    if (v->initializer) continue;
    if (!v->type.is_static()) {
      dynamic += (dynamic.empty() ? "" : ", ") + v->name + " " + v->type.str();
      continue;
    }
    profile.min[v->name] = profile.opt[v->name] = profile.max[v->name] = v->type.static_shape();
  }
  if (!dynamic.empty())
    throw Error(src + ": inputs with dynamic dims (" + dynamic +
                "): give their sizes (--shapes) or a profile (--min-shapes/--opt-shapes/--max-shapes)");
  if (profile.min.empty()) throw Error(src + ": the model has no inputs to build a profile for");
  return {profile};
}

// Fixes the dims every profile agrees on; the others stay symbolic (named,
// so that kernels can tell a batch dim from another).
void apply_profile_dims(Graph& g, const std::vector<ShapeProfile>& profiles) {
  for (Value* v : g.inputs) {
    if (!profiles[0].min.count(v->name)) continue;
    const size_t rank = profiles[0].min.at(v->name).size();
    DimVector dims(rank);
    for (size_t d = 0; d < rank; ++d) {
      std::set<int64_t> sizes;
      for (const ShapeProfile& p : profiles) {
        if (!p.min.count(v->name)) throw Error("input '" + v->name + "' is missing from some profiles");
        sizes.insert(p.min.at(v->name)[d]);
        sizes.insert(p.max.at(v->name)[d]);
      }
      const Dim* declared = v->type.shape ? &(*v->type.shape)[d] : nullptr;
      if (sizes.size() == 1)
        dims[d] = Dim::known(*sizes.begin());
      else if (declared && !declared->symbol.empty())
        dims[d] = *declared;
      else
        dims[d] = Dim::named(v->name + "_dim" + std::to_string(d));
    }
    v->type.shape = dims;
  }
}

// The batch sizes blocked ops split a dynamic batch into (ops/blocked.cpp):
// every profile's opt batch and the powers of two up to the largest max
// batch, for the blocked ops whose batch is a profile's dynamic dim 0.
void annotate_batch_chunks(Graph& g, const std::vector<ShapeProfile>& profiles) {
  std::unordered_map<std::string, std::set<int64_t>> chunks;  // dim-0 symbol -> sizes
  for (const Value* v : g.inputs) {
    if (!v->type.shape || v->type.shape->empty() || (*v->type.shape)[0].is_known()) continue;
    const std::string& symbol = (*v->type.shape)[0].symbol;
    if (symbol.empty() || !profiles[0].min.count(v->name)) continue;
    std::set<int64_t>& sizes = chunks[symbol];
    int64_t top = 1;
    for (const ShapeProfile& p : profiles) {
      if (p.opt.at(v->name)[0] > 0) sizes.insert(p.opt.at(v->name)[0]);
      top = std::max(top, p.max.at(v->name)[0]);
    }
    for (int64_t s = 1; s <= top; s *= 2) sizes.insert(s);
  }
  if (chunks.empty()) return;
  for (auto& n : g.nodes) {
    if (n->domain != kKilnDomain ||
        !(n->op_type == "BlockedConv" || n->op_type == "ToBlocked" || n->op_type == "FromBlocked"))
      continue;
    const Value* x = n->inputs.empty() ? nullptr : n->inputs[0];
    if (!x || !x->type.shape || x->type.shape->empty()) continue;
    auto it = chunks.find((*x->type.shape)[0].symbol);
    if (it == chunks.end()) continue;
    Attribute a;
    a.kind = Attribute::Kind::kInts;
    a.ints.assign(it->second.rbegin(), it->second.rend());
    n->attrs["batch_chunks"] = a;
  }
}

// Inputs of the given shapes: BuildOptions::inputs where given, else floats
// uniform in [0, 1) and everything else zero (valid indices for embeddings
// and gathers).
std::vector<std::pair<std::string, Tensor>> filler_inputs(const Graph& g, const std::map<std::string, Shape>& shapes,
                                                          const std::vector<std::pair<std::string, Tensor>>& given) {
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<std::pair<std::string, Tensor>> feed;
  for (const Value* v : g.inputs) {
    if (v->initializer) continue;
    auto it = shapes.find(v->name);
    if (it == shapes.end() && !v->type.is_static())
      throw Error("input '" + v->name + "' " + v->type.str() + " is in no profile");
    const Shape shape = it == shapes.end() ? v->type.static_shape() : it->second;
    auto user = std::find_if(given.begin(), given.end(), [&](const auto& f) { return f.first == v->name; });
    if (user != given.end()) {
      if (user->second.dtype() != v->type.dtype || user->second.shape() != shape)
        throw Error("input '" + v->name + "': the value given for the build is " + dtype_name(user->second.dtype()) +
                    " " + shape_str(user->second.shape()) + ", the recording run needs " + dtype_name(v->type.dtype) +
                    " " + shape_str(shape));
      feed.emplace_back(v->name, user->second);
      continue;
    }
    Tensor t(v->type.dtype, shape);
    if (t.dtype() == DType::kFloat32)
      for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = uniform(rng);
    feed.emplace_back(v->name, std::move(t));
  }
  return feed;
}

json shape_json(const Shape& s) { return json(s); }

json plan_json(const RunPlan& plan) {
  return {{"arena_bytes", plan.arena_bytes},
          {"planned_bytes", plan.planned_bytes},
          {"offset", plan.offset},
          {"bytes", plan.bytes},
          {"root", plan.root}};
}

}  // namespace

BuildReport build_engine(const std::string& onnx_path, const std::string& engine_path, const BuildOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  BuildReport out;
  report(options, "import", 0);
  Model model = load_onnx_file(onnx_path);
  Graph& g = *model.graph;
  const std::vector<ShapeProfile> profiles = resolve_profiles(g, options, onnx_path);
  apply_profile_dims(g, profiles);
  infer_supported(g, onnx_path);
  report(options, "optimize", 0.05);
  optimize_graph(g, options.session);
  annotate_batch_chunks(g, profiles);
  infer_supported(g, onnx_path);
  json tactics = json::array();
  if (options.time_tactics) {
    report(options, "time kernels", 0.1);
    engine::TimingCache cache = engine::TimingCache::load(options.timing_cache);
    engine::TacticReport r = engine::choose_conv_algorithms(g, profiles, options.session.threads, cache);
    if (!options.timing_cache.empty()) cache.save(options.timing_cache);
    out.tactics_timed = r.timed;
    out.tactics_cached = r.cached;
    tactics = r.choices;
  }

  // Kernels pack their weights once, here.
  report(options, "pack weights", 0.2);
  std::shared_ptr<const CompiledGraph> cg = CompiledGraph::compile(g, false, nullptr);
  engine::EngineWriter writer;
  json packed = json::array();
  std::unordered_map<const Node*, PackedState> states;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    PackedState st = cg->kernel(i).packed_state();
    if (st.empty()) continue;
    json blobs = json::array();
    for (const PackedState::Blob& b : st.blobs) {
      const uint64_t at = writer.add_weight(b.data.raw(), b.data.nbytes());
      out.packed_bytes += b.data.nbytes();
      blobs.push_back({{"key", b.key},
                       {"dtype", static_cast<int32_t>(b.data.dtype())},
                       {"shape", shape_json(b.data.shape())},
                       {"offset", at},
                       {"bytes", b.data.nbytes()}});
    }
    packed.push_back({{"node", i},
                      {"op", g.nodes[i]->op_type},
                      {"kernel", st.kernel},
                      {"isa", st.isa},
                      {"replaces_constants", st.replaces_constants},
                      {"blobs", blobs}});
    states.emplace(g.nodes[i].get(), std::move(st));
  }
  // Constants that only kernels with a self-sufficient packed copy read are
  // not stored.
  std::unordered_set<const Value*> replaced, kept;
  for (const Value* v : g.outputs) kept.insert(v);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = *g.nodes[i];
    for (const Value* v : g.implicit_inputs(n)) kept.insert(v);
    auto st = states.find(&n);
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      const Value* v = n.inputs[k];
      if (!v || !v->initializer) continue;
      const bool covered = st != states.end() && st->second.replaces_constants && cg->kernel(i).owns_constant_input(k);
      (covered && !v->is_graph_input ? replaced : kept).insert(v);
    }
  }
  for (const Value* v : kept) replaced.erase(v);

  report(options, "write graph", 0.4);
  OnnxExportOptions ex;
  ex.external = [&](const Value& v, const Tensor& t, ExternalRef* ref) {
    if (t.dtype() == DType::kString) return false;
    if (replaced.count(&v)) {
      *ref = {engine::kNoData, 0, static_cast<int64_t>(t.nbytes())};
      return true;
    }
    if (!t.raw() && t.numel() > 0) throw Error("weight '" + v.name + "' has no data");
    const uint64_t at = writer.add_weight(t.raw(), t.nbytes());
    out.weight_bytes += t.nbytes();
    *ref = {engine::kWeightsLocation, static_cast<int64_t>(at), static_cast<int64_t>(t.nbytes())};
    return true;
  };
  writer.set_section(engine::SectionKind::kGraph, export_onnx(model, ex));
  out.nodes = g.nodes.size();
  const CpuIsa isa = cpu_isa_selected();
  json meta = {{"format", "kiln-engine"},
               {"kiln_version", KILN_VERSION},
               {"source", std::filesystem::absolute(onnx_path).string()},
               {"isa", cpu_isa_name(isa)},
               {"cpu_features", engine::isa_features(isa)},
               {"build", {{"opt_level", options.session.opt_level}, {"threads", options.session.threads}}},
               {"packed", packed},
               {"tactics", tactics}};
  // Custom ops from plugins: which library each comes from, so that a load
  // without it can say what to pass to --plugin.
  std::map<std::string, std::set<std::string>> plugin_ops;
  for (const auto& n : g.nodes)
    if (n->schema && !n->schema->library.empty()) plugin_ops[n->schema->library].insert(n->domain + ":" + n->op_type);
  if (!plugin_ops.empty()) {
    json plugins = json::array();
    for (const auto& [lib, ops] : plugin_ops) plugins.push_back({{"library", lib}, {"ops", ops}});
    meta["plugins"] = plugins;
  }
  json profiles_json = json::array();
  for (const ShapeProfile& p : profiles) {
    json inputs = json::object();
    for (const auto& [name, lo] : p.min)
      inputs[name] = {
          {"min", shape_json(lo)}, {"opt", shape_json(p.opt.at(name))}, {"max", shape_json(p.max.at(name))}};
    profiles_json.push_back({{"inputs", inputs}});
  }
  meta["profiles"] = profiles_json;
  cg.reset();
  writer.set_section(engine::SectionKind::kMeta, meta.dump());

  // Load it back as a later load would: the memory plans are made on that
  // graph (its value numbering), and a build that cannot load fails here.
  report(options, "plan memory", 0.5);
  SessionOptions load_options;
  load_options.threads = options.session.threads;
  load_options.memory_planner = false;
  std::string bytes = writer.serialize();
  std::unique_ptr<Session::Impl> loaded =
      load_engine(engine::EngineFile::from_bytes(bytes.data(), bytes.size(), engine_path), load_options);
  bytes.clear();
  const Graph& lg = *loaded->model.graph;
  json nodes = json::array();
  for (size_t i = 0; i < lg.nodes.size(); ++i) {
    nodes.push_back({{"name", lg.nodes[i]->name},
                     {"op", loaded->executed[i].op},
                     {"implementation", loaded->compiled->kernel(i).implementation()}});
    // The export keeps node order; the imported nodes each one stands for
    // (kiln profile, kiln graph) are not part of ONNX, so they live here.
    if (g.nodes.size() == lg.nodes.size() && !g.nodes[i]->origins.empty())
      nodes.back()["origins"] = g.nodes[i]->origins;
  }
  for (size_t p = 0; p < profiles.size(); ++p) {
    report(options, "plan memory", 0.5 + 0.5 * static_cast<double>(p) / static_cast<double>(profiles.size()));
    const auto filled = filler_inputs(lg, profiles[p].max, options.inputs);
    std::vector<Tensor> feed(lg.inputs.size());  // by position; initializer inputs left undefined
    for (size_t i = 0; i < lg.inputs.size(); ++i)
      for (const auto& [name, t] : filled)
        if (name == lg.inputs[i]->name) feed[i] = t;
    std::shared_ptr<RunPlan> plan;
    try {
      plan = loaded->compiled->record_plan(feed, loaded->pool.get());
    } catch (const Error& e) {
      std::string filler;
      for (const Value* v : lg.inputs)
        if (!v->initializer && std::none_of(options.inputs.begin(), options.inputs.end(),
                                            [&](const auto& f) { return f.first == v->name; }))
          filler += (filler.empty() ? "" : ", ") + v->name;
      throw Error(onnx_path + ": the run that records profile " + std::to_string(p) +
                  "'s memory plan (at its max shapes) failed" +
                  (filler.empty() ? "" : " on filler values for " + filler + " (floats in [0, 1), other types 0)") +
                  ": " + e.what() +
                  (filler.empty() ? ""
                                  : "; if an input must hold real values (a sample rate, token ids), give it "
                                    "with --input NAME=VALUE (BuildOptions::inputs)"));
    }
    meta["profiles"][p]["memory_plan"] = plan_json(*plan);
    out.arena_bytes.push_back(plan->arena_bytes);
  }
  meta["nodes"] = nodes;
  writer.set_section(engine::SectionKind::kMeta, meta.dump());
  report(options, "write", 0.99);
  bytes = writer.serialize();
  out.engine_bytes = bytes.size();
  write_file(engine_path, bytes);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report(options, "done", 1.0);
  return out;
}

}  // namespace kiln
