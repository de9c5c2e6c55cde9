// Pooling: MaxPool (Indices output from 8, ceil_mode/dilations from 10,
// int8/uint8 from 12), AveragePool (count_include_pad from 7, ceil_mode from
// 10, dilations from 19), LpPool (p a float at opset 1, an int from 2;
// ceil_mode/dilations from 18), GlobalAveragePool, GlobalMaxPool,
// GlobalLpPool and MaxUnpool. The kernels walk every window directly.
#include <cmath>
#include <limits>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "kernels/cpu/pool_f32.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

enum class PoolKind { kMax, kAverage, kLp };

bool pool_ceil_mode(const Node& node, PoolKind kind) {
  int min_opset = kind == PoolKind::kLp ? 18 : 10;
  return node.opset >= min_opset && node.attr_int("ceil_mode", 0) != 0;
}

std::string pool_check(const Node& node, PoolKind kind) {
  if (!node.has_attr("kernel_shape")) return "kernel_shape is required";
  int dil_opset = kind == PoolKind::kMax ? 10 : kind == PoolKind::kLp ? 18 : 19;
  if (node.opset < dil_opset && node.has_attr("dilations"))
    return "dilations are not defined before opset " + std::to_string(dil_opset);
  if (kind == PoolKind::kMax && node.attr_int("storage_order", 0) != 0 && node.attr_int("storage_order", 0) != 1)
    return "storage_order must be 0 or 1";
  return "";
}

void infer_pool(InferContext& ctx, PoolKind kind) {
  const ValueType& x = ctx.input_type(0);
  std::optional<DimVector> dims;
  if (x.shape) {
    Dim c = x.shape->size() >= 2 ? (*x.shape)[1] : Dim::unknown();
    dims = window_infer_dims(ctx, ctx.node().attr_ints("kernel_shape"), c, pool_ceil_mode(ctx.node(), kind));
  }
  ctx.set_output(0, x.dtype, dims);
  if (kind == PoolKind::kMax) ctx.set_output(1, DType::kInt64, dims);
}

template <typename T>
void pool_kernel(KernelContext& ctx, PoolKind kind, const WindowGeometry& g, const Tensor& x, Tensor& y,
                 int64_t* indices) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const Node& node = ctx.node();
  const size_t r = g.rank();
  const int64_t planes = x.dim(0) * x.dim(1);
  const int64_t in_sp = shape_numel(g.in), out_sp = shape_numel(g.out), k_sp = shape_numel(g.kernel);
  const bool include_pad = node.opset >= 7 && node.attr_int("count_include_pad", 0) != 0;
  const bool column_major = node.attr_int("storage_order", 0) == 1;
  double p = 2;
  if (kind == PoolKind::kLp)
    p = node.opset < 2 ? node.attr_float("p", 2.0f) : static_cast<double>(node.attr_int("p", 2));
  std::vector<int64_t> taps(static_cast<size_t>(k_sp) * r), col_stride(r, 1), pos(r);
  for (int64_t kk = 0; kk < k_sp; ++kk) {
    int64_t rem = kk;
    for (size_t d = r; d-- > 0;) {
      taps[static_cast<size_t>(kk) * r + d] = (rem % g.kernel[d]) * g.dilations[d];
      rem /= g.kernel[d];
    }
  }
  for (size_t d = 1; d < r; ++d) col_stride[d] = col_stride[d - 1] * g.in[d - 1];
  const T* px = x.data<T>();
  T* py = y.data<T>();
  for (int64_t pl = 0; pl < planes; ++pl) {
    const T* xp = px + pl * in_sp;
    for (int64_t o = 0; o < out_sp; ++o) {
      int64_t rem = o;
      for (size_t d = r; d-- > 0;) {
        pos[d] = (rem % g.out[d]) * g.strides[d] - g.pads_begin[d];
        rem /= g.out[d];
      }
      A best = std::numeric_limits<A>::lowest(), sum = 0;
      int64_t best_at = -1, count = 0;
      for (int64_t kk = 0; kk < k_sp; ++kk) {
        int64_t off = 0, coff = 0;
        bool inside = true, in_padded = true;
        for (size_t d = 0; d < r; ++d) {
          const int64_t q = pos[d] + taps[static_cast<size_t>(kk) * r + d];
          if (q < 0 || q >= g.in[d]) inside = false;
          if (q < -g.pads_begin[d] || q >= g.in[d] + g.pads_end[d]) in_padded = false;
          off = off * g.in[d] + q;
          coff += q * col_stride[d];
        }
        if (kind != PoolKind::kMax && include_pad && in_padded && !inside) ++count;
        if (!inside) continue;
        const A v = static_cast<A>(xp[off]);
        if (kind == PoolKind::kMax) {
          if (best_at < 0 || v > best) {
            best = v;
            best_at = column_major ? coff : off;
          }
        } else if (kind == PoolKind::kAverage) {
          sum += v;
          ++count;
        } else {
          sum += static_cast<A>(std::pow(std::abs(static_cast<double>(v)), p));
        }
      }
      A result;
      if (kind == PoolKind::kMax) {
        result = best;
        if (indices) indices[pl * out_sp + o] = best_at < 0 ? -1 : pl * in_sp + best_at;
      } else if (kind == PoolKind::kAverage) {
        result = count ? sum / static_cast<A>(count) : A(0);
      } else {
        result = static_cast<A>(std::pow(static_cast<double>(sum), 1.0 / p));
      }
      py[pl * out_sp + o] = static_cast<T>(result);
    }
  }
}

