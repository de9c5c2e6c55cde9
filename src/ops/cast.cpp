// Cast and CastLike between every dtype kiln holds: floats (incl. float16 and
// bfloat16), integers, bool and string.
// Cast-1 spelled `to` as a type name ("FLOAT"); from Cast-6 it is the
// TensorProto enum. `saturate` (19+) and `round_mode` (25+) only concern
// float8/float4 targets, which kiln does not hold: they are accepted and
// ignored.
// Conversions: float -> narrower float rounds to nearest even once (double
// goes straight to float16/bfloat16, no double rounding); float -> integer
// truncates, NaN gives 0 and out-of-range values saturate; integer ->
// integer wraps (two's complement, like numpy's astype); anything -> bool is
// x != 0; numbers -> string use the shortest text that reads back exactly;
// string -> number parses ("inf", "-INF", "NaN", "1e3" included).
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>

#include "ir/op_facts.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

// Rounds |x| (finite, non-negative) to a float format with `mant_bits`
// stored mantissa bits and minimum normal exponent `min_exp`, ties to even.
double round_to_format(double ax, int mant_bits, int min_exp) {
  if (ax == 0) return 0;
  int e;
  std::frexp(ax, &e);  // ax = m * 2^e, 0.5 <= m < 1, so 2^(e-1) <= ax
  int exp = std::max(e - 1, min_exp);
  double quantum = std::ldexp(1.0, exp - mant_bits);
  return std::nearbyint(ax / quantum) * quantum;  // exact scaling by 2^k
}

Float16 double_to_f16(double x) {
  if (std::isnan(x)) return Float16(static_cast<float>(x));
  double r = round_to_format(std::fabs(x), 10, -14);
  if (r > 65504.0) r = INFINITY;
  return Float16(static_cast<float>(std::copysign(r, x)));  // exact in float and half
}

BFloat16 double_to_bf16(double x) {
  if (std::isnan(x)) return BFloat16(static_cast<float>(x));
  double r = round_to_format(std::fabs(x), 7, -126);
  if (r > 3.3895313892515355e38) r = INFINITY;  // largest finite bfloat16
  return BFloat16(static_cast<float>(std::copysign(r, x)));
}

template <typename T>
std::string to_text(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "1" : "0";
  } else {
    using A = acc_t<T>;
    A a = v;
    if constexpr (std::is_floating_point_v<A>) {
      if (std::isnan(a)) return "NaN";
      if (std::isinf(a)) return a > 0 ? "INF" : "-INF";
    }
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof(buf), a);
    return std::string(buf, res.ptr);
  }
}

template <typename D>
D from_text(const std::string& s, const KernelContext& ctx) {
  const char* p = s.c_str();
  char* end = nullptr;
  if constexpr (std::is_same_v<D, bool>) {
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  if constexpr (std::is_integral_v<D> && !std::is_same_v<D, bool>) {
    errno = 0;
    if constexpr (std::is_signed_v<D>) {
      long long v = std::strtoll(p, &end, 10);
      if (end != p && *end == '\0' && errno == 0) return static_cast<D>(v);
    } else {
      if (s.find('-') == std::string::npos) {
        unsigned long long v = std::strtoull(p, &end, 10);
        if (end != p && *end == '\0' && errno == 0) return static_cast<D>(v);
      }
    }
  }
  double d = std::strtod(p, &end);
  if (end == p || *end != '\0') throw ctx.error("cannot parse string '" + s + "' as " + dtype_name(dtype_of<D>));
  if constexpr (std::is_same_v<D, bool>) {
    return d != 0;
  } else if constexpr (std::is_integral_v<D>) {
    return saturate_cast<D>(d);
  } else if constexpr (std::is_same_v<D, Float16>) {
    return double_to_f16(d);
  } else if constexpr (std::is_same_v<D, BFloat16>) {
    return double_to_bf16(d);
  } else {
    return static_cast<D>(d);
  }
}

// One element S -> D (neither is string).
template <typename D, typename S>
D convert(S v) {
  constexpr bool s_float = !std::is_integral_v<S>;  // float, double, Float16, BFloat16
  using SA = acc_t<S>;
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<D, bool>) {
    return SA(v) != SA(0);
  } else if constexpr (std::is_integral_v<D>) {
    if constexpr (s_float)
      return saturate_cast<D>(static_cast<double>(SA(v)));
    else
      return static_cast<D>(v);  // wraps (bool gives 0/1)
  } else if constexpr (std::is_same_v<D, Float16>) {
    if constexpr (std::is_same_v<S, float> || std::is_same_v<S, BFloat16>)
      return Float16(static_cast<float>(v));
    else
      return double_to_f16(static_cast<double>(SA(v)));
  } else if constexpr (std::is_same_v<D, BFloat16>) {
    if constexpr (std::is_same_v<S, float> || std::is_same_v<S, Float16>)
      return BFloat16(static_cast<float>(v));
    else
      return double_to_bf16(static_cast<double>(SA(v)));
  } else {  // float or double: the language's conversion rounds to nearest even once
    return static_cast<D>(SA(v));
  }
}

