// Resize and Upsample. Interpolation is separable, so the kernel resizes one
// axis at a time in double precision, each output coordinate taking a few
// weighted input taps (edge-clamped).
//
// Versions: Upsample-1 (height_scale/width_scale attributes), Upsample-7
// (scales attribute), Upsample-9 and Resize-10 (scales input): asymmetric
// coordinates, nearest picks floor when upsampling and ceil when
// downsampling. Resize-11 adds roi/sizes and the coordinate, nearest and cubic
// attributes; 13 makes roi/scales optional; 18 adds antialias, axes and
// keep_aspect_ratio_policy; 19 adds half_pixel_symmetric.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

struct ResizeAttrs {
  std::string mode = "nearest", coord = "asymmetric", nearest = "legacy", aspect = "stretch";
  double cubic_a = -0.75, extrapolation = 0;
  bool exclude_outside = false, antialias = false;
  std::vector<int64_t> axes;  // empty: all
};

ResizeAttrs resize_attrs(const Node& n) {
  ResizeAttrs a;
  if (n.op_type == "Upsample" || n.opset < 11) {
    a.mode = n.attr_string("mode", "nearest");
    if (a.mode == "bilinear") a.mode = "linear";
    return a;
  }
  a.mode = n.attr_string("mode", "nearest");
  a.coord = n.attr_string("coordinate_transformation_mode", "half_pixel");
  a.nearest = n.attr_string("nearest_mode", "round_prefer_floor");
  a.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  a.extrapolation = n.attr_float("extrapolation_value", 0.0f);
  a.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  if (n.opset >= 18) {
    a.antialias = n.attr_int("antialias", 0) != 0;
    a.axes = n.attr_ints("axes");
    a.aspect = n.attr_string("keep_aspect_ratio_policy", "stretch");
  }
  return a;
}

std::string resize_check(const Node& n) {
  ResizeAttrs a = resize_attrs(n);
  if (a.mode != "nearest" && a.mode != "linear" && (a.mode != "cubic" || n.opset < 11))
    return "mode '" + a.mode + "' is not supported";
  static const char* coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
                                 "asymmetric", "tf_crop_and_resize", "half_pixel_symmetric"};
  bool ok = false;
  for (const char* c : coords) ok = ok || (a.coord == c && (a.coord != "half_pixel_symmetric" || n.opset >= 19));
  if (!ok) return "coordinate_transformation_mode '" + a.coord + "' is not supported";
  if (a.nearest != "legacy" && a.nearest != "round_prefer_floor" && a.nearest != "round_prefer_ceil" &&
      a.nearest != "floor" && a.nearest != "ceil")
    return "nearest_mode '" + a.nearest + "' is not supported";
  if (a.aspect != "stretch" && a.aspect != "not_larger" && a.aspect != "not_smaller")
    return "keep_aspect_ratio_policy '" + a.aspect + "' is not supported";
  return "";
}

struct ResizePlan {
  Shape out;
  std::vector<double> scales, roi;  // per dim; roi is [starts..., ends...]
  std::vector<int64_t> axes;        // resized axes in order
};