// 3-D pools are separable: a box's max is the max over its depth taps of
// the (height, width) window maxima, and its average (excluding padding or
// not) the average over its depth taps of the (height, width) averages,
// since the count of a box's taps is the product of its per-axis counts.
// So: the 2-D kernel over every depth plane into `planes` [N*C, D, OH, OW],
// then a 1-D pool along D over rows of OH*OW.
void pool_depth_f32(bool max, bool include_pad, const WindowGeometry& g, int64_t nc, const float* planes, float* y,
                    ThreadPool* pool) {
  const int64_t D = g.in[0], OD = g.out[0], row = g.out[1] * g.out[2];
  const int64_t lo = include_pad ? -g.pads_begin[0] : 0, hi = D + (include_pad ? g.pads_end[0] : 0);
  parallel_for(nc * OD * row >= 16384 ? pool : nullptr, nc * OD, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t p = t / OD, od = t % OD;
      float* out = y + t * row;
      const int64_t start = od * g.strides[0] - g.pads_begin[0];
      int64_t taps = 0, counted = 0;
      for (int64_t k = 0; k < g.kernel[0]; ++k) {
        const int64_t d = start + k * g.dilations[0];
        if (d >= lo && d < hi) ++counted;
        if (d < 0 || d >= D) continue;
        const float* in = planes + (p * D + d) * row;
        if (taps == 0)
          std::copy(in, in + row, out);
        else if (max)
          for (int64_t i = 0; i < row; ++i) out[i] = in[i] > out[i] ? in[i] : out[i];
        else
          for (int64_t i = 0; i < row; ++i) out[i] += in[i];
        ++taps;
      }
      if (taps == 0) {  // a window entirely in padding
        std::fill(out, out + row, max ? -std::numeric_limits<float>::infinity() : 0.0f);
      } else if (!max) {
        const float inv = 1.0f / static_cast<float>(counted);
        for (int64_t i = 0; i < row; ++i) out[i] *= inv;
      }
    }
  });
}

