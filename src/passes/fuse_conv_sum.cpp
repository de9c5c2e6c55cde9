// Add(BlockedConv(...), S), with S another blocked value of the output's
// shape, becomes BlockedConv(..., S): the residual Add of ResNet-style blocks
// is read while the conv stores its output (a oneDNN binary post-op, or in
// the Winograd output transform) instead of costing one more pass over
// memory. The Add's own epilogue (the block's ReLU) moves to the conv, after
// the sum. Runs after layout_blocked, on the blocked graph.
#include "ir/epilogue.h"
#include "ir/op.h"
#include "ir/rewrite.h"
#include "ops/blocked.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

Node* blocked_conv_producing(const Value* v) {
  Node* p = v ? v->producer : nullptr;
  return p && p->domain == kKilnDomain && p->op_type == "BlockedConv" ? p : nullptr;
}

// Same shape, dims known and equal or the same symbol (a dynamic batch).
bool same_shape(const Value* a, const Value* b) {
  if (a->type.dtype != DType::kFloat32 || b->type.dtype != DType::kFloat32 || !a->type.shape || !b->type.shape)
    return false;
  const DimVector& x = *a->type.shape;
  const DimVector& y = *b->type.shape;
  if (x.size() != y.size()) return false;
  for (size_t i = 0; i < x.size(); ++i) {
    const bool same = x[i].is_known() ? y[i].is_known() && x[i].value == y[i].value
                                      : !y[i].is_known() && !x[i].symbol.empty() && x[i].symbol == y[i].symbol;
    if (!same) return false;
  }
  return true;
}

// Whether oneDNN runs `conv` with a sum post-op by a JIT kernel (it does for
// the usual convs; a reference fallback would lose more than the Add costs).
// The choice does not depend on the batch or the image size, so a dynamic
// batch is taken as 1 and a dynamic height or width as blocked_conv_impl's
// stand-in.
bool jit_with_sum(const Node& conv) {
  const ValueType& x = conv.inputs[0]->type;
  if (!x.shape || (x.rank() != 4 && x.rank() != 5)) return false;
  const DimVector& d = *x.shape;
  auto known = [](const Dim& v) { return v.is_known() ? v.value : -1; };
  const int64_t n = d[0].is_known() ? d[0].value : 1;
  const std::string impl =
      blocked_conv_impl(conv, n, known(d[2]), known(d[3]), x.rank() == 4, conv.attr_int("block", 0), /*with_sum=*/true);
  return impl.rfind("jit", 0) == 0;
}

bool fuse(Graph& g, Node& add) {
  for (int i = 0; i < 2; ++i) {
    Value* c = add.inputs[static_cast<size_t>(i)];
    Value* s = add.inputs[static_cast<size_t>(1 - i)];
    Node* conv = blocked_conv_producing(c);
    if (!conv || c == s || conv->has_input(3) || has_epilogue(*conv) || !only_read_by(g, c, &add)) continue;
    if (s->producer == conv || !same_shape(c, s) || !jit_with_sum(*conv)) continue;
    std::vector<Value*> inputs = {conv->inputs[0], conv->inputs[1], conv->has_input(2) ? conv->inputs[2] : nullptr, s};
    Node* fused = add_node(g, "BlockedConv", conv->name, std::move(inputs), {add.outputs[0]}, conv->opset);
    fused->domain = kKilnDomain;
    fused->attrs = conv->attrs;
    fused->origins = conv->origin_names();
    fused->absorb_origins(add);
    for (const EpilogueStep& step : epilogue_of(add)) append_epilogue(*fused, step);
    detach_node(g, &add);
    detach_node(g, conv);
    return true;
  }
  return false;
}

}  // namespace

bool fuse_conv_sum(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    Node& add = *g.nodes[i];
    if (add.op_type != "Add" || !add.domain.empty() || add.inputs.size() != 2 || !add.inputs[0] || !add.inputs[1] ||
        !add.has_output(0))
      continue;
    changed |= fuse(g, add);
  }
  return changed;
}

}  // namespace kiln::passes
