// Conv followed by Add of a per-channel constant (shape [M,1,1], [1,M,1,1]
// or one element) moves the constant into the Conv's bias. PyTorch emits
// this for convs exported without bias and a separate bias parameter.
#include "ir/epilogue.h"
#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// The constant's value per output channel, when it broadcasts along the
// channel axis (axis 1 of a rank-`out_rank` output) only.
bool per_channel(const Tensor& c, int64_t channels, int out_rank, std::vector<float>* v) {
  if (c.dtype() != DType::kFloat32 || c.rank() > out_rank) return false;
  const int channel_axis = c.rank() - (out_rank - 1);  // axis of c aligned with output axis 1
  for (int d = 0; d < c.rank(); ++d)
    if (c.dim(d) != 1 && !(d == channel_axis && c.dim(d) == channels)) return false;
  v->assign(static_cast<size_t>(channels), 0.0f);
  for (int64_t m = 0; m < channels; ++m) (*v)[static_cast<size_t>(m)] = c.data<float>()[c.numel() == 1 ? 0 : m];
  return true;
}

bool fuse(Graph& g, Node& conv, Node& add) {
  Value* y = conv.outputs[0];
  Value* other = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
  const Tensor* c = constant_of(other);
  const Tensor* w = constant_of(conv.inputs[1]);
  if (!c || !w || w->dtype() != DType::kFloat32 || !y->type.has_rank() || !add.outputs[0]->type.has_rank())
    return false;
  if (add.outputs[0]->type.rank() != y->type.rank()) return false;  // the Add must not broadcast y up
  const int64_t channels = w->dim(0);
  std::vector<float> extra;
  if (!per_channel(*c, channels, y->type.rank(), &extra)) return false;
  const Tensor* b = conv.has_input(2) ? constant_of(conv.inputs[2]) : nullptr;
  if (conv.has_input(2) && (!b || b->dtype() != DType::kFloat32 || b->numel() != channels)) return false;
  Tensor bias(DType::kFloat32, {channels});
  for (int64_t m = 0; m < channels; ++m)
    bias.data<float>()[m] = (b ? b->data<float>()[m] : 0.0f) + extra[static_cast<size_t>(m)];
  Value* new_b = add_constant(g, conv.name + ".bias_fused", std::move(bias));
  Value* out = add.outputs[0];
  conv.absorb_origins(add);
  detach_node(g, &add);
  if (conv.inputs.size() < 3) conv.inputs.resize(3, nullptr);
  conv.inputs[2] = new_b;
  new_b->consumers.push_back(&conv);
  y->producer = nullptr;
  conv.outputs[0] = out;
  out->producer = &conv;
  return true;
}

}  // namespace

bool fuse_conv_bias(Graph& g) {
  bool changed = false;
  for (auto& n : g.nodes) {
    if (n->op_type != "Add" || !n->domain.empty() || n->inputs.size() != 2 || !n->inputs[0] || !n->inputs[1]) continue;
    for (Value* in : n->inputs) {
      Node* conv = producer_if(in, "Conv");
      if (!conv || has_epilogue(*conv) || !only_read_by(g, in, n.get()) || !conv->has_input(1)) continue;
      if (fuse(g, *conv, *n)) {
        changed = true;
        break;
      }
    }
  }
  return changed;
}

}  // namespace kiln::passes
