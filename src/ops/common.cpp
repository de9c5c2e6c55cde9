#include "ops/common.h"

namespace kiln {

void infer_same_as_input(InferContext& ctx, size_t i) { ctx.set_output(0, ctx.input_type(i)); }

void infer_same_shape(InferContext& ctx, DType dtype) {
  ValueType t = ctx.input_type(0);
  t.dtype = dtype;
  ctx.set_output(0, t);
}

DimVector dims_of(const Shape& s) {
  DimVector d;
  for (int64_t v : s) d.push_back(Dim::known(v));
  return d;
}

std::optional<DimVector> broadcast_dims(const InferContext& ctx, const std::vector<size_t>& inputs) {
  size_t rank = 0;
  for (size_t i : inputs) {
    if (!ctx.has_input(i)) continue;
    const ValueType& t = ctx.input_type(i);
    if (!t.shape) return std::nullopt;
    rank = std::max(rank, t.shape->size());
  }
  DimVector out(rank, Dim::known(1));
  for (size_t i : inputs) {
    if (!ctx.has_input(i)) continue;
    const DimVector& s = *ctx.input_type(i).shape;
    size_t off = rank - s.size();
    for (size_t d = 0; d < s.size(); ++d) {
      Dim& o = out[off + d];
      const Dim& x = s[d];
      if (x.is_known() && x.value == 1) continue;
      if (o.is_known() && o.value == 1) {
        o = x;
        continue;
      }
      if (o.is_known() && x.is_known()) {
        if (o.value != x.value)
          throw ctx.error("cannot broadcast dims " + std::to_string(o.value) + " and " + std::to_string(x.value) +
                          " (input " + std::to_string(i) + ")");
        continue;
      }
      if (x.is_known()) {
        o = x;  // the unknown one must be 1 or equal
      } else if (!o.is_known() && o.symbol != x.symbol) {
        o = Dim::unknown();
      }
    }
  }
  return out;
}

int64_t normalize_axis(int64_t axis, int64_t rank, const Node& node, int extra) {
  int64_t r = rank + extra;
  if (axis < -r || axis >= r)
    throw Error(node.describe() + ": axis " + std::to_string(axis) + " is out of range for rank " +
                std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

Shape broadcast_shapes(const std::vector<Shape>& shapes, const Node& node) {
  size_t rank = 0;
  for (const Shape& s : shapes) rank = std::max(rank, s.size());
  Shape out(rank, 1);
  for (const Shape& s : shapes) {
    size_t off = rank - s.size();
    for (size_t d = 0; d < s.size(); ++d) {
      int64_t& o = out[off + d];
      if (s[d] == 1) continue;
      if (o == 1) {
        o = s[d];
      } else if (o != s[d]) {
        std::string all;
        for (const Shape& x : shapes) all += (all.empty() ? "" : ", ") + shape_str(x);
        throw Error(node.describe() + ": shapes " + all + " cannot be broadcast together");
      }
    }
  }
  return out;
}

std::vector<int64_t> contiguous_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
  return st;
}

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> cs = contiguous_strides(in);
  size_t off = out.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d) st[off + d] = in[d] == 1 ? 0 : cs[d];
  return st;
}

std::vector<int64_t> read_ints(const Tensor& t, const KernelContext& ctx, const char* what) {
  std::vector<int64_t> v;
  if (t.dtype() == DType::kInt64) {
    v.assign(t.data<int64_t>(), t.data<int64_t>() + t.numel());
  } else if (t.dtype() == DType::kInt32) {
    for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.data<int32_t>()[i]);
  } else {
    throw ctx.error(std::string(what) + " must be int32 or int64, got " + dtype_name(t.dtype()));
  }
  return v;
}

double read_scalar(const Tensor& t) {
  double v = 0;
  if (t.numel() < 1) throw Error("expected a scalar, got an empty tensor");
  dispatch<PodTypes>(t.dtype(), "scalar", [&]<typename T>() { v = static_cast<double>(acc_t<T>(t.data<T>()[0])); });
  return v;
}

}  // namespace kiln
