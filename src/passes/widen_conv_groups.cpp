// Grouped convolutions whose groups are not whole channel blocks of the
// blocked layout (8 with AVX2, 16 with AVX-512) have no fast oneDNN kernel
// there, and kiln's plain grouped conv runs them as tiny GEMMs (a
// RegNetY-400MF's 8-wide groups at 16-18% of the FMA peak on AVX-512,
// RegNetX-1.6GF's 24-wide ones). Such a conv is rewritten with the fewest
// r neighbouring groups merged into one whose width is whole blocks (8 -> 16,
// 24 -> 48, 4 -> 16), its weights block-diagonal (zero between the merged
// groups). That does r times the multiply-adds, but on the
// blocked kernels at 80-95% of the peak; so only r <= 4 (measured on AVX-512,
// 1 thread: 48 channels in 8-wide groups at 56x56, 1.24 -> 0.75 ms with the
// 1x1 convs around it; 128 channels in 4-wide groups, 7.3 -> 4.1 ms).
// Depthwise convs (width 1) have their own kernels and are left alone. The
// conv selector (ops/conv_select.h) has the last word: the rewrite stays only
// where the original conv would not run blocked and the widened one would.
#include "ir/op.h"
#include "ir/rewrite.h"
#include "kernels/cpu/dnnl_glue.h"
#include "ops/conv_select.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

constexpr int64_t kMaxWidening = 4;

bool widen(Graph& g, Node& conv, int64_t block) {
  if (conv.op_type != "Conv" || !conv.domain.empty() || !conv.has_input(1)) return false;
  const int64_t group = conv.attr_int("group", 1);
  const Tensor* w = constant_of(conv.inputs[1]);
  if (group <= 1 || !w || w->dtype() != DType::kFloat32 || w->rank() != 4 || !w->raw()) return false;
  const int64_t M = w->dim(0), width = w->dim(1), C = group * width;
  if (width == 1 || width % block == 0 || M % group != 0) return false;
  // The fewest neighbouring groups whose merged width is whole blocks.
  int64_t r = 2;
  while (r <= kMaxWidening && ((r * width) % block != 0 || group % r != 0)) ++r;
  if (r > kMaxWidening) return false;
  const int64_t wide_width = r * width;
  const ValueType& x = conv.inputs[0]->type;
  if (x.rank() != 4 || !(*x.shape)[1].is_known() || (*x.shape)[1].value != C) return false;
  const DimVector& d = *x.shape;
  const int64_t n = d[0].is_known() ? d[0].value : 1;
  const int64_t h = d[2].is_known() ? d[2].value : -1, wd = d[3].is_known() ? d[3].value : -1;
  bool plain_src = false;
  if (conv_runs_blocked(conv, n, C, h, wd, block, true, &plain_src)) return false;
  const int64_t per_group_out = M / group, taps = w->dim(2) * w->dim(3);
  Tensor wide(DType::kFloat32, {M, wide_width, w->dim(2), w->dim(3)});  // zero filled
  const float* src = w->data<float>();
  float* dst = wide.data<float>();
  for (int64_t o = 0; o < M; ++o) {
    const int64_t local = (o / per_group_out) % r;  // which of the merged groups o belongs to
    std::copy(src + o * width * taps, src + (o + 1) * width * taps, dst + (o * wide_width + local * width) * taps);
  }
  Value* old = conv.inputs[1];
  Value* wv = add_constant(g, old->name + ".widened", std::move(wide));
  conv.inputs[1] = wv;
  conv.attrs["group"] = int_attr(group / r);
  if (!conv_runs_blocked(conv, n, C, h, wd, block, true, &plain_src)) {  // no better: undo
    conv.inputs[1] = old;
    conv.attrs["group"] = int_attr(group);
    return false;  // the unread constant goes with dead-code elimination
  }
  old->consumers.erase(std::remove(old->consumers.begin(), old->consumers.end(), &conv), old->consumers.end());
  wv->consumers.push_back(&conv);
  return true;
}

}  // namespace

bool widen_conv_groups(Graph& g) {
  const int64_t block = dnnl_glue::channel_block();
  bool changed = false;
  for (const auto& n : g.nodes) changed |= widen(g, *n, block);
  return changed;
}

}  // namespace kiln::passes
