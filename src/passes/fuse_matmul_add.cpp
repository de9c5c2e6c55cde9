// MatMul(A, B) + C with constant 2-D B and a constant bias C of shape [N] or
// [1, N] becomes Gemm(A, B, C): one node, the bias added while the result is
// written. A Linear layer on a 3-D or 4-D input (a transformer's [batch,
// tokens, features], ConvNeXt's channels-last MLP) becomes
// Reshape(A, [-1, K]) → Gemm → Reshape back, both reshapes views; this needs
// A's dims known except the first.
#include <algorithm>

#include "ir/epilogue.h"
#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

bool fuse(Graph& g, Node& mm, Node& add) {
  Value* y = mm.outputs[0];
  Value* c = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
  const Tensor* bias = constant_of(c);
  const Tensor* b = constant_of(mm.inputs[1]);
  if (!bias || !b || b->rank() != 2 || b->dtype() != DType::kFloat32 || bias->dtype() != DType::kFloat32) return false;
  const ValueType& at = mm.inputs[0]->type;
  const int64_t rank = at.rank();
  if (rank < 2) return false;
  const int64_t k = b->dim(0), n = b->dim(1);
  const bool row =
      (bias->rank() == 1 && bias->dim(0) == n) || (bias->rank() == 2 && bias->dim(0) == 1 && bias->dim(1) == n);
  if (!row) return false;
  // The output's leading dims, -1 for the first when unknown.
  Shape out_shape;
  if (rank > 2) {
    const DimVector& d = *at.shape;
    if (!d[static_cast<size_t>(rank - 1)].is_known() || d[static_cast<size_t>(rank - 1)].value != k) return false;
    out_shape.push_back(d[0].is_known() ? d[0].value : -1);
    for (int64_t i = 1; i < rank - 1; ++i) {
      if (!d[static_cast<size_t>(i)].is_known()) return false;
      out_shape.push_back(d[static_cast<size_t>(i)].value);
    }
    out_shape.push_back(n);
  }
  Value* a = mm.inputs[0];
  Value* w = mm.inputs[1];
  Value* out = add.outputs[0];
  // The Gemm does both nodes' work; the Reshapes around it are views.
  const std::vector<std::string> origins = merged_origins({&mm, &add});
  detach_node(g, &add);
  detach_node(g, &mm);
  if (rank == 2) {
    add_node(g, "Gemm", mm.name + ".gemm", {a, w, c}, {out}, 13)->origins = origins;
    return true;
  }
  Tensor flat_shape(DType::kInt64, {2});
  flat_shape.data<int64_t>()[0] = -1;
  flat_shape.data<int64_t>()[1] = k;
  Tensor back_shape(DType::kInt64, {rank});
  std::copy(out_shape.begin(), out_shape.end(), back_shape.data<int64_t>());
  Value* a2 = add_fresh_value(g, mm.name + ".rows");
  Value* y2 = add_fresh_value(g, mm.name + ".gemm_out");
  add_node(g, "Reshape", mm.name + ".to_rows", {a, add_constant(g, mm.name + ".rows_shape", std::move(flat_shape))},
           {a2}, 14);
  add_node(g, "Gemm", mm.name + ".gemm", {a2, w, c}, {y2}, 13)->origins = origins;
  add_node(g, "Reshape", mm.name + ".from_rows", {y2, add_constant(g, mm.name + ".out_shape", std::move(back_shape))},
           {out}, 14);
  return true;
}

}  // namespace

bool fuse_matmul_add(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i) {
    Node& add = *g.nodes[i];
    if (add.op_type != "Add" || !add.domain.empty() || add.inputs.size() != 2 || !add.inputs[0] || !add.inputs[1])
      continue;
    for (Value* in : add.inputs) {
      Node* mm = producer_if(in, "MatMul");
      if (mm && !has_epilogue(*mm) && only_read_by(g, in, &add) && fuse(g, *mm, add)) {
        changed = true;
        break;
      }
    }
  }
  return changed;
}

}  // namespace kiln::passes
