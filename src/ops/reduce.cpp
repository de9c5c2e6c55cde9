// ReduceSum, ReduceMean, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2,
// ReduceLogSum, ReduceLogSumExp, ReduceSumSquare.
//
// Versions: `axes` is an attribute up to opset 12 (ReduceSum) / 17 (the
// others) and an optional input after, together with `noop_with_empty_axes`.
// Missing or empty axes reduce over all dims (or nothing, with the noop flag:
// then the composite ops still apply their element-wise part, e.g.
// ReduceLogSum gives log(x)). Reducing an empty set yields the identity of
// the reduction: 0 for sums, 1 for products, -inf (or the lowest value) for
// max and log-sum-exp, +inf (or the highest value) for min.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

enum class Reduce { kSum, kMean, kMax, kMin, kProd, kL1, kL2, kLogSum, kLogSumExp, kSumSquare };

struct ReducePlan {
  Shape keep_shape;   // input shape with the reduced dims set to 1
  Shape out_shape;    // keep_shape, or with the reduced dims dropped
  int64_t count = 1;  // input elements folded into each output element
};

// The axes to reduce, normalised; `all` when every dim is reduced.
std::vector<bool> reduced_dims(const std::vector<int64_t>& axes, bool all, int64_t rank, const Node& node) {
  std::vector<bool> red(static_cast<size_t>(rank), all);
  for (int64_t a : axes) {
    int64_t n = normalize_axis(a, rank, node);
    if (red[static_cast<size_t>(n)] && !all)
      throw Error(node.describe() + ": axis " + std::to_string(a) + " is repeated in axes");
    red[static_cast<size_t>(n)] = true;
  }
  return red;
}

// Reads keepdims / noop_with_empty_axes and the axes (attribute or input) at
// run time. Returns the reduced-dims mask for `rank`.
std::vector<bool> runtime_axes(const KernelContext& ctx, bool axes_input, int64_t rank) {
  const Node& node = ctx.node();
  std::vector<int64_t> axes;
  if (axes_input) {
    if (ctx.has_input(1)) axes = read_ints(ctx.input(1), ctx, "axes");
  } else {
    axes = node.attr_ints("axes");
  }
  bool noop = axes_input && node.attr_int("noop_with_empty_axes", 0) != 0;
  if (axes.empty()) return std::vector<bool>(static_cast<size_t>(rank), !noop);
  return reduced_dims(axes, false, rank, node);
}

ReducePlan make_plan(const Shape& in, const std::vector<bool>& red, bool keepdims) {
  ReducePlan p;
  for (size_t d = 0; d < in.size(); ++d) {
    if (red[d]) {
      p.count *= in[d];
      p.keep_shape.push_back(1);
      if (keepdims) p.out_shape.push_back(1);
    } else {
      p.keep_shape.push_back(in[d]);
      p.out_shape.push_back(in[d]);
    }
  }
  return p;
}

// Accumulator type: double for floats, 64-bit for integers, bool for bool.
template <typename T>
using reduce_acc_t = std::conditional_t<std::is_same_v<T, bool>, bool,
                                        std::conditional_t<std::is_floating_point_v<acc_t<T>>, double,
                                                           std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>>;

// Integer arithmetic wraps (like numpy) instead of overflowing into UB.
template <typename A>
A add_wrap(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
  else
    return a + b;
}
template <typename A>
A mul_wrap(A a, A b) {
  if constexpr (std::is_integral_v<A>)
    return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
  else
    return a * b;
}

template <typename A>
A lowest_value() {
  if constexpr (std::is_floating_point_v<A>)
    return -std::numeric_limits<A>::infinity();
  else
    return std::numeric_limits<A>::lowest();
}
template <typename A>
A highest_value() {
  if constexpr (std::is_floating_point_v<A>)
    return std::numeric_limits<A>::infinity();
  else
    return std::numeric_limits<A>::max();
}

// The value range of T (the output type), so an empty max of int8 is -128.
template <typename T, typename A>
A type_lowest() {
  if constexpr (std::is_integral_v<T>)
    return static_cast<A>(std::numeric_limits<T>::lowest());
  else
    return lowest_value<A>();
}
template <typename T, typename A>
A type_highest() {
  if constexpr (std::is_integral_v<T>)
    return static_cast<A>(std::numeric_limits<T>::max());
  else
    return highest_value<A>();
}