// The float32 fast path (kernels/cpu/pool_f32.h) takes 1-D, 2-D and 3-D max
// and average pools without the Indices output; returns false for the rest.
bool pool_f32_fast(KernelContext& ctx, PoolKind kind, const WindowGeometry& g, const Shape& out_shape) {
  const Tensor& x = ctx.input(0);
  if (x.dtype() != DType::kFloat32 || kind == PoolKind::kLp || g.rank() > 3) return false;
  if (kind == PoolKind::kMax && ctx.has_output(1)) return false;
  const bool include_pad = ctx.node().opset >= 7 && ctx.node().attr_int("count_include_pad", 0) != 0;
  if (g.rank() == 3) {
    // Depth planes as 2-D planes, then along depth.
    WindowGeometry hw;
    for (Shape WindowGeometry::*f :
         {&WindowGeometry::in, &WindowGeometry::kernel, &WindowGeometry::strides, &WindowGeometry::dilations,
          &WindowGeometry::pads_begin, &WindowGeometry::pads_end, &WindowGeometry::out})
      hw.*f = Shape((g.*f).begin() + 1, (g.*f).end());
    const int64_t nc = x.dim(0) * x.dim(1);
    Tensor planes = Tensor::uninitialized(DType::kFloat32, {nc * g.in[0], 1, g.out[1], g.out[2]});
    Pool2dF32Shape s;
    s.planes = nc * g.in[0];
    s.H = hw.in[0], s.W = hw.in[1], s.OH = hw.out[0], s.OW = hw.out[1], s.KH = hw.kernel[0], s.KW = hw.kernel[1];
    s.stride_h = hw.strides[0], s.stride_w = hw.strides[1], s.dilation_h = hw.dilations[0];
    s.dilation_w = hw.dilations[1], s.pad_top = hw.pads_begin[0], s.pad_left = hw.pads_begin[1];
    s.pad_bottom = hw.pads_end[0], s.pad_right = hw.pads_end[1];
    if (planes.numel() > 0) {
      if (kind == PoolKind::kMax)
        max_pool2d_f32(s, x.data<float>(), planes.data<float>(), ctx.thread_pool());
      else
        average_pool2d_f32(s, include_pad, x.data<float>(), planes.data<float>(), ctx.thread_pool());
    }
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, out_shape);
    if (y.numel() > 0)
      pool_depth_f32(kind == PoolKind::kMax, include_pad, g, nc, planes.data<float>(), y.data<float>(),
                     ctx.thread_pool());
    return true;
  }
  const bool two_d = g.rank() == 2;
  const size_t w = two_d ? 1 : 0;  // the width dim of g
  Pool2dF32Shape s;
  s.planes = x.dim(0) * x.dim(1);
  s.W = g.in[w];
  s.OW = g.out[w];
  s.KW = g.kernel[w];
  s.stride_w = g.strides[w];
  s.dilation_w = g.dilations[w];
  s.pad_left = g.pads_begin[w];
  s.pad_right = g.pads_end[w];
  if (two_d) {
    s.H = g.in[0];
    s.OH = g.out[0];
    s.KH = g.kernel[0];
    s.stride_h = g.strides[0];
    s.dilation_h = g.dilations[0];
    s.pad_top = g.pads_begin[0];
    s.pad_bottom = g.pads_end[0];
  }
  Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, out_shape);
  if (kind == PoolKind::kMax) {
    max_pool2d_f32(s, x.data<float>(), y.data<float>(), ctx.thread_pool());
  } else {
    average_pool2d_f32(s, include_pad, x.data<float>(), y.data<float>(), ctx.thread_pool());
  }
  return true;
}

void compute_pool(KernelContext& ctx, PoolKind kind) {
  const Tensor& x = ctx.input(0);
  const Node& node = ctx.node();
  if (x.rank() < 3) throw ctx.error("X must have rank >= 3 (N, C, spatial...), got " + shape_str(x.shape()));
  Shape in(x.shape().begin() + 2, x.shape().end());
  WindowGeometry g;
  std::string err = window_geometry(node, in, node.attr_ints("kernel_shape"), pool_ceil_mode(node, kind), &g);
  if (!err.empty()) throw ctx.error(err);
  Shape out_shape = {x.dim(0), x.dim(1)};
  out_shape.insert(out_shape.end(), g.out.begin(), g.out.end());
  if (pool_f32_fast(ctx, kind, g, out_shape)) return;
  using MaxTypes = TypeList<float, double, Float16, BFloat16, int8_t, uint8_t>;
  dispatch<MaxTypes>(x.dtype(), node.op_type, [&]<typename T>() {
    if constexpr (std::is_integral_v<T>) {
      if (kind != PoolKind::kMax) throw ctx.error("integer inputs are only supported by MaxPool");
    }
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    int64_t* indices = nullptr;
    if (kind == PoolKind::kMax && ctx.has_output(1)) indices = ctx.output(1, DType::kInt64, out_shape).data<int64_t>();
    pool_kernel<T>(ctx, kind, g, x, y, indices);
  });
}

