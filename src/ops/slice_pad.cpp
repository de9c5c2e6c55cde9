// Windowing ops: Slice, Pad and CenterCropPad. Each output element maps to
// one input element (or the pad value) through a per-axis index function.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// ---------------------------------------------------------------------- Slice

struct SliceAxis {
  int64_t start = 0, step = 1, size = 0;
};

// Per-axis start/step/size for every axis of `in` (untouched axes take all).
template <typename Ctx>
std::vector<SliceAxis> slice_plan(const Ctx& ctx, const Shape& in, const std::vector<int64_t>& starts,
                                  const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                                  std::vector<int64_t> steps) {
  int64_t rank = static_cast<int64_t>(in.size());
  if (starts.size() != ends.size())
    throw ctx.error("starts has " + std::to_string(starts.size()) + " entries but ends has " +
                    std::to_string(ends.size()));
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size())
    throw ctx.error("starts, ends, axes and steps must have the same length");
  std::vector<SliceAxis> plan(in.size());
  std::vector<bool> seen(in.size(), false);
  for (size_t d = 0; d < in.size(); ++d) plan[d] = {0, 1, in[d]};
  for (size_t k = 0; k < axes.size(); ++k) {
    int64_t a = normalize_axis(axes[k], rank, ctx.node());
    if (seen[static_cast<size_t>(a)]) throw ctx.error("axis " + std::to_string(a) + " is repeated");
    seen[static_cast<size_t>(a)] = true;
    int64_t n = in[static_cast<size_t>(a)], step = steps[k];
    if (step == 0) throw ctx.error("steps[" + std::to_string(k) + "] is 0");
    int64_t s = starts[k], e = ends[k];
    if (s < 0) s = s < -n ? -1 : s + n;  // avoids overflow for INT64_MIN
    if (e < 0) e = e < -n ? -1 : e + n;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, n);
      e = std::clamp<int64_t>(e, 0, n);
    } else {
      s = std::clamp<int64_t>(s, 0, n - 1);
      e = std::clamp<int64_t>(e, -1, n - 1);
    }
    // ceil(distance / |step|) without overflow for any step, INT64_MIN and
    // INT64_MAX included (distance is at most n).
    const uint64_t mag = step > 0 ? static_cast<uint64_t>(step) : uint64_t{0} - static_cast<uint64_t>(step);
    const int64_t distance = step > 0 ? e - s : s - e;
    int64_t size = 0;
    if (distance > 0) size = static_cast<int64_t>((static_cast<uint64_t>(distance) - 1) / mag + 1);
    // A single element is read whatever the step: keep the stride small.
    if (size <= 1) step = 1;
    plan[static_cast<size_t>(a)] = {s, step, size};
  }
  return plan;
}

void slice_kernel(KernelContext& ctx, const Tensor& x, const std::vector<SliceAxis>& plan) {
  Shape out_shape;
  for (const SliceAxis& p : plan) out_shape.push_back(p.size);
  std::vector<int64_t> st = contiguous_strides(x.shape());
  int64_t base = 0;
  std::vector<int64_t> strides;
  for (size_t d = 0; d < plan.size(); ++d) {
    base += plan[d].start * st[d];
    strides.push_back(plan[d].step * st[d]);
  }
  // Trailing axes taken whole with step 1, and the axis before them when its
  // step is 1, are contiguous in the input: copy such runs with memcpy (a
  // channel split copies whole planes).
  int64_t run = 1;
  size_t outer = plan.size();
  while (outer > 0 && plan[outer - 1].step == 1) {
    --outer;
    run *= plan[outer].size;
    if (plan[outer].size != x.dim(static_cast<int64_t>(outer))) break;
  }
  dispatch_by_size(x.dtype(), "Slice", [&]<typename T>() {
    constexpr bool trivial = std::is_trivially_copyable_v<T>;  // not std::string
    Tensor& out = trivial ? ctx.output_uninitialized(0, x.dtype(), out_shape) : ctx.output(0, x.dtype(), out_shape);
    if (out.numel() == 0) return;
    const T* px = x.data<T>() + base;
    T* po = out.data<T>();
    if constexpr (trivial) {
      if (run >= 16) {
        const Shape outer_shape(out_shape.begin(), out_shape.begin() + static_cast<std::ptrdiff_t>(outer));
        const std::vector<int64_t> outer_strides(strides.begin(), strides.begin() + static_cast<std::ptrdiff_t>(outer));
        for_each_broadcast(outer_shape, {outer_strides}, [&](int64_t i, const int64_t* off) {
          std::memcpy(po + i * run, px + off[0], static_cast<size_t>(run) * sizeof(T));
        });
        return;
      }
    }
    for_each_broadcast(out_shape, {strides}, [&](int64_t i, const int64_t* off) { po[i] = px[off[0]]; });
  });
}

