// Ops that order or select by value: TopK, ArgMax, ArgMin and Unique.
// Ties always resolve to the smaller index (select_last_index flips ArgMax /
// ArgMin); NaN compares greater than every number, as in numpy's sort.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// a < b with NaN last (largest).
template <typename T>
bool less_nan_last(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool> || std::is_integral_v<T>) {
    return a < b;
  } else {
    using A = acc_t<T>;
    A x = A(a), y = A(b);
    if (std::isnan(x)) return false;
    if (std::isnan(y)) return true;
    return x < y;
  }
}

// Splits a shape around `axis` into outer * n * inner.
void split_at_axis(const Shape& s, int64_t axis, int64_t* outer, int64_t* n, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int64_t d = 0; d < axis; ++d) *outer *= s[static_cast<size_t>(d)];
  *n = s[static_cast<size_t>(axis)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < s.size(); ++d) *inner *= s[d];
}

// ----------------------------------------------------------------------- TopK

// Up to this k, rows are selected by insertion (below), beyond by partial_sort.
constexpr int64_t kInsertionTopK = 64;

OpSchema topk_schema(int since, int until) {
  OpSchema s;
  s.name = "TopK";
  s.since = since;
  s.until = until;
  bool k_attr = until < 10;
  s.min_inputs = s.max_inputs = k_attr ? 1 : 2;
  s.min_outputs = s.max_outputs = 2;
  s.types = numeric_dtypes();
  if (k_attr) s.check = [](const Node& n) { return n.has_attr("k") ? "" : "attribute 'k' is required"; };
  s.infer = [k_attr](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    std::optional<DimVector> out;
    if (in.shape) {
      out = *in.shape;
      int64_t axis = normalize_axis(ctx.node().attr_int("axis", -1), in.rank(), ctx.node());
      std::vector<int64_t> k;
      if (k_attr)
        k = {ctx.node().attr_int("k", 0)};
      else
        ctx.input_ints(1, &k);
      (*out)[static_cast<size_t>(axis)] = k.size() == 1 && k[0] >= 0 ? Dim::known(k[0]) : Dim::unknown();
    }
    ctx.set_output(0, in.dtype, out);
    ctx.set_output(1, DType::kInt64, out);
  };
  s.compute = [k_attr](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Node& node = ctx.node();
    if (x.rank() == 0) throw ctx.error("input must have rank >= 1");
    int64_t axis = normalize_axis(node.attr_int("axis", -1), x.rank(), node);
    int64_t k;
    if (k_attr) {
      k = node.attr_int("k", 0);
    } else {
      auto kv = read_ints(ctx.input(1), ctx, "TopK K");
      if (kv.size() != 1) throw ctx.error("K must have exactly one element");
      k = kv[0];
    }
    bool largest = node.opset < 11 || node.attr_int("largest", 1) != 0;
    bool sorted = node.opset < 11 || node.attr_int("sorted", 1) != 0;
    int64_t outer, n, inner;
    split_at_axis(x.shape(), axis, &outer, &n, &inner);
    if (k < 0 || k > n)
      throw ctx.error("K = " + std::to_string(k) + " is out of range for axis " + std::to_string(axis) + " of size " +
                      std::to_string(n));
    Shape out_shape = x.shape();
    out_shape[static_cast<size_t>(axis)] = k;
    Tensor& ind = ctx.output(1, DType::kInt64, out_shape);
    dispatch<NumericTypes>(x.dtype(), "TopK", [&]<typename T>() {
      Tensor& val = ctx.output(0, x.dtype(), out_shape);
      const T* px = x.data<T>();
      // Rows (outer x inner) in parallel; each copied out contiguously, then
      // a partial sort of its indices: O(n log k), the ties to the smaller
      // index as a stable sort would have them.
      const int64_t rows = outer * inner;
      parallel_for(rows * n >= 16384 ? ctx.thread_pool() : nullptr, rows, [&](int64_t begin, int64_t end) {
        std::vector<T> v(static_cast<size_t>(n));
        std::vector<int64_t> order(static_cast<size_t>(n));
        for (int64_t r = begin; r < end; ++r) {
          const int64_t o = r / inner, j = r % inner;
          for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = px[(o * n + i) * inner + j];
          if (k <= kInsertionTopK) {
            // A kNN's k of 16 from rows of 512: one pass keeping the k best
            // in order; an element must beat the k-th to get in (most do
            // not), and goes after the equal ones already in (they have
            // smaller indices). 5-10x partial_sort's index comparisons.
            int64_t count = 0;
            for (int64_t i = 0; i < n; ++i) {
              const T& x = v[static_cast<size_t>(i)];
              auto better = [&](int64_t at) {
                const T& y = v[static_cast<size_t>(order[static_cast<size_t>(at)])];
                return largest ? less_nan_last(y, x) : less_nan_last(x, y);
              };
              int64_t pos;
              if (count == k) {
                if (k == 0 || !better(k - 1)) continue;
                pos = k - 1;
              } else {
                pos = count++;
              }
              for (; pos > 0 && better(pos - 1); --pos)
                order[static_cast<size_t>(pos)] = order[static_cast<size_t>(pos - 1)];
              order[static_cast<size_t>(pos)] = i;
            }
          } else {
            std::iota(order.begin(), order.end(), int64_t{0});
            auto before = [&](int64_t a, int64_t b) {
              const T& va = v[static_cast<size_t>(a)];
              const T& vb = v[static_cast<size_t>(b)];
              if (largest ? less_nan_last(vb, va) : less_nan_last(va, vb)) return true;
              if (largest ? less_nan_last(va, vb) : less_nan_last(vb, va)) return false;
              return a < b;
            };
            std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
          }
          if (!sorted) std::sort(order.begin(), order.begin() + k);  // by index: any order is allowed
          for (int64_t t = 0; t < k; ++t) {
            const int64_t off = (o * k + t) * inner + j;
            val.data<T>()[off] = v[static_cast<size_t>(order[static_cast<size_t>(t)])];
            ind.data<int64_t>()[off] = order[static_cast<size_t>(t)];
          }
        }
      });
    });
  };
  return s;
}

