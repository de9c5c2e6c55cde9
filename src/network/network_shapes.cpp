// kiln::Network's shape layers: reshape, transpose, concat, slice, split,
// flatten, squeeze, unsqueeze and resize.
#include <algorithm>
#include <numeric>

#include "ir/rewrite.h"
#include "network/builder.h"

namespace kiln {

namespace {

std::string n2s(int64_t v) { return std::to_string(v); }

// Reshape's inference leaves a -1 unknown unless the input is static. When
// the symbolic dims of the input and of the output are the same (0 copied
// them, or they were given back), the -1 is the ratio of the known dims:
// [N, 512, 1, 1] -> [0, -1] is [N, 512]. Also refuses element counts that
// cannot match. Changes out's type in place.
void solve_reshape(const LayerBuilder& b, const Value* x, const Shape& target, Value* out) {
  if (!x->type.shape || !out->type.shape) return;
  std::vector<std::string> in_symbols, out_symbols;
  int64_t in_known = 1, out_known = 1;
  for (const Dim& d : *x->type.shape) {
    if (d.is_known())
      in_known *= d.value;
    else if (d.symbol.empty())
      return;
    else
      in_symbols.push_back(d.symbol);
  }
  int solve_at = -1;
  DimVector& dims = *out->type.shape;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (target[i] == -1)
      solve_at = static_cast<int>(i);
    else if (dims[i].is_known())
      out_known *= dims[i].value;
    else if (dims[i].symbol.empty())
      return;
    else
      out_symbols.push_back(dims[i].symbol);
  }
  std::sort(in_symbols.begin(), in_symbols.end());
  std::sort(out_symbols.begin(), out_symbols.end());
  if (in_symbols != out_symbols || in_known == 0 || out_known == 0) return;
  const std::string what = "cannot reshape " + x->type.str() + " to " + shape_str(target);
  if (solve_at < 0) {
    if (in_known != out_known) throw b.error(what + ": the element counts differ");
    return;
  }
  if (in_known % out_known != 0) throw b.error(what + ": -1 has no integer solution");
  dims[static_cast<size_t>(solve_at)] = Dim::known(in_known / out_known);
}

}  // namespace

NetworkTensor Network::reshape(NetworkTensor x, const Shape& shape, const std::string& name) {
  LayerBuilder b(*impl_, "Reshape", name);
  Value* xv = b.in(x, "input");
  if (std::count(shape.begin(), shape.end(), -1) > 1) throw b.error("shape " + shape_str(shape) + " has several -1");
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < -1) throw b.error("shape " + shape_str(shape) + " has a negative dim");
    if (shape[i] == 0 && (!xv->type.has_rank() || static_cast<int>(i) >= xv->type.rank()))
      throw b.error("shape[" + n2s(static_cast<int64_t>(i)) + "] is 0 (copy the input's dim) but the input " +
                    xv->type.str() + " has no such dim");
  }
  Value* y = b.op("Reshape", {xv, b.ints(shape, "shape")}, "");
  solve_reshape(b, xv, shape, y);
  return b.finish(y);
}

NetworkTensor Network::transpose(NetworkTensor x, const std::vector<int64_t>& perm, const std::string& name) {
  LayerBuilder b(*impl_, "Transpose", name);
  Value* xv = b.in(x, "input");
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(perm.size());
  std::iota(iota.begin(), iota.end(), 0);
  if (sorted != iota || (xv->type.has_rank() && xv->type.rank() != static_cast<int>(perm.size())))
    throw b.error("perm " + shape_str(perm) + " is not a permutation of the input's " + n2s(xv->type.rank()) + " dims");
  return b.finish(b.op("Transpose", {xv}, "", {{"perm", ints_attr(perm)}}));
}

NetworkTensor Network::concat(const std::vector<NetworkTensor>& inputs, int64_t axis, const std::string& name) {
  LayerBuilder b(*impl_, "Concat", name);
  if (inputs.empty()) throw b.error("no inputs");
  std::vector<Value*> values;
  for (const NetworkTensor& t : inputs) values.push_back(b.in(t, "input"));
  return b.finish(b.op("Concat", values, "", {{"axis", int_attr(axis)}}));
}