OpSchema slice_schema(int since, int until) {
  OpSchema s;
  s.name = "Slice";
  s.since = since;
  s.until = until;
  bool attr_form = until < 10;
  s.min_inputs = attr_form ? 1 : 3;
  s.max_inputs = attr_form ? 1 : 5;
  s.max_outputs = 1;
  if (attr_form)
    s.check = [](const Node& n) {
      return n.has_attr("starts") && n.has_attr("ends") ? std::string() : "attributes 'starts' and 'ends' are required";
    };
  s.infer = [attr_form](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
    const Node& n = ctx.node();
    std::vector<int64_t> starts, ends, axes, steps;
    bool known = true;
    if (attr_form) {
      starts = n.attr_ints("starts");
      ends = n.attr_ints("ends");
      axes = n.attr_ints("axes");
    } else {
      known = ctx.input_ints(1, &starts) && ctx.input_ints(2, &ends) &&
              (!ctx.has_input(3) || ctx.input_ints(3, &axes)) && (!ctx.has_input(4) || ctx.input_ints(4, &steps));
    }
    DimVector out = unknown_dims(in.shape->size());
    if (known) {
      // Axes not sliced keep their dims; sliced ones are known when the input dim is.
      Shape probe;
      for (const Dim& d : *in.shape) probe.push_back(d.is_known() ? d.value : 1);
      auto plan = slice_plan(ctx, probe, starts, ends, axes, steps);
      std::vector<bool> sliced(in.shape->size(), false);
      for (size_t k = 0; k < starts.size(); ++k)
        sliced[static_cast<size_t>(normalize_axis(axes.empty() ? static_cast<int64_t>(k) : axes[k], in.rank(), n))] =
            true;
      for (size_t d = 0; d < out.size(); ++d)
        out[d] = !sliced[d] ? (*in.shape)[d] : (*in.shape)[d].is_known() ? Dim::known(plan[d].size) : Dim::unknown();
    }
    ctx.set_output(0, in.dtype, out);
  };
  s.compute = [attr_form](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Node& n = ctx.node();
    std::vector<int64_t> starts, ends, axes, steps;
    if (attr_form) {
      starts = n.attr_ints("starts");
      ends = n.attr_ints("ends");
      axes = n.attr_ints("axes");
    } else {
      starts = read_ints(ctx.input(1), ctx, "Slice starts");
      ends = read_ints(ctx.input(2), ctx, "Slice ends");
      if (ctx.has_input(3)) axes = read_ints(ctx.input(3), ctx, "Slice axes");
      if (ctx.has_input(4)) steps = read_ints(ctx.input(4), ctx, "Slice steps");
    }
    slice_kernel(ctx, x, slice_plan(ctx, x.shape(), starts, ends, axes, steps));
  };
  return s;
}

// ------------------------------------------------------------------------ Pad

enum class PadMode { kConstant, kReflect, kEdge, kWrap };

PadMode pad_mode(const Node& n) {
  std::string m = n.attr_string("mode", "constant");
  if (m == "constant") return PadMode::kConstant;
  if (m == "reflect") return PadMode::kReflect;
  if (m == "edge") return PadMode::kEdge;
  if (m == "wrap" && n.opset >= 19) return PadMode::kWrap;
  throw Error(n.describe() + ": unknown pad mode '" + m + "'");
}

