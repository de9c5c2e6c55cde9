// Drops the taps of a convolution that only ever read padding. A dilated
// conv on a small feature map (DeepLab's ASPP: 3x3 with dilation 24 or 36 on
// 14x14) mostly multiplies zeros: its outer taps fall in the padding for
// every output position. Cutting the kernel to the taps that can reach the
// image, and the padding to match, gives the same output with a smaller
// kernel (often 1x1, which the fast paths handle far better). Needs static
// spatial input dims and constant weights.
#include <algorithm>

#include "ir/rewrite.h"
#include "ops/nn_util.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// The taps [first, last] of one spatial axis that read the image for some
// output position; first > last when none does.
std::pair<int64_t, int64_t> live_taps(const WindowGeometry& g, size_t d) {
  int64_t first = g.kernel[d], last = -1;
  for (int64_t k = 0; k < g.kernel[d]; ++k)
    for (int64_t o = 0; o < g.out[d]; ++o) {
      const int64_t i = o * g.strides[d] - g.pads_begin[d] + k * g.dilations[d];
      if (i >= 0 && i < g.in[d]) {
        first = std::min(first, k);
        last = std::max(last, k);
        break;
      }
    }
  return {first, last};
}

bool shrink(Graph& g, Node& n) {
  const Tensor* w = constant_of(n.inputs[1]);
  const ValueType& x = n.inputs[0]->type;
  if (!w || w->dtype() != DType::kFloat32 || !x.shape || x.rank() != w->rank() || w->rank() < 3) return false;
  Shape in;
  for (size_t d = 2; d < x.shape->size(); ++d) {
    if (!(*x.shape)[d].is_known()) return false;
    in.push_back((*x.shape)[d].value);
  }
  Shape kernel(w->shape().begin() + 2, w->shape().end());
  WindowGeometry geo;
  if (!window_geometry(n, in, kernel, false, &geo).empty()) return false;
  const size_t r = in.size();
  Shape first(r), keep(r);
  bool smaller = false;
  for (size_t d = 0; d < r; ++d) {
    if (geo.out[d] <= 0) return false;
    auto [f, l] = live_taps(geo, d);
    if (f > l) return false;  // all padding: leave it to the kernels
    first[d] = f;
    keep[d] = l - f + 1;
    smaller |= keep[d] < kernel[d];
  }
  if (!smaller) return false;
  // New pads keep every output position reading the same input positions.
  Shape pads_begin(r), pads_end(r);
  for (size_t d = 0; d < r; ++d) {
    pads_begin[d] = geo.pads_begin[d] - first[d] * geo.dilations[d];
    pads_end[d] = geo.pads_end[d] - (kernel[d] - first[d] - keep[d]) * geo.dilations[d];
    if (pads_begin[d] < 0 || pads_end[d] < 0) return false;
  }
  // The kept weights: w[m, c, first + k...] for k < keep, row-major.
  Shape shape = {w->dim(0), w->dim(1)};
  shape.insert(shape.end(), keep.begin(), keep.end());
  Tensor small(DType::kFloat32, shape);
  const auto& src_shape = w->shape();
  float* out = small.data<float>();
  const int64_t outer = w->dim(0) * w->dim(1), kept = small.numel() / outer, full = w->numel() / outer;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < kept; ++k) {
      int64_t rem = k, src = 0, stride = 1;
      for (size_t d = r; d-- > 0;) {
        const int64_t idx = rem % keep[d] + first[d];
        rem /= keep[d];
        src += idx * stride;
        stride *= src_shape[d + 2];
      }
      out[o * kept + k] = w->data<float>()[o * full + src];
    }
  Shape pads = pads_begin;
  pads.insert(pads.end(), pads_end.begin(), pads_end.end());
  Shape dilations = geo.dilations;
  for (size_t d = 0; d < r; ++d)
    if (keep[d] == 1) dilations[d] = 1;
  Value* new_w = add_constant(g, n.inputs[1]->name + ".live_taps", std::move(small));
  n.inputs[1]->consumers.erase(std::remove(n.inputs[1]->consumers.begin(), n.inputs[1]->consumers.end(), &n),
                               n.inputs[1]->consumers.end());
  n.inputs[1] = new_w;
  new_w->consumers.push_back(&n);
  n.attrs["pads"] = ints_attr(pads);
  n.attrs["dilations"] = ints_attr(dilations);
  n.attrs["kernel_shape"] = ints_attr(keep);
  n.attrs.erase("auto_pad");
  return true;
}

}  // namespace

bool shrink_conv_taps(Graph& g) {
  bool changed = false;
  for (auto& n : g.nodes)
    if (n->op_type == "Conv" && n->domain.empty() && n->has_input(1) && n->has_input(0)) changed |= shrink(g, *n);
  return changed;
}

}  // namespace kiln::passes
