// Ops that select or rearrange elements by position: NonZero, Compress,
// ReverseSequence, DepthToSpace, SpaceToDepth and TensorScatter.
#include <algorithm>

#include "ir/op_facts.h"
#include "ops/tensor_util.h"

namespace kiln {

namespace {

// True where element i of `t` is non-zero (any POD dtype).
std::vector<bool> nonzero_mask(const Tensor& t, const std::string& what) {
  std::vector<bool> m(static_cast<size_t>(t.numel()));
  dispatch<PodTypes>(t.dtype(), what, [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) m[static_cast<size_t>(i)] = acc_t<T>(t.data<T>()[i]) != acc_t<T>(0);
  });
  return m;
}

// -------------------------------------------------------------------- NonZero

OpSchema nonzero_schema() {
  return OpSchema{
      .name = "NonZero",
      .since = 9,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            int r = input_rank(ctx, 0);
            ctx.set_output(0, DType::kInt64,
                           DimVector{r >= 0 ? Dim::known(std::max(r, 1)) : Dim::unknown(), Dim::unknown()});
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            std::vector<bool> m = nonzero_mask(x, "NonZero");
            // A scalar is treated as a 1-element vector (as onnxruntime does).
            Shape shape = x.rank() ? x.shape() : Shape{1};
            int64_t nnz = std::count(m.begin(), m.end(), true);
            int64_t r = static_cast<int64_t>(shape.size());
            Tensor& out = ctx.output(0, DType::kInt64, {r, nnz});
            int64_t col = 0;
            for_each_index(shape, [&](const int64_t* idx, int64_t i) {
              if (!m[static_cast<size_t>(i)]) return;
              for (int64_t d = 0; d < r; ++d) out.data<int64_t>()[d * nnz + col] = idx[d];
              ++col;
            });
          },
  };
}

// ------------------------------------------------------------------- Compress

OpSchema compress_schema() {
  return OpSchema{
      .name = "Compress",
      .since = 9,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .infer =
          [](InferContext& ctx) {
            const ValueType& in = ctx.input_type(0);
            if (!ctx.node().has_attr("axis")) return ctx.set_output(0, in.dtype, DimVector{Dim::unknown()});
            if (!in.shape) return ctx.set_output(0, in.dtype, std::nullopt);
            DimVector out = *in.shape;
            out[static_cast<size_t>(normalize_axis(ctx.node().attr_int("axis", 0), in.rank(), ctx.node()))] =
                Dim::unknown();
            ctx.set_output(0, in.dtype, out);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            const Tensor& c = ctx.input(1);
            if (c.rank() != 1) throw ctx.error("condition must be 1-D, got shape " + shape_str(c.shape()));
            std::vector<bool> keep = nonzero_mask(c, "Compress condition");
            bool has_axis = ctx.node().has_attr("axis");
            Shape view = has_axis ? x.shape() : Shape{x.numel()};
            int64_t axis = has_axis ? normalize_axis(ctx.node().attr_int("axis", 0), x.rank(), ctx.node()) : 0;
            int64_t outer = 1, inner = 1, n = view[static_cast<size_t>(axis)];
            for (int64_t d = 0; d < axis; ++d) outer *= view[static_cast<size_t>(d)];
            for (size_t d = static_cast<size_t>(axis) + 1; d < view.size(); ++d) inner *= view[d];
            if (c.numel() > n)
              throw ctx.error("condition has " + std::to_string(c.numel()) + " entries for an axis of size " +
                              std::to_string(n));
            std::vector<int64_t> sel;
            for (int64_t i = 0; i < c.numel(); ++i)
              if (keep[static_cast<size_t>(i)]) sel.push_back(i);
            Shape out_shape = view;
            int64_t k = static_cast<int64_t>(sel.size());
            out_shape[static_cast<size_t>(axis)] = k;
            Tensor& out = ctx.output(0, x.dtype(), out_shape);
            for (int64_t o = 0; o < outer; ++o)
              for (int64_t t = 0; t < k; ++t)
                copy_elements(x, (o * n + sel[static_cast<size_t>(t)]) * inner, out, (o * k + t) * inner, inner);
          },
  };
}

// ------------------------------------------------------------ ReverseSequence