template <typename T>
void reduce_typed(Reduce kind, const Tensor& x, const ReducePlan& p, Tensor& out) {
  using A = reduce_acc_t<T>;
  const T* px = x.data<T>();
  T* po = out.data<T>();
  int64_t n_out = out.numel();
  std::vector<std::vector<int64_t>> strides = {broadcast_strides(p.keep_shape, x.shape())};

  if constexpr (std::is_same_v<T, bool>) {
    // Only max/min accept bool (False < True).
    std::vector<char> acc(static_cast<size_t>(n_out), kind == Reduce::kMin ? 1 : 0);
    for_each_broadcast(x.shape(), strides, [&](int64_t i, const int64_t* off) {
      if (kind == Reduce::kMax)
        acc[static_cast<size_t>(off[0])] |= px[i] ? 1 : 0;
      else
        acc[static_cast<size_t>(off[0])] &= px[i] ? 1 : 0;
    });
    for (int64_t j = 0; j < n_out; ++j) po[j] = acc[static_cast<size_t>(j)] != 0;
  } else if (kind == Reduce::kLogSumExp) {
    // Two passes for stability: the max, then log(sum(exp(x - max))) + max.
    std::vector<double> mx(static_cast<size_t>(n_out), -std::numeric_limits<double>::infinity());
    std::vector<double> sum(static_cast<size_t>(n_out), 0.0);
    for_each_broadcast(x.shape(), strides, [&](int64_t i, const int64_t* off) {
      double v = static_cast<double>(acc_t<T>(px[i]));
      double& m = mx[static_cast<size_t>(off[0])];
      if (v > m || std::isnan(v)) m = v;
    });
    for_each_broadcast(x.shape(), strides, [&](int64_t i, const int64_t* off) {
      double m = mx[static_cast<size_t>(off[0])];
      if (std::isinf(m)) return;
      sum[static_cast<size_t>(off[0])] += std::exp(static_cast<double>(acc_t<T>(px[i])) - m);
    });
    for (int64_t j = 0; j < n_out; ++j) {
      double m = mx[static_cast<size_t>(j)];
      double r = std::isinf(m) ? m : m + std::log(sum[static_cast<size_t>(j)]);
      po[j] = saturate_cast<T>(r);
    }
  } else {
    A init = A(0);
    if (kind == Reduce::kMax) init = type_lowest<T, A>();
    if (kind == Reduce::kMin) init = type_highest<T, A>();
    if (kind == Reduce::kProd) init = A(1);
    std::vector<A> acc(static_cast<size_t>(n_out), init);
    for_each_broadcast(x.shape(), strides, [&](int64_t i, const int64_t* off) {
      A v = static_cast<A>(acc_t<T>(px[i]));
      A& a = acc[static_cast<size_t>(off[0])];
      switch (kind) {
        case Reduce::kMax:
          if (v > a || v != v) a = v;  // NaN propagates, as in numpy
          break;
        case Reduce::kMin:
          if (v < a || v != v) a = v;
          break;
        case Reduce::kProd: a = mul_wrap(a, v); break;
        case Reduce::kL1: a = add_wrap(a, v < A(0) ? static_cast<A>(A(0) - v) : v); break;
        case Reduce::kL2:
        case Reduce::kSumSquare: a = add_wrap(a, mul_wrap(v, v)); break;
        default: a = add_wrap(a, v); break;  // sum, mean, log-sum
      }
    });
    for (int64_t j = 0; j < n_out; ++j) {
      A a = acc[static_cast<size_t>(j)];
      switch (kind) {
        case Reduce::kMean:
          if constexpr (std::is_integral_v<A>)
            po[j] = static_cast<T>(p.count == 0 ? A(0) : a / static_cast<A>(p.count));
          else
            po[j] = static_cast<T>(a / static_cast<double>(p.count));
          break;
        case Reduce::kL2: po[j] = saturate_cast<T>(std::sqrt(static_cast<double>(a))); break;
        case Reduce::kLogSum: po[j] = saturate_cast<T>(std::log(static_cast<double>(a))); break;
        default: po[j] = static_cast<T>(a); break;
      }
    }
  }
}

