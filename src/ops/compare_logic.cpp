// Comparison, logic and bitwise binary ops: Equal, Greater, Less,
// GreaterOrEqual, LessOrEqual, And, Or, Xor, BitShift, BitwiseAnd/Or/Xor.
// Below opset 7 the comparison and logic ops used the legacy
// `broadcast`/`axis` attributes (binary_legacy handles that by opset); their
// later versions only widen the accepted types, so one schema covers all.
#include "ir/op_facts.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

template <typename F>
OpSchema compare_schema(const char* name, int since, std::vector<DType> types, F f) {
  return binary_schema<PodTypes, true>(name, since, INT_MAX, std::move(types), f);
}

template <typename F>
OpSchema logic_schema(const char* name, F f) {
  return binary_schema<TypeList<bool>, true>(name, 1, INT_MAX, {DType::kBool}, f);
}

template <typename F>
OpSchema bitwise_schema(const char* name, F f) {
  return binary_schema<IntTypes>(name, 18, INT_MAX, int_dtypes(), f);
}

}  // namespace

KILN_OP(Equal) {
  std::vector<DType> types = pod_dtypes();
  types.push_back(DType::kString);
  return binary_schema<AllTypes, true>("Equal", 1, INT_MAX, types, [](const auto& a, const auto& b) { return a == b; });
}
KILN_OP(Greater) {
  return compare_schema("Greater", 1, numeric_dtypes(), [](auto a, auto b) { return a > b; });
}
KILN_OP(Less) {
  return compare_schema("Less", 1, numeric_dtypes(), [](auto a, auto b) { return a < b; });
}
KILN_OP(GreaterOrEqual) {
  return compare_schema("GreaterOrEqual", 12, numeric_dtypes(), [](auto a, auto b) { return a >= b; });
}
KILN_OP(LessOrEqual) {
  return compare_schema("LessOrEqual", 12, numeric_dtypes(), [](auto a, auto b) { return a <= b; });
}

KILN_OP(And) {
  return logic_schema("And", [](bool a, bool b) { return a && b; });
}
KILN_OP(Or) {
  return logic_schema("Or", [](bool a, bool b) { return a || b; });
}
KILN_OP(Xor) {
  return logic_schema("Xor", [](bool a, bool b) { return a != b; });
}

KILN_OP(BitwiseAnd) {
  return bitwise_schema("BitwiseAnd", [](auto a, auto b) { return static_cast<decltype(a)>(a & b); });
}
KILN_OP(BitwiseOr) {
  return bitwise_schema("BitwiseOr", [](auto a, auto b) { return static_cast<decltype(a)>(a | b); });
}
KILN_OP(BitwiseXor) {
  return bitwise_schema("BitwiseXor", [](auto a, auto b) { return static_cast<decltype(a)>(a ^ b); });
}

KILN_OP(BitShift) {
  return OpSchema{
      .name = "BitShift",
      .since = 11,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = unsigned_dtypes(),
      .check =
          [](const Node& n) {
            std::string d = n.attr_string("direction", "");
            return d == "LEFT" || d == "RIGHT" ? std::string() : "direction must be 'LEFT' or 'RIGHT', got '" + d + "'";
          },
      .infer = [](InferContext& ctx) { infer_binary(ctx); },
      .compute =
          [](KernelContext& ctx) {
            bool left = ctx.node().attr_string("direction", "") == "LEFT";
            using Unsigned = TypeList<uint8_t, uint16_t, uint32_t, uint64_t>;
            binary_elementwise<Unsigned>(ctx, [left](auto x, auto n) {
              using T = decltype(x);
              // Shifting by the bit width or more is undefined in C++; every bit is
              // shifted out, so the result is 0.
              if (n >= sizeof(T) * 8) return T(0);
              return static_cast<T>(left ? x << n : x >> n);
            });
          },
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(And) { return {.op = "And", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(BitShift) { return {.op = "BitShift", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(BitwiseAnd) {
  return {.op = "BitwiseAnd", .family = OpFamily::kElementwise, .cost = cost::per_element(1)};
}

KILN_OP_FACTS(BitwiseOr) { return {.op = "BitwiseOr", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(BitwiseXor) {
  return {.op = "BitwiseXor", .family = OpFamily::kElementwise, .cost = cost::per_element(1)};
}

KILN_OP_FACTS(Equal) { return {.op = "Equal", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Greater) { return {.op = "Greater", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(GreaterOrEqual) {
  return {.op = "GreaterOrEqual", .family = OpFamily::kElementwise, .cost = cost::per_element(1)};
}

KILN_OP_FACTS(Less) { return {.op = "Less", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(LessOrEqual) {
  return {.op = "LessOrEqual", .family = OpFamily::kElementwise, .cost = cost::per_element(1)};
}

KILN_OP_FACTS(Or) { return {.op = "Or", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

KILN_OP_FACTS(Xor) { return {.op = "Xor", .family = OpFamily::kElementwise, .cost = cost::per_element(1)}; }

}  // namespace kiln
