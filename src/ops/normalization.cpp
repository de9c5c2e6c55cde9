// BatchNormalization (inference, and training_mode=1 from opset 14),
// InstanceNormalization and LRN. Channels are axis 1.
//
// BatchNormalization versions: 1 (consumed_inputs, is_test, spatial), 6
// (is_test, spatial), 7 (spatial), 9 (per-channel only), 14 (training_mode,
// 3 outputs), 15 (scale/bias and mean/var may have their own float types).
// With spatial=0 the parameters have shape C x D1 x ... (per activation).
#include <cmath>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "ops/layer_norm_rows.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

std::vector<double> doubles_of(const Tensor& t, const KernelContext& ctx, const char* what) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  if (!dtype_is_float(t.dtype())) throw ctx.error(std::string(what) + " must be a float tensor");
  dispatch<FloatTypes>(t.dtype(), what, [&]<typename T>() {
    for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<acc_t<T>>(t.data<T>()[i]);
  });
  return v;
}

template <typename T>
void store(Tensor& y, const std::vector<double>& v) {
  for (size_t i = 0; i < v.size(); ++i) y.data<T>()[i] = static_cast<T>(static_cast<acc_t<T>>(v[i]));
}

void store_as(Tensor& y, const std::vector<double>& v) {
  dispatch<FloatTypes>(y.dtype(), "output", [&]<typename T>() { store<T>(y, v); });
}

void compute_batch_norm(KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) throw ctx.error("X must have rank >= 2, got " + shape_str(x.shape()));
  const int64_t N = x.dim(0), C = x.dim(1), sp = C && N ? x.numel() / (N * C) : 0;
  const bool training = node.opset >= 14 && node.attr_int("training_mode", 0) != 0;
  const double eps = node.attr_float("epsilon", 1e-5f), momentum = node.attr_float("momentum", 0.9f);
  if (node.opset < 14 && ctx.num_outputs() > 1)
    for (size_t i = 1; i < ctx.num_outputs(); ++i)
      if (ctx.has_output(i)) throw ctx.error("training outputs before opset 14 are not supported");
  if (node.opset >= 14 && !training && ctx.num_outputs() > 1)
    for (size_t i = 1; i < ctx.num_outputs(); ++i)
      if (ctx.has_output(i)) throw ctx.error("running_mean/running_var outputs require training_mode=1");
  const bool per_channel = node.opset >= 9 || node.attr_int("spatial", 1) != 0;
  const int64_t pn = per_channel ? C : C * sp;
  std::vector<double> p[4];
  const char* names[4] = {"scale", "B", "input_mean", "input_var"};
  for (int i = 0; i < 4; ++i) {
    const Tensor& t = ctx.input(static_cast<size_t>(i + 1));
    if (t.numel() != pn)
      throw ctx.error(std::string(names[i]) + " " + shape_str(t.shape()) + " must have " + std::to_string(pn) +
                      " elements");
    p[i] = doubles_of(t, ctx, names[i]);
  }
  const std::vector<double> xv = doubles_of(x, ctx, "X");
  std::vector<double> mean = p[2], var = p[3];
  if (training) {
    const double cnt = static_cast<double>(N * sp);
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, s2 = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < sp; ++i) s += xv[static_cast<size_t>((n * C + c) * sp + i)];
      const double m = cnt ? s / cnt : 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < sp; ++i) {
          const double d = xv[static_cast<size_t>((n * C + c) * sp + i)] - m;
          s2 += d * d;
        }
      mean[static_cast<size_t>(c)] = m;
      var[static_cast<size_t>(c)] = cnt ? s2 / cnt : 0;
    }
  }
  std::vector<double> yv(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < sp; ++i) {
        const size_t k = static_cast<size_t>(per_channel ? c : c * sp + i);
        const size_t at = static_cast<size_t>((n * C + c) * sp + i);
        yv[at] = (xv[at] - mean[k]) / std::sqrt(var[k] + eps) * p[0][k] + p[1][k];
      }
  store_as(ctx.output(0, x.dtype(), x.shape()), yv);
  if (training) {
    std::vector<double> rm(mean.size()), rv(var.size());
    for (size_t c = 0; c < mean.size(); ++c) {
      rm[c] = p[2][c] * momentum + mean[c] * (1 - momentum);
      rv[c] = p[3][c] * momentum + var[c] * (1 - momentum);
    }
    if (ctx.has_output(1)) store_as(ctx.output(1, ctx.input(3).dtype(), ctx.input(3).shape()), rm);
    if (ctx.has_output(2)) store_as(ctx.output(2, ctx.input(4).dtype(), ctx.input(4).shape()), rv);
  }
}

OpSchema batch_norm_schema(int since, int until) {
  return OpSchema{
      .name = "BatchNormalization",
      .since = since,
      .until = until,
      .min_inputs = 5,
      .max_inputs = 5,
      .max_outputs = since >= 14 ? 3 : 5,
      .types = float_dtypes(),
      .check = [](const Node& n) -> std::string {
        if (n.opset < 7 && n.has_attr("is_test") && n.attr_int("is_test", 0) == 0 && n.outputs.size() > 1)
          return "training (is_test=0) before opset 14 is not supported";
        return "";
      },
      .infer =
          [](InferContext& ctx) {
            infer_same_as_input(ctx);
            if (ctx.num_outputs() > 1) ctx.set_output(1, ctx.input_type(3));
            if (ctx.num_outputs() > 2) ctx.set_output(2, ctx.input_type(4));
          },
      .compute = compute_batch_norm,
  };
}