OpSchema pool_schema(const char* name, PoolKind kind, int since, int until, std::vector<DType> types) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = kind == PoolKind::kMax && since >= 8 ? 2 : 1,
      .types = std::move(types),
      .check = [kind](const Node& n) { return pool_check(n, kind); },
      .infer = [kind](InferContext& ctx) { infer_pool(ctx, kind); },
      .compute = [kind](KernelContext& ctx) { compute_pool(ctx, kind); },
  };
}

std::vector<DType> max_pool_types(int opset) {
  auto t = float_dtypes();
  if (opset >= 12) {
    t.push_back(DType::kInt8);
    t.push_back(DType::kUInt8);
  }
  return t;
}

// Float32 global pools: eight independent partial results let the loops
// vectorize (a single running sum or max is a serial dependency chain). The
// sum is kept in double like the generic kernel below.
float plane_mean_f32(const float* x, int64_t n) {
  double part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += x[i + j];
  double sum = 0;
  for (; i < n; ++i) sum += x[i];
  for (double p : part) sum += p;
  return n ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
}

float plane_max_f32(const float* x, int64_t n) {
  float part[8];
  for (float& p : part) p = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] = std::max(part[j], x[i + j]);
  float best = -std::numeric_limits<float>::infinity();
  for (; i < n; ++i) best = std::max(best, x[i]);
  for (float p : part) best = std::max(best, p);
  return best;
}

// Global pools reduce every spatial dim to 1.
void compute_global_pool(KernelContext& ctx, PoolKind kind) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) throw ctx.error("X must have rank >= 2, got " + shape_str(x.shape()));
  Shape out_shape = {x.dim(0), x.dim(1)};
  out_shape.resize(x.shape().size(), 1);
  const int64_t planes = x.dim(0) * x.dim(1), sp = planes ? x.numel() / planes : 0;
  double p = 2;
  if (kind == PoolKind::kLp)
    p = ctx.node().opset < 2 ? ctx.node().attr_float("p", 2.0f) : static_cast<double>(ctx.node().attr_int("p", 2));
  if (x.dtype() == DType::kFloat32 && kind != PoolKind::kLp) {
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    const float* px = x.data<float>();
    float* py = y.data<float>();
    parallel_for(ctx.thread_pool(), planes, [&](int64_t begin, int64_t end) {
      for (int64_t pl = begin; pl < end; ++pl)
        py[pl] = kind == PoolKind::kMax ? plane_max_f32(px + pl * sp, sp) : plane_mean_f32(px + pl * sp, sp);
    });
    return;
  }
  dispatch<FloatTypes>(x.dtype(), ctx.node().op_type, [&]<typename T>() {
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    for (int64_t pl = 0; pl < planes; ++pl) {
      const T* xp = x.data<T>() + pl * sp;
      double acc = kind == PoolKind::kMax ? -std::numeric_limits<double>::infinity() : 0.0;
      for (int64_t i = 0; i < sp; ++i) {
        const double v = static_cast<double>(static_cast<acc_t<T>>(xp[i]));
        if (kind == PoolKind::kMax)
          acc = std::max(acc, v);
        else if (kind == PoolKind::kAverage)
          acc += v;
        else
          acc += std::pow(std::abs(v), p);
      }
      if (kind == PoolKind::kAverage) acc = sp ? acc / static_cast<double>(sp) : 0.0;
      if (kind == PoolKind::kLp) acc = std::pow(acc, 1.0 / p);
      y.data<T>()[pl] = static_cast<T>(static_cast<acc_t<T>>(acc));
    }
  });
}

OpSchema global_pool_schema(const char* name, PoolKind kind, int since, int until) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer =
          [](InferContext& ctx) {
            const ValueType& x = ctx.input_type(0);
            std::optional<DimVector> dims;
            if (x.shape) {
              if (x.shape->size() < 2) throw ctx.error("X must have rank >= 2");
              dims = DimVector{(*x.shape)[0], (*x.shape)[1]};
              dims->resize(x.shape->size(), Dim::known(1));
            }
            ctx.set_output(0, x.dtype, dims);
          },
      .compute = [kind](KernelContext& ctx) { compute_global_pool(ctx, kind); },
  };
}

