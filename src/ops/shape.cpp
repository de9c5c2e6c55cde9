// Ops that change only the shape or report it: Shape, Size, Reshape, Flatten,
// Squeeze, Unsqueeze, Expand, and Dropout (identity at inference).
// Reshape-like outputs are views sharing the input's storage.
#include <algorithm>
#include <set>

#include "ir/op_facts.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// ------------------------------------------------------------------- Shape

// Shape-15 clamps start/end into [0, rank] after adding rank to negatives.
void shape_range(int64_t rank, const Node& n, int64_t* start, int64_t* end) {
  int64_t s = n.opset >= 15 ? n.attr_int("start", 0) : 0;
  int64_t e = n.opset >= 15 ? n.attr_int("end", rank) : rank;
  if (s < 0) s += rank;
  if (e < 0) e += rank;
  *start = std::clamp<int64_t>(s, 0, rank);
  *end = std::clamp<int64_t>(e, 0, rank);
  if (*end < *start) *end = *start;
}

OpSchema shape_schema(int since, int until) {
  return OpSchema{
      .name = "Shape",
      .since = since,
      .until = until,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            int r = input_rank(ctx, 0);
            if (r < 0) return ctx.set_output(0, DType::kInt64, DimVector{Dim::unknown()});
            int64_t b, e;
            shape_range(r, ctx.node(), &b, &e);
            ctx.set_output(0, DType::kInt64, DimVector{Dim::known(e - b)});
          },
      .compute =
          [](KernelContext& ctx) {
            const Shape& in = ctx.input(0).shape();
            int64_t b, e;
            shape_range(static_cast<int64_t>(in.size()), ctx.node(), &b, &e);
            Tensor& out = ctx.output(0, DType::kInt64, {e - b});
            for (int64_t i = b; i < e; ++i) out.data<int64_t>()[i - b] = in[static_cast<size_t>(i)];
          },
  };
}

// -------------------------------------------------------------------- Reshape

// Resolves Reshape's target: 0 copies the input dim (unless allowzero), one
// -1 is inferred from the element count.
Shape reshape_target(const KernelContext& ctx, const Shape& in, std::vector<int64_t> shape, bool allowzero) {
  int infer_at = -1;
  bool has_zero = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer_at >= 0) throw ctx.error("shape has more than one -1");
      infer_at = static_cast<int>(i);
    } else if (shape[i] == 0) {
      has_zero = true;
      if (!allowzero) {
        if (i >= in.size())
          throw ctx.error("shape[" + std::to_string(i) + "] is 0 but the input has rank " + std::to_string(in.size()));
        shape[i] = in[i];
      }
    } else if (shape[i] < -1) {
      throw ctx.error("shape[" + std::to_string(i) + "] = " + std::to_string(shape[i]) + " is invalid");
    }
  }
  if (allowzero && has_zero && infer_at >= 0) throw ctx.error("allowzero shape has both 0 and -1");
  int64_t total = shape_numel(in);
  if (infer_at >= 0) {
    int64_t known = 1;
    for (size_t i = 0; i < shape.size(); ++i)
      if (static_cast<int>(i) != infer_at) {
        if (shape[i] != 0 && known > kMaxDataDrivenElements / shape[i])
          throw ctx.error("shape " + shape_str(shape) + " is too large");
        known *= shape[i];
      }
    if (known == 0 || total % known != 0)
      throw ctx.error("cannot reshape " + shape_str(in) + " to " + shape_str(shape) + ": -1 has no integer solution");
    shape[static_cast<size_t>(infer_at)] = total / known;
  }
  if (checked_numel(ctx, shape, "shape") != total)
    throw ctx.error("cannot reshape " + shape_str(in) + " (" + std::to_string(total) + " elements) to " +
                    shape_str(shape));
  return shape;
}