OpSchema reverse_sequence_schema() {
  return OpSchema{
      .name = "ReverseSequence",
      .since = 10,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            std::vector<int64_t> lens = read_ints(ctx.input(1), ctx, "sequence_lens");
            int64_t batch_axis = ctx.node().attr_int("batch_axis", 1), time_axis = ctx.node().attr_int("time_axis", 0);
            if (x.rank() < 2) throw ctx.error("input must have rank >= 2");
            if (!((batch_axis == 0 && time_axis == 1) || (batch_axis == 1 && time_axis == 0)))
              throw ctx.error("batch_axis and time_axis must be 0 and 1 in some order");
            int64_t batch = x.dim(static_cast<int>(batch_axis)), time = x.dim(static_cast<int>(time_axis));
            if (static_cast<int64_t>(lens.size()) != batch)
              throw ctx.error("sequence_lens has " + std::to_string(lens.size()) + " entries for batch size " +
                              std::to_string(batch));
            for (size_t b = 0; b < lens.size(); ++b)
              if (lens[b] < 0 || lens[b] > time)
                throw ctx.error("sequence_lens[" + std::to_string(b) + "] = " + std::to_string(lens[b]) +
                                " is out of range [0, " + std::to_string(time) + "]");
            int64_t inner = 1;
            for (int d = 2; d < x.rank(); ++d) inner *= x.dim(d);
            Tensor& out = ctx.output(0, x.dtype(), x.shape());
            // Offset of (b, t) in the first two axes.
            auto at = [&](int64_t b, int64_t t) { return (batch_axis == 0 ? b * time + t : t * batch + b) * inner; };
            for (int64_t b = 0; b < batch; ++b)
              for (int64_t t = 0; t < time; ++t) {
                int64_t src = t < lens[static_cast<size_t>(b)] ? lens[static_cast<size_t>(b)] - 1 - t : t;
                copy_elements(x, at(b, src), out, at(b, t), inner);
              }
          },
  };
}

// ----------------------------------------------- DepthToSpace / SpaceToDepth

// The channel of the depth-side tensor that holds block offset (i, j) of
// space-side channel c, for `cs` space-side channels.
int64_t depth_channel(bool crd, int64_t c, int64_t i, int64_t j, int64_t b, int64_t cs) {
  return crd ? (c * b + i) * b + j : (i * b + j) * cs + c;
}

template <bool ToSpace>
OpSchema depth_space_schema(const char* name, int since, int until) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .check = [since](const Node& n) -> std::string {
        int64_t b = n.attr_int("blocksize", 0);
        if (b <= 0 || b > (1 << 16)) return "attribute 'blocksize' = " + std::to_string(b) + " is out of range";
        if (n.has_attr("mode") && (!ToSpace || since < 11)) return "attribute 'mode' is not allowed here";
        std::string m = n.attr_string("mode", "DCR");
        if (m != "DCR" && m != "CRD") return "mode '" + m + "' is unknown";
        return "";
      },
      .infer =
          [](InferContext& ctx) {
            const ValueType& in = ctx.input_type(0);
            if (!in.shape) return ctx.set_output(0, in.dtype, unknown_dims(4));
            if (in.shape->size() != 4) throw ctx.error("input must be 4-D");
            int64_t b = ctx.node().attr_int("blocksize", 1);
            DimVector out = *in.shape;
            auto scale = [](Dim d, int64_t num, int64_t den) {
              return d.is_known() && (d.value * num) % den == 0 ? Dim::known(d.value * num / den) : Dim::unknown();
            };
            out[1] = ToSpace ? scale(out[1], 1, b * b) : scale(out[1], b * b, 1);
            out[2] = ToSpace ? scale(out[2], b, 1) : scale(out[2], 1, b);
            out[3] = ToSpace ? scale(out[3], b, 1) : scale(out[3], 1, b);
            ctx.set_output(0, in.dtype, out);
          },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            if (x.rank() != 4) throw ctx.error("input must be 4-D, got shape " + shape_str(x.shape()));
            int64_t b = ctx.node().attr_int("blocksize", 1);
            bool crd = ToSpace && ctx.node().attr_string("mode", "DCR") == "CRD";
            int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
            // Space-side (channels, height, width) and depth-side height/width.
            int64_t cs, hs, ws, hd, wd;
            if (ToSpace) {
              if (C % (b * b)) throw ctx.error("channels " + std::to_string(C) + " are not divisible by blocksize^2");
              cs = C / (b * b), hd = H, wd = W, hs = H * b, ws = W * b;
            } else {
              if (H % b || W % b)
                throw ctx.error("height and width must be divisible by blocksize " + std::to_string(b));
              cs = C, hs = H, ws = W, hd = H / b, wd = W / b;
            }
            Shape out_shape = ToSpace ? Shape{N, cs, hs, ws} : Shape{N, cs * b * b, hd, wd};
            if (x.dtype() != DType::kString) {
              // A transpose of a 6-D view: depth side [N, b, b, C, H, W] (DCR) or
              // [N, C, b, b, H, W] (CRD), space side [N, C, H, b, W, b].
              Tensor& out = ctx.output_uninitialized(0, x.dtype(), out_shape);
              const Shape depth = crd ? Shape{N, cs, b, b, hd, wd} : Shape{N, b, b, cs, hd, wd};
              const Shape space = {N, cs, hd, b, wd, b};
              const std::vector<int64_t> to_space =
                  crd ? std::vector<int64_t>{0, 1, 4, 2, 5, 3} : std::vector<int64_t>{0, 3, 4, 1, 5, 2};
              const std::vector<int64_t> to_depth = {0, 3, 5, 1, 2, 4};  // DCR only (SpaceToDepth)
              if (ToSpace)
                permute_view(x, depth, to_space, out, ctx.thread_pool());
              else
                permute_view(x, space, to_depth, out, ctx.thread_pool());
              return;
            }
            Tensor& out = ctx.output(0, x.dtype(), out_shape);
            int64_t cd = cs * b * b;
            for (int64_t n = 0; n < N; ++n)
              for (int64_t c = 0; c < cs; ++c)
                for (int64_t h = 0; h < hs; ++h)
                  for (int64_t w = 0; w < ws; ++w) {
                    int64_t space = ((n * cs + c) * hs + h) * ws + w;
                    int64_t dc = depth_channel(crd, c, h % b, w % b, b, cs);
                    int64_t depth = ((n * cd + dc) * hd + h / b) * wd + w / b;
                    if (ToSpace)
                      copy_elements(x, depth, out, space, 1);
                    else
                      copy_elements(x, space, out, depth, 1);
                  }
          },
  };
}

