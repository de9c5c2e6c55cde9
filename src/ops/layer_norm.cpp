// LayerNormalization (17), RMSNormalization (23), GroupNormalization (18, 21):
// standardise blocks of the input, then scale (and shift).
//
// The reference kernels compute statistics in double (at least the precision
// any stash_type asks for) and round each output once; float32 fast paths for
// LayerNormalization and RMSNormalization sit beside them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/vec_math_f32.h"
#include "ops/layer_norm_rows.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

bool is_float_dtype_code(int64_t t) {
  return t == static_cast<int64_t>(DType::kFloat32) || t == static_cast<int64_t>(DType::kFloat64) ||
         t == static_cast<int64_t>(DType::kFloat16) || t == static_cast<int64_t>(DType::kBFloat16);
}

std::string check_stash_type(const Node& n) {
  int64_t st = n.attr_int("stash_type", 1);
  return is_float_dtype_code(st) ? std::string() : "stash_type " + std::to_string(st) + " is not a float type";
}

// ------------------------------------------- float32 fast paths (LN, RMS)
//
// The reference kernels below are the specification; these take the common
// case: float32 throughout, stash_type float32, and Scale / B that are either
// one value per element of the normalized block (x.shape[axis:], up to
// leading 1s) or a single value. Statistics accumulate in float with eight
// independent partial sums (so the compiler can keep them in vector
// registers without reassociating); the mean gets one correction pass (the
// corrected two-pass algorithm), which keeps rows of 768 values within about
// 1e-6 of the double reference. Rows are spread over the thread pool.

// Inputs with fewer elements run on the calling thread. Low: after a
// parallel GEMM half of a transformer's [64, 144] activations sit in the other
// core's cache, and splitting the rows the same way keeps them there (a
// conformer block's 20 LayerNorms at 2 threads: 0.26 -> 0.135 ms).
constexpr int64_t kParallelElements = 4096;

enum class ParamLayout { kUnsupported, kPerElement, kSingle };

// How a float32 Scale / B tensor `p` maps onto the normalized block
// x_shape[axis:].
ParamLayout param_layout(const Tensor& p, const Shape& x_shape, int64_t axis) {
  if (p.dtype() != DType::kFloat32 || p.rank() > static_cast<int>(x_shape.size())) return ParamLayout::kUnsupported;
  if (p.numel() == 1) return ParamLayout::kSingle;
  auto strip_ones = [](auto first, auto last) {
    while (first != last && *first == 1) ++first;
    return Shape(first, last);
  };
  Shape block = strip_ones(x_shape.begin() + axis, x_shape.end());
  Shape param = strip_ones(p.shape().begin(), p.shape().end());
  return block == param ? ParamLayout::kPerElement : ParamLayout::kUnsupported;
}

constexpr int kLanes = 8;

// Sum of x - c over a row. (Each statistic gets its own loop: GCC 12
// vectorizes a loop with one accumulator array well, but one that fills two
// at once about 4x slower than the two loops together.)
float centered_sum_f32(const float* __restrict x, int64_t n, float c) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[k + j] - c;
  float s = 0;
  for (; k < n; ++k) s += x[k] - c;
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// Sum of (x - c)^2 over a row.
float centered_sum_sq_f32(const float* __restrict x, int64_t n, float c) {
  float acc[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      float d = x[k + j] - c;
      acc[j] += d * d;
    }
  float s = 0;
  for (; k < n; ++k) s += (x[k] - c) * (x[k] - c);
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

}  // namespace

RowStats layer_norm_stats_f32(const float* x, int64_t n, double eps) {
  float m = centered_sum_f32(x, n, 0.0f) / static_cast<float>(n);
  float s1 = centered_sum_f32(x, n, m), s2 = centered_sum_sq_f32(x, n, m);
  double dm = static_cast<double>(s1) / static_cast<double>(n);
  double var = std::max(static_cast<double>(s2) / static_cast<double>(n) - dm * dm, 0.0);
  return {m, static_cast<float>(dm), static_cast<float>(1.0 / std::sqrt(var + eps))};
}

void layer_norm_row_f32(const float* __restrict x, float* __restrict y, int64_t n, RowStats st,
                        const float* __restrict scale, const float* __restrict bias) {
  const float m = st.mean, dm = st.mean_error, is = st.inv_std;
  if (bias) {
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m - dm) * is * scale[k] + bias[k];
  } else {
    for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - m - dm) * is * scale[k];
  }
}

