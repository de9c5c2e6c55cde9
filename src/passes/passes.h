// The graph optimizer's passes, one per file in src/passes/. Each returns
// whether it changed the graph; the order and opt levels are in
// pass_manager.cpp.
#pragma once
#include "ir/graph.h"

namespace kiln::passes {

// Level 1: cleanups that never change the op mix a kernel sees.
bool localize_outer_constants(Graph& g);  // a body's reads of enclosing constants -> its own initializers
bool inline_constant_if(Graph& g);        // If with a constant condition -> the nodes of its taken branch
bool eliminate_identity(Graph& g);        // Identity, Dropout, Cast to the same type, no-op Reshape...
bool fold_shape(Graph& g);                // Shape/Size of statically shaped values
bool fold_constants(Graph& g);            // nodes whose inputs are all constants
bool eliminate_common_subexpressions(Graph& g);
bool fold_transposes(Graph& g);      // Transpose chains composed, identity perms and unit-dim moves dropped
bool eliminate_dead_code(Graph& g);  // unread nodes and initializers

// Level 2: fusions and recognition of decomposed ops.
bool fold_batchnorm(Graph& g);         // Conv/Gemm + BatchNormalization
bool batchnorm_to_affine(Graph& g);    // other BatchNormalizations -> Mul + Add per channel
bool recognize_layernorm(Graph& g);    // ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add
bool recognize_gelu(Graph& g);         // x * 0.5 * (1 + erf(x / sqrt(2))), and the tanh form
bool recognize_attention(Graph& g);    // MatMul/scale/[mask]/Softmax/MatMul -> kiln.Attention
bool gather_rows(Graph& g);            // GatherElements on an Expand-ed row index -> GatherND row copies
bool fuse_matmul_add(Graph& g);        // 2-D MatMul + Add(bias) -> Gemm
bool fuse_pad(Graph& g);               // zero Pad -> pads of the Conv/AveragePool reading it
bool shrink_conv_taps(Graph& g);       // conv taps that only ever read padding dropped
bool fuse_conv_bias(Graph& g);         // Conv + Add(per-channel constant) -> Conv bias
bool fuse_epilogue(Graph& g);          // GEMM-like op + activation -> epilogue
bool widen_conv_groups(Graph& g);      // groups narrower than the channel block merged, block-diagonal W
bool layout_blocked(Graph& g);         // conv activations kept in oneDNN's blocked layout
bool blocked_channels_last(Graph& g);  // Transpose/LayerNorm/Linear/Transpose islands kept blocked (ConvNeXt)
bool fuse_conv_sum(Graph& g);          // blocked Conv + residual Add -> one conv with a sum input
bool fuse_elementwise(Graph& g);       // chains of element-wise ops -> one kiln.Elementwise

// One node of fold_shape; fold_constants applies it too as it sweeps, so a
// chain Shape → Gather → Concat → Reshape → Shape → ... folds in one sweep.
bool fold_shape_of(Graph& g, Node& n);

}  // namespace kiln::passes