NetworkTensor Network::slice(NetworkTensor x, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                             const std::vector<int64_t>& axes, const std::vector<int64_t>& steps,
                             const std::string& name) {
  LayerBuilder b(*impl_, "Slice", name);
  Value* xv = b.in(x, "input");
  const size_t n = starts.size();
  if (ends.size() != n || (!axes.empty() && axes.size() != n) || (!steps.empty() && steps.size() != n))
    throw b.error("starts, ends, axes and steps must have as many values each");
  std::vector<Value*> in = {xv, b.ints(starts, "starts"), b.ints(ends, "ends")};
  if (!axes.empty() || !steps.empty()) {
    std::vector<int64_t> ax = axes;
    if (ax.empty())
      for (size_t i = 0; i < n; ++i) ax.push_back(static_cast<int64_t>(i));
    in.push_back(b.ints(ax, "axes"));
  }
  if (!steps.empty()) in.push_back(b.ints(steps, "steps"));
  return b.finish(b.op("Slice", in, ""));
}

std::vector<NetworkTensor> Network::split(NetworkTensor x, int64_t axis, const std::vector<int64_t>& sizes,
                                          const std::string& name) {
  LayerBuilder b(*impl_, "Split", name);
  Value* xv = b.in(x, "input");
  if (sizes.empty()) throw b.error("no sizes");
  const Dim d = dim_of(xv, axis);
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  if (d.is_known() && d.value != total)
    throw b.error("sizes " + shape_str(sizes) + " add up to " + n2s(total) + ", not to dim " + n2s(axis) + " = " +
                  n2s(d.value));
  Node* n =
      b.node("Split", {xv, b.ints(sizes, "split")}, "", {{"axis", int_attr(axis)}}, static_cast<int>(sizes.size()));
  return b.finish(n->outputs);
}

NetworkTensor Network::flatten(NetworkTensor x, int64_t axis, const std::string& name) {
  LayerBuilder b(*impl_, "Flatten", name);
  Value* xv = b.in(x, "input");
  Value* y = b.op("Flatten", {xv}, "", {{"axis", int_attr(axis)}});
  // Flatten's inference cannot multiply symbolic dims: it leaves [batch,
  // 8, 1, 1] -> [?, ?]. The layer knows better where a side is all known
  // dims, or one symbol times known dims of product 1.
  if (xv->type.shape && y->type.shape && y->type.shape->size() == 2) {
    const int64_t r = xv->type.rank(), a = axis < 0 ? axis + r : axis;
    auto product = [&](int64_t begin, int64_t end) {
      int64_t known = 1;
      std::vector<Dim> symbols;
      for (int64_t i = begin; i < end; ++i) {
        const Dim d = dim_of(xv, i);
        if (d.is_known())
          known *= d.value;
        else
          symbols.push_back(d);
      }
      if (symbols.empty()) return Dim::known(known);
      if (symbols.size() == 1 && known == 1) return symbols[0];
      return Dim::unknown();
    };
    const Dim dims[2] = {product(0, a), product(a, r)};
    for (size_t i = 0; i < 2; ++i)
      if (!(*y->type.shape)[i].is_known() && (*y->type.shape)[i].symbol.empty()) (*y->type.shape)[i] = dims[i];
  }
  return b.finish(y);
}

NetworkTensor Network::squeeze(NetworkTensor x, const std::vector<int64_t>& axes, const std::string& name) {
  LayerBuilder b(*impl_, "Squeeze", name);
  std::vector<Value*> in = {b.in(x, "input")};
  if (!axes.empty()) in.push_back(b.ints(axes, "axes"));
  return b.finish(b.op("Squeeze", in, ""));
}

NetworkTensor Network::unsqueeze(NetworkTensor x, const std::vector<int64_t>& axes, const std::string& name) {
  LayerBuilder b(*impl_, "Unsqueeze", name);
  if (axes.empty()) throw b.error("no axes");
  return b.finish(b.op("Unsqueeze", {b.in(x, "input"), b.ints(axes, "axes")}, ""));
}