void reshape_infer(InferContext& ctx, const std::vector<int64_t>* shape) {
  const ValueType& in = ctx.input_type(0);
  if (!shape) {
    const ValueType& st = ctx.input_type(1);
    if (st.shape && st.shape->size() == 1 && (*st.shape)[0].is_known())
      return ctx.set_output(0, in.dtype, unknown_dims(static_cast<size_t>((*st.shape)[0].value)));
    return ctx.set_output(0, in.dtype, std::nullopt);
  }
  bool allowzero = ctx.node().opset >= 14 && ctx.node().attr_int("allowzero", 0) != 0;
  DimVector out;
  int infer_at = -1;
  for (size_t i = 0; i < shape->size(); ++i) {
    int64_t v = (*shape)[i];
    if (v == 0 && !allowzero) {
      out.push_back(in.shape && i < in.shape->size() ? (*in.shape)[i] : Dim::unknown());
    } else if (v == -1) {
      infer_at = static_cast<int>(i);
      out.push_back(Dim::unknown());
    } else {
      out.push_back(v >= 0 ? Dim::known(v) : Dim::unknown());
    }
  }
  if (infer_at >= 0 && in.is_static()) {
    int64_t total = shape_numel(in.static_shape()), known = 1;
    bool ok = true;
    for (size_t i = 0; i < out.size(); ++i)
      if (static_cast<int>(i) != infer_at) {
        if (!out[i].is_known() || out[i].value == 0)
          ok = false;
        else
          known *= out[i].value;
      }
    if (ok && total % known == 0) out[static_cast<size_t>(infer_at)] = Dim::known(total / known);
  }
  ctx.set_output(0, in.dtype, out);
}

OpSchema reshape_schema(int since, int until) {
  OpSchema s;
  s.name = "Reshape";
  s.since = since;
  s.until = until;
  bool attr_form = until <= 4;
  s.min_inputs = s.max_inputs = attr_form ? 1 : 2;
  s.max_outputs = 1;
  if (attr_form)
    s.check = [](const Node& n) { return n.has_attr("shape") ? std::string() : "attribute 'shape' is required"; };
  s.infer = [attr_form](InferContext& ctx) {
    std::vector<int64_t> shape;
    if (attr_form) shape = ctx.node().attr_ints("shape");
    bool known = attr_form || ctx.input_ints(1, &shape);
    reshape_infer(ctx, known ? &shape : nullptr);
  };
  s.compute = [attr_form](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> shape =
        attr_form ? ctx.node().attr_ints("shape") : read_ints(ctx.input(1), ctx, "Reshape shape");
    bool allowzero = ctx.node().opset >= 14 && ctx.node().attr_int("allowzero", 0) != 0;
    ctx.set_output(0, x.reshaped(reshape_target(ctx, x.shape(), shape, allowzero)));
  };
  return s;
}

// -------------------------------------------------------------------- Flatten

