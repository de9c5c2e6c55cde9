// Folds shape computations once shapes are known: Shape and Size of a value
// with a fully static shape become initializers, and Gather(Shape(x), k)
// folds when just the dims it picks are known (with a symbolic batch dim,
// Shape(x)[2] of an image is still a constant). fold_constants then folds
// the Gather → Unsqueeze → Concat → Reshape chains that read them.
#include <algorithm>

#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

// Dims of x that Shape reports: [start, end) (opset 15 attributes).
bool shape_dims(const Node& shape, std::vector<Dim>* dims) {
  const ValueType& t = shape.inputs[0]->type;
  if (!t.has_rank() || t.kind != ValueKind::kTensor) return false;
  const int64_t rank = t.rank();
  int64_t s = shape.opset >= 15 ? shape.attr_int("start", 0) : 0;
  int64_t e = shape.opset >= 15 ? shape.attr_int("end", rank) : rank;
  if (s < 0) s += rank;
  if (e < 0) e += rank;
  s = std::clamp<int64_t>(s, 0, rank);
  e = std::max(s, std::clamp<int64_t>(e, 0, rank));
  dims->assign(t.shape->begin() + s, t.shape->begin() + e);
  return true;
}

void make_constant(Graph& g, Node& n, Tensor t) {
  Value* out = n.outputs[0];
  out->producer = nullptr;
  out->type = ValueType::tensor(t.dtype(), t.shape());
  out->initializer = std::move(t);
  detach_node(g, &n);
}

bool all_known(const std::vector<Dim>& dims) {
  return std::all_of(dims.begin(), dims.end(), [](const Dim& d) { return d.is_known(); });
}

Tensor int64_tensor(Shape shape, const std::vector<int64_t>& v) {
  Tensor t(DType::kInt64, std::move(shape));
  std::copy(v.begin(), v.end(), t.data<int64_t>());
  return t;
}

bool fold_shape_node(Graph& g, Node& n) {
  std::vector<Dim> dims;
  if (!shape_dims(n, &dims) || !all_known(dims)) return false;
  std::vector<int64_t> v;
  for (const Dim& d : dims) v.push_back(d.value);
  make_constant(g, n, int64_tensor({static_cast<int64_t>(v.size())}, v));
  return true;
}

bool fold_size_node(Graph& g, Node& n) {
  const ValueType& t = n.inputs[0]->type;
  if (!t.is_static() || t.kind != ValueKind::kTensor) return false;
  make_constant(g, n, int64_tensor({}, {shape_numel(t.static_shape())}));
  return true;
}

// Gather(Shape(x), indices) with constant indices picking known dims.
bool fold_gather_of_shape(Graph& g, Node& n) {
  Node* shape = producer_if(n.inputs[0], "Shape");
  const Tensor* idx = n.has_input(1) ? constant_of(n.inputs[1]) : nullptr;
  if (!shape || !idx || n.attr_int("axis", 0) != 0 || idx->dtype() != DType::kInt64 || idx->rank() > 1) return false;
  std::vector<Dim> dims;
  if (!shape_dims(*shape, &dims)) return false;
  std::vector<int64_t> v;
  const int64_t r = static_cast<int64_t>(dims.size());
  for (int64_t i = 0; i < idx->numel(); ++i) {
    int64_t k = idx->data<int64_t>()[i];
    if (k < 0) k += r;
    if (k < 0 || k >= r || !dims[static_cast<size_t>(k)].is_known()) return false;
    v.push_back(dims[static_cast<size_t>(k)].value);
  }
  make_constant(g, n, int64_tensor(idx->shape(), v));
  return true;
}

}  // namespace

bool fold_shape_of(Graph& g, Node& n) {
  if (!n.domain.empty() || !n.has_input(0) || !n.has_output(0)) return false;
  if (n.op_type == "Shape") return fold_shape_node(g, n);
  if (n.op_type == "Size") return fold_size_node(g, n);
  if (n.op_type == "Gather") return fold_gather_of_shape(g, n);
  return false;
}

bool fold_shape(Graph& g) {
  bool changed = false;
  for (auto& n : g.nodes) changed |= fold_shape_of(g, *n);
  return changed;
}

}  // namespace kiln::passes
