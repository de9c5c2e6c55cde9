// A channels-last island between two Transposes of a blocked conv's output,
// as ConvNeXt writes its blocks:
//   FromBlocked → Transpose(0,2,3,1) → LayerNormalization(last axis)
//     → Gemm (+activation) → Gemm → Transpose(0,3,1,2) → [Mul by a
//     per-channel constant] → ToBlocked
// (Reshapes anywhere in between; any mix of LayerNorms and Linear layers)
// stays in the blocked layout instead: LayerNorm over the channels of each
// pixel is kiln.BlockedLayerNorm, a Linear layer over the channels is a 1x1
// kiln.BlockedConv, and the per-channel scale (ConvNeXt's layer scale) folds
// into the last Linear layer's weights. The two Transposes and the layout
// conversions, four passes over memory per block, are gone. Runs after
// layout_blocked (which made the FromBlocked/ToBlocked pair).
#include <algorithm>
#include <vector>

#include "kernels/cpu/dnnl_glue.h"

#include "ir/epilogue.h"
#include "ir/op.h"
#include "ir/rewrite.h"
#include "ops/blocked.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

bool is_kiln(const Node* n, const char* op) { return n && n->domain == kKilnDomain && n->op_type == op; }

// The only node reading v, or nullptr.
Node* sole_reader(const Graph& g, const Value* v) {
  if (!v || v->consumers.size() != 1 || is_graph_output(g, v)) return nullptr;
  Node* r = v->consumers[0];
  return only_read_by(g, v, r) ? r : nullptr;
}

// One step of the island, in order.
struct Step {
  enum Kind { kLayerNorm, kLinear } kind;
  Node* node;
  int64_t out_channels;
};

// A Gemm on [rows, K] with a constant B (K x N, or N x K with transB), an
// optional constant bias of N, alpha = beta = 1: its N, else -1.
int64_t linear_out(const Node& n, int64_t k) {
  if (n.op_type != "Gemm" || !n.domain.empty() || n.attr_int("transA", 0) != 0 || n.attr_float("alpha", 1) != 1 ||
      n.attr_float("beta", 1) != 1 || n.opset < 11)
    return -1;
  const Tensor* b = constant_of(n.inputs[1]);
  if (!b || b->dtype() != DType::kFloat32 || b->rank() != 2) return -1;
  const bool tb = n.attr_int("transB", 0) != 0;
  const int64_t bk = tb ? b->dim(1) : b->dim(0), bn = tb ? b->dim(0) : b->dim(1);
  if (bk != k) return -1;
  if (n.has_input(2)) {
    const Tensor* c = constant_of(n.inputs[2]);
    if (!c || c->dtype() != DType::kFloat32 || c->numel() != bn || c->dim(c->rank() - 1) != bn) return -1;
  }
  return bn;
}

bool layer_norm_over_channels(const Node& n, int64_t c) {
  if (n.op_type != "LayerNormalization" || !n.domain.empty() || n.outputs.size() != 1) return false;
  const int64_t axis = n.attr_int("axis", -1);
  if (axis != -1 && axis != 3) return false;
  for (size_t i = 1; i < 3; ++i) {
    if (!n.has_input(i)) continue;
    const Tensor* p = constant_of(n.inputs[i]);
    if (!p || p->dtype() != DType::kFloat32 || p->numel() != c) return false;
  }
  return n.has_input(1);
}

// The per-channel constant of Mul(v, s) (s of c values along dim 1 of a
// 4-D tensor: [c, 1, 1] or [1, c, 1, 1]), or nullptr.
const Tensor* channel_scale(const Node& mul, const Value* v, int64_t c) {
  if (mul.op_type != "Mul" || !mul.domain.empty() || mul.inputs.size() != 2) return nullptr;
  const Value* other = mul.inputs[0] == v ? mul.inputs[1] : mul.inputs[0];
  const Tensor* s = constant_of(other);
  if (!s || s->dtype() != DType::kFloat32 || s->numel() != c) return nullptr;
  const Shape& d = s->shape();
  const bool ok = (d == Shape{c, 1, 1}) || (d == Shape{1, c, 1, 1});
  return ok ? s : nullptr;
}

