// Keeps convolutional activations in the blocked layout (ops/blocked.h)
// across consecutive ops, converting only at the edges.
//
// Every float32 2-D Conv with constant weights for which oneDNN has a real
// (not reference) implementation becomes kiln.BlockedConv, writing a blocked
// twin of its output. Then, walking the graph in order, an op whose
// activation input has a blocked twin runs on the twin when it can:
// element-wise unary ops with a finite value at 0 (padding lanes are zeros
// and must stay finite, or a later conv's zero weights would multiply an
// inf), Add/Sub/Mul/Max/Min whose other input is blocked too, per-channel
// or a scalar, MaxPool/AveragePool/Global pools, channel Concat of
// whole blocks and InstanceNormalization (kiln.BlockedInstanceNorm). Each converted op also gets a kiln.FromBlocked
// back to the original value, so plain readers (and graph outputs) are untouched; eliminate_dead_code removes the
// conversions nobody reads.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "ir/epilogue.h"
#include "ir/op_facts.h"
#include "ir/rewrite.h"
#include "kernels/cpu/dnnl_glue.h"
#include "ops/blocked.h"
#include "ops/conv_select.h"
#include "ops/nn_util.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

bool is_one_of(const std::string& op, std::initializer_list<const char*> ops) {
  return std::any_of(ops.begin(), ops.end(), [&](const char* o) { return op == o; });
}

// How the op may run on a blocked input as it is (its facts).
BlockedLayout blocked_layout(const Node& n) {
  const OpFacts* f = op_facts(n);
  return f ? f->blocked : BlockedLayout::kNo;
}

// A static [N, C, H, W] float32 shape's C; -1 otherwise.
int64_t static_channels(const Value* v) {
  if (!v || v->type.dtype != DType::kFloat32 || v->type.rank() != 4) return -1;
  const Dim& c = (*v->type.shape)[1];
  return c.is_known() ? c.value : -1;
}

class LayoutPass {
 public:
  LayoutPass(Graph& g, int64_t block) : g_(g), block_(block) {}

  bool run() {
    // Twins from an earlier run of this pass.
    for (const auto& n : g_.nodes)
      if (n->domain == kKilnDomain && n->op_type == "FromBlocked" && n->outputs[0]) twin_[n->outputs[0]] = n->inputs[0];
    const size_t count = g_.nodes.size();
    bool changed = false;
    for (size_t i = 0; i < count; ++i) {
      Node& n = *g_.nodes[i];
      if (!n.domain.empty() || n.outputs.empty() || !n.outputs[0] || n.inputs.empty()) continue;
      if (n.op_type == "Conv")
        changed |= conv(n);
      else if (blocked_layout(n) == BlockedLayout::kUnary)
        changed |= unary(n);
      else if (blocked_layout(n) == BlockedLayout::kBinary)
        changed |= binary(n);
      else if (is_one_of(n.op_type, {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}))
        changed |= pool(n);
      else if (n.op_type == "Concat")
        changed |= concat(n);
      else if (n.op_type == "Pad")
        changed |= pad(n);
      else if (n.op_type == "InstanceNormalization")
        changed |= instance_norm(n);
    }
    return changed;
  }

 private:
  bool conv(Node& n) {
    const Value* x = n.inputs[0];
    const int64_t c = static_channels(x);
    if (c < 0 || !n.has_input(1) || !constant_of(n.inputs[1]) || (n.has_input(2) && !constant_of(n.inputs[2])) ||
        n.outputs.size() != 1 || static_channels(n.outputs[0]) < 0)
      return false;
    // Any epilogue: BlockedConv runs the steps oneDNN has no post-op for itself.
    // ops/conv_select.h decides; a dynamic batch counts as 1.
    const DimVector& d = *x->type.shape;
    const int64_t batch = d[0].is_known() ? d[0].value : 1;
    const int64_t h = d[2].is_known() ? d[2].value : -1, w = d[3].is_known() ? d[3].value : -1;
    bool plain_src = false;
    if (!conv_runs_blocked(n, batch, c, h, w, block_, twin_.count(x) != 0, &plain_src)) return false;
    Value* in = plain_src ? n.inputs[0] : blocked(n.inputs[0]);
    std::vector<Value*> inputs = {in, n.inputs[1]};
    if (n.has_input(2)) inputs.push_back(n.inputs[2]);
    auto attrs = n.attrs;
    attrs["block"] = int_attr(block_);
    replace(n, "BlockedConv", inputs, std::move(attrs));
    return true;
  }

