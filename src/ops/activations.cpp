// Activations: Sigmoid, Tanh, HardSigmoid, HardSwish, LeakyRelu, Elu, Selu,
// Celu, Softplus, Softsign, Gelu, Swish, ThresholdedRelu, Shrink and
// PRelu. The scalar functions compute in double and round once to T. Old
// versions that only differ by `consumed_inputs` or types share one schema;
// PRelu below opset 7 had its own slope broadcasting and gets its own.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

// y = g(x) computed in double, rounded to the input's compute type
// (integers truncate and saturate).
template <typename G>
auto via_double(G g) {
  return [g](auto x) {
    using T = decltype(x);
    double y = g(static_cast<double>(x));
    if constexpr (std::is_integral_v<T>) {
      return saturate_cast<T>(y);
    } else {
      return static_cast<T>(y);
    }
  };
}

template <typename Make>
OpSchema float_act(const char* name, int since, Make make) {
  return unary_attr_schema<FloatTypes>(name, since, float_dtypes(),
                                       [make](const Node& n) { return via_double(make(n)); });
}

double sigmoid(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }
double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }

}  // namespace

KILN_OP(Sigmoid) {
  return with_f32_fast(float_act("Sigmoid", 1, [](const Node&) { return [](double x) { return sigmoid(x); }; }),
                       &VecMathF32::sigmoid);
}
KILN_OP(Tanh) {
  return with_f32_fast(float_act("Tanh", 1, [](const Node&) { return [](double x) { return std::tanh(x); }; }),
                       &VecMathF32::tanh);
}
KILN_OP(HardSigmoid) {
  return float_act("HardSigmoid", 1, [](const Node& n) {
    double a = n.attr_float("alpha", 0.2f), b = n.attr_float("beta", 0.5f);
    return [a, b](double x) { return std::max(0.0, std::min(1.0, a * x + b)); };
  });
}
KILN_OP(HardSwish) {
  return float_act("HardSwish", 14,
                   [](const Node&) { return [](double x) { return x * std::max(0.0, std::min(1.0, x / 6 + 0.5)); }; });
}
KILN_OP(LeakyRelu) {
  return float_act("LeakyRelu", 1, [](const Node& n) {
    double a = n.attr_float("alpha", 0.01f);
    return [a](double x) { return x < 0 ? a * x : x; };
  });
}
KILN_OP(Elu) {
  return float_act("Elu", 1, [](const Node& n) {
    double a = n.attr_float("alpha", 1.0f);
    return [a](double x) { return x < 0 ? a * std::expm1(x) : x; };
  });
}
KILN_OP(Selu) {
  return float_act("Selu", 1, [](const Node& n) {
    double a = n.attr_float("alpha", 1.67326319217681884765625f);
    double g = n.attr_float("gamma", 1.05070102214813232421875f);
    return [a, g](double x) { return x <= 0 ? g * (a * std::exp(x) - a) : g * x; };
  });
}
KILN_OP(Celu) {
  OpSchema s = float_act("Celu", 12, [](const Node& n) {
    double a = n.attr_float("alpha", 1.0f);
    return [a](double x) { return std::max(0.0, x) + std::min(0.0, a * std::expm1(x / a)); };
  });
  s.check = [](const Node& n) {
    return n.attr_float("alpha", 1.0f) == 0 ? std::string("alpha must not be 0") : std::string();
  };
  return s;
}
KILN_OP(Softplus) {
  return float_act("Softplus", 1, [](const Node&) { return [](double x) { return softplus(x); }; });
}
KILN_OP(Softsign) {
  return float_act("Softsign", 1, [](const Node&) { return [](double x) { return x / (1 + std::fabs(x)); }; });
}
KILN_OP(Gelu) {
  OpSchema s = float_act("Gelu", 20, [](const Node& n) {
    bool tanh_approx = n.attr_string("approximate", "none") == "tanh";
    return [tanh_approx](double x) {
      if (tanh_approx) {
        double k = std::sqrt(2.0 / M_PI);
        return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
      }
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    };
  });
  const ComputeFn tanh_form = with_f32_fast(s, &VecMathF32::gelu_tanh).compute;
  const ComputeFn erf_form = with_f32_fast(s, &VecMathF32::gelu_erf).compute;
  s.compute = [tanh_form, erf_form](KernelContext& ctx) {
    if (ctx.node().attr_string("approximate", "none") == "tanh")
      tanh_form(ctx);
    else
      erf_form(ctx);
  };
  s.check = [](const Node& n) {
    std::string a = n.attr_string("approximate", "none");
    return a == "none" || a == "tanh" ? std::string() : "approximate must be 'none' or 'tanh', got '" + a + "'";
  };
  return s;
}
KILN_OP(Swish) {
  return float_act("Swish", 24, [](const Node& n) {
    double a = n.attr_float("alpha", 1.0f);
    return [a](double x) { return x * sigmoid(a * x); };
  });
}
KILN_OP(ThresholdedRelu) {
  return float_act("ThresholdedRelu", 10, [](const Node& n) {
    double a = n.attr_float("alpha", 1.0f);
    return [a](double x) { return x > a ? x : 0.0; };
  });
}
KILN_OP(Shrink) {
  // Shrink-9 accepts all numeric types; integers compute through double.
  return unary_attr_schema<NumericTypes>("Shrink", 9, numeric_dtypes(), [](const Node& n) {
    double l = n.attr_float("lambd", 0.5f), b = n.attr_float("bias", 0.0f);
    return via_double([l, b](double x) { return x < -l ? x + b : x > l ? x - b : 0.0; });
  });
}

// ---------------------------------------------------------------- PRelu

