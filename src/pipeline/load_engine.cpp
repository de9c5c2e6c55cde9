// Engine load: the optimized graph from the graph section, its weights used
// in place from the memory-mapped weights section, kernels handed the data
// they packed at build, one memory plan per profile. Nothing in the file is
// trusted: the container's checksums catch accidents, and every offset, size
// and index read from the metadata is checked before use, so a crafted file
// fails with an error too.
#include "pipeline/load_engine.h"
#include "pipeline/prepare.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "engine/meta.h"
#include "ir/infer.h"
#include "kernels/cpu/cpu_isa.h"
#include "onnx/export.h"
#include "runtime/arena.h"

namespace kiln {

namespace {

using nlohmann::json;

// A tensor in the weights section, wrapped in place.
class WeightsSection {
 public:
  WeightsSection(std::shared_ptr<const engine::EngineFile> file)
      : file_(std::move(file)), data_(file_->section(engine::SectionKind::kWeights)) {}

  Tensor tensor(DType dtype, const Shape& shape, int64_t offset, int64_t length, const std::string& what) const {
    if (dtype == DType::kString || !dtype_is_supported(static_cast<int32_t>(dtype)))
      throw Error(what + ": element type " + dtype_name(dtype) + " cannot be stored in the weights section");
    const int64_t numel = shape_numel(shape);
    if (offset < 0 || length < 0 || static_cast<uint64_t>(offset) > data_.size() ||
        static_cast<uint64_t>(length) > data_.size() - static_cast<uint64_t>(offset))
      throw Error(what + ": data at " + std::to_string(offset) + "+" + std::to_string(length) +
                  " lies outside the weights section (" + std::to_string(data_.size()) + " bytes)");
    // numel * element size could wrap around: compare by division instead.
    const uint64_t elem = dtype_size(dtype), bytes = static_cast<uint64_t>(length);
    if (bytes % elem != 0 || bytes / elem != static_cast<uint64_t>(numel))
      throw Error(what + ": " + std::to_string(length) + " bytes of data for " + dtype_name(dtype) + "[" +
                  shape_str(shape) + "]");
    if (offset % static_cast<int64_t>(engine::kWeightAlignment) != 0)
      throw Error(what + ": data at offset " + std::to_string(offset) + " is not 64-byte aligned");
    void* p = const_cast<char*>(data_.data() + offset);  // read only: mapped PROT_READ
    return Tensor::wrap(dtype, shape, p, file_);
  }

