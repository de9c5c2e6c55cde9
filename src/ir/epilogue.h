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
// The steps and their arithmetic are kernels/cpu/epilogue.h; this file is
// how a node carries them.
#pragma once
#include <string>
#include <vector>

#include "ir/graph.h"
#include "kernels/cpu/epilogue.h"

namespace kiln {

// Ops whose output may carry an epilogue: those that write a fresh float
// output (never a view of an input).
bool accepts_epilogue(const Node& n);
std::vector<EpilogueStep> epilogue_of(const Node& n);
void append_epilogue(Node& n, const EpilogueStep& step);
bool has_epilogue(const Node& n);
// "Relu", "Clip(0,6)", ... for dumps and tests.
std::string epilogue_str(const Node& n);

}  // namespace kiln