// Computes the output shape and per-axis scales; scales/sizes/roi are the
// values of those inputs (empty when absent).
std::string resize_plan_shape(const Node& node, const ResizeAttrs& a, const Shape& in, const std::vector<float>& scales,
                              const std::vector<int64_t>& sizes, const std::vector<double>& roi, ResizePlan* p) {
  const int64_t r = static_cast<int64_t>(in.size());
  if (a.axes.empty()) {
    for (int64_t d = 0; d < r; ++d) p->axes.push_back(d);
  } else {
    for (int64_t ax : a.axes) {
      if (ax < -r || ax >= r) return "axis " + std::to_string(ax) + " is out of range for rank " + std::to_string(r);
      p->axes.push_back(ax < 0 ? ax + r : ax);
    }
  }
  const size_t na = p->axes.size();
  p->out = in;
  p->scales.assign(static_cast<size_t>(r), 1.0);
  p->roi.assign(static_cast<size_t>(2 * r), 0.0);
  for (int64_t d = 0; d < r; ++d) p->roi[static_cast<size_t>(r + d)] = 1.0;
  if (!roi.empty()) {
    if (roi.size() != 2 * na) return "roi must have " + std::to_string(2 * na) + " values";
    for (size_t i = 0; i < na; ++i) {
      p->roi[static_cast<size_t>(p->axes[i])] = roi[i];
      p->roi[static_cast<size_t>(r + p->axes[i])] = roi[na + i];
    }
  }
  if (!scales.empty()) {
    if (!sizes.empty()) return "only one of scales and sizes may be given";
    if (scales.size() != na) return "scales must have " + std::to_string(na) + " values";
    for (size_t i = 0; i < na; ++i) {
      const size_t d = static_cast<size_t>(p->axes[i]);
      if (!(scales[i] > 0) || !std::isfinite(scales[i])) return "scales must be positive";
      p->scales[d] = scales[i];
      const double o = std::floor(static_cast<double>(scales[i]) * static_cast<double>(in[d]));
      if (o > static_cast<double>(int64_t{1} << 40)) return "the output is too large";
      p->out[d] = static_cast<int64_t>(o);
    }
    return "";
  }
  if (sizes.empty()) return "one of scales and sizes is required";
  if (sizes.size() != na) return "sizes must have " + std::to_string(na) + " values";
  for (size_t i = 0; i < na; ++i) {
    const size_t d = static_cast<size_t>(p->axes[i]);
    if (sizes[i] < 0) return "sizes must be non-negative";
    if (in[d] == 0) return "cannot derive a scale from sizes for an empty axis";
    p->scales[d] = static_cast<double>(sizes[i]) / static_cast<double>(in[d]);
    p->out[d] = sizes[i];
  }
  if (a.aspect != "stretch") {
    double s = a.aspect == "not_larger" ? std::numeric_limits<double>::infinity() : 0.0;
    for (int64_t d : p->axes)
      s = a.aspect == "not_larger" ? std::min(s, p->scales[static_cast<size_t>(d)])
                                   : std::max(s, p->scales[static_cast<size_t>(d)]);
    for (int64_t d : p->axes) {
      p->scales[static_cast<size_t>(d)] = s;
      p->out[static_cast<size_t>(d)] = static_cast<int64_t>(s * static_cast<double>(in[static_cast<size_t>(d)]) + 0.5);
    }
  }
  return "";
}

// The plan, with its sizes checked: the naive kernel holds the tensor as
// doubles after each axis is resized, so every intermediate (each dim at
// most max(in, out)) must have an element count that neither overflows nor
// exceeds 2^40 bytes of doubles.
std::string resize_plan(const Node& node, const ResizeAttrs& a, const Shape& in, const std::vector<float>& scales,
                        const std::vector<int64_t>& sizes, const std::vector<double>& roi, ResizePlan* p) {
  std::string err = resize_plan_shape(node, a, in, scales, sizes, roi, p);
  if (!err.empty()) return err;
  constexpr int64_t kMaxElements = (int64_t{1} << 40) / static_cast<int64_t>(sizeof(double));
  int64_t n = 1;
  bool empty = false;
  for (size_t d = 0; d < in.size(); ++d) empty = empty || in[d] == 0;  // then every intermediate is empty
  for (size_t d = 0; d < in.size() && !empty; ++d) {
    const int64_t w = std::max(in[d], p->out[d]);
    if (n > kMaxElements / w)
      return "the output " + shape_str(p->out) + " is too large (more than " + std::to_string(kMaxElements) +
             " elements)";
    n *= w;
  }
  return "";
}

struct Tap {
  int64_t index;
  double weight;
};

