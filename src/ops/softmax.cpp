// Softmax, LogSoftmax, Hardmax.
//
// Opset 1-12: the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
// (axis default 1) and the op works along the second dim. Opset 13+: the op
// works along the single dim `axis` (default -1).
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/vec_math_f32.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

enum class SoftKind { kSoftmax, kLogSoftmax, kHardmax };

// The 2-D coercion axis may be rank itself (everything in one row); negative
// values count from the back of the rank, not rank + 1.
int64_t coerce_axis(int64_t axis, int64_t rank, const Node& node) {
  if (axis < -rank || axis > rank)
    throw Error(node.describe() + ": axis " + std::to_string(axis) + " is out of range for rank " +
                std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

template <typename T>
void softmax_typed(SoftKind kind, const Tensor& x, const AxisView& v, Tensor& out) {
  const T* px = x.data<T>();
  T* po = out.data<T>();
  std::vector<double> buf(static_cast<size_t>(v.n));
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t i = 0; i < v.inner; ++i) {
      double mx = -std::numeric_limits<double>::infinity();
      int64_t arg = 0;
      for (int64_t k = 0; k < v.n; ++k) {
        double e = static_cast<double>(acc_t<T>(px[v.at(o, k, i)]));
        buf[static_cast<size_t>(k)] = e;
        if (e > mx) {  // first occurrence of the max wins (Hardmax)
          mx = e;
          arg = k;
        }
      }
      if (kind == SoftKind::kHardmax) {
        for (int64_t k = 0; k < v.n; ++k) po[v.at(o, k, i)] = static_cast<T>(k == arg ? 1.0 : 0.0);
        continue;
      }
      // A row without a finite max (all -inf, or some +inf) gives NaN either
      // way; shifting by 0 avoids computing inf - inf twice.
      double shift = std::isfinite(mx) ? mx : 0.0;
      double sum = 0;
      for (int64_t k = 0; k < v.n; ++k) sum += std::exp(buf[static_cast<size_t>(k)] - shift);
      double log_sum = std::log(sum);
      for (int64_t k = 0; k < v.n; ++k) {
        double e = buf[static_cast<size_t>(k)] - shift;
        double r = kind == SoftKind::kSoftmax ? std::exp(e) / sum : e - log_sum;
        po[v.at(o, k, i)] = static_cast<T>(r);
      }
    }
  }
}

// Softmax / LogSoftmax of float32 rows along a contiguous axis (inner == 1,
// the usual case): one vector sweep per row for max, exp (within 2 ulp,
// kernels/cpu/vec_math_f32.h) and sum, then one scale, so results are within
// a few ulp of the double reference above. Rows are spread over the pool.
void softmax_f32_rows(SoftKind kind, const float* x, float* y, int64_t rows, int64_t n, ThreadPool* pool) {
  const auto fn = vec_math_f32().softmax_rows;
  const bool log = kind == SoftKind::kLogSoftmax;
  parallel_for(rows * n >= 65536 ? pool : nullptr, rows,
               [&](int64_t begin, int64_t end) { fn(x + begin * n, y + begin * n, end - begin, n, log); });
}

// The same along an axis that is not innermost ([outer, n, inner], inner >
// 1, e.g. a channel softmax of [N, C, H, W]): each task takes up to kLanes
// positions of `inner` and walks the n rows of its slab with them as vector
// lanes, so every read is contiguous; the sums stay in double per lane.
void softmax_f32_strided(SoftKind kind, const float* x, float* y, int64_t outer, int64_t n, int64_t inner,
                         ThreadPool* pool) {
  constexpr int64_t kLanes = 256;
  const VecMathF32Fn exp = vec_math_f32().exp;
  const int64_t per_slab = (inner + kLanes - 1) / kLanes;
  parallel_for(outer * n * inner >= 65536 ? pool : nullptr, outer * per_slab, [&](int64_t begin, int64_t end) {
    float shift[kLanes], tmp[kLanes], log_sum[kLanes];
    double sum[kLanes];
    for (int64_t t = begin; t < end; ++t) {
      const int64_t o = t / per_slab, j0 = (t % per_slab) * kLanes, len = std::min(kLanes, inner - j0);
      const float* xs = x + o * n * inner + j0;
      float* ys = y + o * n * inner + j0;
      std::fill(shift, shift + len, -std::numeric_limits<float>::infinity());
      for (int64_t k = 0; k < n; ++k) {
        const float* row = xs + k * inner;
        for (int64_t j = 0; j < len; ++j) shift[j] = row[j] > shift[j] ? row[j] : shift[j];
      }
      for (int64_t j = 0; j < len; ++j) {
        if (!std::isfinite(shift[j])) shift[j] = 0.0f;  // as in softmax_typed
        sum[j] = 0;
      }
      for (int64_t k = 0; k < n; ++k) {
        const float* row = xs + k * inner;
        float* out = kind == SoftKind::kSoftmax ? ys + k * inner : tmp;  // softmax keeps e for the divide
        for (int64_t j = 0; j < len; ++j) out[j] = row[j] - shift[j];
        exp(out, out, len);
        for (int64_t j = 0; j < len; ++j) sum[j] += out[j];
      }
      if (kind == SoftKind::kSoftmax) {
        for (int64_t j = 0; j < len; ++j) tmp[j] = static_cast<float>(sum[j]);
        for (int64_t k = 0; k < n; ++k) {
          float* out = ys + k * inner;
          for (int64_t j = 0; j < len; ++j) out[j] = out[j] / tmp[j];
        }
      } else {
        for (int64_t j = 0; j < len; ++j) log_sum[j] = static_cast<float>(std::log(sum[j]));
        for (int64_t k = 0; k < n; ++k) {
          const float* row = xs + k * inner;
          float* out = ys + k * inner;
          for (int64_t j = 0; j < len; ++j) out[j] = (row[j] - shift[j]) - log_sum[j];
        }
      }
    }
  });
}

