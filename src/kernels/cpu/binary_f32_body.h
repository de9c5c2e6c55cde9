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

// `rows` rows of n outputs: row r reads a + r * a_row and b + r * b_row (each
// row stride n or 0: an operand repeated across rows) and writes y + r * n.
// Short rows (the channel block of a blocked tensor times a per-channel
// operand) get a fixed-length loop the compiler turns into whole vectors.
template <int64_t kN, int64_t kAs, int64_t kBs, typename F>
inline void binary_rows_fixed(F f, const float* __restrict a, int64_t a_row, const float* __restrict b, int64_t b_row,
                              float* __restrict y, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r, a += a_row, b += b_row, y += kN)
    for (int64_t i = 0; i < kN; ++i) y[i] = f(a[i * kAs], b[i * kBs]);
}

template <int64_t kN, typename F>
inline void binary_rows_fixed(F f, const float* a, int64_t as, int64_t a_row, const float* b, int64_t bs, int64_t b_row,
                              float* y, int64_t rows) {
  if (as == 1 && bs == 1) return binary_rows_fixed<kN, 1, 1>(f, a, a_row, b, b_row, y, rows);
  if (as == 1) return binary_rows_fixed<kN, 1, 0>(f, a, a_row, b, b_row, y, rows);
  if (bs == 1) return binary_rows_fixed<kN, 0, 1>(f, a, a_row, b, b_row, y, rows);
  binary_rows_fixed<kN, 0, 0>(f, a, a_row, b, b_row, y, rows);
}

template <typename F>
inline void binary_rows_f32(F f, const float* a, int64_t as, int64_t a_row, const float* b, int64_t bs, int64_t b_row,
                            float* y, int64_t n, int64_t rows) {
  if (n == 8) return binary_rows_fixed<8>(f, a, as, a_row, b, bs, b_row, y, rows);
  if (n == 16) return binary_rows_fixed<16>(f, a, as, a_row, b, bs, b_row, y, rows);
  for (int64_t r = 0; r < rows; ++r) binary_run_f32(f, a + r * a_row, as, b + r * b_row, bs, y + r * n, n);
}

inline void binary_rows_f32(BinaryOpF32 op, const float* a, int64_t as, int64_t a_row, const float* b, int64_t bs,
                            int64_t b_row, float* y, int64_t n, int64_t rows) {
  switch (op) {
    case BinaryOpF32::kAdd:
      return binary_rows_f32([](float p, float q) { return p + q; }, a, as, a_row, b, bs, b_row, y, n, rows);
    case BinaryOpF32::kSub:
      return binary_rows_f32([](float p, float q) { return p - q; }, a, as, a_row, b, bs, b_row, y, n, rows);
    case BinaryOpF32::kMul:
      return binary_rows_f32([](float p, float q) { return p * q; }, a, as, a_row, b, bs, b_row, y, n, rows);
    case BinaryOpF32::kDiv:
      return binary_rows_f32([](float p, float q) { return p / q; }, a, as, a_row, b, bs, b_row, y, n, rows);
  }
}

}  // namespace
}  // namespace kiln
