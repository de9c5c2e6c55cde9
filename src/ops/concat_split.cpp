// Ops that join, divide, permute or repeat tensors: Concat, Split, Transpose,
// Tile. All are pure data movement and work for every dtype.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <type_traits>

#include "core/thread_pool.h"

#include "ir/op_facts.h"
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
      if (rank >= 0 && r != rank)
        throw ctx.error("inputs have different ranks " + std::to_string(rank) + " and " + std::to_string(r));
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
          if (o.is_known() && x.is_known())
            o.value += x.value;
          else
            o = Dim::unknown();
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
    // The inputs cover the output: no zero fill (strings are constructed).
    Tensor& out = first.dtype() == DType::kString ? ctx.output(0, first.dtype(), out_shape)
                                                  : ctx.output_uninitialized(0, first.dtype(), out_shape);
    int64_t outer = dims_product(out_shape, 0, axis);
    int64_t out_row = dims_product(out_shape, axis, rank);
    // Output rows split over the threads; each thread fills whole rows, all
    // inputs' pieces of them, so its writes stay contiguous.
    const bool large = out.numel() * static_cast<int64_t>(dtype_size(out.dtype())) >= (int64_t{1} << 17);
    parallel_for(large && outer > 1 ? ctx.thread_pool() : nullptr, outer, [&](int64_t begin, int64_t end) {
      int64_t offset = 0;  // within one output row
      for (size_t i = 0; i < ctx.num_inputs(); ++i) {
        const Tensor& t = ctx.input(i);
        int64_t row = dims_product(t.shape(), axis, rank);
        for (int64_t o = begin; o < end; ++o) copy_elements(t, o * row, out, o * out_row + offset, row);
        offset += row;
      }
    });
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
        throw ctx.error("num_outputs=" + std::to_string(parts) + " but the node has " + std::to_string(num_outputs) +
                        " outputs");
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
    if (attr_split && ctx.node().has_attr("split"))
      split = ctx.node().attr_ints("split");
    else if (ctx.has_input(1))
      known = ctx.input_ints(1, &split);
    std::vector<int64_t> sizes;
    if (known && (d.is_known() || !split.empty()))
      sizes = split_sizes(ctx, d.is_known() ? d.value : std::accumulate(split.begin(), split.end(), int64_t{0}), split,
                          nout);
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
    if (attr_split && ctx.node().has_attr("split"))
      split = ctx.node().attr_ints("split");
    else if (ctx.has_input(1))
      split = read_ints(ctx.input(1), ctx, "Split split");
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
    throw Error(n.describe() + ": perm has " + std::to_string(perm.size()) + " entries for rank " +
                std::to_string(rank));
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t& p : perm) {
    p = normalize_axis(p, rank, n);
    if (seen[static_cast<size_t>(p)]) throw Error(n.describe() + ": perm repeats axis " + std::to_string(p));
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

// Fast path for every fixed-size element type (the per-element loop in the
// schema below stays for strings). The permutation is first simplified
// (collapse_transpose); what remains either keeps the innermost input axis
// innermost, so whole rows move with memcpy, or moves it, so the two axes
// involved are transposed in cache-sized square tiles. Both split their work
// over the thread pool when the tensor is large.

// The same data movement over fewer axes: size-1 axes dropped, and runs of
// input axes that stay adjacent and in order in the output merged into one.
struct CollapsedTranspose {
  std::vector<int64_t> in_dims;  // collapsed input shape
  std::vector<int64_t> perm;     // output axis i is input axis perm[i]
};

CollapsedTranspose collapse_transpose(const Shape& shape, const std::vector<int64_t>& perm) {
  std::vector<int64_t> kept_index(shape.size(), -1);  // input axis -> index among the kept ones
  std::vector<int64_t> kept_dims;
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] != 1) {
      kept_index[d] = static_cast<int64_t>(kept_dims.size());
      kept_dims.push_back(shape[d]);
    }
  std::vector<int64_t> p;
  for (int64_t a : perm)
    if (kept_index[static_cast<size_t>(a)] >= 0) p.push_back(kept_index[static_cast<size_t>(a)]);
  // Runs of output axes reading consecutive input axes, as [first, last] input axes.
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t a : p) {
    if (!runs.empty() && runs.back().second + 1 == a)
      runs.back().second = a;
    else
      runs.push_back({a, a});
  }
  // Each run becomes one input axis, numbered by where it starts in the input.
  std::vector<int64_t> by_start(runs.size());
  std::iota(by_start.begin(), by_start.end(), 0);
  std::sort(by_start.begin(), by_start.end(), [&](int64_t a, int64_t b) {
    return runs[static_cast<size_t>(a)].first < runs[static_cast<size_t>(b)].first;
  });
  CollapsedTranspose c;
  c.perm.resize(runs.size());
  for (size_t axis = 0; axis < by_start.size(); ++axis) {
    const auto& run = runs[static_cast<size_t>(by_start[axis])];
    int64_t dim = 1;
    for (int64_t a = run.first; a <= run.second; ++a) dim *= kept_dims[static_cast<size_t>(a)];
    c.in_dims.push_back(dim);
    c.perm[static_cast<size_t>(by_start[axis])] = static_cast<int64_t>(axis);
  }
  return c;
}