  bool unary(Node& n) {
    auto it = twin_.find(n.inputs[0]);
    if (it == twin_.end() || n.outputs.size() != 1 || static_channels(n.outputs[0]) < 0) return false;
    for (size_t k = 1; k < n.inputs.size(); ++k)  // Clip's min/max: scalars
      if (n.inputs[k] && n.inputs[k]->type.rank() > 0) return false;
    std::vector<Value*> inputs = n.inputs;
    inputs[0] = it->second;
    replace(n, n.op_type, inputs, n.attrs);
    return true;
  }

  bool binary(Node& n) {
    const int64_t c = static_channels(n.outputs[0]);
    if (c < 0 || n.inputs.size() != 2 || !n.inputs[0] || !n.inputs[1]) return false;
    if (!twin_.count(n.inputs[0]) && !twin_.count(n.inputs[1])) return false;
    if (scale_shift(n, c)) return true;
    // Div: only by a constant, whose padding lanes are then 1 (0 / 0 in a
    // padding lane would make it NaN, and the next conv reads every lane).
    const bool div = n.op_type == "Div";
    if (div) {
      const Tensor* d = constant_of(n.inputs[1]);
      if (!d || d->dtype() != DType::kFloat32 || (d->numel() == 1 && d->data<float>()[0] == 0.0f)) return false;
    }
    std::vector<Value*> inputs;
    for (Value* in : n.inputs) {
      Value* b = operand(in, c, div && in == n.inputs[1] ? 1.0f : 0.0f);
      if (!b) return false;
      inputs.push_back(b);
    }
    replace(n, n.op_type, inputs, n.attrs);
    return true;
  }

  // Mul(x, per-channel constant) read only by Add(., per-channel constant):
  // one kiln.BlockedScaleShift carrying the Add's epilogue.
  bool scale_shift(Node& mul, int64_t c) {
    if (mul.op_type != "Mul" || has_epilogue(mul)) return false;
    const int xi = twin_.count(mul.inputs[0]) ? 0 : 1;
    const Tensor* scale = constant_of(mul.inputs[1 - xi]);
    Value* product = mul.outputs[0];
    if (!scale || product->consumers.size() != 1 || !only_read_by(g_, product, product->consumers[0])) return false;
    Node& add = *product->consumers[0];
    if (add.op_type != "Add" || !add.domain.empty() || add.inputs.size() != 2) return false;
    const Tensor* shift = constant_of(add.inputs[add.inputs[0] == product ? 1 : 0]);
    if (!shift || static_channels(add.outputs[0]) != c) return false;
    Value* s = per_channel_constant(*scale, c);
    Value* t = s ? per_channel_constant(*shift, c) : nullptr;
    if (!t) return false;
    Value* x = twin_[mul.inputs[xi]];
    add.absorb_origins(mul);
    detach_node(g_, &mul);
    std::map<std::string, Attribute> attrs;
    for (const auto& [k, v] : add.attrs)
      if (k.rfind("kiln.epilogue", 0) == 0) attrs[k] = v;
    replace(add, "BlockedScaleShift", {x, s, t}, std::move(attrs));
    return true;
  }