 private:
  std::shared_ptr<const engine::EngineFile> file_;
  std::string_view data_;
};

Shape shape_of(const json& j, const std::string& what) {
  Shape s = j.get<Shape>();
  if (s.size() > 16) throw Error(what + ": rank " + std::to_string(s.size()));
  try {
    shape_numel(s);  // throws on negative dims and overflow
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  return s;
}

// What kernels packed, by node index.
std::unordered_map<size_t, PackedState> packed_states(const json& meta, const WeightsSection& weights, const Graph& g,
                                                      const std::string& src) {
  std::unordered_map<size_t, PackedState> by_node;
  for (const json& p : meta.at("packed")) {
    const size_t node = p.at("node").get<size_t>();
    const std::string what = src + ": packed weights of node " + std::to_string(node);
    if (node >= g.nodes.size()) throw Error(what + ": the graph has " + std::to_string(g.nodes.size()) + " nodes");
    const Node& n = *g.nodes[node];
    if (p.at("op").get<std::string>() != n.op_type)
      throw Error(what + ": recorded for a " + p.at("op").get<std::string>() + ", the graph has " + n.describe());
    PackedState st;
    st.kernel = p.at("kernel").get<std::string>();
    st.isa = p.at("isa").get<std::string>();
    // Handed over whatever it was packed for: the kernel knows whether it
    // can use it here, re-pack from it (oneDNN reorders to the layout this
    // CPU's primitives want) or must start from the original weights, which
    // the engine then holds (replaces_constants false).
    engine::isa_from_name(st.isa);  // a known name, or a corrupted file
    st.replaces_constants = p.at("replaces_constants").get<bool>();
    for (const json& b : p.at("blobs")) {
      const std::string key = b.at("key").get<std::string>();
      const DType dtype = static_cast<DType>(b.at("dtype").get<int32_t>());
      st.blobs.push_back({key, weights.tensor(dtype, shape_of(b.at("shape"), what), b.at("offset").get<int64_t>(),
                                              b.at("bytes").get<int64_t>(), what + " ('" + key + "')")});
    }
    by_node.emplace(node, std::move(st));
  }
  return by_node;
}

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// That no two blocks of a memory plan alive at the same time share bytes
// (all offsets 0 passed the bounds checks, and runs overwrote each other's
// tensors). A block lives, as the executor's plans are made
// (runtime/arena.cpp), from its producer to the last read of any value in
// it; a sweep over the nodes in order keeps the live blocks by offset.
void check_plan_lifetimes(const RunPlan& plan, const Graph& g, const std::string& what) {
  const size_t n = plan.offset.size();
  std::vector<int64_t> first(n, -1), last(n, -1);
  std::vector<int64_t> produced(n, -1), read(n, -1);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& node = *g.nodes[i];
    for (const Value* out : node.outputs)
      if (out && out->index >= 0) produced[static_cast<size_t>(out->index)] = static_cast<int64_t>(i);
    for (const Value* in : node.inputs)
      if (in && in->index >= 0) read[static_cast<size_t>(in->index)] = static_cast<int64_t>(i);
    for (const Value* in : g.implicit_inputs(node))
      if (in->index >= 0) read[static_cast<size_t>(in->index)] = static_cast<int64_t>(i);
  }
  for (size_t v = 0; v < n; ++v) {
    const int64_t owner = plan.offset[v] >= 0 ? static_cast<int64_t>(v) : plan.root[v];
    if (owner < 0) continue;
    const size_t o = static_cast<size_t>(owner);
    if (static_cast<size_t>(owner) == v) first[o] = produced[v];
    last[o] = std::max({last[o], produced[v], read[v]});
  }
  std::vector<size_t> blocks;
  for (size_t v = 0; v < n; ++v)  // the executor places node outputs only: other values' blocks go unused
    if (plan.offset[v] >= 0 && first[v] >= 0) blocks.push_back(v);
  std::sort(blocks.begin(), blocks.end(), [&](size_t a, size_t b) { return first[a] < first[b]; });
  std::map<size_t, std::pair<size_t, size_t>> live;  // offset -> (end, value)
  using Ending = std::pair<int64_t, size_t>;         // (last step, offset)
  std::priority_queue<Ending, std::vector<Ending>, std::greater<>> endings;
  for (size_t v : blocks) {
    while (!endings.empty() && endings.top().first < first[v]) {
      live.erase(endings.top().second);
      endings.pop();
    }
    const size_t at = static_cast<size_t>(plan.offset[v]);
    const size_t end = at + align_up(std::max<size_t>(plan.bytes[v], 1), kArenaAlignment);
    auto next = live.lower_bound(at);
    auto clash = [&](size_t other) {
      return Error(what + ": memory plan places values " + std::to_string(other) + " and " + std::to_string(v) +
                   ", alive at the same time, in overlapping bytes of its arena");
    };
    if (next != live.end() && next->first < end) throw clash(next->second.second);
    if (next != live.begin() && std::prev(next)->second.first > at) throw clash(std::prev(next)->second.second);
    live[at] = {end, v};
    endings.push({last[v], at});
  }
}

// A profile's memory plan, checked against the graph it is for: every block
// aligned and inside the arena, the arena no larger than its blocks laid end
// to end (so a crafted file cannot ask for a huge arena), and no graph output
// in it (the caller keeps those after the run).
std::shared_ptr<RunPlan> plan_of(const json& j, const Graph& g, const std::string& what) {
  const size_t num_values = g.values.size();
  auto plan = std::make_shared<RunPlan>();
  plan->offset = j.at("offset").get<std::vector<int64_t>>();
  plan->bytes = j.at("bytes").get<std::vector<size_t>>();
  plan->root = j.at("root").get<std::vector<int>>();
  plan->arena_bytes = j.at("arena_bytes").get<size_t>();
  plan->planned_bytes = j.at("planned_bytes").get<size_t>();
  if (plan->offset.size() != num_values || plan->bytes.size() != num_values || plan->root.size() != num_values)
    throw Error(what + ": memory plan for " + std::to_string(plan->offset.size()) + " values, the graph has " +
                std::to_string(num_values));
  if (plan->arena_bytes % kArenaAlignment != 0)
    throw Error(what + ": memory plan of " + std::to_string(plan->arena_bytes) + " bytes is not " +
                std::to_string(kArenaAlignment) + "-byte aligned");
  size_t sum = 0;  // of the aligned blocks, as plan_arena counts planned_bytes
  for (size_t v = 0; v < num_values; ++v) {
    const int64_t off = plan->offset[v];
    if (off >= 0) {
      const size_t at = static_cast<size_t>(off);
      if (at % kArenaAlignment != 0 || at > plan->arena_bytes || plan->bytes[v] > plan->arena_bytes - at)
        throw Error(what + ": memory plan places value " + std::to_string(v) + " outside its arena");
      const size_t block = align_up(std::max<size_t>(plan->bytes[v], 1), kArenaAlignment);  // no wrap: arena is aligned
      if (block > plan->arena_bytes - at || block > SIZE_MAX - sum)
        throw Error(what + ": memory plan places value " + std::to_string(v) + " outside its arena");
      sum += block;
    } else if (off != -1) {
      throw Error(what + ": memory plan has offset " + std::to_string(off));
    }
    const int r = plan->root[v];
    if (r < -1 || r >= static_cast<int>(num_values) || (r >= 0 && plan->offset[static_cast<size_t>(r)] < 0))
      throw Error(what + ": memory plan has an invalid root for value " + std::to_string(v));
  }
  if (sum != plan->planned_bytes || plan->arena_bytes > sum)
    throw Error(what + ": memory plan of " + std::to_string(plan->arena_bytes) + " bytes for blocks of " +
                std::to_string(sum) + " bytes (planned " + std::to_string(plan->planned_bytes) + ") is inconsistent");
  for (const Value* out : g.outputs)
    if (plan->offset[static_cast<size_t>(out->index)] >= 0 || plan->root[static_cast<size_t>(out->index)] >= 0)
      throw Error(what + ": memory plan puts graph output '" + out->name + "' in its arena");
  check_plan_lifetimes(*plan, g, what);
  return plan;
}

// For an engine whose ops kiln does not know: the plugins it was built with.
std::string plugin_hint(const json& meta) {
  if (!meta.contains("plugins") || !meta.at("plugins").is_array()) return "";
  std::string hint;
  for (const json& p : meta.at("plugins")) {
    if (!p.is_object() || !p.contains("library") || !p.at("library").is_string() || !p.contains("ops") ||
        !p.at("ops").is_array())
      continue;
    std::string ops;
    for (const json& o : p.at("ops"))
      if (o.is_string()) ops += (ops.empty() ? "" : ", ") + o.get<std::string>();
    hint += "\n  the engine was built with plugin " + p.at("library").get<std::string>() + " (" + ops +
            "): load it with --plugin (kiln::load_plugin)";
  }
  return hint;
}

// The imported nodes each node stands for (Node::origins), from meta.nodes[i].origins
// (optional: engines without them load the same).
void read_origins(const json& meta, Graph& g, const std::string& src) {
  if (!meta.contains("nodes")) return;
  const json& nodes = meta.at("nodes");
  if (!nodes.is_array() || nodes.size() != g.nodes.size())
    throw Error(src + ": corrupted engine: metadata lists " + std::to_string(nodes.is_array() ? nodes.size() : 0) +
                " nodes, the graph has " + std::to_string(g.nodes.size()));
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i].is_object() || !nodes[i].contains("origins")) continue;
    const json& o = nodes[i].at("origins");
    if (!o.is_array() || o.size() > 100000)
      throw Error(src + ": corrupted engine: node " + std::to_string(i) + "'s origins are not a list of names");
    std::vector<std::string> names;
    for (const json& n : o) {
      if (!n.is_string())
        throw Error(src + ": corrupted engine: node " + std::to_string(i) + "'s origins are not a list of names");
      names.push_back(n.get<std::string>());
    }
    g.nodes[i]->origins = std::move(names);
  }
}