// Float32 Sum/Mean/Max/Min over one contiguous block of axes, viewing x as
// [outer, n, inner] (n: the reduced block): a global average over H x W, a
// last-axis mean. Sums accumulate in double like the generic loop; with
// inner == 1 in four interleaved partial sums, so the loop is not one long
// dependency chain. Returns false when the shape or op does not fit.
bool reduce_f32_block(Reduce kind, const Tensor& x, const std::vector<bool>& red, const ReducePlan& p, Tensor& out,
                      ThreadPool* pool) {
  if (x.dtype() != DType::kFloat32) return false;
  if (kind != Reduce::kSum && kind != Reduce::kMean && kind != Reduce::kMax && kind != Reduce::kMin) return false;
  size_t first = red.size(), last = 0;
  for (size_t d = 0; d < red.size(); ++d)
    if (red[d] && x.shape()[d] != 1) first = std::min(first, d), last = d;
  if (first > last) return false;  // nothing reduced
  int64_t outer = 1, n = 1, inner = 1;
  for (size_t d = 0; d < red.size(); ++d) {
    const int64_t e = x.shape()[d];
    if (d < first)
      outer *= e;
    else if (d > last)
      inner *= e;
    else if (red[d] || e == 1)
      n *= e;
    else
      return false;  // a kept axis inside the reduced block
  }
  if (n == 0 || out.numel() == 0) return false;
  const float* px = x.data<float>();
  float* po = out.data<float>();
  const bool sum = kind == Reduce::kSum || kind == Reduce::kMean;
  const auto finish = [&](double a) {
    return static_cast<float>(kind == Reduce::kMean ? a / static_cast<double>(p.count) : a);
  };
  parallel_for(outer * n * inner >= 65536 ? pool : nullptr, outer, [&](int64_t b, int64_t e) {
    std::vector<double> acc(static_cast<size_t>(inner));
    for (int64_t o = b; o < e; ++o) {
      const float* row = px + o * n * inner;
      if (inner == 1 && sum) {
        double a[4] = {0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 4 <= n; i += 4)
          for (int k = 0; k < 4; ++k) a[k] += static_cast<double>(row[i + k]);
        for (; i < n; ++i) a[0] += static_cast<double>(row[i]);
        po[o] = finish((a[0] + a[1]) + (a[2] + a[3]));
        continue;
      }
      float* y = po + o * inner;
      if (sum) {
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < inner; ++j) acc[static_cast<size_t>(j)] += static_cast<double>(row[i * inner + j]);
        for (int64_t j = 0; j < inner; ++j) y[j] = finish(acc[static_cast<size_t>(j)]);
      } else {
        std::copy(row, row + inner, y);
        // NaN propagates, as in the generic loop; written as selects (no
        // branch) so that the loops vectorize.
        if (kind == Reduce::kMax) {
          for (int64_t i = 1; i < n; ++i) {
            const float* r = row + i * inner;
            for (int64_t j = 0; j < inner; ++j) y[j] = (r[j] > y[j] || r[j] != r[j]) ? r[j] : y[j];
          }
        } else {
          for (int64_t i = 1; i < n; ++i) {
            const float* r = row + i * inner;
            for (int64_t j = 0; j < inner; ++j) y[j] = (r[j] < y[j] || r[j] != r[j]) ? r[j] : y[j];
          }
        }
      }
    }
  });
  return true;
}

void reduce_compute(KernelContext& ctx, Reduce kind, bool axes_input) {
  const Tensor& x = ctx.input(0);
  bool keepdims = ctx.node().attr_int("keepdims", 1) != 0;
  std::vector<bool> red = runtime_axes(ctx, axes_input, x.rank());
  ReducePlan p = make_plan(x.shape(), red, keepdims);
  Tensor& out = ctx.output(0, x.dtype(), p.out_shape);
  if (reduce_f32_block(kind, x, red, p, out, ctx.thread_pool())) return;
  if (x.dtype() == DType::kBool) {
    if (kind != Reduce::kMax && kind != Reduce::kMin)
      throw ctx.error("bool input is only valid for ReduceMax/ReduceMin");
    reduce_typed<bool>(kind, x, p, out);
    return;
  }
  dispatch<NumericTypes>(x.dtype(), ctx.node().op_type, [&]<typename T>() { reduce_typed<T>(kind, x, p, out); });
}

void reduce_infer(InferContext& ctx, bool axes_input) {
  const Node& node = ctx.node();
  const ValueType& in = ctx.input_type(0);
  bool keepdims = node.attr_int("keepdims", 1) != 0;
  bool noop = axes_input && node.attr_int("noop_with_empty_axes", 0) != 0;
  std::vector<int64_t> axes;
  bool known = true;
  if (!axes_input) {
    axes = node.attr_ints("axes");
  } else if (ctx.has_input(1) && !ctx.input_ints(1, &axes)) {
    // Not a constant; still known to be empty when its static shape says so.
    const ValueType& at = ctx.input_type(1);
    known = at.is_static() && shape_numel(at.static_shape()) == 0;
    axes.clear();
  }
  if (!in.shape) {
    ctx.set_output(0, in.dtype, std::nullopt);
    return;
  }
  int64_t rank = in.rank();
  if (!known) {
    if (keepdims)
      ctx.set_output(0, in.dtype, DimVector(static_cast<size_t>(rank), Dim::unknown()));
    else
      ctx.set_output(0, in.dtype, std::nullopt);
    return;
  }
  std::vector<bool> red =
      axes.empty() ? std::vector<bool>(static_cast<size_t>(rank), !noop) : reduced_dims(axes, false, rank, node);
  DimVector out;
  for (size_t d = 0; d < red.size(); ++d) {
    if (!red[d])
      out.push_back((*in.shape)[d]);
    else if (keepdims)
      out.push_back(Dim::known(1));
  }
  ctx.set_output(0, in.dtype, out);
}

