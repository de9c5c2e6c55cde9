// Float32 MaxPool / AveragePool over NCHW planes (1-D pools run as 2-D with
// H = 1), threaded over N * C. The ops keep their reference kernel for other
// dtypes, ranks and the Indices output (ops/pool.cpp).
#pragma once
#include <cstdint>

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

}  // namespace kiln