namespace {

// Scale / B as one value per element of a row: the tensor's own data when it
// is laid out so, else (a single value) that value repeated into `storage`.
const float* per_element_f32(const Tensor& p, ParamLayout layout, int64_t n, std::vector<float>& storage) {
  if (layout == ParamLayout::kPerElement) return p.data<float>();
  storage.assign(static_cast<size_t>(n), p.data<float>()[0]);
  return storage.data();
}

// Returns false (having done nothing) when the case is not the fast path's.
bool layer_norm_f32(KernelContext& ctx, int64_t axis) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  if (x.dtype() != DType::kFloat32 || node.attr_int("stash_type", 1) != static_cast<int64_t>(DType::kFloat32))
    return false;
  AxisView v = flatten_view(x.shape(), axis);
  if (v.n == 0) return false;
  ParamLayout scale_layout = param_layout(ctx.input(1), x.shape(), axis);
  ParamLayout bias_layout = ctx.has_input(2) ? param_layout(ctx.input(2), x.shape(), axis) : ParamLayout::kSingle;
  if (scale_layout == ParamLayout::kUnsupported || bias_layout == ParamLayout::kUnsupported) return false;
  std::vector<float> scale_storage, bias_storage;
  const float* scale = per_element_f32(ctx.input(1), scale_layout, v.n, scale_storage);
  const float* bias = ctx.has_input(2) ? per_element_f32(ctx.input(2), bias_layout, v.n, bias_storage) : nullptr;
  double eps = node.attr_float("epsilon", 1e-5f);
  Shape stat_shape = x.shape();
  for (size_t d = static_cast<size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
  // Every element of every output is written below.
  const float* px = x.data<float>();
  float* py = ctx.output_uninitialized(0, DType::kFloat32, x.shape()).data<float>();
  float* pmean = ctx.has_output(1) ? ctx.output_uninitialized(1, DType::kFloat32, stat_shape).data<float>() : nullptr;
  float* pinv = ctx.has_output(2) ? ctx.output_uninitialized(2, DType::kFloat32, stat_shape).data<float>() : nullptr;
  ThreadPool* pool = x.numel() >= kParallelElements ? ctx.thread_pool() : nullptr;
  const VecMathF32& vm = vec_math_f32();
  parallel_for(pool, v.outer, [&](int64_t begin, int64_t end) {
    vm.layer_norm_rows(px + begin * v.n, py + begin * v.n, end - begin, v.n, eps, scale, bias,
                       pmean ? pmean + begin : nullptr, pinv ? pinv + begin : nullptr);
  });
  return true;
}

bool rms_norm_f32(KernelContext& ctx, int64_t axis) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  if (x.dtype() != DType::kFloat32 || node.attr_int("stash_type", 1) != static_cast<int64_t>(DType::kFloat32))
    return false;
  AxisView v = flatten_view(x.shape(), axis);
  ParamLayout scale_layout = param_layout(ctx.input(1), x.shape(), axis);
  if (v.n == 0 || scale_layout == ParamLayout::kUnsupported) return false;
  std::vector<float> scale_storage;
  const float* scale = per_element_f32(ctx.input(1), scale_layout, v.n, scale_storage);
  double eps = node.attr_float("epsilon", 1e-5f);
  const float* px = x.data<float>();
  float* py = ctx.output_uninitialized(0, DType::kFloat32, x.shape()).data<float>();  // every element written
  ThreadPool* pool = x.numel() >= kParallelElements ? ctx.thread_pool() : nullptr;
  parallel_for(pool, v.outer, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      double mean_sq = static_cast<double>(centered_sum_sq_f32(px + r * v.n, v.n, 0.0f)) / static_cast<double>(v.n);
      layer_norm_row_f32(px + r * v.n, py + r * v.n, v.n,
                         {0.0f, 0.0f, static_cast<float>(1.0 / std::sqrt(mean_sq + eps))}, scale, nullptr);
    }
  });
  return true;
}

// ------------------------------------------------------- LayerNormalization

void layer_norm_infer(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  DType stash = static_cast<DType>(ctx.node().attr_int("stash_type", 1));
  ctx.set_output(0, x);
  std::optional<DimVector> stat_shape;
  if (x.shape) {
    int64_t axis = normalize_axis(ctx.node().attr_int("axis", -1), x.rank(), ctx.node());
    stat_shape = *x.shape;
    for (size_t d = static_cast<size_t>(axis); d < stat_shape->size(); ++d) (*stat_shape)[d] = Dim::known(1);
  }
  ctx.set_output(1, stash, stat_shape);
  ctx.set_output(2, stash, stat_shape);
}

