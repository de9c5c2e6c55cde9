// Ops on kiln's blocked activation layout (kernels/cpu/dnnl_glue.h), in the
// "kiln" domain; only the layout pass (passes/layout_blocked.cpp) creates
// them:
//   kiln.ToBlocked(x [N,C,H,W]) -> [N, ceil(C/B), H, W, B]      attr block
//   kiln.FromBlocked(x [N,Cb,H,W,B]) -> [N,C,H,W]                attr channels
//   kiln.BlockedConv(x, W, B?, S?) -> [N, ceil(M/B), OH, OW, B]  Conv's attrs + block;
//       x blocked (5-D) or plain NCHW (4-D, for inputs of few channels);
//       with S (blocked, the output's shape) y = epilogue(conv + S): a
//       residual Add read while the conv stores; honours the node's
//       epilogue as oneDNN post-ops
//   kiln.BlockedScaleShift(x, scale, shift) -> x * scale + shift per channel,
//       scale/shift [1,Cb,1,1,B]; honours the node's epilogue
//   kiln.BlockedInstanceNorm(x, scale, B) -> InstanceNormalization per
//       channel over H, W; scale/B [1,Cb,1,1,B]; attr epsilon; honours the
//       node's epilogue
//   kiln.BlockedPool(x [N,Cb,H,W,B]) -> [N,Cb,OH,OW,B]           attrs mode (max|avg),
//       global, channels, block and the pooling attributes of MaxPool/AveragePool
#pragma once
#include <cstdint>
#include <string>

#include "ir/graph.h"

namespace kiln {

// oneDNN's implementation for `conv` (a float32 2-D Conv node with constant
// weights) on an input of `n` x `h` x `w`, blocked or plain NCHW, with or
// without a sum input: e.g. "jit:avx2", "gemm:jit", "ref:any"; "" when
// oneDNN rejects it. A dynamic h or w (< 0: an engine's profile over image
// sizes) is asked about at a stand-in size (kConvStandInSize): whether
// oneDNN has a JIT kernel for a conv depends on its channels, window,
// strides and the instruction set, not on the image size, and BlockedConv
// makes its primitives per input shape at run time anyway.
inline constexpr int64_t kConvStandInSize = 64;
std::string blocked_conv_impl(const Node& conv, int64_t n, int64_t h, int64_t w, bool plain_src, int64_t block,
                              bool with_sum = false);

}  // namespace kiln
