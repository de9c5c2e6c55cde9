// The inner loop of binary_f32.h, written once and compiled per ISA
// (binary_f32.cpp for the baseline, binary_f32_avx2.cpp): internal linkage
// and no library calls, for the reason given in gemm_f32_tile.h.
#pragma once
#include <cstdint>

#include "kernels/cpu/binary_f32.h"

namespace kiln {
namespace {

template <typename F>
inline void binary_run_f32(F f, const float* __restrict a, int64_t as, const float* __restrict b, int64_t bs,
                           float* __restrict y, int64_t n) {
  // One loop per stride pattern, so that each is a plain vectorizable loop.
  if (as == 1 && bs == 1) {
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], b[i]);
  } else if (as == 1) {
    const float s = b[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(a[i], s);
  } else if (bs == 1) {
    const float s = a[0];
    for (int64_t i = 0; i < n; ++i) y[i] = f(s, b[i]);
  } else {
    const float v = f(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) y[i] = v;
  }
}

// y[0, n) = a op b, where a steps by as (0 or 1) and b by bs.
inline void binary_run_f32(BinaryOpF32 op, const float* a, int64_t as, const float* b, int64_t bs, float* y,
                           int64_t n) {
  switch (op) {
    case BinaryOpF32::kAdd: return binary_run_f32([](float p, float q) { return p + q; }, a, as, b, bs, y, n);
    case BinaryOpF32::kSub: return binary_run_f32([](float p, float q) { return p - q; }, a, as, b, bs, y, n);
    case BinaryOpF32::kMul: return binary_run_f32([](float p, float q) { return p * q; }, a, as, b, bs, y, n);
    case BinaryOpF32::kDiv: return binary_run_f32([](float p, float q) { return p / q; }, a, as, b, bs, y, n);
  }
}

}  // namespace
}  // namespace kiln