double cubic_weight(double x, double A) {
  x = std::abs(x);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

// The taps of output coordinate y along an axis of input length W; false when
// the coordinate is extrapolated (tf_crop_and_resize outside the input).
bool axis_taps(const ResizeAttrs& a, double scale, int64_t W, int64_t out_len, int64_t y, double roi_start,
               double roi_end, std::vector<Tap>* taps) {
  taps->clear();
  const double in_w = static_cast<double>(W), out_w = scale * in_w, yy = static_cast<double>(y);
  double x;
  if (a.coord == "align_corners") {
    x = out_w == 1 ? 0.0 : yy * (in_w - 1) / (out_w - 1);
  } else if (a.coord == "asymmetric") {
    x = yy / scale;
  } else if (a.coord == "tf_crop_and_resize") {
    x = out_w == 1 ? (roi_end - roi_start) * (in_w - 1) / 2 : yy * (roi_end - roi_start) * (in_w - 1) / (out_w - 1);
    x += roi_start * (in_w - 1);
    if (x < 0 || x > in_w - 1) return false;
  } else if (a.coord == "pytorch_half_pixel") {
    x = out_w == 1 ? -0.5 : (yy + 0.5) / scale - 0.5;
  } else if (a.coord == "half_pixel_symmetric") {
    const double offset = in_w / 2 * (1 - static_cast<double>(out_len) / out_w);
    x = offset + (yy + 0.5) / scale - 0.5;
  } else {
    x = (yy + 0.5) / scale - 0.5;
  }
  double base = std::floor(x), ratio = x - base;
  if (ratio == 0) {
    base -= 1;
    ratio = 1;
  }
  // Coefficients for taps base+start .. base+start+n-1.
  std::vector<double> c;
  int64_t start = 0;
  const double s = std::min(scale, 1.0);
  if (a.mode == "nearest") {
    bool up;
    if (ratio == 1)
      up = true;
    else if (a.nearest == "legacy")
      up = scale < 1;
    else if (a.nearest == "round_prefer_floor")
      up = ratio > 0.5;
    else if (a.nearest == "round_prefer_ceil")
      up = ratio >= 0.5;
    else
      up = a.nearest == "ceil";
    c = {up ? 0.0 : 1.0, up ? 1.0 : 0.0};
  } else if (a.mode == "linear" && !a.antialias) {
    c = {1 - ratio, ratio};
  } else if (a.mode == "linear") {
    start = static_cast<int64_t>(std::floor(-1 / s)) + 1;
    double sum = 0;
    for (int64_t i = start; i < 2 - start; ++i) {
      c.push_back(std::clamp(1 - std::abs((static_cast<double>(i) - ratio) * s), 0.0, 1.0));
      sum += c.back();
    }
    for (double& v : c) v /= sum;
  } else if (!a.antialias) {
    start = -1;
    for (int64_t i = -1; i <= 2; ++i) c.push_back(cubic_weight(static_cast<double>(i) - ratio, a.cubic_a));
  } else {
    start = static_cast<int64_t>(std::floor(-2 / s)) + 1;
    double sum = 0;
    for (int64_t i = start; i < 2 - start; ++i) {
      c.push_back(cubic_weight(s * (static_cast<double>(i) - ratio), a.cubic_a));
      sum += c.back();
    }
    for (double& v : c) v /= sum;
  }
  // The window lies in the input padded by ceil(n/2) edge values each side;
  // near the ends it shifts to stay inside that range.
  const int64_t n = static_cast<int64_t>(c.size()), pad = (n + 1) / 2;
  int64_t lo = static_cast<int64_t>(base) + start;
  lo = std::clamp<int64_t>(lo, -pad, W + pad - n);
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t idx = lo + i;
    double w = c[static_cast<size_t>(i)];
    if (a.exclude_outside && (idx < 0 || idx >= W)) w = 0;
    total += w;
    if (w != 0 || !a.exclude_outside) taps->push_back({std::clamp<int64_t>(idx, 0, W - 1), w});
  }
  if (a.exclude_outside && total != 0)
    for (Tap& t : *taps) t.weight /= total;
  return true;
}

