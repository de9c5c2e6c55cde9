// NegativeLogLikelihoodLoss (12) and SoftmaxCrossEntropyLoss (12).
//
// Input (N, C, d1..dk), labels (N, d1..dk). Per sample l = -w[c] * x[n, c, d]
// (x = log-softmax(scores) along C for SCE), 0 where the label equals
// ignore_index. reduction: none (labels' shape), sum, or mean = sum(l) /
// sum(w[c]) over the non-ignored samples (w = 1 without weights).
#include <cmath>
#include <limits>

#include "ir/op_facts.h"
#include "ops/reduce_util.h"

namespace kiln {

namespace {

void loss_compute(KernelContext& ctx, bool softmax_first) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  const Tensor& labels = ctx.input(1);
  if (x.rank() < 2) throw ctx.error("input must be (N, C, d1, ..., dk), got " + shape_str(x.shape()));
  int64_t n = x.dim(0), c = x.dim(1);
  Shape want_labels = x.shape();
  want_labels.erase(want_labels.begin() + 1);
  if (labels.shape() != want_labels)
    throw ctx.error("labels must have shape " + shape_str(want_labels) + ", got " + shape_str(labels.shape()));
  std::vector<int64_t> target = read_ints(labels, ctx, "labels");
  std::vector<double> weight;
  if (ctx.has_input(2)) {
    const Tensor& w = ctx.input(2);
    if (w.rank() != 1 || w.dim(0) != c)
      throw ctx.error("weights must be 1-D with C = " + std::to_string(c) + " elements, got " + shape_str(w.shape()));
    weight = to_doubles(w, node.op_type);
  }
  bool has_ignore = node.has_attr("ignore_index");
  int64_t ignore = node.attr_int("ignore_index", 0);
  std::string reduction = node.attr_string("reduction", "mean");
  int64_t d = 1;  // product of d1..dk
  for (int r = 2; r < x.rank(); ++r) d *= x.dim(r);

  std::vector<double> xv = to_doubles(x, node.op_type);
  if (softmax_first) {
    // log-softmax along C, in place.
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < d; ++k) {
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < c; ++j) mx = std::max(mx, xv[static_cast<size_t>((i * c + j) * d + k)]);
        double sum = 0;
        for (int64_t j = 0; j < c; ++j) sum += std::exp(xv[static_cast<size_t>((i * c + j) * d + k)] - mx);
        double ls = std::log(sum) + mx;
        for (int64_t j = 0; j < c; ++j) xv[static_cast<size_t>((i * c + j) * d + k)] -= ls;
      }
  }
  std::vector<double> loss(target.size(), 0.0);
  double loss_sum = 0, weight_sum = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) {
      size_t s = static_cast<size_t>(i * d + k);
      int64_t t = target[s];
      if (has_ignore && t == ignore) continue;
      if (t < 0 || t >= c)
        throw ctx.error("label " + std::to_string(t) + " is out of range [0, " + std::to_string(c) + ")");
      double w = weight.empty() ? 1.0 : weight[static_cast<size_t>(t)];
      loss[s] = -xv[static_cast<size_t>((i * c + t) * d + k)] * w;
      loss_sum += loss[s];
      weight_sum += w;
    }
  DType dt = x.dtype();
  if (reduction == "none") {
    store_doubles(ctx, 0, dt, want_labels, loss);
  } else if (reduction == "sum") {
    store_doubles(ctx, 0, dt, {}, {loss_sum});
  } else {
    store_doubles(ctx, 0, dt, {}, {loss_sum / weight_sum});
  }
  if (softmax_first && ctx.has_output(1)) store_doubles(ctx, 1, dt, x.shape(), xv);
}

void loss_infer(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  std::string reduction = ctx.node().attr_string("reduction", "mean");
  if (reduction != "none") {
    ctx.set_output(0, x.dtype, DimVector{});
  } else if (ctx.input_type(1).shape) {
    ctx.set_output(0, x.dtype, ctx.input_type(1).shape);
  } else if (x.shape && x.shape->size() >= 2) {
    DimVector s = *x.shape;
    s.erase(s.begin() + 1);
    ctx.set_output(0, x.dtype, s);
  } else {
    ctx.set_output(0, x.dtype, std::nullopt);
  }
  ctx.set_output(1, x);
}

OpSchema loss_schema(const char* name, bool softmax_first) {
  return OpSchema{
      .name = name,
      .since = 12,
      .min_inputs = 2,
      .max_inputs = 3,
      .max_outputs = softmax_first ? 2 : 1,
      .types = float_dtypes(),
      .check =
          [](const Node& n) {
            std::string r = n.attr_string("reduction", "mean");
            return r == "none" || r == "sum" || r == "mean" ? std::string()
                                                            : "reduction '" + r + "' is not none/sum/mean";
          },
      .infer = loss_infer,
      .compute = [softmax_first](KernelContext& ctx) { loss_compute(ctx, softmax_first); },
  };
}

}  // namespace

KILN_OP(NegativeLogLikelihoodLoss) { return loss_schema("NegativeLogLikelihoodLoss", false); }
KILN_OP(SoftmaxCrossEntropyLoss) { return loss_schema("SoftmaxCrossEntropyLoss", true); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(NegativeLogLikelihoodLoss) {
  return {.op = "NegativeLogLikelihoodLoss",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("losses are not counted")};
}

KILN_OP_FACTS(SoftmaxCrossEntropyLoss) {
  return {
      .op = "SoftmaxCrossEntropyLoss", .family = OpFamily::kOther, .cost = cost::not_counted("losses are not counted")};
}

}  // namespace kiln