// Maps output coordinate `o` of one axis to an input coordinate, or -1 for
// the constant value. The input is [lo, lo + m) after negative pads crop it.
int64_t pad_source(int64_t o, int64_t begin, int64_t lo, int64_t m, PadMode mode) {
  int64_t j = o - begin;
  if (j >= 0 && j < m) return lo + j;
  switch (mode) {
    case PadMode::kConstant: return -1;
    case PadMode::kEdge: return lo + (j < 0 ? 0 : m - 1);
    case PadMode::kWrap: return lo + ((j % m) + m) % m;
    case PadMode::kReflect: {
      if (m == 1) return lo;
      int64_t period = 2 * (m - 1);
      int64_t r = ((j % period) + period) % period;
      return lo + (r < m ? r : period - r);
    }
  }
  return -1;
}

// pads: [begin_0..begin_{r-1}, end_0..end_{r-1}] over all axes.
void pad_kernel(KernelContext& ctx, const Tensor& x, const std::vector<int64_t>& pads, const Tensor& fill,
                PadMode mode) {
  size_t r = x.shape().size();
  Shape out_shape(r);
  std::vector<int64_t> lo(r), m(r), begin(r);
  for (size_t d = 0; d < r; ++d) {
    int64_t n = x.shape()[d], pb = pads[d], pe = pads[d + r];
    lo[d] = std::max<int64_t>(0, -pb);
    int64_t hi = n - std::max<int64_t>(0, -pe);
    if (hi < lo[d])
      throw ctx.error("negative pads on axis " + std::to_string(d) + " remove more than its size " + std::to_string(n));
    m[d] = hi - lo[d];
    begin[d] = std::max<int64_t>(0, pb);
    if (pb > kMaxDataDrivenElements || pe > kMaxDataDrivenElements) throw ctx.error("pads are too large");
    out_shape[d] = m[d] + begin[d] + std::max<int64_t>(0, pe);
    if (m[d] == 0 && out_shape[d] > 0 && mode != PadMode::kConstant)
      throw ctx.error("cannot pad axis " + std::to_string(d) + " of size 0 in a non-constant mode");
  }
  checked_numel(ctx, out_shape, "Pad output");
  std::vector<int64_t> st = contiguous_strides(x.shape());
  dispatch_by_size(x.dtype(), "Pad", [&]<typename T>() {
    Tensor& out = ctx.output(0, x.dtype(), out_shape);
    const T* px = x.data<T>();
    const T value = fill.data<T>()[0];
    T* po = out.data<T>();
    if constexpr (std::is_trivially_copyable_v<T>) {
      // Row by row along the last axis: each output row is one source row
      // (its outer indices mapped through the mode) copied into the middle,
      // its two ends filled per element, or all `value` when an outer index
      // falls in constant padding. Rows go to the thread pool.
      if (r == 0 || out.numel() == 0) {
        if (out.numel() > 0) po[0] = px[0];
        return;
      }
      const int64_t row = out_shape[r - 1], rows = out.numel() / row;
      const size_t last = r - 1;
      parallel_for(out.numel() >= 65536 ? ctx.thread_pool() : nullptr, rows, [&](int64_t b, int64_t e) {
        for (int64_t q = b; q < e; ++q) {
          T* dst = po + q * row;
          int64_t rem = q, off = 0;
          bool padding = false;
          for (size_t d = last; d-- > 0;) {
            const int64_t src = pad_source(rem % out_shape[d], begin[d], lo[d], m[d], mode);
            rem /= out_shape[d];
            if (src < 0) {
              padding = true;
              break;
            }
            off += src * st[d];
          }
          if (padding) {
            std::fill(dst, dst + row, value);
            continue;
          }
          const T* src_row = px + off;
          const int64_t mid = begin[last], count = m[last];
          for (int64_t o = 0; o < mid; ++o) {
            const int64_t s = pad_source(o, begin[last], lo[last], count, mode);
            dst[o] = s < 0 ? value : src_row[s];
          }
          std::memcpy(dst + mid, src_row + lo[last], static_cast<size_t>(count) * sizeof(T));
          for (int64_t o = mid + count; o < row; ++o) {
            const int64_t s = pad_source(o, begin[last], lo[last], count, mode);
            dst[o] = s < 0 ? value : src_row[s];
          }
        }
      });
    } else {
      for_each_index(out_shape, [&](const int64_t* idx, int64_t i) {
        int64_t off = 0;
        for (size_t d = 0; d < r; ++d) {
          int64_t src = pad_source(idx[d], begin[d], lo[d], m[d], mode);
          if (src < 0) {
            po[i] = value;
            return;
          }
          off += src * st[d];
        }
        po[i] = px[off];
      });
    }
  });
}