  // A binary op's input in the blocked world: its twin, a conversion of a
  // per-image [N, C, h, w] activation, a per-channel constant laid out in
  // blocks (padding lanes `pad`), or a one-element constant as it is.
  // nullptr when none fits.
  Value* operand(Value* in, int64_t c, float pad = 0.0f) {
    if (twin_.count(in)) return twin_[in];
    if (const Tensor* t = constant_of(in)) {
      if (t->dtype() != DType::kFloat32) return nullptr;
      if (t->numel() == 1) return in;
      return per_channel_constant(*t, c, pad);
    }
    if (static_channels(in) == c) return blocked(in);
    return nullptr;
  }

  // A constant of shape [C, 1, 1] or [1, C, 1, 1] as [1, C/B, 1, 1, B].
  Value* per_channel_constant(const Tensor& t, int64_t c, float pad = 0.0f) {
    const Shape& s = t.shape();
    const bool ok = (s == Shape{c, 1, 1}) || (s == Shape{1, c, 1, 1});
    return ok ? channels_in_blocks(t, c, pad) : nullptr;
  }

  // The C float32 values of t as [1, C/B, 1, 1, B], `pad` in the padding lanes.
  Value* channels_in_blocks(const Tensor& t, int64_t c, float pad) {
    Tensor b(DType::kFloat32, {1, ceil_div(c, block_), 1, 1, block_});
    std::fill(b.data<float>(), b.data<float>() + b.numel(), pad);
    std::copy(t.data<float>(), t.data<float>() + c, b.data<float>());
    return add_constant(g_, "blocked_constant", std::move(b));
  }

  bool pool(Node& n) {
    auto it = twin_.find(n.inputs[0]);
    const int64_t c = static_channels(n.inputs[0]);
    if (it == twin_.end() || c < 0) return false;
    if (n.outputs.size() > 1 && n.outputs[1]) return false;  // MaxPool's Indices
    const bool global = n.op_type.rfind("Global", 0) == 0;
    const bool max = n.op_type.find("Max") != std::string::npos;
    std::map<std::string, Attribute> attrs;
    if (!global) {
      const int64_t ceil = n.opset >= 10 ? n.attr_int("ceil_mode", 0) : 0;
      const int64_t include_pad = !max && n.opset >= 7 ? n.attr_int("count_include_pad", 0) : 0;
      if (n.attr_ints("kernel_shape").size() != 2 || n.attr_int("storage_order", 0) != 0) return false;
      attrs = n.attrs;
      attrs.erase("storage_order");
      attrs["ceil_mode"] = int_attr(ceil);
      attrs["count_include_pad"] = int_attr(include_pad);
    }
    attrs["mode"] = string_attr(max ? "max" : "avg");
    attrs["global"] = int_attr(global ? 1 : 0);
    attrs["channels"] = int_attr(c);
    attrs["block"] = int_attr(block_);
    replace(n, "BlockedPool", {it->second}, std::move(attrs));
    return true;
  }

  bool concat(Node& n) {
    const int64_t axis = n.attr_int("axis", 0);
    if (static_channels(n.outputs[0]) < 0 || (axis != 1 && axis != -3)) return false;
    bool any_twin = false;
    for (Value* in : n.inputs) {
      const int64_t c = static_channels(in);
      if (c < 0 || c % block_ != 0) return false;
      any_twin |= twin_.count(in) != 0;
    }
    if (!any_twin) return false;
    std::vector<Value*> inputs;
    for (Value* in : n.inputs) inputs.push_back(blocked(in));
    auto attrs = n.attrs;
    attrs["axis"] = int_attr(1);
    replace(n, "Concat", inputs, std::move(attrs));
    return true;
  }