void cast_tensor(KernelContext& ctx, const Tensor& x, DType to) {
  Tensor& out = ctx.output(0, to, x.shape());
  int64_t n = x.numel();
  dispatch<AllTypes>(x.dtype(), "Cast input", [&]<typename S>() {
    dispatch<AllTypes>(to, "Cast target", [&]<typename D>() {
      const S* px = x.data<S>();
      D* po = out.data<D>();
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same_v<S, D>) {
          po[i] = px[i];
        } else if constexpr (std::is_same_v<D, std::string>) {
          po[i] = to_text(px[i]);
        } else if constexpr (std::is_same_v<S, std::string>) {
          po[i] = from_text<D>(px[i], ctx);
        } else {
          po[i] = convert<D, S>(px[i]);
        }
      }
    });
  });
}

// The target dtype of a Cast node: int enum (6+) or type name (1).
std::optional<DType> cast_target(const Node& n, std::string* why) {
  auto it = n.attrs.find("to");
  if (it == n.attrs.end()) {
    *why = "attribute 'to' is required";
    return std::nullopt;
  }
  int64_t code = -1;
  if (it->second.kind == Attribute::Kind::kString) {
    static const std::map<std::string, DType> names = {
        {"FLOAT", DType::kFloat32},   {"UINT8", DType::kUInt8},      {"INT8", DType::kInt8},
        {"UINT16", DType::kUInt16},   {"INT16", DType::kInt16},      {"INT32", DType::kInt32},
        {"INT64", DType::kInt64},     {"STRING", DType::kString},    {"BOOL", DType::kBool},
        {"FLOAT16", DType::kFloat16}, {"DOUBLE", DType::kFloat64},   {"UINT32", DType::kUInt32},
        {"UINT64", DType::kUInt64},   {"BFLOAT16", DType::kBFloat16}};
    std::string s = it->second.s;
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto f = names.find(s);
    if (f == names.end()) {
      *why = "unsupported target type '" + it->second.s + "'";
      return std::nullopt;
    }
    return f->second;
  }
  code = n.attr_int("to", -1);
  if (code < 0 || code > INT32_MAX || !dtype_is_supported(static_cast<int32_t>(code))) {
    *why = "unsupported target type " + std::to_string(code) + " (float8/float4/int4/complex are not held by kiln)";
    return std::nullopt;
  }
  return static_cast<DType>(code);
}

}  // namespace

KILN_OP(Cast) {
  return OpSchema{
      .name = "Cast",
      .since = 1,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = all_dtypes(),
      .check =
          [](const Node& n) {
            std::string why;
            return cast_target(n, &why) ? std::string() : why;
          },
      .infer =
          [](InferContext& ctx) {
            std::string why;
            std::optional<DType> to = cast_target(ctx.node(), &why);
            if (!to) throw ctx.error(why);
            infer_same_shape(ctx, *to);
          },
      .compute =
          [](KernelContext& ctx) {
            std::string why;
            std::optional<DType> to = cast_target(ctx.node(), &why);
            if (!to) throw ctx.error(why);
            cast_tensor(ctx, ctx.input(0), *to);
          },
  };
}

KILN_OP(CastLike) {
  return OpSchema{
      .name = "CastLike",
      .since = 15,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = all_dtypes(),
      .infer =
          [](InferContext& ctx) {
            DType to = ctx.input_dtype(1);
            if (!dtype_is_supported(static_cast<int32_t>(to)) && to != DType::kUndefined)
              throw ctx.error("unsupported target type " + dtype_name(to));
            infer_same_shape(ctx, to);
          },
      .compute = [](KernelContext& ctx) { cast_tensor(ctx, ctx.input(0), ctx.input(1).dtype()); },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Cast) { return {.op = "Cast", .family = OpFamily::kElementwise, .cost = cost::none()}; }

KILN_OP_FACTS(CastLike) { return {.op = "CastLike", .family = OpFamily::kElementwise, .cost = cost::none()}; }

}  // namespace kiln