// float32: one (n, c) plane per task, the statistics from LayerNorm's row
// loops (the same compensated mean), then one scalar affine per plane.
void instance_norm_f32(KernelContext& ctx, int64_t N, int64_t C, int64_t sp, double eps) {
  const Tensor& x = ctx.input(0);
  const float* scale = ctx.input(1).data<float>();
  const float* bias = ctx.input(2).data<float>();
  const float* px = x.data<float>();
  float* py = ctx.output(0, DType::kFloat32, x.shape()).data<float>();
  parallel_for(ctx.thread_pool(), N * C, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = px + r * sp;
      float* yr = py + r * sp;
      const RowStats st = layer_norm_stats_f32(xr, sp, eps);
      const float k = st.inv_std * scale[r % C], b = bias[r % C], m = st.mean, dm = st.mean_error;
      for (int64_t i = 0; i < sp; ++i) yr[i] = (xr[i] - m - dm) * k + b;
    }
  });
}

void compute_instance_norm(KernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) throw ctx.error("X must have rank >= 2, got " + shape_str(x.shape()));
  const int64_t N = x.dim(0), C = x.dim(1), sp = C && N ? x.numel() / (N * C) : 0;
  const double eps = ctx.node().attr_float("epsilon", 1e-5f);
  if (ctx.input(1).numel() != C || ctx.input(2).numel() != C)
    throw ctx.error("scale and B must have " + std::to_string(C) + " elements");
  if (x.dtype() == DType::kFloat32 && ctx.input(1).dtype() == DType::kFloat32 &&
      ctx.input(2).dtype() == DType::kFloat32 && sp > 0) {
    instance_norm_f32(ctx, N, C, sp, eps);
    return;
  }
  const std::vector<double> scale = doubles_of(ctx.input(1), ctx, "scale"), bias = doubles_of(ctx.input(2), ctx, "B");
  if (static_cast<int64_t>(scale.size()) != C || static_cast<int64_t>(bias.size()) != C)
    throw ctx.error("scale and B must have " + std::to_string(C) + " elements");
  const std::vector<double> xv = doubles_of(x, ctx, "input");
  std::vector<double> yv(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const size_t base = static_cast<size_t>((n * C + c) * sp);
      double s = 0, s2 = 0;
      for (int64_t i = 0; i < sp; ++i) s += xv[base + static_cast<size_t>(i)];
      const double m = s / static_cast<double>(sp);
      for (int64_t i = 0; i < sp; ++i)
        s2 += (xv[base + static_cast<size_t>(i)] - m) * (xv[base + static_cast<size_t>(i)] - m);
      const double inv = 1.0 / std::sqrt(s2 / static_cast<double>(sp) + eps);
      for (int64_t i = 0; i < sp; ++i)
        yv[base + static_cast<size_t>(i)] =
            (xv[base + static_cast<size_t>(i)] - m) * inv * scale[static_cast<size_t>(c)] +
            bias[static_cast<size_t>(c)];
    }
  store_as(ctx.output(0, x.dtype(), x.shape()), yv);
}

void compute_lrn(KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  if (x.rank() < 2) throw ctx.error("X must have rank >= 2, got " + shape_str(x.shape()));
  const int64_t size = node.attr_int("size", 0);
  if (size <= 0) throw ctx.error("size must be positive");
  const double alpha = node.attr_float("alpha", 1e-4f), beta = node.attr_float("beta", 0.75f);
  const double bias = node.attr_float("bias", 1.0f);
  const int64_t N = x.dim(0), C = x.dim(1), sp = C && N ? x.numel() / (N * C) : 0;
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo;
  const std::vector<double> xv = doubles_of(x, ctx, "X");
  std::vector<double> yv(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < sp; ++i) {
        double sq = 0;
        for (int64_t k = std::max<int64_t>(0, c - lo); k <= std::min(C - 1, c + hi); ++k) {
          const double v = xv[static_cast<size_t>((n * C + k) * sp + i)];
          sq += v * v;
        }
        const size_t at = static_cast<size_t>((n * C + c) * sp + i);
        yv[at] = xv[at] / std::pow(bias + alpha / static_cast<double>(size) * sq, beta);
      }
  store_as(ctx.output(0, x.dtype(), x.shape()), yv);
}

}  // namespace

KILN_OP(BatchNormalization_1) { return batch_norm_schema(1, 5); }
KILN_OP(BatchNormalization_6) { return batch_norm_schema(6, 6); }
KILN_OP(BatchNormalization_7) { return batch_norm_schema(7, 8); }
KILN_OP(BatchNormalization_9) { return batch_norm_schema(9, 13); }
KILN_OP(BatchNormalization_14) { return batch_norm_schema(14, INT_MAX); }

KILN_OP(InstanceNormalization) {
  return OpSchema{
      .name = "InstanceNormalization",
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute = compute_instance_norm,
  };
}

KILN_OP(LRN) {
  return OpSchema{
      .name = "LRN",
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check = [](const Node& n) { return n.has_attr("size") ? std::string() : std::string("size is required"); },
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute = compute_lrn,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(BatchNormalization) {
  return {.op = "BatchNormalization", .family = OpFamily::kNormalization, .cost = cost::per_element(2)};
}

KILN_OP_FACTS(InstanceNormalization) {
  // Its kernels leave the epilogue to the generic wrapper (ir/epilogue.h);
  // kiln.BlockedInstanceNorm, what the layout pass makes of it, fuses it.
  return {.op = "InstanceNormalization",
          .family = OpFamily::kNormalization,
          .cost = cost::per_element(7),
          .accepts_epilogue = true};
}

KILN_OP_FACTS(LRN) {
  return {.op = "LRN", .family = OpFamily::kNormalization, .cost = cost::not_counted("LRN is not counted")};
}

}  // namespace kiln
