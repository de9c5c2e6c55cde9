// Float32 transcendental functions over arrays: exp, sigmoid, SiLU, tanh,
// erf and both forms of GELU, accurate to a few ulp (tests/vec_math_test.cpp
// checks the bounds against double references), with IEEE behaviour at
// +-inf, NaN, overflow and underflow (denormal results included). One body
// (vec_math_f32_body.h) is built for AVX-512F, for AVX2 + FMA and as a
// portable scalar fallback; vec_math_f32() picks by cpu_isa_selected().
#pragma once
#include <cstdint>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/variants.h"

namespace kiln {

// y[i] = f(x[i]) for i < n; y may be x.
using VecMathF32Fn = void (*)(const float* x, float* y, int64_t n);

struct VecMathF32 {
  VecMathF32Fn exp;
  VecMathF32Fn sigmoid;  // 1 / (1 + exp(-x))
  VecMathF32Fn silu;     // x * sigmoid(x)
  VecMathF32Fn tanh;
  VecMathF32Fn gelu_tanh;  // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
  VecMathF32Fn erf;
  VecMathF32Fn gelu_erf;  // 0.5 x (1 + erf(x / sqrt(2)))
  // Softmax (or, with `log`, LogSoftmax) of `rows` contiguous rows of n: the
  // row's max, exp(x - max) and its sum in one sweep, then one scale (or
  // shift); a row with a NaN, or without a finite max, becomes NaN as in the
  // double reference.
  void (*softmax_rows)(const float* x, float* y, int64_t rows, int64_t n, bool log);
  // LayerNormalization of `rows` contiguous rows of n: y = (x - mean) *
  // inv_std * scale + bias (scale and bias per element, bias may be null),
  // inv_std = 1 / sqrt(var + eps); the mean is a float plus that float's own
  // error (subtracted too: it matters where the mean is large against the
  // spread). mean / inv_std (null: not wanted) get each row's statistics.
  void (*layer_norm_rows)(const float* x, float* y, int64_t rows, int64_t n, double eps, const float* scale,
                          const float* bias, float* mean, float* inv_std);
};

class ThreadPool;

// y = fn(x) over n elements, split over `pool` when n is large.
void map_f32(VecMathF32Fn fn, const float* x, float* y, int64_t n, ThreadPool* pool);

// The function sets built per ISA, best first.
extern const KernelVariant<const VecMathF32*> kVecMathF32Variants[3];
// The functions for the selected ISA.
const VecMathF32& vec_math_f32();
// The functions built for `isa` (tests compare them); the caller must check
// that the CPU supports it.
const VecMathF32& vec_math_f32_for(CpuIsa isa);

}  // namespace kiln