// -------------------------------------------------------------- TensorScatter

OpSchema tensor_scatter_schema() {
  return OpSchema{
      .name = "TensorScatter",
      .since = 24,
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = 1,
      .check = [](const Node& n) -> std::string {
        std::string m = n.attr_string("mode", "linear");
        return m == "linear" || m == "circular" ? "" : "mode '" + m + "' is unknown";
      },
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& past = ctx.input(0);
            const Tensor& up = ctx.input(1);
            bool circular = ctx.node().attr_string("mode", "linear") == "circular";
            if (past.rank() < 2) throw ctx.error("past_cache must have rank >= 2");
            int64_t axis = normalize_axis(ctx.node().attr_int("axis", -2), past.rank(), ctx.node());
            if (axis == 0) throw ctx.error("axis must not be the batch axis 0");
            if (up.dtype() != past.dtype()) throw ctx.error("update type differs from past_cache type");
            bool ok = up.rank() == past.rank();
            for (int d = 0; ok && d < past.rank(); ++d)
              ok = d == axis ? up.dim(d) <= past.dim(d) : up.dim(d) == past.dim(d);
            if (!ok)
              throw ctx.error("update shape " + shape_str(up.shape()) + " does not fit past_cache shape " +
                              shape_str(past.shape()));
            int64_t batch = past.dim(0), max_seq = past.dim(static_cast<int>(axis)),
                    seq = up.dim(static_cast<int>(axis));
            std::vector<int64_t> wi(static_cast<size_t>(batch), 0);
            if (ctx.has_input(2)) {
              wi = read_ints(ctx.input(2), ctx, "write_indices");
              if (static_cast<int64_t>(wi.size()) != batch)
                throw ctx.error("write_indices has " + std::to_string(wi.size()) + " entries for batch " +
                                std::to_string(batch));
            }
            for (size_t b = 0; b < wi.size(); ++b)
              if (wi[b] < 0 || (!circular && wi[b] + seq > max_seq))
                throw ctx.error("write_indices[" + std::to_string(b) + "] = " + std::to_string(wi[b]) +
                                " is out of range");
            int64_t outer = 1, inner = 1;  // outer includes the batch axis
            for (int64_t d = 0; d < axis; ++d) outer *= past.dim(static_cast<int>(d));
            for (int64_t d = axis + 1; d < past.rank(); ++d) inner *= past.dim(static_cast<int>(d));
            int64_t per_batch = batch ? outer / batch : 0;
            Tensor out = past.clone();
            for (int64_t o = 0; o < outer; ++o) {
              int64_t w0 = wi[static_cast<size_t>(o / per_batch)];
              for (int64_t t = 0; t < seq; ++t) {
                int64_t dst = (w0 + t) % max_seq;
                copy_elements(up, (o * seq + t) * inner, out, (o * max_seq + dst) * inner, inner);
              }
            }
            ctx.set_output(0, std::move(out));
          },
  };
}

}  // namespace

KILN_OP(NonZero) { return nonzero_schema(); }
KILN_OP(Compress) { return compress_schema(); }
KILN_OP(ReverseSequence) { return reverse_sequence_schema(); }
KILN_OP(DepthToSpace_1) { return depth_space_schema<true>("DepthToSpace", 1, 10); }
KILN_OP(DepthToSpace_11) { return depth_space_schema<true>("DepthToSpace", 11, INT_MAX); }
KILN_OP(SpaceToDepth) { return depth_space_schema<false>("SpaceToDepth", 1, INT_MAX); }

KILN_OP(TensorScatter) { return tensor_scatter_schema(); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Compress) { return {.op = "Compress", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(DepthToSpace) { return {.op = "DepthToSpace", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(NonZero) { return {.op = "NonZero", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(ReverseSequence) { return {.op = "ReverseSequence", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(SpaceToDepth) { return {.op = "SpaceToDepth", .family = OpFamily::kShape, .cost = cost::none()}; }

KILN_OP_FACTS(TensorScatter) { return {.op = "TensorScatter", .family = OpFamily::kShape, .cost = cost::none()}; }

}  // namespace kiln
