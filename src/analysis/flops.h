// What a node costs to compute, from the shapes shape inference gave its
// inputs and outputs: multiply-accumulates (MACs), floating-point operations
// (FLOPs) and parameters. The conventions (which op counts what, and which
// count zero) are written down in docs/flops.md; `kiln inspect` prints them
// per node and `kiln profile` can divide them by time. Each op's counting
// rule is declared with the op (its facts, ir/op_facts.h; the building
// blocks are ir/cost.h).
#pragma once
#include <cstdint>
#include <string>

#include "ir/graph.h"

namespace kiln {

struct NodeCost {
  // False when the count is not known: an input or output shape is not
  // static, or the op has no counting rule (docs/flops.md lists the ops that
  // have one). `why` says which.
  bool known = false;
  int64_t macs = 0;   // multiply-accumulates of the op's matrix products (Conv, Gemm, MatMul, attention, RNNs)
  int64_t flops = 0;  // 2 x macs, plus the element-wise arithmetic steps
  std::string why;
};

// The cost of one inferred node (top-level or fused: kiln's own ops and a
// node's fused epilogue are counted too). Never throws for a malformed node:
// what it cannot count it reports as unknown.
NodeCost node_cost(const Node& node);

// Whether an initializer counts as a parameter: a tensor of a floating-point
// or 8/16-bit integer type (weights, quantized weights, scales). int32/int64
// initializers are shapes, axes and indices; bool and string tensors are not
// parameters either.
bool is_parameter(const Tensor& t);

// Elements of the parameters (is_parameter) among the node's inputs.
int64_t node_params(const Node& node);

}  // namespace kiln
