#include "ops/conv_select.h"

#include "kernels/cpu/conv_f32.h"
#include "ops/blocked.h"

namespace kiln {

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::kWinograd: return "winograd";
    case ConvAlgo::kOneDnn: return "onednn";
    case ConvAlgo::kDepthwise: return "depthwise";
    case ConvAlgo::kTaps: return "taps";
    case ConvAlgo::kGemm: return "gemm";
  }
  return "?";
}

namespace {

bool winograd_applies(const ConvProblem& p) {
  return WinogradF32Conv::available() && p.block == WinogradF32Conv::block() && !p.plain_src && p.group == 1 &&
         WinogradF32Conv::supports(p.kh, p.kw, p.strides[0], p.strides[1], p.dilations[0], p.dilations[1], p.group,
                                   p.pads_begin, p.pads_end) &&
         p.out_h > 0 && p.out_w > 0;
}

std::vector<ConvAlgo> rank_blocked(const ConvProblem& p, WinogradMode mode) {
  if (mode == WinogradMode::kOff || !winograd_applies(p)) return {ConvAlgo::kOneDnn};
  if (mode == WinogradMode::kForce || winograd_f32_wins(p.n, p.c, p.m, p.out_h, p.out_w))
    return {ConvAlgo::kWinograd, ConvAlgo::kOneDnn};
  // Still worth timing when it is accurate enough (an engine build does).
  if (winograd_f32_accurate_enough(p.c, p.out_h, p.out_w)) return {ConvAlgo::kOneDnn, ConvAlgo::kWinograd};
  return {ConvAlgo::kOneDnn};
}

std::vector<ConvAlgo> rank_plain(const ConvProblem& p) {
  if (p.group == p.c && p.group == p.m && p.group > 1) return {ConvAlgo::kDepthwise};
  Conv2dF32Shape s;
  s.N = p.n, s.C = p.c, s.H = p.h, s.W = p.w, s.M = p.m, s.KH = p.kh, s.KW = p.kw, s.OH = p.out_h, s.OW = p.out_w;
  s.stride_h = p.strides[0], s.stride_w = p.strides[1], s.pad_h = p.pads_begin[0], s.pad_w = p.pads_begin[1];
  s.dilation_h = p.dilations[0], s.dilation_w = p.dilations[1], s.group = p.group;
  if (p.group == 1 && conv2d_f32_taps_sparse(s)) return {ConvAlgo::kTaps, ConvAlgo::kGemm};
  return {ConvAlgo::kGemm};
}

// oneDNN's implementation string names a JIT kernel (not "ref:any" or a
// GEMM-based one that kiln's own paths beat).
bool fast(const std::string& impl) { return !impl.empty() && impl.rfind("ref", 0) != 0; }

}  // namespace

ConvProblem conv_problem(const Conv2dF32Shape& s) {
  ConvProblem p;
  p.n = s.N, p.c = s.C, p.m = s.M, p.group = s.group, p.h = s.H, p.w = s.W, p.kh = s.KH, p.kw = s.KW;
  p.strides = {s.stride_h, s.stride_w}, p.dilations = {s.dilation_h, s.dilation_w};
  // conv2d_f32's shape keeps the leading pads; the trailing ones follow from the output size.
  p.pads_begin = {s.pad_h, s.pad_w};
  p.pads_end = {(s.OH - 1) * s.stride_h + (s.KH - 1) * s.dilation_h + 1 - s.H - s.pad_h,
                (s.OW - 1) * s.stride_w + (s.KW - 1) * s.dilation_w + 1 - s.W - s.pad_w};
  p.out_h = s.OH, p.out_w = s.OW;
  return p;
}

std::vector<ConvAlgo> rank_conv_algorithms(const ConvProblem& p, WinogradMode winograd) {
  return p.blocked ? rank_blocked(p, winograd) : rank_plain(p);
}

bool plain_grouped_conv_on_onednn(int64_t group, int64_t c, int64_t m) {
  return group > 1 && c > group && c % group == 0 && m % group == 0;
}

bool conv_runs_blocked(const Node& conv, int64_t n, int64_t c, int64_t h, int64_t w, int64_t block, bool input_blocked,
                       bool* plain_src) {
  // A dynamic batch is asked about as 1, a dynamic height or width at
  // blocked_conv_impl's stand-in size: oneDNN's choice of kernel does not
  // depend on them.
  *plain_src = !input_blocked && c < block && fast(blocked_conv_impl(conv, n, h, w, true, block));
  return *plain_src || fast(blocked_conv_impl(conv, n, h, w, false, block));
}

}  // namespace kiln