// Output axes walked by the outer loops, with their strides in the source
// and the destination.
struct OuterAxes {
  std::vector<int64_t> dims, src_strides, dst_strides;
};

// A row-major walk over the outer axes that tracks the matching source and
// destination offsets: one division per axis to start anywhere, then an
// odometer step per index.
struct OffsetWalk {
  const OuterAxes& axes;
  std::vector<int64_t> idx;
  int64_t src = 0, dst = 0;

  OffsetWalk(const OuterAxes& a, int64_t start) : axes(a), idx(a.dims.size()) {
    for (size_t k = idx.size(); k-- > 0;) {
      idx[k] = start % axes.dims[k];
      start /= axes.dims[k];
      src += idx[k] * axes.src_strides[k];
      dst += idx[k] * axes.dst_strides[k];
    }
  }
  void next() {
    for (size_t k = idx.size(); k-- > 0;) {
      src += axes.src_strides[k];
      dst += axes.dst_strides[k];
      if (++idx[k] < axes.dims[k]) return;
      src -= axes.src_strides[k] * axes.dims[k];
      dst -= axes.dst_strides[k] * axes.dims[k];
      idx[k] = 0;
    }
  }
};

constexpr int64_t kTransposeParallelElements = 32768;

// Contiguous rows of `row` elements, one per outer index.
template <typename T>
void copy_rows(const T* src, T* dst, int64_t row, int64_t rows, const OuterAxes& outer, ThreadPool* pool) {
  parallel_for(pool, rows, [&](int64_t begin, int64_t end) {
    OffsetWalk walk(outer, begin);
    for (int64_t r = begin; r < end; ++r, walk.next()) {
      if (row * static_cast<int64_t>(sizeof(T)) >= 64) {
        std::memcpy(dst + walk.dst, src + walk.src, static_cast<size_t>(row) * sizeof(T));
      } else {  // a call per short row would cost more than the copy
        for (int64_t k = 0; k < row; ++k) dst[walk.dst + k] = src[walk.src + k];
      }
    }
  });
}

// dst[b * dst_stride + a] = src[a * src_stride + b] for a, b < kTile; the
// fixed trip counts let the compiler turn it into register shuffles.
template <typename T, int64_t kTile>
void transpose_tile(const T* __restrict src, int64_t src_stride, T* __restrict dst, int64_t dst_stride) {
  T buf[kTile][kTile];
  for (int64_t a = 0; a < kTile; ++a)
    for (int64_t b = 0; b < kTile; ++b) buf[b][a] = src[a * src_stride + b];
  for (int64_t b = 0; b < kTile; ++b)
    for (int64_t a = 0; a < kTile; ++a) dst[b * dst_stride + a] = buf[b][a];
}

// One 2-D transpose per outer index: dst[b * dst_b_stride + a] =
// src[a * src_a_stride + b] for a < a_len, b < b_len, in square tiles; the
// work items are strips of one tile along `a`.
struct TileTranspose {
  int64_t a_len, b_len, src_a_stride, dst_b_stride;
};

template <typename T>
void transpose_tiles(const T* src, T* dst, const TileTranspose& t, int64_t count, const OuterAxes& outer,
                     ThreadPool* pool) {
  constexpr int64_t tile = std::max<int64_t>(8, 64 / sizeof(T));  // a cache line of T, at least 8
  const int64_t a_tiles = (t.a_len + tile - 1) / tile;
  parallel_for(pool, count * a_tiles, [&](int64_t begin, int64_t end) {
    OffsetWalk walk(outer, begin / a_tiles);
    for (int64_t item = begin; item < end; ++item) {
      if (item != begin && item % a_tiles == 0) walk.next();
      const T* s = src + walk.src;
      T* d = dst + walk.dst;
      int64_t a0 = item % a_tiles * tile, a1 = std::min(a0 + tile, t.a_len);
      for (int64_t b0 = 0; b0 < t.b_len; b0 += tile) {
        int64_t b1 = std::min(b0 + tile, t.b_len);
        if (a1 - a0 == tile && b1 - b0 == tile) {
          transpose_tile<T, tile>(s + a0 * t.src_a_stride + b0, t.src_a_stride, d + b0 * t.dst_b_stride + a0,
                                  t.dst_b_stride);
          continue;
        }
        for (int64_t b = b0; b < b1; ++b)
          for (int64_t a = a0; a < a1; ++a) d[b * t.dst_b_stride + a] = s[a * t.src_a_stride + b];
      }
    }
  });
}