// A one-element tensor of `dtype` holding `v` (the opset < 11 float value).
Tensor scalar_of(DType dtype, double v) {
  Tensor t(dtype, {});
  if (dtype != DType::kString)
    dispatch<PodTypes>(dtype, "Pad", [&]<typename T>() { t.data<T>()[0] = static_cast<T>(static_cast<float>(v)); });
  return t;
}

OpSchema pad_schema(int since, int until) {
  OpSchema s;
  s.name = "Pad";
  s.since = since;
  s.until = until;
  bool attr_form = until < 11;
  s.min_inputs = attr_form ? 1 : 2;
  s.max_inputs = attr_form ? 1 : since >= 18 ? 4 : 3;
  s.max_outputs = 1;
  const char* pads_attr = since == 1 ? "paddings" : "pads";
  if (attr_form)
    s.check = [pads_attr](const Node& n) {
      return n.has_attr(pads_attr) ? std::string() : std::string("attribute '") + pads_attr + "' is required";
    };
  // Expands pads given for `axes` to the full-rank layout.
  auto full_pads = [](const auto& ctx, std::vector<int64_t> pads, const std::vector<int64_t>* axes, int64_t rank) {
    if (!axes) {
      if (static_cast<int64_t>(pads.size()) != 2 * rank)
        throw ctx.error("pads has " + std::to_string(pads.size()) + " entries for rank " + std::to_string(rank));
      return pads;
    }
    if (pads.size() != 2 * axes->size())
      throw ctx.error("pads has " + std::to_string(pads.size()) + " entries for " + std::to_string(axes->size()) +
                      " axes");
    std::vector<int64_t> full(static_cast<size_t>(2 * rank), 0);
    for (size_t k = 0; k < axes->size(); ++k) {
      int64_t a = normalize_axis((*axes)[k], rank, ctx.node());
      full[static_cast<size_t>(a)] = pads[k];
      full[static_cast<size_t>(a + rank)] = pads[k + axes->size()];
    }
    return full;
  };
  s.infer = [attr_form, pads_attr, full_pads](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    pad_mode(ctx.node());
    if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
    std::vector<int64_t> pads, axes;
    bool known = attr_form ? (pads = ctx.node().attr_ints(pads_attr), true) : ctx.input_ints(1, &pads);
    bool has_axes = ctx.has_input(3);
    if (has_axes && !ctx.input_ints(3, &axes)) known = false;
    if (!known) return ctx.set_output(0, in.dtype, unknown_dims(in.shape->size()));
    int64_t r = in.rank();
    pads = full_pads(ctx, pads, has_axes ? &axes : nullptr, r);
    DimVector out = *in.shape;
    for (size_t d = 0; d < out.size(); ++d) {
      int64_t add = pads[d] + pads[d + static_cast<size_t>(r)];
      if (out[d].is_known())
        out[d].value = std::max<int64_t>(0, out[d].value + add);
      else if (add != 0)
        out[d] = Dim::unknown();
    }
    ctx.set_output(0, in.dtype, out);
  };
  s.compute = [attr_form, pads_attr, full_pads](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    const Node& n = ctx.node();
    PadMode mode = pad_mode(n);
    std::vector<int64_t> pads, axes;
    Tensor fill;
    if (attr_form) {
      pads = n.attr_ints(pads_attr);
      fill = scalar_of(x.dtype(), n.attr_float("value", 0.0f));
    } else {
      pads = read_ints(ctx.input(1), ctx, "Pad pads");
      if (ctx.has_input(2) && ctx.input(2).numel() > 0) {
        fill = ctx.input(2);
        if (fill.dtype() != x.dtype())
          throw ctx.error("constant_value has type " + dtype_name(fill.dtype()) + ", data has " +
                          dtype_name(x.dtype()));
      } else {
        fill = Tensor(x.dtype(), {});
      }
    }
    bool has_axes = ctx.has_input(3);
    if (has_axes) axes = read_ints(ctx.input(3), ctx, "Pad axes");
    pads = full_pads(ctx, pads, has_axes ? &axes : nullptr, x.rank());
    pad_kernel(ctx, x, pads, fill, mode);
  };
  return s;
}

