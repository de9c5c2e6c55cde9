// Constant folding: a node whose inputs are all constants is run once, now,
// through its own kernel (so folding can never disagree with running), and
// its outputs become initializers. Skipped: random ops (their value must
// change between runs), nodes with subgraphs, sequence/optional outputs, and
// results that would grow the model: an output is folded only when it has at
// most kMaxElements elements or no more than its inputs together. Shape
// reads of static shapes (fold_shape) fold in the same sweep.
#include <algorithm>

#include "ir/infer.h"
#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

constexpr int64_t kMaxElements = int64_t{1} << 20;

bool is_random(const Node& n) {
  static const char* const kRandomOps[] = {"RandomNormal",      "RandomUniform", "RandomNormalLike",
                                           "RandomUniformLike", "Multinomial",   "Bernoulli"};
  return std::any_of(std::begin(kRandomOps), std::end(kRandomOps), [&](const char* op) { return n.op_type == op; });
}

bool has_subgraph(const Node& n) {
  return std::any_of(n.attrs.begin(), n.attrs.end(),
                     [](const auto& kv) { return kv.second.g || !kv.second.graphs.empty(); });
}

class NoSubgraphs : public BuildContext {
 public:
  std::shared_ptr<const CompiledGraph> compile(const Graph&) override {
    throw Error("constant folding does not compile subgraphs");
  }
};

bool foldable(const Node& n) {
  if (!n.schema || is_random(n) || has_subgraph(n) || n.inputs.empty()) return false;
  for (const Value* in : n.inputs)
    if (in && !constant_of(in)) return false;
  for (const Value* out : n.outputs)
    if (out && out->type.kind != ValueKind::kTensor) return false;
  return true;
}

// Runs n on its constant inputs; false when the kernel rejects them (the
// error then surfaces at run time, where it belongs) or a result is too big.
bool evaluate(const Node& n, std::vector<Tensor>* outs) {
  std::vector<const Tensor*> ins;
  int64_t in_elements = 0;
  for (const Value* in : n.inputs) {
    ins.push_back(in ? constant_of(in) : nullptr);
    if (in) in_elements += constant_of(in)->numel();
  }
  outs->assign(n.outputs.size(), Tensor());
  try {
    NoSubgraphs bc;
    std::unique_ptr<Kernel> k = make_kernel(n, bc);
    KernelContext ctx(n, ins, *outs, nullptr);
    k->run(ctx);
  } catch (const Error&) {
    return false;
  }
  for (size_t i = 0; i < outs->size(); ++i) {
    if (!n.outputs[i]) continue;
    const Tensor& t = (*outs)[i];
    if (!t.defined() || (t.numel() > kMaxElements && t.numel() > in_elements)) return false;
  }
  return true;
}

}  // namespace

bool fold_constants(Graph& g) {
  bool changed = false;
  for (auto& n : g.nodes) {
    // Inputs folded earlier in this sweep may make this node's shapes static
    // (a Reshape whose shape input just became constant).
    if (changed) reinfer_node(*n);
    if (fold_shape_of(g, *n)) {
      changed = true;
      continue;
    }
    if (!foldable(*n)) continue;
    std::vector<Tensor> outs;
    if (!evaluate(*n, &outs)) continue;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      Value* out = n->outputs[i];
      if (!out) continue;
      // The output keeps its name (it may be a graph output or read by a
      // subgraph by name) and becomes an initializer.
      out->producer = nullptr;
      out->type = ValueType::tensor(outs[i].dtype(), outs[i].shape());
      out->initializer = std::move(outs[i]);
    }
    detach_node(g, n.get());
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