// Weights the engine does not store (kNoData: a kernel's packed copy replaces
// them) have no data: nothing may read them but the kernels that own them.
void check_unstored_weights(const Graph& g, const CompiledGraph& compiled, const std::string& src) {
  auto unstored = [](const Value* v) {
    return v && v->initializer && v->initializer->numel() > 0 && !v->initializer->raw();
  };
  auto refuse = [&](const Value& v, const std::string& reader) {
    throw Error(src + ": corrupted engine: weight '" + v.name + "' is not stored, but " + reader + " reads it");
  };
  for (const Value* v : g.outputs)
    if (unstored(v)) refuse(*v, "the graph's output");
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = *g.nodes[i];
    for (const Value* v : g.implicit_inputs(n))
      if (unstored(v)) refuse(*v, "a subgraph of " + n.describe());
    for (size_t k = 0; k < n.inputs.size(); ++k)
      if (unstored(n.inputs[k]) && !compiled.kernel(i).owns_constant_input(k)) refuse(*n.inputs[k], n.describe());
  }
}

std::unique_ptr<Session::Impl> load(std::shared_ptr<const engine::EngineFile> file, const SessionOptions& options,
                                    bool keep_weights) {
  const std::string& src = file->source();
  auto impl = std::make_unique<Session::Impl>();
  impl->engine = file;
  const json meta = engine::parse_meta(*file);
  WeightsSection weights(file);

  const CpuIsa built = engine::isa_from_name(meta.at("isa").get<std::string>());
  if (built > cpu_isa_selected())
    impl->warnings.push_back(src + ": built for " + cpu_isa_name(built) + " kernels, this CPU allows " +
                             cpu_isa_name(cpu_isa_selected()) + " (hardware or KILN_CPU_ISA): weights packed for " +
                             cpu_isa_name(built) + " are re-packed at load");

  const std::string_view graph = file->section(engine::SectionKind::kGraph);
  impl->model = load_onnx_bytes(
      graph.data(), graph.size(),
      [&](const ExternalRef& ref, DType dtype, const Shape& shape, const std::string& name) {
        const std::string what = src + ": weight '" + name + "'";
        if (ref.location == engine::kNoData) return Tensor::wrap(dtype, shape, nullptr);
        if (ref.location != engine::kWeightsLocation)
          throw Error(what + ": external data in '" + ref.location + "', not in the engine's weights section");
        return weights.tensor(dtype, shape, ref.offset, ref.length, what);
      },
      src);
  Graph& g = *impl->model.graph;
  try {
    infer_supported(g, src);
  } catch (const UnsupportedError& e) {
    throw UnsupportedError(e.what() + plugin_hint(meta));
  }
  read_origins(meta, g, src);

  const auto packed = packed_states(meta, weights, g, src);
  impl->pool = std::make_unique<ThreadPool>(options.threads);
  std::unordered_map<const Node*, const PackedState*> packed_of;
  for (const auto& [i, st] : packed) packed_of[g.nodes[i].get()] = &st;
  auto compiled = std::const_pointer_cast<CompiledGraph>(CompiledGraph::compile(
      g, memory_planner_on(options), keep_weights ? nullptr : &g, [&](const Node& n) -> const PackedState* {
        auto it = packed_of.find(&n);
        return it == packed_of.end() ? nullptr : it->second;
      }));
  check_unstored_weights(g, *compiled, src);
  for (const json& p : meta.at("profiles")) {
    const std::string what = src + ": profile " + std::to_string(impl->profiles.size());
    ShapeProfile profile;
    for (const auto& [name, range] : p.at("inputs").items()) {
      const Value* v = g.find(name);
      if (!v || !v->is_graph_input) throw Error(what + " names '" + name + "', not an input of the graph");
      profile.min[name] = shape_of(range.at("min"), what);
      profile.opt[name] = shape_of(range.at("opt"), what);
      profile.max[name] = shape_of(range.at("max"), what);
    }
    engine::check_profile(profile, g, what);
    if (memory_planner_on(options)) compiled->add_profile_plan(plan_of(p.at("memory_plan"), g, what));
    impl->profiles.push_back(std::move(profile));
  }
  if (options.profile >= static_cast<int>(impl->profiles.size()))
    throw Error(src + ": profile " + std::to_string(options.profile) + " requested, the engine has " +
                std::to_string(impl->profiles.size()));
  impl->fixed_profile = options.profile;
  impl->compiled = compiled;
  describe_graph(*impl);
  for (const std::string& w : impl->warnings) std::fprintf(stderr, "kiln: warning: %s\n", w.c_str());
  return impl;
}

}  // namespace

std::unique_ptr<Session::Impl> load_engine(std::shared_ptr<const engine::EngineFile> file,
                                           const SessionOptions& options, bool keep_weights) {
  const std::string src = file->source();
  try {
    return load(std::move(file), options, keep_weights);
  } catch (const json::exception& e) {
    throw Error(src + ": corrupted engine metadata: " + e.what());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // oneDNN's, bad_alloc: callers are promised a kiln::Error
    throw Error(src + ": cannot load the engine: " + e.what());
  }
}

}  // namespace kiln