// Reads scales/sizes/roi (inputs, or Upsample-1/7's attributes) and plans
// the output shape.
ResizePlan plan_from_inputs(KernelContext& ctx, const ResizeAttrs& a) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  std::vector<float> scales;
  std::vector<int64_t> sizes;
  std::vector<double> roi;
  if (node.op_type == "Upsample" && node.opset < 9) {
    if (node.opset < 7) {
      if (x.rank() != 4) throw ctx.error("Upsample-1 needs a 4-D input");
      scales = {1.0f, 1.0f, node.attr_float("height_scale", 1.0f), node.attr_float("width_scale", 1.0f)};
    } else {
      scales = node.attr_floats("scales");
    }
  } else {
    const size_t si = node.op_type == "Upsample" || node.opset < 11 ? 1 : 2;
    if (ctx.has_input(si)) {
      const Tensor& t = ctx.input(si);
      if (t.dtype() != DType::kFloat32) throw ctx.error("scales must be float");
      scales.assign(t.data<float>(), t.data<float>() + t.numel());
    }
    if (si == 2 && ctx.has_input(3)) sizes = read_ints(ctx.input(3), ctx, "sizes");
    if (si == 2 && ctx.has_input(1) && a.coord == "tf_crop_and_resize") {
      const Tensor& t = ctx.input(1);
      dispatch<FloatTypes>(t.dtype(), "roi", [&]<typename T>() {
        for (int64_t i = 0; i < t.numel(); ++i) roi.push_back(static_cast<acc_t<T>>(t.data<T>()[i]));
      });
    }
  }
  ResizePlan p;
  std::string err = resize_plan(node, a, x.shape(), scales, sizes, roi, &p);
  if (!err.empty()) throw ctx.error(err);
  return p;
}

// The reference leaves an axis untouched when it is not really resized.
bool axis_is_identity(const ResizePlan& p, const Shape& in, size_t d) {
  const size_t r = in.size();
  return std::abs(p.scales[d] - 1.0) < 1e-9 && p.out[d] == in[d] && std::abs(p.roi[d]) < 1e-9 &&
         std::abs(p.roi[r + d] - 1) < 1e-9;
}

// Float32 fast path for nearest and (non-antialiased) linear resizing of the
// last two axes: the common bilinear/nearest upsampling of NCHW feature maps.
// The source taps come from axis_taps, the reference's own coordinate
// mapping, so both paths pick the same pixels; only the arithmetic is float.

// Per output coordinate along one axis: the two source indices and weights.
// Nearest uses lo alone.
struct AxisTable {
  std::vector<int32_t> lo, hi;
  std::vector<float> w_lo, w_hi;
};

AxisTable axis_table(const ResizeAttrs& a, const ResizePlan& p, const Shape& in, size_t d) {
  const int64_t W = in[d], O = p.out[d];
  AxisTable t;
  t.lo.resize(static_cast<size_t>(O));
  t.hi.resize(static_cast<size_t>(O));
  t.w_lo.resize(static_cast<size_t>(O));
  t.w_hi.resize(static_cast<size_t>(O));
  const bool identity = axis_is_identity(p, in, d);
  std::vector<Tap> taps;
  for (int64_t y = 0; y < O; ++y) {
    const size_t i = static_cast<size_t>(y);
    if (identity) {
      t.lo[i] = t.hi[i] = static_cast<int32_t>(y);
      t.w_lo[i] = 1;
      t.w_hi[i] = 0;
      continue;
    }
    axis_taps(a, p.scales[d], W, O, y, 0, 1, &taps);  // never extrapolates outside tf_crop_and_resize
    if (a.mode == "nearest") {
      const int64_t src = taps[0].weight != 0 ? taps[0].index : taps[1].index;
      t.lo[i] = t.hi[i] = static_cast<int32_t>(src);
      t.w_lo[i] = 1;
      t.w_hi[i] = 0;
    } else {
      t.lo[i] = static_cast<int32_t>(taps[0].index);
      t.hi[i] = static_cast<int32_t>(taps[1].index);
      t.w_lo[i] = static_cast<float>(taps[0].weight);
      t.w_hi[i] = static_cast<float>(taps[1].weight);
    }
  }
  return t;
}