bool rewrite(Graph& g, Node& from_blocked) {
  const int64_t block = from_blocked.inputs[0]->type.rank() == 5 && from_blocked.inputs[0]->type.is_static()
                            ? from_blocked.inputs[0]->type.static_shape()[4]
                            : -1;
  int64_t c = from_blocked.attr_int("channels", -1);
  Node* t1 = sole_reader(g, from_blocked.outputs[0]);
  if (block < 0 || c <= 0 || !t1 || t1->op_type != "Transpose" || !t1->domain.empty() ||
      t1->attr_ints("perm") != std::vector<int64_t>{0, 2, 3, 1})
    return false;
  // Walk the island.
  std::vector<Step> steps;
  Value* v = t1->outputs[0];
  Node* t2 = nullptr;
  for (Node* n = sole_reader(g, v); n; n = sole_reader(g, v)) {
    if (n->op_type == "Reshape" && n->domain.empty()) {
      // Rows of channels stay rows of channels: the last dim must stay c.
      const ValueType& r = n->outputs[0]->type;
      if (!r.is_static() || r.rank() < 2 || r.static_shape().back() != c) return false;
      v = n->outputs[0];
    } else if (layer_norm_over_channels(*n, c)) {
      steps.push_back({Step::kLayerNorm, n, c});
      v = n->outputs[0];
    } else if (const int64_t out = linear_out(*n, c); out > 0 && n->inputs[0] == v) {
      if (has_epilogue(*n)) {
        dnnl::post_ops po;
        if (!dnnl_glue::post_ops_for(epilogue_of(*n), &po)) return false;
      }
      steps.push_back({Step::kLinear, n, out});
      c = out;
      v = n->outputs[0];
    } else if (n->op_type == "Transpose" && n->domain.empty() &&
               n->attr_ints("perm") == std::vector<int64_t>{0, 3, 1, 2}) {
      t2 = n;
      v = n->outputs[0];
      break;
    } else {
      return false;
    }
  }
  if (!t2 || steps.empty()) return false;
  // The island's output must be the transposed [N, c, H, W] of its input.
  const ValueType& in_t = t1->inputs[0]->type;
  const ValueType& out_t = t2->outputs[0]->type;
  if (!in_t.is_static() || !out_t.is_static() || out_t.rank() != 4) return false;
  const Shape in_s = in_t.static_shape(), out_s = out_t.static_shape();
  if (out_s[0] != in_s[0] || out_s[1] != c || out_s[2] != in_s[2] || out_s[3] != in_s[3]) return false;
  // Then an optional layer scale, then the conversion back.
  Node* mul = sole_reader(g, v);
  const Tensor* gamma = mul ? channel_scale(*mul, v, c) : nullptr;
  if (gamma && (steps.back().kind != Step::kLinear || has_epilogue(*steps.back().node))) gamma = nullptr;
  if (gamma) v = mul->outputs[0];
  Node* to_blocked = sole_reader(g, v);
  if (!is_kiln(to_blocked, "ToBlocked") || to_blocked->attr_int("block", 0) != block) return false;

  // Rebuild in the blocked layout.
  Value* cur = from_blocked.inputs[0];
  int64_t channels = from_blocked.attr_int("channels", -1);
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& s = steps[i];
    const bool last = i + 1 == steps.size();
    Value* out = last ? to_blocked->outputs[0] : add_fresh_value(g, s.node->name + ".blocked");
    Node* b = nullptr;
    if (s.kind == Step::kLayerNorm) {
      std::vector<Value*> inputs = {cur, s.node->inputs[1]};
      if (s.node->has_input(2)) inputs.push_back(s.node->inputs[2]);
      b = add_node(g, "BlockedLayerNorm", s.node->name, std::move(inputs), {out}, 1);
      b->attrs["epsilon"] = float_attr(s.node->attr_float("epsilon", 1e-5f));
      b->attrs["channels"] = int_attr(channels);
    } else {
      const Tensor& w = *constant_of(s.node->inputs[1]);
      const bool tb = s.node->attr_int("transB", 0) != 0;
      const int64_t k = channels, n = s.out_channels;
      const float* scale = last && gamma ? gamma->data<float>() : nullptr;
      // The conv reads B as it is: [n, k] (transB) is OIHW, [k, n] is IOHW
      // (weights_io), so nothing is transposed here; only a layer scale
      // makes a scaled copy.
      Value* weight = s.node->inputs[1];
      if (scale) {
        Tensor w2(DType::kFloat32, w.shape());
        const float* src = w.data<float>();
        float* dst = w2.data<float>();
        const int64_t rows = w.dim(0), cols = w.dim(1);
        // Output channels are B's rows with transB, its columns without.
        if (tb) {
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < cols; ++q) dst[r * cols + q] = src[r * cols + q] * scale[r];
        } else {
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t q = 0; q < cols; ++q) dst[r * cols + q] = src[r * cols + q] * scale[q];
        }
        weight = add_constant(g, s.node->name + ".scaled_weight", std::move(w2));
      }
      if (tb) {
        // [n, k] as an [n, k, 1, 1] OIHW weight: the same data.
        Tensor oihw = constant_of(weight)->reshaped({n, k, 1, 1});
        weight = add_constant(g, s.node->name + ".conv_weight", std::move(oihw));
      }
      std::vector<Value*> inputs = {cur, weight};
      if (s.node->has_input(2)) {
        Tensor bias(DType::kFloat32, {n});
        const float* src = constant_of(s.node->inputs[2])->data<float>();
        for (int64_t o = 0; o < n; ++o) bias.data<float>()[o] = src[o] * (scale ? scale[o] : 1.0f);
        inputs.push_back(add_constant(g, s.node->name + ".conv_bias", std::move(bias)));
      }
      b = add_node(g, "BlockedConv", s.node->name, std::move(inputs), {out}, 1);
      b->attrs["kernel_shape"] = ints_attr({1, 1});
      if (!tb) b->attrs["weights_io"] = int_attr(1);
      for (const EpilogueStep& e : epilogue_of(*s.node)) append_epilogue(*b, e);
      channels = n;
    }
    b->domain = kKilnDomain;
    b->attrs["block"] = int_attr(block);
    b->origins = s.node->origin_names();
    if (i == 0) b->absorb_origins(*t1);
    if (last) {
      b->absorb_origins(*t2);
      if (gamma) b->absorb_origins(*mul);
    }
    cur = out;
  }
  // The old chain loses its last reader (ToBlocked's output now comes from the
  // new nodes); eliminate_dead_code removes it.
  detach_node(g, to_blocked);
  return true;
}

}  // namespace

bool blocked_channels_last(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    Node& n = *g.nodes[i];
    if (is_kiln(&n, "FromBlocked") && n.has_output(0) && n.has_input(0)) changed |= rewrite(g, n);
  }
  return changed;
}

}  // namespace kiln::passes