// ------------------------------------------------------------ ArgMax / ArgMin

template <bool Max>
OpSchema arg_schema(const char* name) {
  return OpSchema{
      .name = name,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .infer =
          [](InferContext& ctx) {
            const ValueType& in = ctx.input_type(0);
            if (!in.shape) return ctx.set_output(0, DType::kInt64, std::nullopt);
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", 0), in.rank(), ctx.node());
            DimVector out = *in.shape;
            if (ctx.node().attr_int("keepdims", 1) != 0)
              out[static_cast<size_t>(axis)] = Dim::known(1);
            else
              out.erase(out.begin() + axis);
            ctx.set_output(0, DType::kInt64, out);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            const Node& node = ctx.node();
            int64_t axis = normalize_axis(node.attr_int("axis", 0), x.rank(), node);
            bool last = node.opset >= 12 && node.attr_int("select_last_index", 0) != 0;
            int64_t outer, n, inner;
            split_at_axis(x.shape(), axis, &outer, &n, &inner);
            if (n == 0) throw ctx.error("cannot reduce over an empty axis " + std::to_string(axis));
            Shape out_shape = x.shape();
            if (node.attr_int("keepdims", 1) != 0)
              out_shape[static_cast<size_t>(axis)] = 1;
            else
              out_shape.erase(out_shape.begin() + axis);
            Tensor& out = ctx.output(0, DType::kInt64, out_shape);
            dispatch<NumericTypes>(x.dtype(), node.op_type, [&]<typename T>() {
              const T* px = x.data<T>();
              for (int64_t o = 0; o < outer; ++o)
                for (int64_t j = 0; j < inner; ++j) {
                  int64_t best = 0;
                  for (int64_t i = 1; i < n; ++i) {
                    const T& v = px[(o * n + i) * inner + j];
                    const T& b = px[(o * n + best) * inner + j];
                    bool better = Max ? less_nan_last(b, v) : less_nan_last(v, b);
                    bool equal = !less_nan_last(b, v) && !less_nan_last(v, b);
                    if (better || (last && equal)) best = i;
                  }
                  out.data<int64_t>()[o * inner + j] = best;
                }
            });
          },
  };
}

// --------------------------------------------------------------------- Unique

