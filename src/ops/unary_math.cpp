// Unary math: Abs, Neg, Exp, Log, Sqrt, Reciprocal, the trigonometric and
// hyperbolic functions, Erf, Ceil, Floor, Round, Sign, IsNaN, IsInf, Not and
// BitwiseNot. Older versions (opset 1 `consumed_inputs`, later added types)
// compute the same thing, so each op has one schema from its first opset.
#include <cmath>

#include "ir/op_facts.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

// Two's-complement negation without the undefined behaviour of -INT_MIN.
template <typename T>
T negate(T x) {
  if constexpr (std::is_integral_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(U(0) - static_cast<U>(x));
  } else {
    return -x;
  }
}

template <typename T>
T abs_value(T x) {
  if constexpr (std::is_unsigned_v<T>) {
    return x;
  } else if constexpr (std::is_integral_v<T>) {
    return x < 0 ? negate(x) : x;
  } else {
    return std::fabs(x);
  }
}

template <typename T>
T sign_of(T x) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(x)) return x;
  }
  if (x > T(0)) return T(1);
  if constexpr (std::is_signed_v<T>) {
    if (x < T(0)) return T(-1);
  }
  return T(0);
}

// Output = bool tensor of pred(x) over float inputs.
template <typename Pred>
void float_predicate(KernelContext& ctx, Pred pred) {
  const Tensor& x = ctx.input(0);
  dispatch<FloatTypes>(x.dtype(), ctx.node().op_type, [&]<typename T>() {
    Tensor& out = ctx.output(0, DType::kBool, x.shape());
    const T* px = x.data<T>();
    bool* po = out.data<bool>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) po[i] = pred(static_cast<double>(acc_t<T>(px[i])));
  });
}

template <typename F>
OpSchema float_unary(const char* name, int since, F f) {
  return unary_schema<FloatTypes>(name, since, float_dtypes(), f);
}

}  // namespace

KILN_OP(Abs) {
  return unary_schema<NumericTypes>("Abs", 1, numeric_dtypes(), [](auto x) { return abs_value(x); });
}
KILN_OP(Neg) {
  return unary_schema<SignedTypes>("Neg", 1, signed_dtypes(), [](auto x) { return negate(x); });
}
KILN_OP(Sign) {
  return unary_schema<NumericTypes>("Sign", 9, numeric_dtypes(), [](auto x) { return sign_of(x); });
}

// float32: the vector exp within 2 ulp, threaded.
KILN_OP(Exp) {
  return with_f32_fast(float_unary("Exp", 1, [](auto x) { return std::exp(x); }), &VecMathF32::exp);
}
KILN_OP(Log) {
  return float_unary("Log", 1, [](auto x) { return std::log(x); });
}
KILN_OP(Sqrt) {
  return float_unary("Sqrt", 1, [](auto x) { return std::sqrt(x); });
}
KILN_OP(Reciprocal) {
  return float_unary("Reciprocal", 1, [](auto x) { return decltype(x)(1) / x; });
}
KILN_OP(Sin) {
  return float_unary("Sin", 7, [](auto x) { return std::sin(x); });
}
KILN_OP(Cos) {
  return float_unary("Cos", 7, [](auto x) { return std::cos(x); });
}
KILN_OP(Tan) {
  return float_unary("Tan", 7, [](auto x) { return std::tan(x); });
}
KILN_OP(Asin) {
  return float_unary("Asin", 7, [](auto x) { return std::asin(x); });
}
KILN_OP(Acos) {
  return float_unary("Acos", 7, [](auto x) { return std::acos(x); });
}
KILN_OP(Atan) {
  return float_unary("Atan", 7, [](auto x) { return std::atan(x); });
}
KILN_OP(Sinh) {
  return float_unary("Sinh", 9, [](auto x) { return std::sinh(x); });
}
KILN_OP(Cosh) {
  return float_unary("Cosh", 9, [](auto x) { return std::cosh(x); });
}
KILN_OP(Asinh) {
  return float_unary("Asinh", 9, [](auto x) { return std::asinh(x); });
}
KILN_OP(Acosh) {
  return float_unary("Acosh", 9, [](auto x) { return std::acosh(x); });
}
KILN_OP(Atanh) {
  return float_unary("Atanh", 9, [](auto x) { return std::atanh(x); });
}
KILN_OP(Erf) {
  // Erf-9 also accepts integer types; the result is erf rounded back to T.
  // float32: the vector erf within 3 ulp, threaded.
  OpSchema s = unary_schema<NumericTypes>("Erf", 9, numeric_dtypes(), [](auto x) {
    using T = decltype(x);
    if constexpr (std::is_integral_v<T>) {
      return static_cast<T>(std::nearbyint(std::erf(static_cast<double>(x))));
    } else {
      return std::erf(x);
    }
  });
  return with_f32_fast(std::move(s), &VecMathF32::erf);
}
KILN_OP(Ceil) {
  return float_unary("Ceil", 1, [](auto x) { return std::ceil(x); });
}
KILN_OP(Floor) {
  return float_unary("Floor", 1, [](auto x) { return std::floor(x); });
}
// Round half to even: nearbyint under the default rounding mode.
KILN_OP(Round) {
  return float_unary("Round", 11, [](auto x) { return std::nearbyint(x); });
}