void softmax_compute(KernelContext& ctx, SoftKind kind, bool coerce_2d) {
  const Tensor& x = ctx.input(0);
  int64_t rank = x.rank();
  int64_t axis = ctx.node().attr_int("axis", coerce_2d ? 1 : -1);
  AxisView v;
  if (rank == 0) {
    // A scalar is a single-element row.
  } else if (coerce_2d) {
    v = flatten_view(x.shape(), coerce_axis(axis, rank, ctx.node()));
  } else {
    v = axis_view(x.shape(), normalize_axis(axis, rank, ctx.node()));
  }
  Tensor& out = ctx.output_uninitialized(0, x.dtype(), x.shape());
  // An empty input (e.g. [0, 2^40]) has an empty output: no row buffer is
  // sized from the other dims.
  if (x.numel() == 0) return;
  if (x.dtype() == DType::kFloat32 && kind != SoftKind::kHardmax && v.inner == 1) {
    softmax_f32_rows(kind, x.data<float>(), out.data<float>(), v.outer, v.n, ctx.thread_pool());
    return;
  }
  if (x.dtype() == DType::kFloat32 && kind != SoftKind::kHardmax && v.n > 0) {
    softmax_f32_strided(kind, x.data<float>(), out.data<float>(), v.outer, v.n, v.inner, ctx.thread_pool());
    return;
  }
  dispatch<FloatTypes>(x.dtype(), ctx.node().op_type, [&]<typename T>() { softmax_typed<T>(kind, x, v, out); });
}

OpSchema softmax_schema(const char* name, SoftKind kind, int since, int until) {
  OpSchema s;
  s.name = name;
  s.since = since;
  s.until = until;
  s.min_inputs = s.max_inputs = 1;
  s.max_outputs = 1;
  s.types = float_dtypes();
  bool coerce_2d = until <= 12;
  s.infer = [coerce_2d](InferContext& ctx) {
    const ValueType& t = ctx.input_type(0);
    if (t.shape && !t.shape->empty()) {
      int64_t axis = ctx.node().attr_int("axis", coerce_2d ? 1 : -1);
      if (coerce_2d)
        coerce_axis(axis, t.rank(), ctx.node());  // validates
      else
        normalize_axis(axis, t.rank(), ctx.node());
    }
    infer_same_as_input(ctx);
  };
  s.compute = [kind, coerce_2d](KernelContext& ctx) { softmax_compute(ctx, kind, coerce_2d); };
  return s;
}

}  // namespace

KILN_OP(Softmax_1) { return softmax_schema("Softmax", SoftKind::kSoftmax, 1, 12); }
KILN_OP(Softmax_13) { return softmax_schema("Softmax", SoftKind::kSoftmax, 13, INT_MAX); }
KILN_OP(LogSoftmax_1) { return softmax_schema("LogSoftmax", SoftKind::kLogSoftmax, 1, 12); }
KILN_OP(LogSoftmax_13) { return softmax_schema("LogSoftmax", SoftKind::kLogSoftmax, 13, INT_MAX); }
KILN_OP(Hardmax_1) { return softmax_schema("Hardmax", SoftKind::kHardmax, 1, 12); }
KILN_OP(Hardmax_13) { return softmax_schema("Hardmax", SoftKind::kHardmax, 13, INT_MAX); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Hardmax) { return {.op = "Hardmax", .family = OpFamily::kActivation, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(LogSoftmax) {
  return {.op = "LogSoftmax", .family = OpFamily::kActivation, .cost = cost::per_element(5)};
}

KILN_OP_FACTS(Softmax) { return {.op = "Softmax", .family = OpFamily::kActivation, .cost = cost::per_element(5)}; }

}  // namespace kiln
