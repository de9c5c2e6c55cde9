// Indexing ops: Gather, GatherElements, GatherND, Scatter (opset 9-10),
// ScatterElements and ScatterND with their reductions. Every index read from
// data is range-checked (negative indices count from the end).
#include <algorithm>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// Resolves index `v` into [0, n), or throws naming the offending index.
template <typename Ctx>
int64_t checked_index(const Ctx& ctx, int64_t v, int64_t n, const char* what, int64_t pos) {
  int64_t r = v < 0 ? v + n : v;
  if (r < 0 || r >= n)
    throw ctx.error(std::string(what) + "[" + std::to_string(pos) + "] = " + std::to_string(v) +
                    " is out of range for a dimension of size " + std::to_string(n));
  return r;
}

// --------------------------------------------------------------------- Gather

OpSchema gather_schema() {
  return OpSchema{
      .name = "Gather",
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            const ValueType& d = ctx.input_type(0);
            const ValueType& ix = ctx.input_type(1);
            if (!d.shape || !ix.shape) return ctx.set_output(0, d.dtype, std::nullopt);
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", 0), d.rank(), ctx.node());
            DimVector out(d.shape->begin(), d.shape->begin() + axis);
            out.insert(out.end(), ix.shape->begin(), ix.shape->end());
            out.insert(out.end(), d.shape->begin() + axis + 1, d.shape->end());
            ctx.set_output(0, d.dtype, out);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            std::vector<int64_t> idx = read_ints(ctx.input(1), ctx, "Gather indices");
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", 0), x.rank(), ctx.node());
            int64_t n = x.dim(static_cast<int>(axis));
            for (size_t i = 0; i < idx.size(); ++i)
              idx[i] = checked_index(ctx, idx[i], n, "indices", static_cast<int64_t>(i));
            Shape out_shape(x.shape().begin(), x.shape().begin() + axis);
            const Shape& is = ctx.input(1).shape();
            out_shape.insert(out_shape.end(), is.begin(), is.end());
            out_shape.insert(out_shape.end(), x.shape().begin() + axis + 1, x.shape().end());
            Tensor& out = ctx.output(0, x.dtype(), out_shape);
            int64_t outer = 1, inner = 1;
            for (int64_t d = 0; d < axis; ++d) outer *= x.dim(static_cast<int>(d));
            for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.dim(static_cast<int>(d));
            int64_t k = static_cast<int64_t>(idx.size());
            for (int64_t o = 0; o < outer; ++o)
              for (int64_t j = 0; j < k; ++j)
                copy_elements(x, (o * n + idx[static_cast<size_t>(j)]) * inner, out, (o * k + j) * inner, inner);
          },
  };
}

// ------------------------------------------------------------- GatherElements