// Flatten's axis lies in [-rank, rank]; a negative one counts from the back.
int64_t flatten_axis(const Node& n, int64_t rank) {
  int64_t axis = n.attr_int("axis", 1);
  if (axis < -rank || axis > rank)
    throw Error(n.describe() + ": axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

OpSchema flatten_schema() {
  return OpSchema{
      .name = "Flatten",
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            const ValueType& in = ctx.input_type(0);
            if (!in.shape) return ctx.set_output(0, in.dtype, unknown_dims(2));
            int64_t r = in.rank();
            int64_t axis = flatten_axis(ctx.node(), r);
            Dim d[2] = {Dim::known(1), Dim::known(1)};
            for (int64_t i = 0; i < r; ++i) {
              Dim& o = d[i < axis ? 0 : 1];
              const Dim& x = (*in.shape)[static_cast<size_t>(i)];
              if (o.is_known() && x.is_known())
                o.value *= x.value;
              else if (x.is_known() && x.value == 0)
                o = Dim::known(0);
              else if (!(o.is_known() && o.value == 0))
                o = Dim::unknown();
            }
            ctx.set_output(0, in.dtype, DimVector{d[0], d[1]});
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            int64_t axis = flatten_axis(ctx.node(), x.rank());
            int64_t outer = 1;
            for (int64_t i = 0; i < axis; ++i) outer *= x.shape()[static_cast<size_t>(i)];
            int64_t inner = 1;
            for (int64_t i = axis; i < x.rank(); ++i) inner *= x.shape()[static_cast<size_t>(i)];
            ctx.set_output(0, x.reshaped({outer, inner}));
          },
  };
}

// ------------------------------------------------------- Squeeze / Unsqueeze

// Axes from the attribute (opset < 13) or the optional input 1.
std::optional<std::vector<int64_t>> squeeze_axes_static(const InferContext& ctx, bool from_input) {
  if (!from_input) {
    if (!ctx.node().has_attr("axes")) return std::nullopt;
    return ctx.node().attr_ints("axes");
  }
  if (!ctx.has_input(1)) return std::nullopt;
  std::vector<int64_t> v;
  if (!ctx.input_ints(1, &v)) return std::vector<int64_t>{INT64_MIN};  // present but unknown
  return v;
}

std::vector<int64_t> normalized_unique_axes(std::vector<int64_t> axes, int64_t rank, const Node& n) {
  std::set<int64_t> seen;
  for (int64_t& a : axes) {
    a = normalize_axis(a, rank, n);
    if (!seen.insert(a).second) throw Error(n.describe() + ": axis " + std::to_string(a) + " is repeated");
  }
  return axes;
}

OpSchema squeeze_schema(int since, int until) {
  OpSchema s;
  s.name = "Squeeze";
  s.since = since;
  s.until = until;
  bool from_input = since >= 13;
  s.min_inputs = 1;
  s.max_inputs = from_input ? 2 : 1;
  s.max_outputs = 1;
  s.infer = [from_input](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    auto axes = squeeze_axes_static(ctx, from_input);
    if (!in.shape || (axes && !axes->empty() && (*axes)[0] == INT64_MIN))
      return ctx.set_output(0, in.dtype, std::nullopt);
    const DimVector& d = *in.shape;
    DimVector out;
    if (axes && !axes->empty()) {
      auto ax = normalized_unique_axes(*axes, in.rank(), ctx.node());
      for (size_t i = 0; i < d.size(); ++i) {
        if (std::find(ax.begin(), ax.end(), static_cast<int64_t>(i)) != ax.end()) {
          if (d[i].is_known() && d[i].value != 1)
            throw ctx.error("cannot squeeze axis " + std::to_string(i) + " of size " + std::to_string(d[i].value));
          continue;
        }
        out.push_back(d[i]);
      }
    } else {
      for (const Dim& x : d) {
        if (!x.is_known()) return ctx.set_output(0, in.dtype, std::nullopt);
        if (x.value != 1) out.push_back(x);
      }
    }
    ctx.set_output(0, in.dtype, out);
  };
  s.compute = [from_input](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes;
    if (!from_input)
      axes = ctx.node().attr_ints("axes");
    else if (ctx.has_input(1))
      axes = read_ints(ctx.input(1), ctx, "Squeeze axes");
    Shape out;
    if (axes.empty()) {
      for (int64_t v : x.shape())
        if (v != 1) out.push_back(v);
    } else {
      auto ax = normalized_unique_axes(axes, x.rank(), ctx.node());
      for (int i = 0; i < x.rank(); ++i) {
        if (std::find(ax.begin(), ax.end(), i) != ax.end()) {
          if (x.dim(i) != 1)
            throw ctx.error("cannot squeeze axis " + std::to_string(i) + " of size " + std::to_string(x.dim(i)));
          continue;
        }
        out.push_back(x.dim(i));
      }
    }
    ctx.set_output(0, x.reshaped(out));
  };
  return s;
}

OpSchema unsqueeze_schema(int since, int until) {
  OpSchema s;
  s.name = "Unsqueeze";
  s.since = since;
  s.until = until;
  bool from_input = since >= 13;
  s.min_inputs = s.max_inputs = from_input ? 2 : 1;
  s.max_outputs = 1;
  if (!from_input)
    s.check = [](const Node& n) { return n.has_attr("axes") ? std::string() : "attribute 'axes' is required"; };
  s.infer = [from_input](InferContext& ctx) {
    const ValueType& in = ctx.input_type(0);
    std::vector<int64_t> axes;
    if (!from_input)
      axes = ctx.node().attr_ints("axes");
    else if (!ctx.input_ints(1, &axes)) {
      const ValueType& at = ctx.input_type(1);
      if (in.shape && at.shape && at.shape->size() == 1 && (*at.shape)[0].is_known())
        return ctx.set_output(0, in.dtype, unknown_dims(in.shape->size() + static_cast<size_t>((*at.shape)[0].value)));
      return ctx.set_output(0, in.dtype, std::nullopt);
    }
    if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
    int64_t r = in.rank() + static_cast<int64_t>(axes.size());
    auto ax = normalized_unique_axes(axes, r, ctx.node());
    DimVector out;
    size_t k = 0;
    for (int64_t i = 0; i < r; ++i)
      out.push_back(std::find(ax.begin(), ax.end(), i) != ax.end() ? Dim::known(1) : (*in.shape)[k++]);
    ctx.set_output(0, in.dtype, out);
  };
  s.compute = [from_input](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes =
        from_input ? read_ints(ctx.input(1), ctx, "Unsqueeze axes") : ctx.node().attr_ints("axes");
    int64_t r = x.rank() + static_cast<int64_t>(axes.size());
    auto ax = normalized_unique_axes(axes, r, ctx.node());
    Shape out;
    size_t k = 0;
    for (int64_t i = 0; i < r; ++i) out.push_back(std::find(ax.begin(), ax.end(), i) != ax.end() ? 1 : x.shape()[k++]);
    ctx.set_output(0, x.reshaped(out));
  };
  return s;
}

// --------------------------------------------------------------------- Expand

// Bidirectional broadcast of the input with the requested shape.
OpSchema expand_schema() {
  return OpSchema{
      .name = "Expand",
      .since = 8,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            const ValueType& in = ctx.input_type(0);
            std::vector<int64_t> shape;
            if (!ctx.input_ints(1, &shape) || !in.shape) {
              const ValueType& st = ctx.input_type(1);
              if (in.shape && st.shape && st.shape->size() == 1 && (*st.shape)[0].is_known())
                return ctx.set_output(
                    0, in.dtype,
                    unknown_dims(std::max<size_t>(in.shape->size(), static_cast<size_t>((*st.shape)[0].value))));
              return ctx.set_output(0, in.dtype, std::nullopt);
            }
            size_t r = std::max(in.shape->size(), shape.size());
            DimVector out(r, Dim::known(1));
            for (size_t i = 0; i < r; ++i) {
              Dim a = i + in.shape->size() >= r ? (*in.shape)[i + in.shape->size() - r] : Dim::known(1);
              Dim b = i + shape.size() >= r ? Dim::known(shape[i + shape.size() - r]) : Dim::known(1);
              if (b.value < 0) throw ctx.error("shape has negative dim " + std::to_string(b.value));
              if (a.is_known() && a.value == 1)
                out[i] = b;
              else if (b.value == 1)
                out[i] = a;
              else if (a.is_known() && a.value != b.value)
                throw ctx.error("cannot expand dim " + std::to_string(a.value) + " to " + std::to_string(b.value));
              else
                out[i] = b;
            }
            ctx.set_output(0, in.dtype, out);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            std::vector<int64_t> shape = read_ints(ctx.input(1), ctx, "Expand shape");
            checked_numel(ctx, shape, "Expand shape");
            Shape out_shape = broadcast_shapes({x.shape(), shape}, ctx.node());
            checked_numel(ctx, out_shape, "Expand output");
            if (x.dtype() != DType::kString) {
              Shape x_view = x.shape();
              x_view.insert(x_view.begin(), out_shape.size() - x_view.size(), 1);
              Tensor& out = ctx.output_uninitialized(0, x.dtype(), out_shape);
              broadcast_view(x, x_view, out_shape, out, ctx.thread_pool());
              return;
            }
            dispatch_by_size(x.dtype(), "Expand", [&]<typename T>() {
              Tensor& out = ctx.output(0, x.dtype(), out_shape);
              const T* px = x.data<T>();
              T* po = out.data<T>();
              for_each_broadcast(out_shape, {broadcast_strides(x.shape(), out_shape)},
                                 [&](int64_t i, const int64_t* off) { po[i] = px[off[0]]; });
            });
          },
  };
}

