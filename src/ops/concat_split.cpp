// Ops that join, divide, permute or repeat tensors: Concat, Split, Transpose,
// Tile. All are pure data movement and work for every dtype.
#include <algorithm>
#include <numeric>

#include "ops/tensor_util.h"

namespace kiln {

namespace {

// Product of dims [from, to) of a shape.
int64_t dims_product(const Shape& s, int64_t from, int64_t to) {
  int64_t p = 1;
  for (int64_t i = from; i < to; ++i) p *= s[static_cast<size_t>(i)];
  return p;
}

// --------------------------------------------------------------------- Concat

int64_t concat_axis(const Node& n) { return n.attr_int("axis", 1); }  // default only matters before opset 4

OpSchema concat_schema(int since, int until) {
  OpSchema s;
  s.name = "Concat";
  s.since = since;
  s.until = until;
  s.min_inputs = 1;
  s.max_outputs = 1;
  if (since >= 4)
    s.check = [](const Node& n) { return n.has_attr("axis") ? std::string() : "attribute 'axis' is required"; };
  s.infer = [](InferContext& ctx) {
    DType dt = ctx.input_dtype(0);
    int rank = -1;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      int r = input_rank(ctx, i);
      if (r < 0) continue;
      if (rank >= 0 && r != rank) throw ctx.error("inputs have different ranks " + std::to_string(rank) + " and " + std::to_string(r));
      rank = r;
    }
    if (rank < 0) return ctx.set_output(0, dt, std::nullopt);
    int64_t axis = normalize_axis(concat_axis(ctx.node()), rank, ctx.node());
    DimVector out = unknown_dims(static_cast<size_t>(rank));
    out[static_cast<size_t>(axis)] = Dim::known(0);
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const ValueType& t = ctx.input_type(i);
      if (!t.shape) {
        out[static_cast<size_t>(axis)] = Dim::unknown();
        continue;
      }
      for (size_t d = 0; d < out.size(); ++d) {
        const Dim& x = (*t.shape)[d];
        Dim& o = out[d];
        if (static_cast<int64_t>(d) == axis) {
          if (o.is_known() && x.is_known()) o.value += x.value;
          else o = Dim::unknown();
        } else if (!o.is_known() && (x.is_known() || o.symbol.empty())) {
          o = x;
        }
      }
    }
    ctx.set_output(0, dt, out);
  };
  s.compute = [](KernelContext& ctx) {
    const Tensor& first = ctx.input(0);
    int rank = first.rank();
    int64_t axis = normalize_axis(concat_axis(ctx.node()), rank, ctx.node());
    Shape out_shape = first.shape();
    out_shape[static_cast<size_t>(axis)] = 0;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != first.dtype())
        throw ctx.error("input " + std::to_string(i) + " has type " + dtype_name(t.dtype()) + ", expected " +
                        dtype_name(first.dtype()));
      bool same = t.rank() == rank;
      for (int d = 0; same && d < rank; ++d) same = d == axis || t.dim(d) == first.dim(d);
      if (!same)
        throw ctx.error("input " + std::to_string(i) + " of shape " + shape_str(t.shape()) +
                        " does not match input 0 of shape " + shape_str(first.shape()) + " outside axis " +
                        std::to_string(axis));
      out_shape[static_cast<size_t>(axis)] += t.dim(static_cast<int>(axis));
    }
    Tensor& out = ctx.output(0, first.dtype(), out_shape);
    int64_t outer = dims_product(out_shape, 0, axis);
    int64_t out_row = dims_product(out_shape, axis, rank);
    int64_t offset = 0;  // within one output row
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& t = ctx.input(i);
      int64_t row = dims_product(t.shape(), axis, rank);
      for (int64_t o = 0; o < outer; ++o) copy_elements(t, o * row, out, o * out_row + offset, row);
      offset += row;
    }
  };
  return s;
}

// ---------------------------------------------------------------------- Split

// Chunk sizes along the axis. `split` empty means equal parts: before opset
// 18 the dim must divide evenly; from 18 the last chunk may be smaller.
template <typename Ctx>
std::vector<int64_t> split_sizes(const Ctx& ctx, int64_t dim, std::vector<int64_t> split, size_t num_outputs) {
  const Node& n = ctx.node();
  if (!split.empty()) {
    if (split.size() != num_outputs)
      throw ctx.error("split has " + std::to_string(split.size()) + " entries but the node has " +
                      std::to_string(num_outputs) + " outputs");
    int64_t sum = 0;
    for (int64_t v : split) {
      if (v < 0) throw ctx.error("split has negative size " + std::to_string(v));
      sum += v;
    }
    if (sum != dim)
      throw ctx.error("split sizes sum to " + std::to_string(sum) + " but the axis has " + std::to_string(dim));
    return split;
  }
  int64_t parts = static_cast<int64_t>(num_outputs);
  if (n.opset >= 18) {
    if (n.has_attr("num_outputs")) {
      parts = n.attr_int("num_outputs", 0);
      if (parts != static_cast<int64_t>(num_outputs))
        throw ctx.error("num_outputs=" + std::to_string(parts) + " but the node has " +
                        std::to_string(num_outputs) + " outputs");
    }
    if (parts <= 0) throw ctx.error("num_outputs must be positive");
    int64_t chunk = (dim + parts - 1) / parts;
    std::vector<int64_t> out;
    for (int64_t i = 0, left = dim; i < parts; ++i) {
      out.push_back(std::min(chunk, left));
      left -= out.back();
    }
    return out;
  }
  if (parts <= 0 || dim % parts != 0)
    throw ctx.error("axis of size " + std::to_string(dim) + " cannot be split evenly into " + std::to_string(parts) +
                    " outputs");
  return std::vector<int64_t>(static_cast<size_t>(parts), dim / parts);
}

