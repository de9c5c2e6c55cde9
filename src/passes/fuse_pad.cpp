// Folds an explicit zero Pad of the spatial axes into the Conv or
// AveragePool that reads it (PyTorch exports count_include_pad pooling and
// some "same" convs this way): the consumer pads by itself, so the padded
// copy of the activation is never written. An AveragePool takes the pads
// with count_include_pad=1, which counts the zeros as the explicit Pad did;
// it must have no pads of its own (they would be counted differently) and
// no ceil_mode (its overhang is never counted).
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// The spatial pads of a constant-zero Pad over N, C and spatial axes:
// [begin..., end...] for the spatial axes, or empty when it is not one.
Shape spatial_zero_pads(const Node& pad) {
  if (pad.opset < 11 || pad.attr_string("mode", "constant") != "constant" || pad.inputs.size() > 3 || !pad.has_input(1))
    return {};
  const Tensor* pads = constant_of(pad.inputs[1]);
  if (!pads || pads->dtype() != DType::kInt64 || pads->numel() % 2 != 0 || pads->numel() < 6) return {};
  if (pad.has_input(2)) {
    double v = 1;
    if (!scalar_constant(pad.inputs[2], &v) || v != 0) return {};
  }
  const int64_t r = pads->numel() / 2;
  const int64_t* p = pads->data<int64_t>();
  if (p[0] || p[1] || p[r] || p[r + 1]) return {};
  Shape out;
  for (int64_t e = 0; e < 2; ++e)
    for (int64_t d = 2; d < r; ++d) {
      if (p[e * r + d] < 0) return {};
      out.push_back(p[e * r + d]);
    }
  return out;
}

bool fold_into(Graph& g, Node& pad, Node& consumer, const Shape& extra) {
  const size_t spatial = extra.size() / 2;
  if (consumer.attr_string("auto_pad", "NOTSET") != "NOTSET") return false;
  Shape pads = consumer.attr_ints("pads", Shape(2 * spatial, 0));
  if (pads.size() != 2 * spatial) return false;
  if (consumer.op_type == "AveragePool") {
    for (int64_t p : pads)
      if (p != 0) return false;
    if (consumer.opset < 7 || (consumer.opset >= 10 && consumer.attr_int("ceil_mode", 0) != 0)) return false;
    consumer.attrs["count_include_pad"] = int_attr(1);
  }
  for (size_t i = 0; i < pads.size(); ++i) pads[i] += extra[i];
  consumer.attrs["pads"] = ints_attr(pads);
  Value* padded = pad.outputs[0];
  Value* x = pad.inputs[0];
  for (Value*& in : consumer.inputs)
    if (in == padded) in = x;
  x->consumers.push_back(&consumer);
  padded->consumers.clear();
  consumer.absorb_origins(pad);
  detach_node(g, &pad);
  return true;
}

}  // namespace

bool fuse_pad(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    Node& pad = *g.nodes[i];
    if (pad.op_type != "Pad" || !pad.domain.empty() || !pad.has_input(0) || !pad.has_output(0)) continue;
    Value* out = pad.outputs[0];
    if (out->consumers.size() != 1 || !only_read_by(g, out, out->consumers[0])) continue;
    Node& consumer = *out->consumers[0];
    if (!consumer.domain.empty() || (consumer.op_type != "Conv" && consumer.op_type != "AveragePool") ||
        consumer.inputs[0] != out)
      continue;
    const Shape extra = spatial_zero_pads(pad);
    if (extra.empty() || out->type.rank() != static_cast<int>(extra.size() / 2 + 2)) continue;
    changed |= fold_into(g, pad, consumer, extra);
  }
  return changed;
}

}  // namespace kiln::passes