OpSchema gather_elements_schema() {
  return OpSchema{
      .name = "GatherElements",
      .since = 11,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .infer = [](InferContext& ctx) { ctx.set_output(0, ctx.input_dtype(0), ctx.input_type(1).shape); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            const Tensor& it = ctx.input(1);
            std::vector<int64_t> idx = read_ints(it, ctx, "GatherElements indices");
            if (it.rank() != x.rank())
              throw ctx.error("indices rank " + std::to_string(it.rank()) + " differs from data rank " +
                              std::to_string(x.rank()));
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", 0), x.rank(), ctx.node());
            for (int d = 0; d < x.rank(); ++d)
              if (d != axis && it.dim(d) > x.dim(d))
                throw ctx.error("indices dim " + std::to_string(d) + " (" + std::to_string(it.dim(d)) +
                                ") exceeds data's (" + std::to_string(x.dim(d)) + ")");
            std::vector<int64_t> st = contiguous_strides(x.shape());
            int64_t n = x.dim(static_cast<int>(axis));
            bool same_dims = x.dtype() != DType::kString;
            for (int d = 0; d < x.rank(); ++d) same_dims &= d == axis || it.dim(d) == x.dim(d);
            if (same_dims) {
              // out[o, t, r] = x[o, idx[o, t, r], r]: typed, row by row.
              int64_t outer = 1, inner = 1;
              for (int d = 0; d < axis; ++d) outer *= x.dim(d);
              for (int d = static_cast<int>(axis) + 1; d < x.rank(); ++d) inner *= x.dim(d);
              const int64_t m = it.dim(static_cast<int>(axis));
              for (size_t i = 0; i < idx.size(); ++i)
                idx[i] = checked_index(ctx, idx[i], n, "indices", static_cast<int64_t>(i));
              Tensor& out = ctx.output_uninitialized(0, x.dtype(), it.shape());
              dispatch_by_size(x.dtype(), "GatherElements", [&]<typename T>() {
                if constexpr (std::is_trivially_copyable_v<T>) {
                  const T* px = x.data<T>();
                  T* po = out.data<T>();
                  parallel_for(out.numel() >= 65536 ? ctx.thread_pool() : nullptr, outer * m,
                               [&](int64_t begin, int64_t end) {
                                 for (int64_t row = begin; row < end; ++row) {
                                   const int64_t o = row / m;
                                   const int64_t* ir = idx.data() + row * inner;
                                   T* dst = po + row * inner;
                                   const T* src = px + o * n * inner;
                                   for (int64_t r = 0; r < inner; ++r) dst[r] = src[ir[r] * inner + r];
                                 }
                               });
                }
              });
              return;
            }
            Tensor& out = ctx.output(0, x.dtype(), it.shape());
            for_each_index(it.shape(), [&](const int64_t* ix, int64_t i) {
              int64_t off = 0;
              for (int d = 0; d < x.rank(); ++d)
                off += (d == axis ? checked_index(ctx, idx[static_cast<size_t>(i)], n, "indices", i) : ix[d]) *
                       st[static_cast<size_t>(d)];
              copy_elements(x, off, out, i, 1);
            });
          },
  };
}

// ------------------------------------------------------------------- GatherND

OpSchema gather_nd_schema(int since, int until) {
  OpSchema s;
  s.name = "GatherND";
  s.since = since;
  s.until = until;
  s.min_inputs = s.max_inputs = 2;
  s.max_outputs = 1;
  if (since == 11) s.check = [](const Node& n) { return n.has_attr("batch_dims") ? "batch_dims needs opset 12" : ""; };
  s.infer = [](InferContext& ctx) {
    const ValueType& d = ctx.input_type(0);
    const ValueType& ix = ctx.input_type(1);
    int64_t b = ctx.node().attr_int("batch_dims", 0);
    if (!d.shape || !ix.shape || ix.shape->empty() || !ix.shape->back().is_known())
      return ctx.set_output(0, d.dtype, std::nullopt);
    int64_t k = ix.shape->back().value;
    if (b < 0 || b + k > d.rank() || b >= ix.rank())
      throw ctx.error("batch_dims " + std::to_string(b) + " with index depth " + std::to_string(k) +
                      " does not fit data rank " + std::to_string(d.rank()));
    DimVector out(ix.shape->begin(), ix.shape->end() - 1);
    out.insert(out.end(), d.shape->begin() + b + k, d.shape->end());
    ctx.set_output(0, d.dtype, out);
  };
  s.compute = [](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Tensor& it = ctx.input(1);
    std::vector<int64_t> idx = read_ints(it, ctx, "GatherND indices");
    int64_t b = ctx.node().attr_int("batch_dims", 0);
    if (it.rank() < 1) throw ctx.error("indices must have rank >= 1");
    int64_t k = it.shape().back();
    if (b < 0 || b >= it.rank() || b + k > x.rank())
      throw ctx.error("batch_dims " + std::to_string(b) + " with index depth " + std::to_string(k) +
                      " does not fit data rank " + std::to_string(x.rank()));
    for (int d = 0; d < b; ++d)
      if (x.dim(d) != it.dim(d))
        throw ctx.error("batch dim " + std::to_string(d) + " differs between data and indices");
    Shape out_shape(it.shape().begin(), it.shape().end() - 1);
    out_shape.insert(out_shape.end(), x.shape().begin() + b + k, x.shape().end());
    Tensor& out = ctx.output(0, x.dtype(), out_shape);
    int64_t batch = 1, inner = 1;
    for (int d = 0; d < b; ++d) batch *= x.dim(d);
    for (int d = static_cast<int>(b + k); d < x.rank(); ++d) inner *= x.dim(d);
    int64_t per_batch_data = shape_numel(Shape(x.shape().begin() + b, x.shape().end()));
    int64_t tuples = batch == 0 ? 0 : static_cast<int64_t>(idx.size()) / std::max<int64_t>(1, k) / batch;
    if (k == 0) tuples = batch == 0 ? 0 : shape_numel(Shape(it.shape().begin() + b, it.shape().end() - 1));
    std::vector<int64_t> st = contiguous_strides(Shape(x.shape().begin() + b, x.shape().end()));
    // Indices are checked first, so a bad one throws before any thread runs.
    std::vector<int64_t> offsets(static_cast<size_t>(batch * tuples));
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t t = 0; t < tuples; ++t) {
        int64_t off = bi * per_batch_data;
        for (int64_t j = 0; j < k; ++j) {
          int64_t pos = (bi * tuples + t) * k + j;
          off += checked_index(ctx, idx[static_cast<size_t>(pos)], x.dim(static_cast<int>(b + j)), "indices", pos) *
                 st[static_cast<size_t>(j)];
        }
        offsets[static_cast<size_t>(bi * tuples + t)] = off;
      }
    const bool large = out.numel() * static_cast<int64_t>(dtype_size(out.dtype())) >= (int64_t{1} << 17);
    parallel_for(large ? ctx.thread_pool() : nullptr, batch * tuples, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) copy_elements(x, offsets[static_cast<size_t>(r)], out, r * inner, inner);
    });
  };
  return s;
}