// An empty input (e.g. [0, 2^40]) gives an empty output, and statistics
// of empty rows (NaN), without sizing any buffer from its other dims.
void layer_norm_empty(KernelContext& ctx, int64_t axis) {
  const Tensor& x = ctx.input(0);
  ctx.output(0, x.dtype(), x.shape());
  Shape stat_shape = x.shape();
  for (size_t d = static_cast<size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
  const DType stash = static_cast<DType>(ctx.node().attr_int("stash_type", 1));
  for (size_t i = 1; i <= 2; ++i) {
    if (!ctx.has_output(i)) continue;
    Tensor& st = ctx.output(i, stash, stat_shape);
    dispatch<FloatTypes>(stash, ctx.node().op_type, [&]<typename T>() {
      for (int64_t k = 0; k < st.numel(); ++k)
        st.data<T>()[k] = static_cast<T>(std::numeric_limits<float>::quiet_NaN());
    });
  }
}

void layer_norm_compute(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  int64_t axis = normalize_axis(node.attr_int("axis", -1), x.rank(), node);
  if (x.numel() == 0) return layer_norm_empty(ctx, axis);
  if (layer_norm_f32(ctx, axis)) return;
  double eps = node.attr_float("epsilon", 1e-5f);
  DType stash = static_cast<DType>(node.attr_int("stash_type", 1));
  AxisView v = flatten_view(x.shape(), axis);
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> scale = expand_doubles(ctx, ctx.input(1), x.shape(), "Scale");
  std::vector<double> bias =
      ctx.has_input(2) ? expand_doubles(ctx, ctx.input(2), x.shape(), "B") : std::vector<double>(xv.size(), 0.0);
  std::vector<double> y(xv.size()), mean(static_cast<size_t>(v.outer)), inv(static_cast<size_t>(v.outer));
  for (int64_t o = 0; o < v.outer; ++o) {
    size_t base = static_cast<size_t>(o * v.n);
    double m = 0, var = 0;
    for (int64_t k = 0; k < v.n; ++k) m += xv[base + static_cast<size_t>(k)];
    m /= static_cast<double>(v.n);
    for (int64_t k = 0; k < v.n; ++k) {
      double d = xv[base + static_cast<size_t>(k)] - m;
      var += d * d;
    }
    var /= static_cast<double>(v.n);
    double is = 1.0 / std::sqrt(var + eps);
    for (int64_t k = 0; k < v.n; ++k) {
      size_t i = base + static_cast<size_t>(k);
      y[i] = (xv[i] - m) * is * scale[i] + bias[i];
    }
    mean[static_cast<size_t>(o)] = m;
    inv[static_cast<size_t>(o)] = is;
  }
  store_doubles(ctx, 0, x.dtype(), x.shape(), y);
  Shape stat_shape = x.shape();
  for (size_t d = static_cast<size_t>(axis); d < stat_shape.size(); ++d) stat_shape[d] = 1;
  if (ctx.has_output(1)) store_doubles(ctx, 1, stash, stat_shape, mean);
  if (ctx.has_output(2)) store_doubles(ctx, 2, stash, stat_shape, inv);
}

// --------------------------------------------------------- RMSNormalization

void rms_norm_compute(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& s = ctx.input(1);
  const Node& node = ctx.node();
  int64_t axis = normalize_axis(node.attr_int("axis", -1), x.rank(), node);
  if (x.numel() == 0) {  // empty output; no buffer sized from the other dims
    ctx.output(0, ctx.input(1).dtype(), x.shape());
    return;
  }
  if (rms_norm_f32(ctx, axis)) return;
  double eps = node.attr_float("epsilon", 1e-5f);
  AxisView v = flatten_view(x.shape(), axis);
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> scale = expand_doubles(ctx, s, x.shape(), "scale");
  std::vector<double> y(xv.size());
  for (int64_t o = 0; o < v.outer; ++o) {
    size_t base = static_cast<size_t>(o * v.n);
    double ms = 0;
    for (int64_t k = 0; k < v.n; ++k) ms += xv[base + static_cast<size_t>(k)] * xv[base + static_cast<size_t>(k)];
    ms /= static_cast<double>(v.n);
    double rms = std::sqrt(ms + eps);
    for (int64_t k = 0; k < v.n; ++k) {
      size_t i = base + static_cast<size_t>(k);
      y[i] = xv[i] / rms * scale[i];
    }
  }
  store_doubles(ctx, 0, s.dtype(), x.shape(), y);  // Y takes scale's type (V)
}

// ------------------------------------------------------- GroupNormalization

// Opset 18: scale and bias hold one value per group; 21: one per channel.
void group_norm_compute(KernelContext& ctx, bool per_channel) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  double eps = node.attr_float("epsilon", 1e-5f);
  int64_t groups = node.attr_int("num_groups", 0);
  if (x.rank() < 2) throw ctx.error("X must have rank >= 2 (N x C x ...), got " + shape_str(x.shape()));
  int64_t n = x.dim(0), c = x.dim(1);
  if (groups <= 0 || c % groups != 0)
    throw ctx.error("num_groups " + std::to_string(groups) + " must be positive and divide the channel count " +
                    std::to_string(c));
  int64_t want = per_channel ? c : groups;
  for (size_t i = 1; i <= 2; ++i)
    if (ctx.input(i).numel() != want)
      throw ctx.error(std::string(i == 1 ? "scale" : "bias") + " must have " + std::to_string(want) +
                      (per_channel ? " (channels)" : " (num_groups)") + " elements, got shape " +
                      shape_str(ctx.input(i).shape()));
  std::vector<double> xv = to_doubles(x, node.op_type);
  std::vector<double> scale = to_doubles(ctx.input(1), node.op_type);
  std::vector<double> bias = to_doubles(ctx.input(2), node.op_type);
  int64_t spatial = c == 0 ? 0 : x.numel() / std::max<int64_t>(n * c, 1);
  int64_t cpg = c / groups;  // channels per group
  int64_t group_size = cpg * spatial;
  std::vector<double> y(xv.size());
  for (int64_t b = 0; b < n; ++b) {
    for (int64_t g = 0; g < groups; ++g) {
      size_t base = static_cast<size_t>((b * groups + g) * group_size);
      double m = 0, var = 0;
      for (int64_t k = 0; k < group_size; ++k) m += xv[base + static_cast<size_t>(k)];
      m /= static_cast<double>(group_size);
      for (int64_t k = 0; k < group_size; ++k) {
        double d = xv[base + static_cast<size_t>(k)] - m;
        var += d * d;
      }
      var /= static_cast<double>(group_size);
      double is = 1.0 / std::sqrt(var + eps);
      for (int64_t k = 0; k < group_size; ++k) {
        size_t i = base + static_cast<size_t>(k);
        size_t p = static_cast<size_t>(per_channel ? g * cpg + k / spatial : g);
        y[i] = (xv[i] - m) * is * scale[p] + bias[p];
      }
    }
  }
  store_doubles(ctx, 0, x.dtype(), x.shape(), y);
}

}  // namespace