// MaxUnpool: scatters X into a zero tensor at the flat indices I.
Shape unpool_shape(const KernelContext& ctx, const Tensor& x) {
  const Node& node = ctx.node();
  Shape in(x.shape().begin() + 2, x.shape().end());
  Shape kernel = node.attr_ints("kernel_shape"), strides, pads;
  const size_t r = in.size();
  if (kernel.size() != r) throw ctx.error("kernel_shape must have " + std::to_string(r) + " values");
  if (!window_attr(node, "strides", r, 1, &strides))
    throw ctx.error("strides must have " + std::to_string(r) + " values");
  if (!window_attr(node, "pads", 2 * r, 0, &pads))
    throw ctx.error("pads must have " + std::to_string(2 * r) + " values");
  for (const Shape* v : {&kernel, &strides, &pads})
    for (int64_t a : *v)
      if (a < 0 || a > kMaxWindowAttr)
        throw ctx.error("kernel_shape, strides and pads must lie in [0, 2^30], got " + std::to_string(a));
  Shape out = {x.dim(0), x.dim(1)};
  for (size_t d = 0; d < r; ++d) {
    int64_t o = (in[d] - 1) * strides[d] + kernel[d] - pads[d] - pads[d + r];
    if (o < 0) throw ctx.error("the computed output shape is negative");
    out.push_back(o);
  }
  return out;
}

void compute_max_unpool(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& idx = ctx.input(1);
  if (x.rank() < 3) throw ctx.error("X must have rank >= 3");
  if (idx.shape() != x.shape()) throw ctx.error("I must have X's shape " + shape_str(x.shape()));
  if (idx.dtype() != DType::kInt64) throw ctx.error("I must be int64");
  const Shape natural = unpool_shape(ctx, x);
  Shape out = natural;
  if (ctx.has_input(2)) {
    std::vector<int64_t> os = read_ints(ctx.input(2), ctx, "output_shape");
    if (os.size() != out.size()) throw ctx.error("output_shape must have " + std::to_string(out.size()) + " values");
    for (size_t d = 0; d < os.size(); ++d)
      if (os[d] < (d < 2 ? out[d] : 0) || (d < 2 && os[d] != out[d]))
        throw ctx.error("output_shape " + shape_str(os) + " is incompatible with X " + shape_str(x.shape()));
    out = os;
  }
  dispatch<FloatTypes>(x.dtype(), "MaxUnpool", [&]<typename T>() {
    Tensor& y = ctx.output(0, x.dtype(), out);
    // Indices address the natural output shape; an explicit output_shape
    // keeps each element's spatial coordinates.
    Shape nat_sp(natural.begin() + 2, natural.end()), out_sp(out.begin() + 2, out.end());
    const int64_t nat_n = shape_numel(nat_sp), out_n = shape_numel(out_sp), planes = x.dim(0) * x.dim(1);
    Shape coord(nat_sp.size());
    for (int64_t i = 0; i < x.numel(); ++i) {
      const int64_t k = idx.data<int64_t>()[i];
      if (k < 0 || nat_n == 0 || k >= planes * nat_n)
        throw ctx.error("index " + std::to_string(k) + " is out of range for output " + shape_str(natural));
      int64_t rem = k % nat_n, off = 0;
      for (size_t d = nat_sp.size(); d-- > 0;) {
        coord[d] = rem % nat_sp[d];
        rem /= nat_sp[d];
      }
      for (size_t d = 0; d < coord.size(); ++d) {
        if (coord[d] >= out_sp[d]) throw ctx.error("index " + std::to_string(k) + " falls outside output_shape");
        off = off * out_sp[d] + coord[d];
      }
      y.data<T>()[(k / nat_n) * out_n + off] = x.data<T>()[i];
    }
  });
}

}  // namespace

