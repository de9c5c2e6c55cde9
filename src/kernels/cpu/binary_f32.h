// Float32 Add / Sub / Mul / Div with numpy broadcasting. The shapes are
// collapsed to runs of dims where each operand is either read contiguously or
// broadcast, so the innermost loop is one of vector-vector, vector-scalar or
// scalar-vector and vectorizes; this covers same shapes, scalars, per-channel
// [N, C, H, W] op [1 or N, C, 1, 1] and last-dim rows. Large outputs are
// split over the thread pool. Results are the same bits as the generic
// kernel's (one IEEE operation per element).
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/cpu/variants.h"

namespace kiln {

class ThreadPool;

enum class BinaryOpF32 { kAdd, kSub, kMul, kDiv };

// The inner loop: `rows` rows of n elements, y = a op b, each operand read
// with its element stride (0: broadcast) and row stride.
using BinaryRowsF32Fn = void (*)(BinaryOpF32 op, const float* a, int64_t as, int64_t a_row, const float* b, int64_t bs,
                                 int64_t b_row, float* y, int64_t n, int64_t rows);
extern const KernelVariant<BinaryRowsF32Fn> kBinaryRowsF32Variants[2];

// y (of shape y_shape, the broadcast of a_shape and b_shape) = a op b.
void binary_f32(BinaryOpF32 op, const float* a, const std::vector<int64_t>& a_shape, const float* b,
                const std::vector<int64_t>& b_shape, float* y, const std::vector<int64_t>& y_shape, ThreadPool* pool);

}  // namespace kiln