  // Spatial zero-or-constant padding (Inception's explicit pads before its
  // pools): the same Pad on the 5-D twin, with the pads of H and W.
  bool pad(Node& n) {
    auto it = twin_.find(n.inputs[0]);
    if (it == twin_.end() || n.opset < 11 || n.attr_string("mode", "constant") != "constant" || n.inputs.size() > 3 ||
        !n.has_input(1) || static_channels(n.outputs[0]) < 0)
      return false;
    const Tensor* pads = constant_of(n.inputs[1]);
    if (!pads || pads->dtype() != DType::kInt64 || pads->numel() != 8) return false;
    const int64_t* p = pads->data<int64_t>();
    if (p[0] || p[1] || p[4] || p[5]) return false;  // N and C unpadded
    if (n.has_input(2) && !constant_of(n.inputs[2])) return false;
    Tensor blocked_pads(DType::kInt64, {10});
    const int64_t v[10] = {0, 0, p[2], p[3], 0, 0, 0, p[6], p[7], 0};
    std::copy(v, v + 10, blocked_pads.data<int64_t>());
    std::vector<Value*> inputs = {it->second, add_constant(g_, n.name + ".blocked_pads", std::move(blocked_pads))};
    if (n.has_input(2)) inputs.push_back(n.inputs[2]);
    replace(n, "Pad", inputs, n.attrs);
    return true;
  }

  // InstanceNormalization of a blocked [N, C, H, W] activation with constant
  // float scale and B: kiln.BlockedInstanceNorm, with its epilogue.
  bool instance_norm(Node& n) {
    auto it = twin_.find(n.inputs[0]);
    const int64_t c = static_channels(n.inputs[0]);
    if (it == twin_.end() || c < 0 || n.inputs.size() != 3 || static_channels(n.outputs[0]) != c) return false;
    const Tensor* scale = constant_of(n.inputs[1]);
    const Tensor* bias = constant_of(n.inputs[2]);
    if (!scale || !bias) return false;
    Value* s = per_channel_vector(*scale, c);
    Value* b = s ? per_channel_vector(*bias, c) : nullptr;
    if (!b) return false;
    replace(n, "BlockedInstanceNorm", {it->second, s, b}, n.attrs);
    return true;
  }

  // A float32 [C] constant as [1, C/B, 1, 1, B], zeros in the padding lanes.
  Value* per_channel_vector(const Tensor& t, int64_t c) {
    return t.dtype() == DType::kFloat32 && t.shape() == Shape{c} ? channels_in_blocks(t, c, 0.0f) : nullptr;
  }

  // v's blocked twin, converting it when it has none yet.
  Value* blocked(Value* v) {
    auto it = twin_.find(v);
    if (it != twin_.end()) return it->second;
    Value* b = add_fresh_value(g_, v->name + ".blocked");
    Node* to = add_node(g_, "ToBlocked", v->name + ".to_blocked", {v}, {b}, 1);
    to->domain = kKilnDomain;
    to->attrs["block"] = int_attr(block_);
    twin_[v] = b;
    return b;
  }

  // Replaces n by op (domain "kiln" for the Blocked* ops, n's own otherwise)
  // on `inputs`, writing a blocked twin of n's output, and converts the twin
  // back into n's output for its plain readers.
  void replace(Node& n, const std::string& op, std::vector<Value*> inputs, std::map<std::string, Attribute> attrs) {
    Value* out = n.outputs[0];
    const int64_t c = static_channels(out);
    Value* twin = add_fresh_value(g_, out->name + ".blocked");
    const bool kiln_op = op.rfind("Blocked", 0) == 0;
    Node* b = add_node(g_, op, n.name, std::move(inputs), {twin}, kiln_op ? 1 : n.opset);
    if (kiln_op) b->domain = kKilnDomain;
    b->attrs = std::move(attrs);
    b->origins = n.origin_names();
    detach_node(g_, &n);
    Node* back = add_node(g_, "FromBlocked", out->name + ".from_blocked", {twin}, {out}, 1);
    back->domain = kKilnDomain;
    back->attrs["channels"] = int_attr(c);
    twin_[out] = twin;
  }

  Graph& g_;
  int64_t block_;
  std::unordered_map<const Value*, Value*> twin_;
};

}  // namespace

bool layout_blocked(Graph& g) { return LayoutPass(g, dnnl_glue::channel_block()).run(); }

}  // namespace kiln::passes