template <typename T>
void transpose_fast(const T* src, T* dst, const CollapsedTranspose& c, ThreadPool* pool) {
  int64_t numel = 1;
  for (int64_t d : c.in_dims) numel *= d;
  if (numel == 0) return;
  const size_t rank = c.in_dims.size();
  if (rank <= 1) {
    std::memcpy(dst, src, static_cast<size_t>(numel) * sizeof(T));
    return;
  }
  if (numel < kTransposeParallelElements) pool = nullptr;
  const int64_t last = static_cast<int64_t>(rank) - 1;
  const int64_t row = c.in_dims[rank - 1];
  if constexpr (sizeof(T) < 8) {
    // Rows of 2, 4 or 8 bytes that stay innermost move as single wider
    // elements (when both tensors are aligned for them).
    size_t row_bytes = static_cast<size_t>(row) * sizeof(T);
    bool aligned = (reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst)) % row_bytes == 0;
    if (c.perm[rank - 1] == last && (row_bytes == 2 || row_bytes == 4 || row_bytes == 8) && aligned) {
      CollapsedTranspose wide = c;
      wide.in_dims.pop_back();
      wide.perm.pop_back();
      auto as = [&]<typename W>() {
        transpose_fast(reinterpret_cast<const W*>(src), reinterpret_cast<W*>(dst), wide, pool);
      };
      if (row_bytes == 2)
        as.template operator()<uint16_t>();
      else if (row_bytes == 4)
        as.template operator()<uint32_t>();
      else
        as.template operator()<uint64_t>();
      return;
    }
  }
  std::vector<int64_t> in_strides = contiguous_strides(Shape(c.in_dims.begin(), c.in_dims.end()));
  std::vector<int64_t> out_dims(rank), out_strides(rank, 1);
  for (size_t i = 0; i < rank; ++i) out_dims[i] = c.in_dims[static_cast<size_t>(c.perm[i])];
  for (size_t i = rank - 1; i-- > 0;) out_strides[i] = out_strides[i + 1] * out_dims[i + 1];
  // The output position of the input's innermost axis.
  size_t b_pos = static_cast<size_t>(std::find(c.perm.begin(), c.perm.end(), last) - c.perm.begin());
  OuterAxes outer;
  for (size_t i = 0; i + 1 < rank; ++i) {
    if (i == b_pos) continue;
    outer.dims.push_back(out_dims[i]);
    outer.src_strides.push_back(in_strides[static_cast<size_t>(c.perm[i])]);
    outer.dst_strides.push_back(out_strides[i]);
  }
  if (b_pos == rank - 1) return copy_rows(src, dst, row, numel / row, outer, pool);
  TileTranspose t{out_dims[rank - 1], row, in_strides[static_cast<size_t>(c.perm[rank - 1])], out_strides[b_pos]};
  transpose_tiles(src, dst, t, numel / (t.a_len * t.b_len), outer, pool);
}

}  // namespace

void permute_view(const Tensor& x, const Shape& view, const std::vector<int64_t>& perm, Tensor& out, ThreadPool* pool) {
  if (shape_numel(view) != x.numel() || out.numel() != x.numel() || out.dtype() != x.dtype())
    throw Error("permute_view: the view, input and output sizes differ");
  dispatch_by_size(x.dtype(), "permute", [&]<typename T>() {
    if constexpr (std::is_trivially_copyable_v<T>) {
      transpose_fast(x.data<T>(), out.data<T>(), collapse_transpose(view, perm), pool);
    } else {
      throw Error("permute_view: " + std::string(dtype_name(x.dtype())) + " is not supported");
    }
  });
}

