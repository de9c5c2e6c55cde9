// The instruction set of kiln.Elementwise (ops/fused_elementwise.cpp), shared
// with the pass that builds such nodes (passes/fuse_elementwise.cpp).
#pragma once
#include <cstdint>

namespace kiln {

// Stored as ints in a node's "ops" attribute: append only, never renumber
// (engines keep them).
enum class ElementwiseOp : int64_t {
  kAdd = 0,
  kSub = 1,
  kMul = 2,
  kDiv = 3,
  kMax = 4,
  kMin = 5,
  kStep = 6,  // an activation step (kernels/cpu/epilogue.h), named in "fns"
  kNeg = 7,
  kAbs = 8,
  kSqrt = 9,
  kReciprocal = 10,
  kExp = 11,
  kErf = 12,
  kLast = kErf,
};

bool elementwise_op_is_binary(ElementwiseOp op);

}  // namespace kiln