KILN_OP(MaxPool_1) { return pool_schema("MaxPool", PoolKind::kMax, 1, 7, max_pool_types(1)); }
KILN_OP(MaxPool_8) { return pool_schema("MaxPool", PoolKind::kMax, 8, 9, max_pool_types(8)); }
KILN_OP(MaxPool_10) { return pool_schema("MaxPool", PoolKind::kMax, 10, 11, max_pool_types(10)); }
KILN_OP(MaxPool_12) { return pool_schema("MaxPool", PoolKind::kMax, 12, INT_MAX, max_pool_types(12)); }
KILN_OP(AveragePool_1) { return pool_schema("AveragePool", PoolKind::kAverage, 1, 6, float_dtypes()); }
KILN_OP(AveragePool_7) { return pool_schema("AveragePool", PoolKind::kAverage, 7, 9, float_dtypes()); }
KILN_OP(AveragePool_10) { return pool_schema("AveragePool", PoolKind::kAverage, 10, 18, float_dtypes()); }
KILN_OP(AveragePool_19) { return pool_schema("AveragePool", PoolKind::kAverage, 19, INT_MAX, float_dtypes()); }
KILN_OP(LpPool_1) { return pool_schema("LpPool", PoolKind::kLp, 1, 1, float_dtypes()); }
KILN_OP(LpPool_2) { return pool_schema("LpPool", PoolKind::kLp, 2, 17, float_dtypes()); }
KILN_OP(LpPool_18) { return pool_schema("LpPool", PoolKind::kLp, 18, INT_MAX, float_dtypes()); }
KILN_OP(GlobalAveragePool) { return global_pool_schema("GlobalAveragePool", PoolKind::kAverage, 1, INT_MAX); }
KILN_OP(GlobalMaxPool) { return global_pool_schema("GlobalMaxPool", PoolKind::kMax, 1, INT_MAX); }
KILN_OP(GlobalLpPool_1) { return global_pool_schema("GlobalLpPool", PoolKind::kLp, 1, 1); }
KILN_OP(GlobalLpPool_2) { return global_pool_schema("GlobalLpPool", PoolKind::kLp, 2, INT_MAX); }

KILN_OP(MaxUnpool) {
  return OpSchema{
      .name = "MaxUnpool",
      .since = 9,
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check =
          [](const Node& n) {
            return n.has_attr("kernel_shape") ? std::string() : std::string("kernel_shape is required");
          },
      .infer =
          [](InferContext& ctx) {
            std::optional<DimVector> dims;
            const ValueType& x = ctx.input_type(0);
            std::vector<int64_t> os;
            if (ctx.has_input(2) && ctx.input_ints(2, &os)) {
              dims = dims_of(os);
            } else if (!ctx.has_input(2) && x.shape && x.shape->size() >= 3) {
              const Node& n = ctx.node();
              const size_t r = x.shape->size() - 2;
              Shape k = n.attr_ints("kernel_shape"), st, pads;
              if (k.size() == r && window_attr(n, "strides", r, 1, &st) && window_attr(n, "pads", 2 * r, 0, &pads)) {
                dims = DimVector{(*x.shape)[0], (*x.shape)[1]};
                for (size_t d = 0; d < r; ++d) {
                  const Dim& in = (*x.shape)[d + 2];
                  dims->push_back(in.is_known() ? Dim::known((in.value - 1) * st[d] + k[d] - pads[d] - pads[d + r])
                                                : Dim::unknown());
                }
              }
            } else if (x.shape) {
              dims = DimVector(x.shape->size(), Dim::unknown());
            }
            ctx.set_output(0, x.dtype, dims);
          },
      .compute = compute_max_unpool,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(AveragePool) { return {.op = "AveragePool", .family = OpFamily::kPooling, .cost = cost::pool(1, 1)}; }

KILN_OP_FACTS(GlobalAveragePool) {
  return {.op = "GlobalAveragePool", .family = OpFamily::kPooling, .cost = cost::reduction(1, true)};
}

KILN_OP_FACTS(GlobalLpPool) { return {.op = "GlobalLpPool", .family = OpFamily::kPooling, .cost = cost::reduction(2)}; }

KILN_OP_FACTS(GlobalMaxPool) {
  return {.op = "GlobalMaxPool", .family = OpFamily::kPooling, .cost = cost::reduction(1)};
}

KILN_OP_FACTS(LpPool) { return {.op = "LpPool", .family = OpFamily::kPooling, .cost = cost::pool(2, 0)}; }

KILN_OP_FACTS(MaxPool) { return {.op = "MaxPool", .family = OpFamily::kPooling, .cost = cost::pool(1, 0)}; }

KILN_OP_FACTS(MaxUnpool) { return {.op = "MaxUnpool", .family = OpFamily::kPooling, .cost = cost::none()}; }

}  // namespace kiln