bool fast_path_applies(const ResizeAttrs& a, const ResizePlan& p, const Tensor& x) {
  if (x.dtype() != DType::kFloat32 || x.rank() < 2 || x.numel() == 0) return false;
  if (a.mode != "nearest" && a.mode != "linear") return false;
  if (a.antialias || a.exclude_outside || a.coord == "tf_crop_and_resize") return false;
  const Shape& in = x.shape();
  const size_t r = in.size();
  for (size_t d = 0; d + 2 < r; ++d)
    if (!axis_is_identity(p, in, d)) return false;
  for (size_t d = r - 2; d < r; ++d)
    if (in[d] > INT32_MAX || p.out[d] > INT32_MAX) return false;
  return true;
}

// Output rows [y0, y1) of one plane.
void nearest_rows(const float* src, float* dst, int64_t IW, int64_t OW, const AxisTable& rows, const AxisTable& cols,
                  int64_t y0, int64_t y1) {
  const int32_t* __restrict cx = cols.lo.data();
  for (int64_t y = y0; y < y1; ++y) {
    float* __restrict d = dst + y * OW;
    const size_t yi = static_cast<size_t>(y);
    if (y > y0 && rows.lo[yi] == rows.lo[yi - 1]) {
      std::copy(d - OW, d, d);
      continue;
    }
    const float* __restrict s = src + rows.lo[yi] * IW;
    for (int64_t i = 0; i < OW; ++i) d[i] = s[cx[i]];
  }
}

void linear_row(const float* __restrict s, float* __restrict d, const AxisTable& cols, int64_t OW) {
  const int32_t* __restrict lo = cols.lo.data();
  const int32_t* __restrict hi = cols.hi.data();
  const float* __restrict wl = cols.w_lo.data();
  const float* __restrict wh = cols.w_hi.data();
  for (int64_t i = 0; i < OW; ++i) d[i] = s[lo[i]] * wl[i] + s[hi[i]] * wh[i];
}

// Output rows [y0, y1) of one plane. Each source row is interpolated
// horizontally once into a row buffer (buf0/buf1, OW floats each, reused
// while consecutive output rows share it); output rows blend two of those.
void linear_rows(const float* src, float* dst, int64_t IW, int64_t OW, const AxisTable& rows, const AxisTable& cols,
                 int64_t y0, int64_t y1, float* buf0, float* buf1) {
  int64_t in0 = -1, in1 = -1;  // source rows held by buf0, buf1
  for (int64_t y = y0; y < y1; ++y) {
    const size_t yi = static_cast<size_t>(y);
    const int64_t h0 = rows.lo[yi], h1 = rows.hi[yi];
    if (in0 != h0) {
      if (in1 == h0) {
        std::swap(buf0, buf1);
        std::swap(in0, in1);
      } else {
        linear_row(src + h0 * IW, buf0, cols, OW);
        in0 = h0;
      }
    }
    if (h1 != h0 && in1 != h1) {
      linear_row(src + h1 * IW, buf1, cols, OW);
      in1 = h1;
    }
    const float* __restrict r0 = buf0;
    const float* __restrict r1 = h1 == h0 ? buf0 : buf1;
    float* __restrict d = dst + y * OW;
    const float a = rows.w_lo[yi], b = rows.w_hi[yi];
    for (int64_t i = 0; i < OW; ++i) d[i] = r0[i] * a + r1[i] * b;
  }
}