OpSchema split_schema(int since, int until) {
  OpSchema s;
  s.name = "Split";
  s.since = since;
  s.until = until;
  // Opset 1 takes `split` as an attribute or a second input; 2-12 only the
  // attribute; 13+ only the input.
  bool input_split = since == 1 || since >= 13;
  bool attr_split = since < 13;
  s.min_inputs = 1;
  s.max_inputs = input_split ? 2 : 1;
  s.min_outputs = 1;
  s.infer = [attr_split](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    size_t nout = ctx.num_outputs();
    if (!in.shape) {
      for (size_t i = 0; i < nout; ++i) ctx.set_output(i, in.dtype, std::nullopt);
      return;
    }
    int64_t axis = normalize_axis(ctx.node().attr_int("axis", 0), in.rank(), ctx.node());
    const Dim& d = (*in.shape)[static_cast<size_t>(axis)];
    std::vector<int64_t> split;
    bool known = true;
    if (attr_split && ctx.node().has_attr("split")) split = ctx.node().attr_ints("split");
    else if (ctx.has_input(1)) known = ctx.input_ints(1, &split);
    std::vector<int64_t> sizes;
    if (known && (d.is_known() || !split.empty()))
      sizes = split_sizes(ctx, d.is_known() ? d.value : std::accumulate(split.begin(), split.end(), int64_t{0}),
                          split, nout);
    for (size_t i = 0; i < nout; ++i) {
      DimVector o = *in.shape;
      o[static_cast<size_t>(axis)] = sizes.empty() ? Dim::unknown() : Dim::known(sizes[i]);
      ctx.set_output(i, in.dtype, o);
    }
  };
  s.compute = [attr_split](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    int64_t axis = normalize_axis(ctx.node().attr_int("axis", 0), x.rank(), ctx.node());
    std::vector<int64_t> split;
    if (attr_split && ctx.node().has_attr("split")) split = ctx.node().attr_ints("split");
    else if (ctx.has_input(1)) split = read_ints(ctx.input(1), ctx, "Split split");
    size_t nout = ctx.num_outputs();
    std::vector<int64_t> sizes = split_sizes(ctx, x.dim(static_cast<int>(axis)), split, nout);
    int64_t outer = dims_product(x.shape(), 0, axis);
    int64_t inner = dims_product(x.shape(), axis + 1, x.rank());
    int64_t in_row = x.dim(static_cast<int>(axis)) * inner;
    int64_t start = 0;
    for (size_t i = 0; i < nout; ++i) {
      Shape os = x.shape();
      os[static_cast<size_t>(axis)] = sizes[i];
      if (ctx.has_output(i)) {
        Tensor& out = ctx.output(i, x.dtype(), os);
        int64_t row = sizes[i] * inner;
        for (int64_t o = 0; o < outer; ++o) copy_elements(x, o * in_row + start * inner, out, o * row, row);
      }
      start += sizes[i];
    }
  };
  return s;
}

// ------------------------------------------------------------------ Transpose

std::vector<int64_t> transpose_perm(const Node& n, int64_t rank) {
  std::vector<int64_t> perm = n.attr_ints("perm");
  if (!n.has_attr("perm")) {
    for (int64_t i = rank; i-- > 0;) perm.push_back(i);
    return perm;
  }
  if (static_cast<int64_t>(perm.size()) != rank)
    throw Error(n.describe() + ": perm has " + std::to_string(perm.size()) + " entries for rank " + std::to_string(rank));
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& p : perm) {
    p = normalize_axis(p, rank, n);
    if (seen[static_cast<size_t>(p)]) throw Error(n.describe() + ": perm repeats axis " + std::to_string(p));
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

OpSchema transpose_schema() {
  OpSchema s;
  s.name = "Transpose";
  s.min_inputs = s.max_inputs = 1;
  s.max_outputs = 1;
  s.infer = [](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
    auto perm = transpose_perm(ctx.node(), in.rank());
    DimVector out;
    for (int64_t p : perm) out.push_back((*in.shape)[static_cast<size_t>(p)]);
    ctx.set_output(0, in.dtype, out);
  };
  s.compute = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    auto perm = transpose_perm(ctx.node(), x.rank());
    std::vector<int64_t> in_strides = contiguous_strides(x.shape());
    Shape out_shape;
    std::vector<int64_t> strides;
    for (int64_t p : perm) {
      out_shape.push_back(x.shape()[static_cast<size_t>(p)]);
      strides.push_back(in_strides[static_cast<size_t>(p)]);
    }
    dispatch_by_size(x.dtype(), "Transpose", [&]<typename T>() {
      Tensor& out = ctx.output(0, x.dtype(), out_shape);
      const T* px = x.data<T>();
      T* po = out.data<T>();
      for_each_broadcast(out_shape, {strides}, [&](int64_t i, const int64_t* off) { po[i] = px[off[0]]; });
    });
  };
  return s;
}

