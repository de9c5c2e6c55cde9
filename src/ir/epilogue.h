// An element-wise epilogue: a chain of activations applied to a node's first
// output as it is produced, so that Conv → Relu (or Gemm → Gelu, Add → Relu)
// runs as one node. One general mechanism instead of a family of fused ops
// (ConvRelu, ConvClip, GemmGelu...): the fusion pass appends steps to any
// node whose op accepts an epilogue, and every kernel of that op honours it.
//
// The steps are kept in two node attributes so that they survive copies and
// show in dumps: "kiln.epilogue" (strings, one op name per step) and
// "kiln.epilogue_params" (floats, two per step). A kernel that fuses the
// epilogue into its own loops says so with Kernel::applies_epilogue();
// otherwise make_kernel wraps it and applies the epilogue on the output
// after the kernel ran (correct for any kernel, one extra pass over memory).
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct EpilogueStep {
  enum class Kind { kRelu, kClip, kLeakyRelu, kSigmoid, kHardSigmoid, kHardSwish, kSilu, kGelu, kGeluTanh, kTanh };
  Kind kind;
  float alpha = 0, beta = 0;  // Clip: min, max; LeakyRelu: alpha; HardSigmoid: alpha, beta
};

// Ops whose output may carry an epilogue: those that write a fresh float
// output (never a view of an input).
bool accepts_epilogue(const Node& n);
std::vector<EpilogueStep> epilogue_of(const Node& n);
void append_epilogue(Node& n, const EpilogueStep& step);
bool has_epilogue(const Node& n);
// "Relu", "Clip(0,6)", ... for dumps and tests.
std::string epilogue_str(const Node& n);

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
