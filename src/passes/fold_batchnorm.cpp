// Folds an inference-mode BatchNormalization into the Conv or Gemm before
// it: y = s * (conv(x) - mean) + B with s = scale / sqrt(var + eps) equals a
// conv whose output channel m has weights W[m] * s[m] and bias
// (b[m] - mean[m]) * s[m] + B[m]. Needs constant BN parameters, conv
// weights and bias, float32, and a conv output read only by the BN. New
// weights are new initializers: the old ones may be shared.
//
// batchnorm_to_affine handles the BNs left over (a BN after a Concat or an
// Add, as in DenseNet's pre-activation blocks): x * s + t with per-channel
// constants, ops that the epilogue fusion and the blocked layout handle.
#include <cmath>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

struct BnScale {
  std::vector<float> scale, shift;  // y = x * scale + shift
};

bool bn_scale(const Node& bn, int64_t channels, BnScale* out) {
  if (bn.inputs.size() != 5 || bn.attr_int("training_mode", 0) != 0) return false;
  for (size_t i = 1; i < bn.outputs.size(); ++i)
    if (bn.outputs[i] && !bn.outputs[i]->consumers.empty()) return false;
  const Tensor* p[4];
  for (size_t i = 0; i < 4; ++i) {
    p[i] = constant_of(bn.inputs[i + 1]);
    if (!p[i] || p[i]->dtype() != DType::kFloat32 || p[i]->numel() != channels) return false;
  }
  const double eps = bn.attr_float("epsilon", 1e-5f);
  for (int64_t c = 0; c < channels; ++c) {
    const double s = p[0]->data<float>()[c] / std::sqrt(double(p[3]->data<float>()[c]) + eps);
    out->scale.push_back(static_cast<float>(s));
    out->shift.push_back(static_cast<float>(p[1]->data<float>()[c] - p[2]->data<float>()[c] * s));
  }
  return true;
}

// Weight scaled per output channel; `rows_are_channels`: W is [M, ...]
// (Conv, Gemm with transB), else [K, M] (Gemm).
Tensor scale_weight(const Tensor& w, const std::vector<float>& s, bool rows_are_channels) {
  Tensor out = w.clone();
  float* p = out.data<float>();
  const int64_t m = static_cast<int64_t>(s.size()), inner = w.numel() / (rows_are_channels ? m : 1);
  for (int64_t i = 0; i < w.numel(); ++i) p[i] *= s[static_cast<size_t>(rows_are_channels ? i / inner : i % m)];
  return out;
}

bool fold_into(Graph& g, Node& op, Node& bn) {
  const Tensor* w = constant_of(op.inputs[1]);
  if (!w || w->dtype() != DType::kFloat32 || w->rank() < 2) return false;
  const bool is_gemm = op.op_type == "Gemm";
  if (is_gemm && (op.attr_int("transA", 0) != 0 || op.attr_float("alpha", 1) != 1.0f || w->rank() != 2)) return false;
  const bool rows = !is_gemm || op.attr_int("transB", 0) != 0;
  const int64_t channels = rows ? w->dim(0) : w->dim(1);
  const Tensor* b = op.has_input(2) ? constant_of(op.inputs[2]) : nullptr;
  if (op.has_input(2) && (!b || b->dtype() != DType::kFloat32 || b->numel() != channels || b->rank() != 1))
    return false;
  if (is_gemm && b && op.attr_float("beta", 1) != 1.0f) return false;
  BnScale bs;
  if (!bn_scale(bn, channels, &bs)) return false;
  Tensor bias(DType::kFloat32, {channels});
  for (int64_t c = 0; c < channels; ++c)
    bias.data<float>()[c] =
        (b ? b->data<float>()[c] : 0.0f) * bs.scale[static_cast<size_t>(c)] + bs.shift[static_cast<size_t>(c)];
  Value* new_w = add_constant(g, op.inputs[1]->name + ".bn_folded", scale_weight(*w, bs.scale, rows));
  Value* new_b = add_constant(g, op.name + ".bn_folded_bias", std::move(bias));
  Value* bn_out = bn.outputs[0];
  op.absorb_origins(bn);
  detach_node(g, &bn);
  Value* x = op.inputs[0];
  detach_node(g, &op);
  op.inputs = {x, new_w, new_b};
  op.outputs = {bn_out};
  op.attrs.erase("beta");
  for (Value* in : op.inputs) in->consumers.push_back(&op);
  bn_out->producer = &op;
  return true;
}

}  // namespace

bool fold_batchnorm(Graph& g) {
  bool changed = false;
  for (auto& n : g.nodes) {
    if (n->op_type != "BatchNormalization" || !n->domain.empty() || !n->has_input(0)) continue;
    Node* op = producer_if(n->inputs[0], "Conv");
    if (!op) op = producer_if(n->inputs[0], "Gemm");
    if (!op || !op->has_input(1) || !only_read_by(g, n->inputs[0], n.get())) continue;
    if (op->op_type == "Gemm" && (n->inputs[0]->type.rank() != 2)) continue;
    changed |= fold_into(g, *op, *n);
  }
  return changed;
}

bool batchnorm_to_affine(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    Node& bn = *g.nodes[i];
    if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || !bn.has_input(0) || !bn.has_output(0)) continue;
    const ValueType& x = bn.inputs[0]->type;
    if (x.dtype != DType::kFloat32 || x.rank() < 2 || !(*x.shape)[1].is_known()) continue;
    const int64_t channels = (*x.shape)[1].value;
    BnScale bs;
    if (!bn_scale(bn, channels, &bs)) continue;
    Shape per_channel(static_cast<size_t>(x.rank() - 1), 1);
    per_channel[0] = channels;
    Tensor scale(DType::kFloat32, per_channel), shift(DType::kFloat32, per_channel);
    std::copy(bs.scale.begin(), bs.scale.end(), scale.data<float>());
    std::copy(bs.shift.begin(), bs.shift.end(), shift.data<float>());
    Value* in = bn.inputs[0];
    Value* out = bn.outputs[0];
    detach_node(g, &bn);
    Value* scaled = add_fresh_value(g, out->name + ".scaled");
    add_node(g, "Mul", bn.name + ".scale", {in, add_constant(g, bn.name + ".bn_scale", std::move(scale))}, {scaled}, 14)
        ->origins = bn.origin_names();
    add_node(g, "Add", bn.name + ".shift", {scaled, add_constant(g, bn.name + ".bn_shift", std::move(shift))}, {out},
             14)
        ->origins = bn.origin_names();
    changed = true;
  }
  return changed;
}

}  // namespace kiln::passes