// ----------------------------------------------------------------------- Tile

void tile_kernel(KernelContext& ctx, const Tensor& x, const std::vector<int64_t>& repeats) {
  Shape out_shape = x.shape();
  for (size_t d = 0; d < out_shape.size(); ++d) {
    if (repeats[d] < 0) throw ctx.error("repeats[" + std::to_string(d) + "] is negative: " + std::to_string(repeats[d]));
    if (repeats[d] != 0 && out_shape[d] > kMaxDataDrivenElements / repeats[d])
      throw ctx.error("repeats make the output too large");
    out_shape[d] *= repeats[d];
  }
  checked_numel(ctx, out_shape, "Tile output");
  std::vector<int64_t> st = contiguous_strides(x.shape());
  dispatch_by_size(x.dtype(), "Tile", [&]<typename T>() {
    Tensor& out = ctx.output(0, x.dtype(), out_shape);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for_each_index(out_shape, [&](const int64_t* idx, int64_t i) {
      int64_t off = 0;
      for (size_t d = 0; d < out_shape.size(); ++d) off += (idx[d] % x.shape()[d]) * st[d];
      po[i] = px[off];
    });
  });
}

OpSchema tile_schema(int since, int until) {
  OpSchema s;
  s.name = "Tile";
  s.since = since;
  s.until = until;
  bool v1 = until < 6;  // Tile-1: scalar `tiles` and `axis` inputs
  s.min_inputs = s.max_inputs = v1 ? 3 : 2;
  s.max_outputs = 1;
  s.infer = [v1](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
    DimVector out = *in.shape;
    std::vector<int64_t> reps;
    if (v1) {
      std::vector<int64_t> tiles, axis;
      if (ctx.input_ints(1, &tiles) && ctx.input_ints(2, &axis) && tiles.size() == 1 && axis.size() == 1) {
        reps.assign(out.size(), 1);
        reps[static_cast<size_t>(normalize_axis(axis[0], in.rank(), ctx.node()))] = tiles[0];
      }
    } else {
      ctx.input_ints(1, &reps);
      if (!reps.empty() && reps.size() != out.size())
        throw ctx.error("repeats has " + std::to_string(reps.size()) + " entries for rank " + std::to_string(out.size()));
    }
    for (size_t d = 0; d < out.size(); ++d) {
      if (reps.empty() || reps[d] < 0) out[d] = Dim::unknown();
      else if (out[d].is_known()) out[d].value *= reps[d];
      else if (reps[d] == 0) out[d] = Dim::known(0);
      else if (reps[d] != 1) out[d] = Dim::unknown();
    }
    ctx.set_output(0, in.dtype, out);
  };
  s.compute = [v1](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> reps;
    if (v1) {
      auto tiles = read_ints(ctx.input(1), ctx, "Tile tiles");
      auto axis = read_ints(ctx.input(2), ctx, "Tile axis");
      if (tiles.size() != 1 || axis.size() != 1) throw ctx.error("tiles and axis must be scalars");
      reps.assign(static_cast<size_t>(x.rank()), 1);
      reps[static_cast<size_t>(normalize_axis(axis[0], x.rank(), ctx.node()))] = tiles[0];
    } else {
      reps = read_ints(ctx.input(1), ctx, "Tile repeats");
      if (static_cast<int>(reps.size()) != x.rank())
        throw ctx.error("repeats has " + std::to_string(reps.size()) + " entries for input rank " +
                        std::to_string(x.rank()));
    }
    tile_kernel(ctx, x, reps);
  };
  return s;
}

}  // namespace

KILN_OP(Concat_1) { return concat_schema(1, 3); }
KILN_OP(Concat_4) { return concat_schema(4, INT_MAX); }
KILN_OP(Split_1) { return split_schema(1, 1); }
KILN_OP(Split_2) { return split_schema(2, 12); }
KILN_OP(Split_13) { return split_schema(13, INT_MAX); }
KILN_OP(Transpose) { return transpose_schema(); }
KILN_OP(Tile_1) { return tile_schema(1, 5); }
KILN_OP(Tile_6) { return tile_schema(6, INT_MAX); }

}  // namespace kiln
