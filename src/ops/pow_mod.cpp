// Pow and Mod.
// Pow: opset 1 uses legacy `broadcast`/`axis`; opset 7 numpy broadcasting
// with one float type; from opset 12 base (T) and exponent (T1) may differ
// (int base with float exponent, float base with int exponent, ...). The
// output has the base's type. One schema handles all, legacy broadcast by
// opset.
// Mod: `fmod`=0 gives the integer remainder with the divisor's sign (Python's
// %), `fmod`=1 the C fmod (dividend's sign).
#include <cmath>

#include "ir/op_facts.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

using PowBaseTypes = TypeList<float, double, Float16, BFloat16, int32_t, int64_t>;

// Integer power by squaring, wrapping like numpy's integer power. Negative
// exponents give the truncated 1/a^|n|: only |a| == 1 is non-zero.
template <typename T>
T int_pow(T a, int64_t n) {
  if (n < 0) {
    if (a == 1) return 1;
    if constexpr (std::is_signed_v<T>) {
      if (a == -1) return (n % 2 == 0) ? T(1) : T(-1);
    }
    return 0;
  }
  using U = std::make_unsigned_t<T>;
  U result = 1, base = static_cast<U>(a);
  while (n > 0) {
    if (n & 1) result = static_cast<U>(result * base);
    base = static_cast<U>(base * base);
    n >>= 1;
  }
  return static_cast<T>(result);
}

template <typename T, typename E>
T pow_one(T a, E e) {
  if constexpr (std::is_integral_v<T> && std::is_integral_v<E>) {
    if constexpr (std::is_unsigned_v<E>) {
      if (e > static_cast<E>(INT64_MAX)) return int_pow<T>(a, INT64_MAX);
    }
    return int_pow<T>(a, static_cast<int64_t>(e));
  } else {
    double r = std::pow(static_cast<double>(acc_t<T>(a)), static_cast<double>(acc_t<E>(e)));
    if constexpr (std::is_integral_v<T>) {
      return saturate_cast<T>(r);
    } else {
      return static_cast<T>(static_cast<acc_t<T>>(r));
    }
  }
}

void pow_kernel(KernelContext& ctx) {
  const Tensor& a = ctx.input(0);
  Tensor b = legacy_broadcast_rhs(ctx, a, ctx.input(1));
  if (ctx.node().opset < 12 && a.dtype() != b.dtype())
    throw ctx.error("base and exponent types differ (" + dtype_name(a.dtype()) + ", " + dtype_name(b.dtype()) +
                    "); allowed from opset 12");
  Shape out_shape = broadcast_shapes({a.shape(), b.shape()}, ctx.node());
  dispatch<PowBaseTypes>(a.dtype(), "Pow base", [&]<typename T>() {
    dispatch<NumericTypes>(b.dtype(), "Pow exponent", [&]<typename E>() {
      Tensor& out = ctx.output(0, a.dtype(), out_shape);
      const T* pa = a.data<T>();
      const E* pb = b.data<E>();
      T* po = out.data<T>();
      std::vector<std::vector<int64_t>> st = {broadcast_strides(a.shape(), out_shape),
                                              broadcast_strides(b.shape(), out_shape)};
      for_each_broadcast(out_shape, st,
                         [&](int64_t i, const int64_t* off) { po[i] = pow_one<T, E>(pa[off[0]], pb[off[1]]); });
    });
  });
}

template <typename T>
T mod_one(T a, T b, bool fmod) {
  if constexpr (std::is_integral_v<T>) {
    if (b == 0) return 0;  // defined here instead of a SIGFPE
    if constexpr (std::is_signed_v<T>) {
      if (b == -1) return 0;  // avoids the INT_MIN % -1 trap
    }
    T r = static_cast<T>(a % b);
    if constexpr (std::is_signed_v<T>) {
      if (!fmod && r != 0 && ((r < 0) != (b < 0))) r = static_cast<T>(r + b);
    }
    return r;
  } else {
    T r = std::fmod(a, b);
    // fmod=0 on floats: the spec asks for fmod=1; we give numpy's np.mod
    // (sign of the divisor) rather than refuse.
    if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
  }
}

}  // namespace

KILN_OP(Pow) {
  return OpSchema{
      .name = "Pow",
      .since = 1,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt32, DType::kInt64},
      .infer = [](InferContext& ctx) { infer_binary(ctx); },
      .compute = pow_kernel,
  };
}

KILN_OP(Mod) {
  return OpSchema{
      .name = "Mod",
      .since = 10,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .check =
          [](const Node& n) {
            int64_t f = n.attr_int("fmod", 0);
            return f == 0 || f == 1 ? std::string() : "fmod must be 0 or 1, got " + std::to_string(f);
          },
      .infer = [](InferContext& ctx) { infer_binary(ctx); },
      .compute =
          [](KernelContext& ctx) {
            bool fmod = ctx.node().attr_int("fmod", 0) != 0;
            binary_elementwise<NumericTypes>(ctx, [fmod](auto a, auto b) { return mod_one(a, b, fmod); });
          },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Mod) { return {.op = "Mod", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Pow) { return {.op = "Pow", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

}  // namespace kiln