KILN_OP(LayerNormalization) {
  return OpSchema{
      .name = "LayerNormalization",
      .since = 17,
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 3,
      .types = float_dtypes(),
      .check = check_stash_type,
      .infer = layer_norm_infer,
      .compute = layer_norm_compute,
  };
}

KILN_OP(RMSNormalization) {
  return OpSchema{
      .name = "RMSNormalization",
      .since = 23,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check = check_stash_type,
      .infer =
          [](InferContext& ctx) {
            const ValueType& x = ctx.input_type(0);
            if (x.shape) normalize_axis(ctx.node().attr_int("axis", -1), x.rank(), ctx.node());
            ctx.set_output(0, ctx.input_dtype(1), x.shape);
          },
      .compute = rms_norm_compute,
  };
}

static OpSchema group_norm_schema(int since, int until, bool per_channel) {
  return OpSchema{
      .name = "GroupNormalization",
      .since = since,
      .until = until,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check =
          [](const Node& n) {
            if (!n.has_attr("num_groups")) return std::string("attribute num_groups is required");
            return check_stash_type(n);
          },
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute = [per_channel](KernelContext& ctx) { group_norm_compute(ctx, per_channel); },
  };
}
KILN_OP(GroupNormalization_18) { return group_norm_schema(18, 20, false); }
KILN_OP(GroupNormalization_21) { return group_norm_schema(21, INT_MAX, true); }

namespace {

// Mean (add), subtract, square, add (variance), multiply by 1/sigma, then
// scale (and bias when given): per element.
OpCost layer_norm_cost(const Node& n) {
  return cost::elementwise(cost::mul(cost::out_numel(n), 5 + 1 + (n.has_input(2) ? 1 : 0)));
}

}  // namespace

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(GroupNormalization) {
  return {.op = "GroupNormalization", .family = OpFamily::kNormalization, .cost = cost::per_element(7)};
}

KILN_OP_FACTS(LayerNormalization) {
  return {.op = "LayerNormalization", .family = OpFamily::kNormalization, .cost = layer_norm_cost};
}

KILN_OP_FACTS(RMSNormalization) {
  return {.op = "RMSNormalization", .family = OpFamily::kNormalization, .cost = cost::per_element(4)};
}

}  // namespace kiln
