// GatherElements whose indices are an Expand that only repeats one index
// along every dim after the gather axis is a row gather: PyTorch's
// `x.gather(1, idx.unsqueeze(-1).expand(-1, -1, C))`, the k-nearest-neighbour
// lookup of point-cloud and graph networks. It becomes
// GatherND(data, Reshape(idx, [0.., -1, 1]), batch_dims = axis): whole rows
// copied, and the expanded index tensor (as large as the output, int64)
// never built.
#include "ir/op.h"
#include "ir/rewrite.h"
#include "passes/passes.h"

namespace kiln::passes {

namespace {

bool same_dim(const Dim& a, const Dim& b) { return a == b && (a.is_known() || !a.symbol.empty()); }

bool rewrite(Graph& g, Node& n) {
  if (n.op_type != "GatherElements" || !n.domain.empty() || !n.has_input(1) || !n.has_output(0)) return false;
  Node* expand = producer_if(n.inputs[1], "Expand");
  if (!expand || !expand->has_input(0)) return false;
  const ValueType& data = n.inputs[0]->type;
  const ValueType& src = expand->inputs[0]->type;
  const ValueType& idx = n.inputs[1]->type;
  if (!data.shape || !src.shape || !idx.shape || data.rank() != src.rank() || idx.rank() != data.rank()) return false;
  const int64_t rank = data.rank();
  int64_t axis = n.attr_int("axis", 0);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis >= rank) return false;
  const DimVector &d = *data.shape, &s = *src.shape, &e = *idx.shape;
  for (int64_t i = 0; i < rank; ++i) {
    const size_t k = static_cast<size_t>(i);
    if (i < axis && !(same_dim(s[k], e[k]) && same_dim(e[k], d[k]))) return false;  // batch dims, not broadcast
    if (i == axis && !same_dim(s[k], e[k])) return false;                           // one index per output row
    if (i > axis && !(s[k].is_known() && s[k].value == 1 && same_dim(e[k], d[k]))) return false;  // whole rows
  }
  Tensor shape(DType::kInt64, {axis + 2});
  for (int64_t i = 0; i < axis; ++i) shape.data<int64_t>()[i] = 0;
  shape.data<int64_t>()[axis] = -1;
  shape.data<int64_t>()[axis + 1] = 1;
  Value* rows = add_fresh_value(g, n.name + ".rows");
  add_node(g, "Reshape", n.name + ".row_indices", {expand->inputs[0], add_constant(g, n.name + ".rows_shape", shape)},
           {rows}, 14);
  Value* data_in = n.inputs[0];
  Value* out = n.outputs[0];
  const std::vector<std::string> origins = n.origin_names();
  detach_node(g, &n);
  Node* gnd = add_node(g, "GatherND", n.name + ".rows_gather", {data_in, rows}, {out}, 13);
  gnd->attrs["batch_dims"] = int_attr(axis);
  gnd->origins = origins;
  return true;
}

}  // namespace

bool gather_rows(Graph& g) {
  bool changed = false;
  const size_t count = g.nodes.size();
  for (size_t i = 0; i < count; ++i)
    if (rewrite(g, *g.nodes[i])) changed = true;
  return changed;
}

}  // namespace kiln::passes