// -------------------------------------------------------------------- Dropout

// Inference only: the output is the input and the mask is all "kept". Opset
// 12+ training_mode=true with a non-zero ratio would need random numbers,
// which an inference engine refuses clearly.
OpSchema dropout_schema(int since, int until) {
  OpSchema s;
  s.name = "Dropout";
  s.since = since;
  s.until = until;
  s.min_inputs = 1;
  s.max_inputs = since >= 12 ? 3 : 1;
  s.max_outputs = 2;
  s.types = float_dtypes();
  // Before opset 10 the mask has the input's type; from 10 on it is bool.
  s.infer = [since](InferContext& ctx) {
    infer_same_as_input(ctx);
    ValueType m = ctx.input_type(0);
    if (since >= 10) m.dtype = DType::kBool;
    ctx.set_output(1, m);
  };
  s.compute = [since](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    if (since >= 12 && ctx.has_input(2)) {
      const Tensor& tm = ctx.input(2);
      if (tm.numel() != 1 || tm.dtype() != DType::kBool) throw ctx.error("training_mode must be a bool scalar");
      double ratio = ctx.has_input(1) ? read_scalar(ctx.input(1)) : 0.5;
      if (tm.data<bool>()[0] && ratio > 0)
        throw ctx.error("training_mode=true with ratio > 0 (random dropout) is not supported");
    }
    ctx.set_output(0, x);
    if (ctx.has_output(1)) {
      DType mt = since >= 10 ? DType::kBool : x.dtype();
      Tensor& m = ctx.output(1, mt, x.shape());
      dispatch<PodTypes>(mt, "Dropout", [&]<typename T>() {
        T one = static_cast<T>(1.0f);
        for (int64_t i = 0; i < m.numel(); ++i) m.data<T>()[i] = one;
      });
    }
  };
  return s;
}

}  // namespace