// ---------------------------------------------------------------- reductions

enum class Reduction { kNone, kAdd, kMul, kMax, kMin };

Reduction reduction_of(const Node& n) {
  std::string r = n.attr_string("reduction", "none");
  if (r == "none") return Reduction::kNone;
  if (r == "add" && n.opset >= 16) return Reduction::kAdd;
  if (r == "mul" && n.opset >= 16) return Reduction::kMul;
  if (r == "max" && n.opset >= 18) return Reduction::kMax;
  if (r == "min" && n.opset >= 18) return Reduction::kMin;
  throw Error(n.describe() + ": reduction '" + r + "' is not supported at opset " + std::to_string(n.opset));
}

std::string reduction_check(const Node& n) {
  try {
    reduction_of(n);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

template <typename T>
void reduce_into(T& dst, const T& src, Reduction r) {
  if constexpr (std::is_same_v<T, std::string>) {
    dst = src;  // only "none" reaches here (checked before dispatch)
  } else if constexpr (std::is_same_v<T, bool>) {
    switch (r) {
      case Reduction::kNone: dst = src; break;
      case Reduction::kAdd:
      case Reduction::kMax: dst = dst || src; break;
      case Reduction::kMul:
      case Reduction::kMin: dst = dst && src; break;
    }
  } else {
    using A = acc_t<T>;
    A a = A(dst), b = A(src);
    switch (r) {
      case Reduction::kNone: dst = src; return;
      case Reduction::kAdd: dst = static_cast<T>(a + b); return;
      case Reduction::kMul: dst = static_cast<T>(a * b); return;
      case Reduction::kMax: dst = static_cast<T>(a > b ? a : b); return;
      case Reduction::kMin: dst = static_cast<T>(a < b ? a : b); return;
    }
  }
}

// Calls body<T>() for the data's dtype: any dtype without a reduction,
// numeric and bool with one.
template <typename F>
void dispatch_reduction(DType t, Reduction r, const std::string& what, F&& f) {
  if (r == Reduction::kNone) {
    dispatch_by_size(t, what, f);
  } else {
    dispatch<PodTypes>(t, what, f);
  }
}

// ---------------------------------------------------- Scatter/ScatterElements

OpSchema scatter_elements_schema(const char* name, int since, int until) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .check = reduction_check,
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            const Tensor& it = ctx.input(1);
            const Tensor& up = ctx.input(2);
            Reduction red = reduction_of(ctx.node());
            std::vector<int64_t> idx = read_ints(it, ctx, "indices");
            if (it.shape() != up.shape())
              throw ctx.error("indices shape " + shape_str(it.shape()) + " differs from updates shape " +
                              shape_str(up.shape()));
            if (up.dtype() != x.dtype()) throw ctx.error("updates type differs from data type");
            if (it.rank() != x.rank())
              throw ctx.error("indices rank " + std::to_string(it.rank()) + " differs from data rank " +
                              std::to_string(x.rank()));
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", 0), x.rank(), ctx.node());
            for (int d = 0; d < x.rank(); ++d)
              if (d != axis && it.dim(d) > x.dim(d))
                throw ctx.error("indices dim " + std::to_string(d) + " exceeds data's");
            std::vector<int64_t> st = contiguous_strides(x.shape());
            int64_t n = x.dim(static_cast<int>(axis));
            Tensor out = x.clone();
            dispatch_reduction(x.dtype(), red, ctx.node().op_type, [&]<typename T>() {
              T* po = out.data<T>();
              const T* pu = up.data<T>();
              for_each_index(it.shape(), [&](const int64_t* ix, int64_t i) {
                int64_t off = 0;
                for (int d = 0; d < x.rank(); ++d)
                  off += (d == axis ? checked_index(ctx, idx[static_cast<size_t>(i)], n, "indices", i) : ix[d]) *
                         st[static_cast<size_t>(d)];
                reduce_into(po[off], pu[i], red);
              });
            });
            ctx.set_output(0, std::move(out));
          },
  };
}

