// MatMul(A, B) + C with 2-D A, constant 2-D B and a constant bias C of shape
// [N] or [1, N] becomes Gemm(A, B, C): one node, the bias added while the
// result is written.
#include "ir/epilogue.h"
#include "ir/op.h"
#include "passes/passes.h"
#include "passes/rewrite.h"

namespace kiln::passes {

namespace {

bool fuse(Graph& g, Node& mm, Node& add) {
  Value* y = mm.outputs[0];
  Value* c = add.inputs[0] == y ? add.inputs[1] : add.inputs[0];
  const Tensor* bias = constant_of(c);
  const Tensor* b = constant_of(mm.inputs[1]);
  if (!bias || !b || b->rank() != 2 || b->dtype() != DType::kFloat32 || bias->dtype() != DType::kFloat32) return false;
  if (mm.inputs[0]->type.rank() != 2) return false;
  const int64_t n = b->dim(1);
  const bool row = (bias->rank() == 1 && bias->dim(0) == n) || (bias->rank() == 2 && bias->dim(0) == 1 && bias->dim(1) == n);
  if (!row) return false;
  Value* a = mm.inputs[0];
  Value* w = mm.inputs[1];
  Value* out = add.outputs[0];
  detach_node(g, &add);
  detach_node(g, &mm);
  add_node(g, "Gemm", mm.name + ".gemm", {a, w, c}, {out}, 13);
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