NetworkTensor Network::resize(NetworkTensor x, const ResizeOptions& o, const std::string& name) {
  LayerBuilder b(*impl_, "Resize", name);
  Value* xv = b.in(x, "input");
  if (!xv->type.has_rank()) throw b.error("input '" + xv->name + "' has an unknown rank");
  const size_t r = static_cast<size_t>(xv->type.rank());
  if (o.scales.empty() == o.sizes.empty()) throw b.error("give either scales or sizes");
  using Mode = ResizeOptions::Mode;
  std::map<std::string, Attribute> attrs;
  attrs["mode"] = string_attr(o.mode == Mode::kNearest ? "nearest" : o.mode == Mode::kLinear ? "linear" : "cubic");
  std::string coords = o.coordinate_mode;
  if (coords.empty()) {
    if (o.align_corners)
      coords = "align_corners";
    else
      coords = o.mode == Mode::kNearest ? "asymmetric" : "pytorch_half_pixel";
  }
  attrs["coordinate_transformation_mode"] = string_attr(coords);
  if (o.mode == Mode::kNearest) attrs["nearest_mode"] = string_attr("floor");
  if (!o.scales.empty()) {
    std::vector<float> scales = o.scales;
    if (scales.size() + 2 == r) scales.insert(scales.begin(), {1.0f, 1.0f});
    if (scales.size() != r)
      throw b.error("scales need " + n2s(static_cast<int64_t>(r)) + " or " + n2s(static_cast<int64_t>(r) - 2) +
                    " values");
    Tensor t(DType::kFloat32, {static_cast<int64_t>(r)});
    std::copy(scales.begin(), scales.end(), t.data<float>());
    return b.finish(b.op("Resize", {xv, nullptr, b.weight(t, "scales")}, "", attrs));
  }
  if (o.sizes.size() != r && o.sizes.size() + 2 != r)
    throw b.error("sizes need " + n2s(static_cast<int64_t>(r)) + " or " + n2s(static_cast<int64_t>(r) - 2) + " values");
  Value* sizes = nullptr;
  const Dim n = dim_of(xv, 0), c = dim_of(xv, 1);
  if (o.sizes.size() == r) {
    sizes = b.ints(o.sizes, "sizes");
  } else if (n.is_known() && c.is_known()) {
    std::vector<int64_t> full = {n.value, c.value};
    full.insert(full.end(), o.sizes.begin(), o.sizes.end());
    sizes = b.ints(full, "sizes");
  } else {
    // N or C dynamic: sizes = Concat(Shape(x)[:2], spatial sizes).
    Value* shape = b.op("Shape", {xv}, "shape", {{"end", int_attr(2)}});
    sizes = b.op("Concat", {shape, b.ints(o.sizes, "spatial_sizes")}, "sizes", {{"axis", int_attr(0)}});
  }
  Value* y = b.op("Resize", {xv, nullptr, nullptr, sizes}, "", attrs);
  // Inference cannot read sizes computed at run time; the layer knows them.
  if (!y->type.has_rank() || y->type.rank() != static_cast<int>(r)) {
    DimVector dims = {n, c};
    for (int64_t s : std::vector<int64_t>(o.sizes.end() - static_cast<int64_t>(r - 2), o.sizes.end()))
      dims.push_back(Dim::known(s));
    y->type.dtype = xv->type.dtype;
    y->type.shape = dims;
  } else {
    DimVector& dims = *y->type.shape;
    if (!dims[0].is_known() && dims[0].symbol.empty()) dims[0] = n;
    if (!dims[1].is_known() && dims[1].symbol.empty()) dims[1] = c;
    for (size_t i = 2; i < r; ++i) dims[i] = Dim::known(o.sizes[o.sizes.size() - (r - i)]);
  }
  return b.finish(y);
}

NetworkTensor Network::pad(NetworkTensor x, const std::vector<int64_t>& pads, PadMode mode, float value,
                           const std::string& name) {
  LayerBuilder b(*impl_, "Pad", name);
  Value* xv = b.in(x, "input");
  if (!xv->type.has_rank()) throw b.error("input '" + xv->name + "' has an unknown rank");
  const int64_t r = xv->type.rank();
  if (static_cast<int64_t>(pads.size()) != 2 * r)
    throw b.error("pads has " + n2s(static_cast<int64_t>(pads.size())) + " values; the input " + xv->type.str() +
                  " needs " + n2s(2 * r) + " (the begins of every dim, then the ends)");
  static const char* modes[] = {"constant", "reflect", "edge"};
  std::vector<Value*> in = {xv, b.ints(pads, "pads")};
  if (mode == PadMode::kConstant && value != 0) in.push_back(b.scalar(value, xv->type.dtype, "value"));
  return b.finish(b.op("Pad", in, "", {{"mode", string_attr(modes[static_cast<int>(mode)])}}));
}

NetworkTensor Network::gather(NetworkTensor data, NetworkTensor indices, int64_t axis, const std::string& name) {
  LayerBuilder b(*impl_, "Gather", name);
  Value* iv = b.in(indices, "indices");
  if (iv->type.dtype != DType::kInt64 && iv->type.dtype != DType::kInt32)
    throw b.error("indices '" + iv->name + "' must be int64 or int32, not " + dtype_name(iv->type.dtype));
  return b.finish(b.op("Gather", {b.in(data, "data"), iv}, "", {{"axis", int_attr(axis)}}));
}

}  // namespace kiln