KILN_OP(Not) {
  return unary_schema<TypeList<bool>>("Not", 1, {DType::kBool}, [](bool x) { return !x; });
}
KILN_OP(BitwiseNot) {
  return unary_schema<IntTypes>("BitwiseNot", 18, int_dtypes(), [](auto x) { return static_cast<decltype(x)>(~x); });
}

KILN_OP(IsNaN) {
  return OpSchema{
      .name = "IsNaN",
      .since = 9,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = [](InferContext& ctx) { infer_same_shape(ctx, DType::kBool); },
      .compute = [](KernelContext& ctx) { float_predicate(ctx, [](double x) { return std::isnan(x); }); },
  };
}

KILN_OP(IsInf) {
  return OpSchema{
      .name = "IsInf",
      .since = 10,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer = [](InferContext& ctx) { infer_same_shape(ctx, DType::kBool); },
      .compute =
          [](KernelContext& ctx) {
            bool neg = ctx.node().attr_int("detect_negative", 1) != 0;
            bool pos = ctx.node().attr_int("detect_positive", 1) != 0;
            float_predicate(ctx, [&](double x) { return std::isinf(x) && (x > 0 ? pos : neg); });
          },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Abs) {
  return {
      .op = "Abs", .family = OpFamily::kElementwise, .cost = cost::per_element(1), .blocked = BlockedLayout::kUnary};
}

KILN_OP_FACTS(Acos) { return {.op = "Acos", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Acosh) { return {.op = "Acosh", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Asin) { return {.op = "Asin", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Asinh) { return {.op = "Asinh", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Atan) { return {.op = "Atan", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Atanh) { return {.op = "Atanh", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(BitwiseNot) {
  return {.op = "BitwiseNot", .family = OpFamily::kElementwise, .cost = cost::per_element(1)};
}

KILN_OP_FACTS(Ceil) { return {.op = "Ceil", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Cos) { return {.op = "Cos", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Cosh) { return {.op = "Cosh", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Erf) {
  return {.op = "Erf", .family = OpFamily::kActivation, .cost = cost::per_element(1), .blocked = BlockedLayout::kUnary};
}

KILN_OP_FACTS(Exp) { return {.op = "Exp", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Floor) { return {.op = "Floor", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(IsInf) { return {.op = "IsInf", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(IsNaN) { return {.op = "IsNaN", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Log) { return {.op = "Log", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Neg) {
  return {
      .op = "Neg", .family = OpFamily::kElementwise, .cost = cost::per_element(1), .blocked = BlockedLayout::kUnary};
}

KILN_OP_FACTS(Not) { return {.op = "Not", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Reciprocal) {
  return {.op = "Reciprocal", .family = OpFamily::kElementwise, .cost = cost::per_element(1)};
}

KILN_OP_FACTS(Round) { return {.op = "Round", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Sign) { return {.op = "Sign", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Sin) { return {.op = "Sin", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Sinh) { return {.op = "Sinh", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Sqrt) { return {.op = "Sqrt", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Tan) { return {.op = "Tan", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

}  // namespace kiln
