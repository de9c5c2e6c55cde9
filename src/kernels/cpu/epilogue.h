// The arithmetic of an element-wise epilogue (ir/epilogue.h: how a node
// carries one): a chain of activations applied to a buffer as a kernel
// produces it.
#pragma once
#include <cstdint>
#include <vector>

#include "kiln/tensor.h"

namespace kiln {

struct EpilogueStep {
  enum class Kind { kRelu, kClip, kLeakyRelu, kSigmoid, kHardSigmoid, kHardSwish, kSilu, kGelu, kGeluTanh, kTanh };
  Kind kind;
  float alpha = 0, beta = 0;  // Clip: min, max; LeakyRelu: alpha; HardSigmoid: alpha, beta
};

class ThreadPool;

// Applies the steps to every element, one step at a time, rounding to the
// tensor's type after each like the unfused activation ops do. float64 and
// the exact steps (Relu, Clip, LeakyRelu) give the unfused ops' bits; the
// other float32 steps compute in float (kernels/cpu/vec_math_f32.h), within a
// few ulp of them. float32 and float64 only; large tensors run on `pool`.
void apply_epilogue(const std::vector<EpilogueStep>& steps, Tensor& t, ThreadPool* pool = nullptr);
double apply_epilogue(const std::vector<EpilogueStep>& steps, double x);
// The float32 steps on p[0, n), on the calling thread (for kernels that fuse
// the epilogue into their own loops).
void apply_epilogue(const std::vector<EpilogueStep>& steps, float* p, int64_t n);

}  // namespace kiln