KILN_OP(Shape_1) { return shape_schema(1, 14); }
KILN_OP(Shape_15) { return shape_schema(15, INT_MAX); }

KILN_OP(Size) {
  return OpSchema{
      .name = "Size",
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .infer = [](InferContext& ctx) { ctx.set_output(0, DType::kInt64, DimVector{}); },
      .compute = [](KernelContext& ctx) { ctx.output(0, DType::kInt64, {}).data<int64_t>()[0] = ctx.input(0).numel(); },
  };
}

KILN_OP(Reshape_1) { return reshape_schema(1, 4); }
KILN_OP(Reshape_5) { return reshape_schema(5, INT_MAX); }
KILN_OP(Flatten) { return flatten_schema(); }
KILN_OP(Squeeze_1) { return squeeze_schema(1, 12); }
KILN_OP(Squeeze_13) { return squeeze_schema(13, INT_MAX); }
KILN_OP(Unsqueeze_1) { return unsqueeze_schema(1, 12); }
KILN_OP(Unsqueeze_13) { return unsqueeze_schema(13, INT_MAX); }
KILN_OP(Expand) { return expand_schema(); }
KILN_OP(Dropout_1) { return dropout_schema(1, 9); }
KILN_OP(Dropout_10) { return dropout_schema(10, 11); }
KILN_OP(Dropout_12) { return dropout_schema(12, INT_MAX); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Dropout) { return {.op = "Dropout", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Expand) { return {.op = "Expand", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Flatten) { return {.op = "Flatten", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Reshape) { return {.op = "Reshape", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Shape) { return {.op = "Shape", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Size) { return {.op = "Size", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Squeeze) { return {.op = "Squeeze", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(Unsqueeze) { return {.op = "Unsqueeze", .family = OpFamily::kShape, .cost = cost::none()}; }

}  // namespace kiln
