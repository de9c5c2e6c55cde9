#include "passes/pass_manager.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/settings.h"
#include "ir/infer.h"
#include "ir/rewrite.h"
#include "ir/verify.h"
#include "kiln/error.h"
#include "passes/passes.h"

namespace kiln::passes {

const std::vector<Pass>& all_passes() {
  // Cleanups first so the fusions see a small graph; fusions that create new
  // patterns for later ones come before those (GELU recognition before the
  // epilogue fusion that absorbs the new Gelu; attention before the MatMul
  // + Add fusion that would take its mask Add).
  static const std::vector<Pass> passes = {
      {"localize_outer_constants", 1, localize_outer_constants},
      {"eliminate_identity", 1, eliminate_identity},
      {"fold_shape", 1, fold_shape},
      {"fold_constants", 1, fold_constants},
      {"inline_constant_if", 1, inline_constant_if},
      {"eliminate_common_subexpressions", 1, eliminate_common_subexpressions},
      {"fold_transposes", 1, fold_transposes},
      {"eliminate_dead_code", 1, eliminate_dead_code},
      {"fold_batchnorm", 2, fold_batchnorm},
      {"batchnorm_to_affine", 2, batchnorm_to_affine},
      {"recognize_layernorm", 2, recognize_layernorm},
      {"recognize_gelu", 2, recognize_gelu},
      {"recognize_attention", 2, recognize_attention},
      {"gather_rows", 2, gather_rows},
      {"fuse_matmul_add", 2, fuse_matmul_add},
      {"fuse_pad", 2, fuse_pad},
      {"shrink_conv_taps", 2, shrink_conv_taps},
      {"fuse_conv_bias", 2, fuse_conv_bias},
      {"fuse_epilogue", 2, fuse_epilogue},
      {"widen_conv_groups", 2, widen_conv_groups},
      {"layout_blocked", 2, layout_blocked},
      {"blocked_channels_last", 2, blocked_channels_last},
      {"fuse_conv_sum", 2, fuse_conv_sum},
      {"fuse_elementwise", 2, fuse_elementwise},
      {"eliminate_dead_code", 1, eliminate_dead_code},
  };
  return passes;
}

PassOptions PassOptions::from_env(int opt_level, std::vector<std::string> disabled) {
  PassOptions o;
  o.opt_level = opt_level;
  o.disabled = std::move(disabled);
#ifndef NDEBUG
  o.verify = true;
#endif
  if (settings().verify_passes) o.verify = true;
  o.dump = settings().dump_passes;
  return o;
}

std::string PassReport::str() const {
  std::string s = "passes: " + std::to_string(nodes_before) + " -> " + std::to_string(nodes_after) + " nodes in " +
                  std::to_string(rounds) + " round(s)";
  if (subgraph_nodes_before)
    s += "; subgraphs: " + std::to_string(subgraph_nodes_before) + " -> " + std::to_string(subgraph_nodes_after) +
         " nodes";
  s += "\n";
  for (const PassStat& p : passes) {
    char line[160];
    std::snprintf(line, sizeof line, "  %-34s changed %d round(s)  %8.2f ms\n", p.name.c_str(), p.changed, p.ms);
    s += line;
  }
  return s;
}

namespace {

void check_types(Graph& g, const std::string& after) {
  std::vector<std::string> unsupported;
  infer_graph(g, &unsupported);
  if (!unsupported.empty()) throw Error("after pass " + after + ": " + unsupported.front());
}

}  // namespace

namespace {

// Optimizes the bodies of g's If/Loop/Scan nodes, innermost last, so a model
// whose work sits in a branch (a VAD that picks its sample rate with an If)
// gets the same fusions and layouts as a flat one. Their outer-scope reads
// are by name; the passes keep those names (see rewrite.h).
void optimize_subgraphs(Graph& g, const PassOptions& options, PassReport& report) {
  for (auto& node : g.nodes)
    for (auto& [name, attr] : node->attrs) {
      (void)name;
      std::vector<Graph*> bodies;
      if (attr.kind == Attribute::Kind::kGraph && attr.g) bodies.push_back(attr.g.get());
      for (auto& sub : attr.graphs)
        if (attr.kind == Attribute::Kind::kGraphs && sub) bodies.push_back(sub.get());
      for (Graph* body : bodies) {
        PassReport inner = optimize(*body, options);
        report.subgraph_nodes_before += inner.nodes_before + inner.subgraph_nodes_before;
        report.subgraph_nodes_after += inner.nodes_after + inner.subgraph_nodes_after;
      }
    }
}

}  // namespace

PassReport optimize(Graph& g, const PassOptions& options) {
  PassReport report;
  report.nodes_before = g.nodes.size();
  for (const std::string& name : options.disabled) {
    bool known = std::any_of(all_passes().begin(), all_passes().end(), [&](const Pass& p) { return p.name == name; });
    if (!known) throw Error("unknown pass '" + name + "' in disabled passes");
  }
  std::vector<const Pass*> selected;
  for (const Pass& p : all_passes()) {
    if (p.min_level > options.opt_level) continue;
    if (std::find(options.disabled.begin(), options.disabled.end(), p.name) != options.disabled.end()) continue;
    selected.push_back(&p);
    if (std::none_of(report.passes.begin(), report.passes.end(), [&](const PassStat& s) { return s.name == p.name; }))
      report.passes.push_back({p.name, 0, 0});
  }
  bool changed = !selected.empty();
  while (changed && report.rounds < options.max_rounds) {
    changed = false;
    ++report.rounds;
    for (const Pass* p : selected) {
      auto t0 = std::chrono::steady_clock::now();
      g.relink();
      bool did = p->run(g);
      if (did) {
        erase_detached_nodes(g);
        g.sort_topologically();
        check_types(g, p->name);
      }
      auto t1 = std::chrono::steady_clock::now();
      PassStat& stat = *std::find_if(report.passes.begin(), report.passes.end(),
                                     [&](const PassStat& s) { return s.name == p->name; });
      stat.ms += std::chrono::duration<double, std::milli>(t1 - t0).count();
      if (!did) continue;
      changed = true;
      ++stat.changed;
      if (options.verify) {
        try {
          verify_graph(g);
        } catch (const Error& e) {
          throw Error("after pass " + p->name + ": " + e.what());
        }
      }
      if (options.dump) std::fprintf(stderr, "--- after %s\n%s", p->name.c_str(), g.dump().c_str());
    }
  }
  g.relink();
  report.nodes_after = g.nodes.size();
  if (options.opt_level > 0) optimize_subgraphs(g, options, report);
  return report;
}

}  // namespace kiln::passes