// ------------------------------------------------------------------ ScatterND

OpSchema scatter_nd_schema(int since, int until) {
  return OpSchema{
      .name = "ScatterND",
      .since = since,
      .until = until,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .check = reduction_check,
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            const Tensor& it = ctx.input(1);
            const Tensor& up = ctx.input(2);
            Reduction red = reduction_of(ctx.node());
            std::vector<int64_t> idx = read_ints(it, ctx, "indices");
            if (it.rank() < 1) throw ctx.error("indices must have rank >= 1");
            int64_t k = it.shape().back();
            if (k > x.rank())
              throw ctx.error("index depth " + std::to_string(k) + " exceeds data rank " + std::to_string(x.rank()));
            Shape want(it.shape().begin(), it.shape().end() - 1);
            want.insert(want.end(), x.shape().begin() + k, x.shape().end());
            if (up.shape() != want)
              throw ctx.error("updates shape " + shape_str(up.shape()) + " should be " + shape_str(want));
            if (up.dtype() != x.dtype()) throw ctx.error("updates type differs from data type");
            int64_t inner = shape_numel(Shape(x.shape().begin() + k, x.shape().end()));
            int64_t tuples = shape_numel(Shape(it.shape().begin(), it.shape().end() - 1));
            std::vector<int64_t> st = contiguous_strides(x.shape());
            Tensor out = x.clone();
            dispatch_reduction(x.dtype(), red, "ScatterND", [&]<typename T>() {
              T* po = out.data<T>();
              const T* pu = up.data<T>();
              for (int64_t t = 0; t < tuples; ++t) {
                int64_t off = 0;
                for (int64_t j = 0; j < k; ++j) {
                  int64_t pos = t * k + j;
                  off += checked_index(ctx, idx[static_cast<size_t>(pos)], x.dim(static_cast<int>(j)), "indices", pos) *
                         st[static_cast<size_t>(j)];
                }
                for (int64_t e = 0; e < inner; ++e) reduce_into(po[off + e], pu[t * inner + e], red);
              }
            });
            ctx.set_output(0, std::move(out));
          },
  };
}

}  // namespace

KILN_OP(Gather) { return gather_schema(); }
KILN_OP(GatherElements) { return gather_elements_schema(); }
KILN_OP(GatherND_11) { return gather_nd_schema(11, 11); }
KILN_OP(GatherND_12) { return gather_nd_schema(12, INT_MAX); }
KILN_OP(Scatter) { return scatter_elements_schema("Scatter", 9, 10); }
KILN_OP(ScatterElements) { return scatter_elements_schema("ScatterElements", 11, INT_MAX); }
KILN_OP(ScatterND) { return scatter_nd_schema(11, INT_MAX); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Gather) { return {.op = "Gather", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(GatherElements) { return {.op = "GatherElements", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(GatherND) { return {.op = "GatherND", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Scatter) { return {.op = "Scatter", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(ScatterElements) { return {.op = "ScatterElements", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(ScatterND) { return {.op = "ScatterND", .family = OpFamily::kShape, .cost = cost::none()}; }

}  // namespace kiln