void resize_f32_fast(KernelContext& ctx, const ResizeAttrs& a, const ResizePlan& p) {
  const Tensor& x = ctx.input(0);
  const Shape& in = x.shape();
  const size_t r = in.size();
  const AxisTable rows = axis_table(a, p, in, r - 2), cols = axis_table(a, p, in, r - 1);
  const int64_t IH = in[r - 2], IW = in[r - 1], OH = p.out[r - 2], OW = p.out[r - 1];
  const int64_t planes = x.numel() / (IH * IW);
  Tensor& out = ctx.output_uninitialized(0, DType::kFloat32, p.out);
  if (out.numel() == 0) return;
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  // With few planes, split each plane's rows too so every thread gets work.
  ThreadPool* pool = ctx.thread_pool();
  const int64_t threads = pool ? pool->num_threads() : 1;
  const int64_t row_blocks =
      threads == 1 || planes >= 4 * threads ? 1 : std::min(OH, (4 * threads + planes - 1) / planes);
  const bool linear = a.mode == "linear";
  parallel_for(pool, planes * row_blocks, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(linear ? static_cast<size_t>(2 * OW) : 0);
    for (int64_t u = begin; u < end; ++u) {
      const int64_t plane = u / row_blocks, block = u % row_blocks;
      const int64_t y0 = OH * block / row_blocks, y1 = OH * (block + 1) / row_blocks;
      const float* s = src + plane * IH * IW;
      float* d = dst + plane * OH * OW;
      if (linear)
        linear_rows(s, d, IW, OW, rows, cols, y0, y1, buf.data(), buf.data() + OW);
      else
        nearest_rows(s, d, IW, OW, rows, cols, y0, y1);
    }
  });
}

void compute_resize(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  ResizeAttrs a = resize_attrs(ctx.node());
  const ResizePlan p = plan_from_inputs(ctx, a);
  if (fast_path_applies(a, p, x)) return resize_f32_fast(ctx, a, p);
  const int64_t r = x.rank();
  std::vector<double> cur(static_cast<size_t>(x.numel())), next;
  Shape shape = x.shape();
  dispatch<NumericTypes>(x.dtype(), "Resize", [&]<typename T>() {
    for (int64_t i = 0; i < x.numel(); ++i)
      cur[static_cast<size_t>(i)] = static_cast<double>(static_cast<acc_t<T>>(x.data<T>()[i]));
  });
  std::vector<Tap> taps;
  for (int64_t axis : p.axes) {
    const size_t ax = static_cast<size_t>(axis);
    const double scale = p.scales[ax];
    const int64_t W = shape[ax], O = p.out[ax];
    const double rs = p.roi[ax], re = p.roi[static_cast<size_t>(r) + ax];
    if (std::abs(scale - 1.0) < 1e-9 && O == W && std::abs(rs) < 1e-9 && std::abs(re - 1) < 1e-9) continue;
    if (W == 0 && O > 0) throw ctx.error("cannot resize an empty axis to a non-empty one");
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < ax; ++d) outer *= shape[d];
    for (size_t d = ax + 1; d < shape.size(); ++d) inner *= shape[d];
    next.assign(static_cast<size_t>(outer * O * inner), 0.0);
    for (int64_t y = 0; y < O; ++y) {
      const bool inside = axis_taps(a, scale, W, O, y, rs, re, &taps);
      for (int64_t o = 0; o < outer; ++o) {
        double* dst = next.data() + (o * O + y) * inner;
        if (!inside) {
          std::fill(dst, dst + inner, a.extrapolation);
          continue;
        }
        for (const Tap& t : taps) {
          const double* src = cur.data() + (o * W + t.index) * inner;
          for (int64_t i = 0; i < inner; ++i) dst[i] += t.weight * src[i];
        }
      }
    }
    shape[ax] = O;
    cur.swap(next);
  }
  dispatch<NumericTypes>(x.dtype(), "Resize", [&]<typename T>() {
    Tensor& y = ctx.output(0, x.dtype(), p.out);
    for (int64_t i = 0; i < y.numel(); ++i) {
      double v = cur[static_cast<size_t>(i)];
      if constexpr (std::is_integral_v<T>) {
        v = std::clamp(std::nearbyint(v), static_cast<double>(std::numeric_limits<T>::lowest()),
                       static_cast<double>(std::numeric_limits<T>::max()));
      }
      y.data<T>()[i] = static_cast<T>(static_cast<acc_t<T>>(v));
    }
  });
}