OpSchema unique_schema() {
  return OpSchema{
      .name = "Unique",
      .since = 11,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 4,
      .infer =
          [](InferContext& ctx) {
            const ValueType& in = ctx.input_type(0);
            std::optional<DimVector> y;
            if (!ctx.node().has_attr("axis")) {
              y = DimVector{Dim::unknown()};
            } else if (in.shape) {
              y = *in.shape;
              (*y)[static_cast<size_t>(normalize_axis(ctx.node().attr_int("axis", 0), in.rank(), ctx.node()))] =
                  Dim::unknown();
            }
            ctx.set_output(0, in.dtype, y);
            ctx.set_output(1, DType::kInt64, DimVector{Dim::unknown()});
            std::optional<DimVector> inv;
            if (!ctx.node().has_attr("axis")) {
              int64_t total = 1;
              bool known = in.shape.has_value();
              if (known)
                for (const Dim& d : *in.shape) known = known && d.is_known(), total *= d.is_known() ? d.value : 1;
              inv = DimVector{known ? Dim::known(total) : Dim::unknown()};
            } else if (in.shape) {
              inv = DimVector{(*in.shape)[static_cast<size_t>(
                  normalize_axis(ctx.node().attr_int("axis", 0), in.rank(), ctx.node()))]};
            }
            ctx.set_output(2, DType::kInt64, inv);
            ctx.set_output(3, DType::kInt64, DimVector{Dim::unknown()});
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            const Node& node = ctx.node();
            bool has_axis = node.has_attr("axis");
            Shape view = has_axis ? x.shape() : Shape{x.numel()};
            int64_t axis = has_axis ? normalize_axis(node.attr_int("axis", 0), x.rank(), node) : 0;
            int64_t outer, n, inner;
            split_at_axis(view, axis, &outer, &n, &inner);
            bool sorted = node.attr_int("sorted", 1) != 0;
            std::vector<int64_t> firsts, inverse(static_cast<size_t>(n)), counts;
            dispatch<AllTypes>(x.dtype(), "Unique", [&]<typename T>() {
              const T* px = x.data<T>();
              // Slice i is the elements at position i along the axis.
              auto cmp = [&](int64_t a, int64_t b) {  // -1, 0, 1
                for (int64_t o = 0; o < outer; ++o)
                  for (int64_t j = 0; j < inner; ++j) {
                    const T& va = px[(o * n + a) * inner + j];
                    const T& vb = px[(o * n + b) * inner + j];
                    if (less_nan_last(va, vb)) return -1;
                    if (less_nan_last(vb, va)) return 1;
                  }
                return 0;
              };
              std::vector<int64_t> order(static_cast<size_t>(n));
              std::iota(order.begin(), order.end(), int64_t{0});
              std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
              // Groups of equal slices in sorted order; the first of each group is
              // its first occurrence thanks to the stable sort.
              std::vector<int64_t> group_of(static_cast<size_t>(n));
              for (size_t i = 0; i < order.size(); ++i) {
                if (i == 0 || cmp(order[i - 1], order[i]) != 0) {
                  firsts.push_back(order[i]);
                  counts.push_back(0);
                }
                group_of[static_cast<size_t>(order[i])] = static_cast<int64_t>(firsts.size()) - 1;
                ++counts.back();
              }
              std::vector<int64_t> rank(firsts.size());
              std::iota(rank.begin(), rank.end(), int64_t{0});
              if (!sorted) {
                // Order groups by first occurrence.
                std::vector<int64_t> g(firsts.size());
                std::iota(g.begin(), g.end(), int64_t{0});
                std::sort(g.begin(), g.end(), [&](int64_t a, int64_t b) {
                  return firsts[static_cast<size_t>(a)] < firsts[static_cast<size_t>(b)];
                });
                std::vector<int64_t> f2, c2;
                for (size_t p = 0; p < g.size(); ++p) {
                  rank[static_cast<size_t>(g[p])] = static_cast<int64_t>(p);
                  f2.push_back(firsts[static_cast<size_t>(g[p])]);
                  c2.push_back(counts[static_cast<size_t>(g[p])]);
                }
                firsts = f2;
                counts = c2;
              }
              for (int64_t i = 0; i < n; ++i)
                inverse[static_cast<size_t>(i)] = rank[static_cast<size_t>(group_of[static_cast<size_t>(i)])];
              int64_t u = static_cast<int64_t>(firsts.size());
              Shape ys = has_axis ? x.shape() : Shape{u};
              ys[static_cast<size_t>(axis)] = u;
              Tensor& y = ctx.output(0, x.dtype(), ys);
              for (int64_t o = 0; o < outer; ++o)
                for (int64_t p = 0; p < u; ++p)
                  copy_elements(x, (o * n + firsts[static_cast<size_t>(p)]) * inner, y, (o * u + p) * inner, inner);
            });
            auto put = [&](size_t i, const std::vector<int64_t>& v) {
              if (!ctx.has_output(i)) return;
              Tensor& t = ctx.output(i, DType::kInt64, {static_cast<int64_t>(v.size())});
              std::copy(v.begin(), v.end(), t.data<int64_t>());
            };
            put(1, firsts);
            put(2, inverse);
            put(3, counts);
          },
  };
}

}  // namespace

KILN_OP(TopK_1) { return topk_schema(1, 9); }
KILN_OP(TopK_10) { return topk_schema(10, INT_MAX); }
KILN_OP(ArgMax) { return arg_schema<true>("ArgMax"); }
KILN_OP(ArgMin) { return arg_schema<false>("ArgMin"); }
KILN_OP(Unique) { return unique_schema(); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(ArgMax) { return {.op = "ArgMax", .family = OpFamily::kReduction, .cost = cost::reduction(1)}; }

KILN_OP_FACTS(ArgMin) { return {.op = "ArgMin", .family = OpFamily::kReduction, .cost = cost::reduction(1)}; }

KILN_OP_FACTS(TopK) {
  // One comparison per input element, as ArgMax (the partial sort's extra
  // comparisons for k > 1 are not counted).
  return {.op = "TopK", .family = OpFamily::kReduction, .cost = cost::reduction(1)};
}

KILN_OP_FACTS(Unique) {
  return {.op = "Unique", .family = OpFamily::kOther, .cost = cost::not_counted("Unique is not counted")};
}

}  // namespace kiln
