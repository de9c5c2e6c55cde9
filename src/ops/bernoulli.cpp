// Bernoulli: 1 with probability p, else 0, per element. Values depend on the
// generator, so only shape, type and the 0/1 range are portable; a `seed`
// makes kiln's own output repeatable.
#include <random>

#include "ir/op_facts.h"
#include "ops/common.h"

namespace kiln {

namespace {

DType output_dtype(const Node& n, DType input) {
  return n.has_attr("dtype") ? static_cast<DType>(n.attr_int("dtype", 0)) : input;
}

}  // namespace

KILN_OP(Bernoulli) {
  return OpSchema{
      .name = "Bernoulli",
      .since = 15,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .check = [](const Node& n) -> std::string {
        if (!n.has_attr("dtype")) return "";
        int64_t t = n.attr_int("dtype", 0);
        DType d = static_cast<DType>(t);
        if (!dtype_is_supported(static_cast<int32_t>(t)) ||
            !(dtype_is_float(d) || dtype_is_integer(d) || d == DType::kBool))
          return "dtype " + std::to_string(t) + " is not a numeric or bool type";
        return "";
      },
      .infer = [](InferContext& ctx) { infer_same_shape(ctx, output_dtype(ctx.node(), ctx.input_dtype(0))); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& p = ctx.input(0);
            std::mt19937_64 rng;
            if (ctx.node().has_attr("seed")) {
              rng.seed(static_cast<uint64_t>(static_cast<int64_t>(ctx.node().attr_float("seed", 0))));
            } else {
              rng.seed(std::random_device{}());
            }
            std::uniform_real_distribution<double> uniform(0.0, 1.0);
            std::vector<bool> draws(static_cast<size_t>(p.numel()));
            dispatch<FloatTypes>(p.dtype(), "Bernoulli", [&]<typename T>() {
              for (int64_t i = 0; i < p.numel(); ++i) {
                double pi = static_cast<double>(acc_t<T>(p.data<T>()[i]));
                if (!(pi >= 0.0 && pi <= 1.0))
                  throw ctx.error("probability " + std::to_string(pi) + " is outside [0, 1]");
                draws[static_cast<size_t>(i)] = uniform(rng) < pi;
              }
            });
            Tensor& out = ctx.output(0, output_dtype(ctx.node(), p.dtype()), p.shape());
            dispatch<PodTypes>(out.dtype(), "Bernoulli", [&]<typename T>() {
              for (size_t i = 0; i < draws.size(); ++i) out.data<T>()[i] = static_cast<T>(draws[i] ? 1.0f : 0.0f);
            });
          },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Bernoulli) {
  return {.op = "Bernoulli",
          .family = OpFamily::kOther,
          .cost = cost::not_counted("random number generation is not counted")};
}

}  // namespace kiln