namespace {

// Slope broadcast to X. Opset >= 7: numpy broadcasting that must not grow X.
// Opset < 7: a 1-element slope is shared; a 1-D slope with X's channel count
// (dim 1) is per channel; otherwise the shapes must broadcast as at opset 7.
Tensor prelu_slope(const KernelContext& ctx, const Tensor& x, const Tensor& slope) {
  Tensor s = slope;
  if (ctx.node().opset < 7) {
    if (slope.numel() == 1) {
      s = slope.reshaped({});
    } else if (slope.rank() == 1 && x.rank() >= 2 && slope.dim(0) == x.dim(1) && x.dim(x.rank() - 1) != slope.dim(0)) {
      Shape sh(static_cast<size_t>(x.rank() - 1), 1);
      sh[0] = slope.dim(0);
      s = slope.reshaped(sh);
    }
  }
  Shape out = broadcast_shapes({x.shape(), s.shape()}, ctx.node());
  if (out != x.shape())
    throw ctx.error("slope of shape " + shape_str(slope.shape()) + " is not unidirectionally broadcastable to X " +
                    shape_str(x.shape()));
  return s;
}

OpSchema prelu_schema(int since, int until) {
  return OpSchema{
      .name = "PRelu",
      .since = since,
      .until = until,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute =
          [](KernelContext& ctx) {
            const Tensor& x = ctx.input(0);
            Tensor slope = prelu_slope(ctx, x, ctx.input(1));
            const Tensor* ins[2] = {&x, &slope};
            Tensor out;
            KernelContext inner(ctx.node(), ins, std::span<Tensor>(&out, 1), nullptr);
            inner.share_output_blocks(ctx);  // its output is ours: use our planned block
            binary_elementwise<NumericTypes>(inner, [](auto v, auto a) {
              if constexpr (std::is_unsigned_v<decltype(v)>) {
                return v;
              } else {
                return v < 0 ? static_cast<decltype(v)>(a * v) : v;
              }
            });
            ctx.set_output(0, std::move(out));
          },
  };
}

}  // namespace

KILN_OP(PRelu_1) { return prelu_schema(1, 6); }
KILN_OP(PRelu_7) { return prelu_schema(7, INT_MAX); }

namespace {

OpCost gelu_cost(const Node& n) {
  const bool tanh = n.attr_string("approximate", "none") == "tanh";
  return cost::elementwise(cost::mul(cost::out_numel(n), tanh ? kEpilogueGeluTanh.flops : kEpilogueGelu.flops));
}

bool leaky_relu_step(const Node& n, EpilogueStep* s) {
  *s = {&kEpilogueLeakyRelu, n.attr_float("alpha", 0.01f)};
  return true;
}

bool hard_sigmoid_step(const Node& n, EpilogueStep* s) {
  *s = {&kEpilogueHardSigmoid, n.attr_float("alpha", 0.2f), n.attr_float("beta", 0.5f)};
  return true;
}

bool gelu_step(const Node& n, EpilogueStep* s) {
  *s = {n.attr_string("approximate", "none") == "tanh" ? &kEpilogueGeluTanh : &kEpilogueGelu};
  return true;
}

}  // namespace

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Celu) {
  return {
      .op = "Celu", .family = OpFamily::kActivation, .cost = cost::per_element(4), .blocked = BlockedLayout::kUnary};
}

KILN_OP_FACTS(Elu) {
  return {.op = "Elu", .family = OpFamily::kActivation, .cost = cost::per_element(3), .blocked = BlockedLayout::kUnary};
}

KILN_OP_FACTS(Gelu) {
  return {.op = "Gelu",
          .family = OpFamily::kActivation,
          .cost = gelu_cost,
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = gelu_step};
}

KILN_OP_FACTS(HardSigmoid) {
  return {.op = "HardSigmoid",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(4),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = hard_sigmoid_step};
}

KILN_OP_FACTS(HardSwish) {
  return {.op = "HardSwish",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(5),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = epilogue_step_of(kEpilogueHardSwish)};
}

KILN_OP_FACTS(LeakyRelu) {
  return {.op = "LeakyRelu",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(2),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = leaky_relu_step};
}

KILN_OP_FACTS(PRelu) { return {.op = "PRelu", .family = OpFamily::kActivation, .cost = cost::per_element(2)}; }

KILN_OP_FACTS(Selu) {
  return {
      .op = "Selu", .family = OpFamily::kActivation, .cost = cost::per_element(4), .blocked = BlockedLayout::kUnary};
}

KILN_OP_FACTS(Shrink) {
  return {.op = "Shrink", .family = OpFamily::kActivation, .cost = cost::not_counted("Shrink is not counted")};
}

KILN_OP_FACTS(Sigmoid) {
  return {.op = "Sigmoid",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(3),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = epilogue_step_of(kEpilogueSigmoid)};
}

KILN_OP_FACTS(Softplus) {
  return {.op = "Softplus",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(3),
          .blocked = BlockedLayout::kUnary};
}

KILN_OP_FACTS(Softsign) { return {.op = "Softsign", .family = OpFamily::kActivation, .cost = cost::per_element(3)}; }

KILN_OP_FACTS(Swish) { return {.op = "Swish", .family = OpFamily::kActivation, .cost = cost::per_element(4)}; }

KILN_OP_FACTS(Tanh) {
  return {.op = "Tanh",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(1),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = epilogue_step_of(kEpilogueTanh)};
}

KILN_OP_FACTS(ThresholdedRelu) {
  return {.op = "ThresholdedRelu", .family = OpFamily::kActivation, .cost = cost::per_element(1)};
}

}  // namespace kiln
