// Counting rules for what an op costs (docs/flops.md): multiply-accumulates
// (MACs) of its matrix products and floating-point operations (FLOPs), from
// the static shapes inference gave its node. Each op names its rule in its
// facts (ir/op_facts.h) with these building blocks; analysis/flops.h adds
// the fused epilogue and reports unknown counts.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace kiln {

struct OpCost {
  int64_t macs = 0;   // multiply-accumulates of matrix products (Conv, Gemm, MatMul, attention, RNNs)
  int64_t flops = 0;  // 2 x macs plus the element-wise arithmetic steps
};

// Thrown by a rule when the count is not known (a shape that is not static,
// an overflow, a form it does not count); `why` says which.
struct CostUnknown {
  std::string why;
};

using CostFn = std::function<OpCost(const Node&)>;

namespace cost {

// Arithmetic that throws CostUnknown on int64 overflow.
int64_t mul(int64_t a, int64_t b);
int64_t add(int64_t a, int64_t b);
// Static dims of input / output i (CostUnknown when absent or not static).
std::vector<int64_t> in_dims(const Node& n, size_t i);
std::vector<int64_t> out_dims(const Node& n, size_t i = 0);
int64_t product(const std::vector<int64_t>& d, size_t from = 0, size_t to = SIZE_MAX);
int64_t in_numel(const Node& n, size_t i);
int64_t out_numel(const Node& n, size_t i = 0);
// `macs` multiply-accumulates (2 FLOPs each) plus extra FLOPs.
OpCost matrix(int64_t macs, int64_t extra_flops = 0);
// Element-wise arithmetic only.
OpCost elementwise(int64_t flops);

// Rules.
// Computes nothing: moves, copies, converts or describes data.
CostFn none();
// `steps` arithmetic steps per element of output 0 (transcendental
// functions count one each).
CostFn per_element(int steps);
// Not counted, and why (control flow, random generators, ...): the count
// reports as unknown with this reason.
CostFn not_counted(std::string why);
// Conv and its forms: N x M x prod(output spatial) x (C/group) x prod(kernel)
// MACs, the weight being input `weight_input`.
CostFn conv(size_t weight_input = 1);
// ConvTranspose: every input element meets every weight element of its group.
CostFn conv_transpose();
// Gemm: M x N x K.
CostFn gemm();
// MatMul and its integer forms: output elements x the contracted dim.
CostFn matmul();
// Attention (opset 23+): Q K^T and P V, plus scaling, mask and softmax.
CostFn attention();
// RNN, GRU, LSTM: W and R times their vectors per step and batch row, plus
// `gate_steps` element-wise steps per hidden unit (RNN 3, GRU 18, LSTM 23).
CostFn recurrent(int gate_steps);
// Pools: per output element, `per_window_element` steps per window element
// and `per_output` more (AveragePool's divide).
CostFn pool(int per_window_element, int per_output);
// Reductions: `per_input` steps per input element; `mean` adds a divide per
// output element.
CostFn reduction(int per_input, bool mean = false);
// Resize / Upsample: nearest 0; linear 3 steps per lerp and 2^n - 1 lerps
// per output element for n resized axes; cubic 7 per 4-tap interpolation
// and (4^n - 1) / 3 of them.
CostFn resize();
// Variadic element-wise ops of k inputs: k - 1 + extra steps per output
// element (Sum, Max, Min: 0; Mean: 1).
CostFn variadic(int extra);

}  // namespace cost
}  // namespace kiln
