// The one place that decides how a float32 2-D convolution runs. For a
// conv's geometry on one input shape, the CPU's ISA (through the channel
// block and Winograd's availability) and KILN_WINOGRAD, it ranks the
// implementations that can run it, best first. Everything that chooses asks
// here: the layout pass (whether a Conv runs on the blocked layout), the
// kernels (BlockedConv: Winograd or oneDNN; Conv: depthwise, tap by tap or
// im2col + GEMM) and the engine builder (which candidates to time; it then
// pins its pick in the node's `algorithm` attribute).
//
// The rules come from measurements written down in docs/kernels.md:
// oneDNN's blocked convolutions wherever it has a JIT kernel (not its
// reference or GEMM ones), Winograd F(4x4, 3x3) where winograd_f32_wins()
// says it is faster and accurate enough, the tap-by-tap path where most taps
// read padding (conv2d_f32_taps_sparse).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kernels/cpu/winograd_f32.h"

namespace kiln {

enum class ConvAlgo {
  kWinograd,   // kiln's F(4x4, 3x3) on the blocked layout (kernels/cpu/winograd_f32.h)
  kOneDnn,     // oneDNN's JIT convolution on the blocked layout
  kDepthwise,  // kiln's direct depthwise loop (kernels/cpu/conv_depthwise_f32.h)
  kTaps,       // one GEMM per kernel tap over the outputs it reads the image for
  kGemm,       // im2col + GEMM (a 1x1 stride-1 conv: the GEMM alone)
};
// "winograd", "onednn", "depthwise", "taps", "gemm".
const char* conv_algo_name(ConvAlgo a);

// A conv's geometry on one input shape.
struct ConvProblem {
  int64_t n = 1, c = 1, m = 1, group = 1;
  int64_t h = 1, w = 1;  // input spatial size
  int64_t kh = 1, kw = 1;
  std::vector<int64_t> strides = {1, 1}, dilations = {1, 1}, pads_begin = {0, 0}, pads_end = {0, 0};
  int64_t out_h = 1, out_w = 1;
  bool blocked = false;    // a kiln.BlockedConv; plain NCHW (Conv) otherwise
  bool plain_src = false;  // blocked conv reading an NCHW input
  int64_t block = 8;       // the blocked layout's channel block
};

// The problem of a plain conv in kernels/cpu/conv_f32.h's terms.
struct Conv2dF32Shape;
ConvProblem conv_problem(const Conv2dF32Shape& s);

// The implementations that can run `p`, best first (never empty).
// `winograd`: KILN_WINOGRAD, or what an engine's timing pinned.
std::vector<ConvAlgo> rank_conv_algorithms(const ConvProblem& p, WinogradMode winograd);

// Whether a plain 2-D conv of `group` groups, `c` input and `m` output
// channels runs on oneDNN between plain tensors rather than as kiln's
// per-group GEMMs: grouped but not depthwise (kiln's depthwise loop wins).
// Convs in whole channel blocks run blocked and never get here; oneDNN's
// brgemm kernels take the other group widths (measured in docs/kernels.md).
bool plain_grouped_conv_on_onednn(int64_t group, int64_t c, int64_t m);

// Whether the layout pass should turn float32 Conv `conv` into a
// kiln.BlockedConv at channel block `block`, for an input of `n` x `c` x `h`
// x `w` (h, w < 0: dynamic): oneDNN has a JIT kernel for it. *plain_src:
// read the NCHW input directly (only when `input_blocked` is false and few
// channels, e.g. an RGB stem), else convert it first.
bool conv_runs_blocked(const Node& conv, int64_t n, int64_t c, int64_t h, int64_t w, int64_t block, bool input_blocked,
                       bool* plain_src);

}  // namespace kiln
