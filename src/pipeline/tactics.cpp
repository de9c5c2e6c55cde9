#include "pipeline/tactics.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>

#include "core/file.h"
#include "core/thread_pool.h"
#include "engine/meta.h"
#include "ir/op.h"
#include "kernels/cpu/winograd_f32.h"
#include "ops/blocked.h"
#include "ops/conv_select.h"
#include "ops/nn_util.h"

namespace kiln::engine {

using nlohmann::json;

TimingCache TimingCache::load(const std::string& path) {
  TimingCache cache;
  std::ifstream probe(path);
  if (!probe) return cache;  // a new cache
  const json j = json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("format", "") != "kiln-timing-cache" || !j.contains("entries") ||
      !j["entries"].is_object())
    throw Error(path + ": not a kiln timing cache");
  cache.entries_ = j["entries"];
  return cache;
}

void TimingCache::save(const std::string& path) const {
  write_file(path, json{{"format", "kiln-timing-cache"}, {"entries", entries_}}.dump(1) + "\n");
}

const json* TimingCache::find(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() || !it->is_object() || !it->contains("winograd_ms") || !it->contains("direct_ms")
             ? nullptr
             : &*it;
}

namespace {

class NoSubgraphs : public BuildContext {
 public:
  std::shared_ptr<const CompiledGraph> compile(const Graph&) override {
    throw Error("tactic timing: subgraphs are not timed");
  }
};

// The batch the profile is tuned for, when dim 0 is a profile's dynamic dim.
int64_t opt_batch(const Graph& g, const Dim& d, const std::vector<ShapeProfile>& profiles) {
  if (d.is_known()) return d.value;
  for (const Value* v : g.inputs)
    if (v->type.shape && !v->type.shape->empty() && (*v->type.shape)[0].symbol == d.symbol && !d.symbol.empty() &&
        profiles[0].opt.count(v->name))
      return profiles[0].opt.at(v->name)[0];
  return 1;
}

Tensor random_tensor(const Shape& shape, uint32_t seed) {
  Tensor t(DType::kFloat32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

// Median ms of a few runs of `node` with its algorithm set to `algorithm`.
double time_algorithm(Node& node, const std::string& algorithm, const std::vector<const Tensor*>& inputs,
                      ThreadPool& pool) {
  Attribute a;
  a.kind = Attribute::Kind::kString;
  a.s = algorithm;
  node.attrs["algorithm"] = a;
  NoSubgraphs bc;
  std::unique_ptr<Kernel> kernel = make_kernel(node, bc);
  std::vector<Tensor> outputs(node.outputs.size());
  std::vector<double> ms;
  for (int i = 0; i < 6; ++i) {  // the first builds the primitive: not counted
    KernelContext ctx(node, inputs, outputs, nullptr, &pool);
    const auto t0 = std::chrono::steady_clock::now();
    kernel->run(ctx);
    if (i > 0) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// The cache key: what the timing depends on.
std::string key_of(const Node& n, const Shape& x, const Shape& w, int threads) {
  std::string k = "BlockedConv x=" + shape_str(x) + " w=" + shape_str(w);
  for (const char* attr : {"pads", "strides", "dilations"})
    k += std::string(" ") + attr + "=" + shape_str(n.attr_ints(attr));
  k += std::string(" bias=") + (n.has_input(2) ? "1" : "0") + " sum=" + (n.has_input(3) ? "1" : "0");
  k += std::string(" isa=") + cpu_isa_name(cpu_isa_selected()) + " threads=" + std::to_string(threads) +
       " kiln=" + KILN_VERSION;
  return k;
}

}  // namespace

TacticReport choose_conv_algorithms(Graph& g, const std::vector<ShapeProfile>& profiles, int threads,
                                    TimingCache& cache) {
  TacticReport report;
  if (winograd_mode() != WinogradMode::kAuto) return report;
  ThreadPool pool(threads);
  const int applied = pool.num_threads();
  for (auto& np : g.nodes) {
    Node& n = *np;
    if (n.domain != kKilnDomain || n.op_type != "BlockedConv" || n.has_attr("algorithm")) continue;
    const Value* xv = n.inputs[0];
    const Value* wv = n.inputs[1];
    if (!xv->type.shape || xv->type.rank() != 5 || !wv->initializer || !wv->initializer->raw() ||
        n.attr_int("weights_io", 0) != 0)
      continue;
    const DimVector& d = *xv->type.shape;
    const Shape& w = wv->initializer->shape();
    if (!d[1].is_known() || !d[2].is_known() || !d[3].is_known() || !d[4].is_known() || w.size() != 4) continue;
    WindowGeometry geo;
    if (!window_geometry(n, {d[2].value, d[3].value}, {w[2], w[3]}, false, &geo).empty()) continue;
    // Time the node when ops/conv_select.h names more than one candidate.
    ConvProblem p;
    p.n = opt_batch(g, d[0], profiles), p.c = w[1] * n.attr_int("group", 1), p.m = w[0],
    p.group = n.attr_int("group", 1);
    p.h = d[2].value, p.w = d[3].value, p.kh = w[2], p.kw = w[3];
    p.strides = geo.strides, p.dilations = geo.dilations, p.pads_begin = geo.pads_begin, p.pads_end = geo.pads_end;
    p.out_h = geo.out[0], p.out_w = geo.out[1];
    p.blocked = true, p.block = d[4].value;
    if (rank_conv_algorithms(p, WinogradMode::kAuto).size() < 2) continue;
    const Shape x = {opt_batch(g, d[0], profiles), d[1].value, d[2].value, d[3].value, d[4].value};
    const std::string key = key_of(n, x, w, applied);
    json t;
    if (const json* hit = cache.find(key)) {
      t = *hit;
      ++report.cached;
    } else {
      const Tensor xt = random_tensor(x, 1);
      Tensor sum;
      std::vector<const Tensor*> inputs;
      for (size_t i = 0; i < n.inputs.size(); ++i)
        inputs.push_back(!n.inputs[i]               ? nullptr
                         : i == 0                   ? &xt
                         : n.inputs[i]->initializer ? &*n.inputs[i]->initializer
                                                    : nullptr);
      if (n.has_input(3)) {
        sum = random_tensor({x[0], (w[0] + x[4] - 1) / x[4], geo.out[0], geo.out[1], x[4]}, 2);
        inputs[3] = &sum;
      }
      t = {{"winograd_ms", time_algorithm(n, "winograd", inputs, pool)},
           {"direct_ms", time_algorithm(n, "direct", inputs, pool)}};
      cache.put(key, t);
      ++report.timed;
    }
    const double wino = t["winograd_ms"].get<double>(), direct = t["direct_ms"].get<double>();
    const std::string algorithm = wino < direct ? "winograd" : "direct";
    Attribute a;
    a.kind = Attribute::Kind::kString;
    a.s = algorithm;
    n.attrs["algorithm"] = a;
    // Whole microseconds: the engine's metadata holds integers only (its
    // reader refuses fractions, docs/engine-format.md).
    report.choices.push_back({{"node", n.name},
                              {"key", key},
                              {"winograd_us", std::llround(wino * 1000)},
                              {"direct_us", std::llround(direct * 1000)},
                              {"algorithm", algorithm}});
  }
  return report;
}

}  // namespace kiln::engine