void infer_resize(InferContext& ctx) {
  const Node& node = ctx.node();
  const ValueType& x = ctx.input_type(0);
  std::optional<DimVector> dims;
  if (x.shape) {
    dims = DimVector(x.shape->size(), Dim::unknown());
    Shape in;
    for (const Dim& d : *x.shape) in.push_back(d.is_known() ? d.value : -1);
    ResizeAttrs a = resize_attrs(node);
    std::vector<float> scales;
    std::vector<int64_t> sizes;
    bool known = true;
    if (node.op_type == "Upsample" && node.opset < 9) {
      scales = node.opset < 7
                   ? std::vector<float>{1, 1, node.attr_float("height_scale", 1), node.attr_float("width_scale", 1)}
                   : node.attr_floats("scales");
    } else {
      const size_t si = node.op_type == "Upsample" || node.opset < 11 ? 1 : 2;
      if (const Tensor* t = ctx.input_constant(si); t && t->dtype() == DType::kFloat32) {
        scales.assign(t->data<float>(), t->data<float>() + t->numel());
      } else if (ctx.has_input(si)) {
        known = false;
      }
      if (si == 2 && ctx.has_input(3) && !ctx.input_ints(3, &sizes)) known = false;
    }
    ResizePlan p;
    if (known && resize_plan(node, a, in, scales, sizes, {}, &p).empty()) {
      std::vector<bool> resized(in.size(), false);
      for (int64_t ax : p.axes) resized[static_cast<size_t>(ax)] = true;
      for (size_t d = 0; d < in.size(); ++d)
        (*dims)[d] = !resized[d] ? (*x.shape)[d] : in[d] >= 0 ? Dim::known(p.out[d]) : Dim::unknown();
    } else if (node.opset >= 18 && node.has_attr("axes")) {
      // Axes not resized keep their dims.
      std::vector<bool> resized(in.size(), false);
      for (int64_t ax : node.attr_ints("axes")) {
        int64_t r = static_cast<int64_t>(in.size());
        if (ax >= -r && ax < r) resized[static_cast<size_t>(ax < 0 ? ax + r : ax)] = true;
      }
      for (size_t d = 0; d < in.size(); ++d)
        if (!resized[d]) (*dims)[d] = (*x.shape)[d];
    }
  }
  ctx.set_output(0, x.dtype, dims);
}

OpSchema resize_schema(const char* name, int since, int until, int min_inputs, int max_inputs) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = min_inputs,
      .max_inputs = max_inputs,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .check = resize_check,
      .infer = infer_resize,
      .compute = compute_resize,
  };
}

}  // namespace

KILN_OP(Upsample_1) { return resize_schema("Upsample", 1, 8, 1, 1); }
KILN_OP(Upsample_9) { return resize_schema("Upsample", 9, 9, 2, 2); }
KILN_OP(Resize_10) { return resize_schema("Resize", 10, 10, 2, 2); }
KILN_OP(Resize_11) { return resize_schema("Resize", 11, 12, 3, 4); }
KILN_OP(Resize_13) { return resize_schema("Resize", 13, 17, 1, 4); }
KILN_OP(Resize_18) { return resize_schema("Resize", 18, INT_MAX, 1, 4); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Resize) { return {.op = "Resize", .family = OpFamily::kShape, .cost = cost::resize()}; }

KILN_OP_FACTS(Upsample) { return {.op = "Upsample", .family = OpFamily::kShape, .cost = cost::resize()}; }

}  // namespace kiln