OpSchema reduce_schema(const char* name, Reduce kind, int since, int until, bool axes_input, bool with_bool) {
  OpSchema s;
  s.name = name;
  s.since = since;
  s.until = until;
  s.min_inputs = 1;
  s.max_inputs = axes_input ? 2 : 1;
  s.max_outputs = 1;
  s.types = numeric_dtypes();
  if (with_bool) s.types.push_back(DType::kBool);
  s.infer = [axes_input](InferContext& ctx) { reduce_infer(ctx, axes_input); };
  s.compute = [kind, axes_input](KernelContext& ctx) { reduce_compute(ctx, kind, axes_input); };
  return s;
}

}  // namespace

// ReduceSum took axes as an input from opset 13; the others from 18.
KILN_OP(ReduceSum_1) { return reduce_schema("ReduceSum", Reduce::kSum, 1, 12, false, false); }
KILN_OP(ReduceSum_13) { return reduce_schema("ReduceSum", Reduce::kSum, 13, INT_MAX, true, false); }

#define KILN_REDUCE_OP(Name, Kind)                                                      \
  KILN_OP(Name##_1) { return reduce_schema(#Name, Reduce::Kind, 1, 17, false, false); } \
  KILN_OP(Name##_18) { return reduce_schema(#Name, Reduce::Kind, 18, INT_MAX, true, false); }

KILN_REDUCE_OP(ReduceMean, kMean)
KILN_REDUCE_OP(ReduceProd, kProd)
KILN_REDUCE_OP(ReduceL1, kL1)
KILN_REDUCE_OP(ReduceL2, kL2)
KILN_REDUCE_OP(ReduceLogSum, kLogSum)
KILN_REDUCE_OP(ReduceLogSumExp, kLogSumExp)
KILN_REDUCE_OP(ReduceSumSquare, kSumSquare)
#undef KILN_REDUCE_OP

// ReduceMax/ReduceMin accept bool from opset 20.
KILN_OP(ReduceMax_1) { return reduce_schema("ReduceMax", Reduce::kMax, 1, 17, false, false); }
KILN_OP(ReduceMax_18) { return reduce_schema("ReduceMax", Reduce::kMax, 18, 19, true, false); }
KILN_OP(ReduceMax_20) { return reduce_schema("ReduceMax", Reduce::kMax, 20, INT_MAX, true, true); }
KILN_OP(ReduceMin_1) { return reduce_schema("ReduceMin", Reduce::kMin, 1, 17, false, false); }
KILN_OP(ReduceMin_18) { return reduce_schema("ReduceMin", Reduce::kMin, 18, 19, true, false); }
KILN_OP(ReduceMin_20) { return reduce_schema("ReduceMin", Reduce::kMin, 20, INT_MAX, true, true); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(ReduceL1) { return {.op = "ReduceL1", .family = OpFamily::kReduction, .cost = cost::reduction(2)}; }

KILN_OP_FACTS(ReduceL2) { return {.op = "ReduceL2", .family = OpFamily::kReduction, .cost = cost::reduction(2)}; }

KILN_OP_FACTS(ReduceLogSum) {
  return {.op = "ReduceLogSum", .family = OpFamily::kReduction, .cost = cost::reduction(1)};
}

KILN_OP_FACTS(ReduceLogSumExp) {
  return {.op = "ReduceLogSumExp", .family = OpFamily::kReduction, .cost = cost::reduction(2)};
}

KILN_OP_FACTS(ReduceMax) { return {.op = "ReduceMax", .family = OpFamily::kReduction, .cost = cost::reduction(1)}; }

KILN_OP_FACTS(ReduceMean) {
  return {.op = "ReduceMean", .family = OpFamily::kReduction, .cost = cost::reduction(1, true)};
}

KILN_OP_FACTS(ReduceMin) { return {.op = "ReduceMin", .family = OpFamily::kReduction, .cost = cost::reduction(1)}; }

KILN_OP_FACTS(ReduceProd) { return {.op = "ReduceProd", .family = OpFamily::kReduction, .cost = cost::reduction(1)}; }

KILN_OP_FACTS(ReduceSum) { return {.op = "ReduceSum", .family = OpFamily::kReduction, .cost = cost::reduction(1)}; }

KILN_OP_FACTS(ReduceSumSquare) {
  return {.op = "ReduceSumSquare", .family = OpFamily::kReduction, .cost = cost::reduction(2)};
}

}  // namespace kiln