void broadcast_view(const Tensor& x, const Shape& x_view, const Shape& out_view, Tensor& out, ThreadPool* pool) {
  if (x_view.size() != out_view.size() || shape_numel(x_view) != x.numel() || shape_numel(out_view) != out.numel() ||
      out.dtype() != x.dtype())
    throw Error("broadcast_view: the views, input and output sizes differ");
  if (out.numel() == 0) return;
  // Merge neighbouring dims that are both broadcast or both read in order.
  const std::vector<int64_t> st = broadcast_strides(x_view, out_view);
  std::vector<int64_t> dims, strides;
  for (size_t d = 0; d < out_view.size(); ++d) {
    if (out_view[d] == 1) continue;
    if (!dims.empty() && ((strides.back() == 0 && st[d] == 0) || strides.back() == st[d] * out_view[d])) {
      dims.back() *= out_view[d];
      strides.back() = st[d];
      continue;
    }
    dims.push_back(out_view[d]);
    strides.push_back(st[d]);
  }
  if (dims.empty()) {
    dims = {1};
    strides = {0};
  }
  const int64_t row = dims.back(), rows = out.numel() / row;
  const bool copy = strides.back() != 0;
  dispatch_by_size(x.dtype(), "broadcast", [&]<typename T>() {
    if constexpr (std::is_trivially_copyable_v<T>) {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      parallel_for(out.numel() >= 65536 ? pool : nullptr, rows, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          int64_t rem = r, off = 0;
          for (size_t d = dims.size() - 1; d-- > 0;) {
            off += (rem % dims[d]) * strides[d];
            rem /= dims[d];
          }
          T* dst = po + r * row;
          if (copy)
            std::memcpy(dst, px + off, static_cast<size_t>(row) * sizeof(T));
          else
            std::fill(dst, dst + row, px[off]);
        }
      });
    } else {
      throw Error("broadcast_view: " + std::string(dtype_name(x.dtype())) + " is not supported");
    }
  });
}

namespace {

OpSchema transpose_schema() {
  return OpSchema{
      .name = "Transpose",
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            const ValueType& in = ctx.input_type(0);
            if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
            auto perm = transpose_perm(ctx.node(), in.rank());
            DimVector out;
            for (int64_t p : perm) out.push_back((*in.shape)[static_cast<size_t>(p)]);
            ctx.set_output(0, in.dtype, out);
          },
      .compute =
          [](KernelContext& ctx) {
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
              const T* px = x.data<T>();
              if constexpr (std::is_trivially_copyable_v<T>) {
                // Every element is written.
                T* po = ctx.output_uninitialized(0, x.dtype(), out_shape).template data<T>();
                transpose_fast(px, po, collapse_transpose(x.shape(), perm), ctx.thread_pool());
              } else {  // std::string
                T* po = ctx.output(0, x.dtype(), out_shape).template data<T>();
                for_each_broadcast(out_shape, {strides}, [&](int64_t i, const int64_t* off) { po[i] = px[off[0]]; });
              }
            });
          },
  };
}

// ----------------------------------------------------------------------- Tile

void tile_kernel(KernelContext& ctx, const Tensor& x, const std::vector<int64_t>& repeats) {
  Shape out_shape = x.shape();
  for (size_t d = 0; d < out_shape.size(); ++d) {
    if (repeats[d] < 0)
      throw ctx.error("repeats[" + std::to_string(d) + "] is negative: " + std::to_string(repeats[d]));
    if (repeats[d] != 0 && out_shape[d] > kMaxDataDrivenElements / repeats[d])
      throw ctx.error("repeats make the output too large");
    out_shape[d] *= repeats[d];
  }
  checked_numel(ctx, out_shape, "Tile output");
  if (x.dtype() != DType::kString) {
    // [d0, d1, ...] repeated is [1, d0, 1, d1, ...] broadcast to [r0, d0, r1, d1, ...].
    Shape x_view, out_view;
    for (size_t d = 0; d < out_shape.size(); ++d) {
      x_view.insert(x_view.end(), {1, x.shape()[d]});
      out_view.insert(out_view.end(), {repeats[d], x.shape()[d]});
    }
    Tensor& out = ctx.output_uninitialized(0, x.dtype(), out_shape);
    broadcast_view(x, x_view, out_view, out, ctx.thread_pool());
    return;
  }
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
        throw ctx.error("repeats has " + std::to_string(reps.size()) + " entries for rank " +
                        std::to_string(out.size()));
    }
    for (size_t d = 0; d < out.size(); ++d) {
      if (reps.empty() || reps[d] < 0)
        out[d] = Dim::unknown();
      else if (out[d].is_known())
        out[d].value *= reps[d];
      else if (reps[d] == 0)
        out[d] = Dim::known(0);
      else if (reps[d] != 1)
        out[d] = Dim::unknown();
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

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Concat) { return {.op = "Concat", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Split) { return {.op = "Split", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Tile) { return {.op = "Tile", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Transpose) { return {.op = "Transpose", .family = OpFamily::kShape, .cost = cost::none()}; }

}  // namespace kiln
