// Float32 2-D convolution, NCHW: 1x1 stride-1 convs as a plain GEMM on the
// input, other convs as im2col + GEMM (gemm_f32.h) with the weights packed
// once, depthwise convs (one input and one output channel per group) as a
// direct loop. 1-D convs run as 2-D with H = 1.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/cpu/gemm_f32.h"
#include "kernels/cpu/variants.h"

namespace kiln {

class ThreadPool;

struct Conv2dF32Shape {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t M = 1, KH = 1, KW = 1;       // weights [M, C / group, KH, KW]
  int64_t OH = 1, OW = 1;              // output [N, M, OH, OW]
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t group = 1;
  bool depthwise() const { return group == C && group == M && group > 1; }
  bool pointwise() const { return KH == 1 && KW == 1 && stride_h == 1 && stride_w == 1 && pad_h == 0 && pad_w == 0; }
};

// The weights of one group-wise GEMM per group, packed as GEMM A operands;
// or, for the tap-by-tap path, one [M, C] matrix per kernel tap.
struct PackedConvWeightsF32 {
  std::vector<std::shared_ptr<const PackedMatrixF32>> groups;
  std::vector<std::shared_ptr<const PackedMatrixF32>> taps;  // kh * KW + kw
};
std::shared_ptr<const PackedConvWeightsF32> pack_conv_weights_f32(const float* w, int64_t M, int64_t group,
                                                                  int64_t k_per_group);

// True when most of the conv's taps read padding for most outputs (large
// dilation on a small map: DeepLab's ASPP, 3x3 dilated by 12 on 14x14), so
// that one GEMM per tap over just the outputs where the tap reads the image
// does at most half the multiply-adds of im2col + GEMM. Group 1 only.
bool conv2d_f32_taps_sparse(const Conv2dF32Shape& s);
// Weights [M, C, KH, KW] packed per tap, for that path.
std::shared_ptr<const PackedConvWeightsF32> pack_conv_tap_weights_f32(const float* w, int64_t M, int64_t C, int64_t KH,
                                                                      int64_t KW);

// The depthwise loop over one channel: y[OH x OW] = bias + x[H x W] * w[KH x KW]
// with strides sh, sw, pads ph, pw and dilations dh, dw.
using DepthwiseChannelF32Fn = void (*)(const float* x, int64_t H, int64_t W, const float* w, int64_t KH, int64_t KW,
                                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw,
                                       float bias, float* y, int64_t OH, int64_t OW);
extern const KernelVariant<DepthwiseChannelF32Fn> kDepthwiseChannelF32Variants[2];

// An element-wise function applied in place to y[0, n) (a fused activation).
using Conv2dF32Epilogue = std::function<void(float* y, int64_t n)>;

// y = conv(x, w) + bias (bias may be null), then `epilogue` (may be null) on
// every output element once; depthwise convs apply it to each channel while
// that is still in cache. `packed`, when given, must come from
// pack_conv_weights_f32 or pack_conv_tap_weights_f32 on the same w; the
// latter selects the tap-by-tap path.
// `workspace`: conv2d_f32_workspace_bytes(s, packed) bytes no other run uses
// meanwhile (the run's KernelContext::scratch()); null: allocated per call.
void conv2d_f32(const Conv2dF32Shape& s, const float* x, const float* w, const PackedConvWeightsF32* packed,
                const float* bias, float* y, ThreadPool* pool, const Conv2dF32Epilogue* epilogue = nullptr,
                void* workspace = nullptr);
size_t conv2d_f32_workspace_bytes(const Conv2dF32Shape& s, const PackedConvWeightsF32* packed);

}  // namespace kiln
