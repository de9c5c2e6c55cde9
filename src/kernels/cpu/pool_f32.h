// Float32 MaxPool / AveragePool over NCHW planes (1-D pools run as 2-D with
// H = 1), threaded over N * C. The ops keep their reference kernel for other
// dtypes, ranks and the Indices output (ops/pool.cpp).
#pragma once
#include <cstdint>

#include "kernels/cpu/variants.h"

namespace kiln {

class ThreadPool;

struct Pool2dF32Shape {
  int64_t planes = 1, H = 1, W = 1, OH = 1, OW = 1;
  int64_t KH = 1, KW = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
};

// An output whose window holds no input element gets the lowest float.
void max_pool2d_f32(const Pool2dF32Shape& s, const float* x, float* y, ThreadPool* pool);
// The mean over the window's input elements, or over the window clipped to the
// padded input when count_include_pad (ONNX's count_include_pad = 1); 0 when
// the count is 0.
void average_pool2d_f32(const Pool2dF32Shape& s, bool count_include_pad, const float* x, float* y, ThreadPool* pool);

// Max or average pool on a blocked tensor [N, C/B, H, W, B] (s.planes =
// N * C/B, block B = 8 or 16): each lane is a channel, pooled as above.
void pool2d_blocked_f32(bool max, const Pool2dF32Shape& s, int64_t block, bool count_include_pad, const float* x,
                        float* y, ThreadPool* pool);

// The per-ISA loops: one plane (NCHW), the averages' divide, and rows of
// the blocked layout.
struct PoolF32Fns {
  void (*plane)(bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh, int64_t sw,
                int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init, float* y, int64_t OH, int64_t OW);
  void (*divide_by_counts)(float* y, int64_t OH, int64_t OW, const float* count_h, const float* count_w);
  void (*blocked_rows)(int64_t block, bool max, const float* x, int64_t H, int64_t W, int64_t KH, int64_t KW,
                       int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh, int64_t dw, float init,
                       int64_t oh_begin, int64_t oh_end, float* y, int64_t OW, const float* count_h,
                       const float* count_w);
};
extern const KernelVariant<PoolF32Fns> kPoolF32Variants[2];

}  // namespace kiln