// -------------------------------------------------------------- CenterCropPad

OpSchema center_crop_pad_schema() {
  OpSchema s;
  s.name = "CenterCropPad";
  s.since = 18;
  s.min_inputs = s.max_inputs = 2;
  s.max_outputs = 1;
  auto target_axes = [](const Node& n, int64_t rank, size_t count) {
    std::vector<int64_t> axes = n.attr_ints("axes");
    if (!n.has_attr("axes"))
      for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
    if (axes.size() != count)
      throw Error(n.describe() + ": shape has " + std::to_string(count) + " entries for " +
                  std::to_string(axes.size()) + " axes");
    for (int64_t& a : axes) a = normalize_axis(a, rank, n);
    return axes;
  };
  s.infer = [target_axes](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    std::vector<int64_t> shape;
    if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
    DimVector out = *in.shape;
    if (!ctx.input_ints(1, &shape)) {
      std::vector<int64_t> axes = ctx.node().attr_ints("axes");
      if (!ctx.node().has_attr("axes")) return ctx.set_output(0, in.dtype, unknown_dims(out.size()));
      for (int64_t a : axes) out[static_cast<size_t>(normalize_axis(a, in.rank(), ctx.node()))] = Dim::unknown();
      return ctx.set_output(0, in.dtype, out);
    }
    auto axes = target_axes(ctx.node(), in.rank(), shape.size());
    for (size_t k = 0; k < axes.size(); ++k) out[static_cast<size_t>(axes[k])] = Dim::known(shape[k]);
    ctx.set_output(0, in.dtype, out);
  };
  s.compute = [target_axes](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> shape = read_ints(ctx.input(1), ctx, "CenterCropPad shape");
    auto axes = target_axes(ctx.node(), x.rank(), shape.size());
    Shape out_shape = x.shape();
    // Output coordinate o reads input o + delta[d] (outside the input: zero).
    std::vector<int64_t> delta(out_shape.size(), 0);
    for (size_t k = 0; k < axes.size(); ++k) {
      size_t d = static_cast<size_t>(axes[k]);
      int64_t n = x.shape()[d], t = shape[k];
      if (t < 0) throw ctx.error("shape[" + std::to_string(k) + "] is negative: " + std::to_string(t));
      delta[d] = t <= n ? (n - t) / 2 : -((t - n) / 2);
      out_shape[d] = t;
    }
    checked_numel(ctx, out_shape, "CenterCropPad output");
    std::vector<int64_t> st = contiguous_strides(x.shape());
    dispatch_by_size(x.dtype(), "CenterCropPad", [&]<typename T>() {
      Tensor& out = ctx.output(0, x.dtype(), out_shape);
      const T* px = x.data<T>();
      T* po = out.data<T>();
      for_each_index(out_shape, [&](const int64_t* idx, int64_t i) {
        int64_t off = 0;
        for (size_t d = 0; d < out_shape.size(); ++d) {
          int64_t src = idx[d] + delta[d];
          if (src < 0 || src >= x.shape()[d]) return;  // stays zero
          off += src * st[d];
        }
        po[i] = px[off];
      });
    });
  };
  return s;
}

}  // namespace

KILN_OP(Slice_1) { return slice_schema(1, 9); }
KILN_OP(Slice_10) { return slice_schema(10, INT_MAX); }
KILN_OP(Pad_1) { return pad_schema(1, 1); }
KILN_OP(Pad_2) { return pad_schema(2, 10); }
KILN_OP(Pad_11) { return pad_schema(11, 17); }
KILN_OP(Pad_18) { return pad_schema(18, INT_MAX); }
KILN_OP(CenterCropPad) { return center_crop_pad_schema(); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(CenterCropPad) { return {.op = "CenterCropPad", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Pad) { return {.op = "Pad", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Slice) { return {.op = "Slice", .family = OpFamily::kShape, .cost = cost::none()}; }

}  // namespace kiln
