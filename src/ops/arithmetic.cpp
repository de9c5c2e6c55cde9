// Add, Sub, Mul, Div: numpy-broadcast arithmetic. Opset 1-6 use the legacy
// `broadcast`/`axis` attributes (see legacy_broadcast_rhs).
#include <cmath>

#include "ir/op_facts.h"
#include "kernels/cpu/binary_f32.h"
#include "ops/elementwise.h"

namespace kiln {

namespace {

template <typename F>
void arith(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  Tensor b = legacy_broadcast_rhs(ctx, a, ctx.input(1));
  if (a.dtype() == DType::kFloat32 && b.dtype() == DType::kFloat32) {
    // The float32 fast path (same results, vectorized and threaded).
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, broadcast_shapes({a.shape(), b.shape()}, ctx.node()));
    binary_f32(F::kOpF32, a.data<float>(), a.shape(), b.data<float>(), b.shape(), y.data<float>(), y.shape(),
               ctx.thread_pool());
    return;
  }
  const Tensor* ins[2] = {&a, &b};
  Tensor out;
  KernelContext inner(ctx.node(), ins, std::span<Tensor>(&out, 1), nullptr);
  inner.share_output_blocks(ctx);  // its output is ours: use our planned block
  binary_elementwise<NumericTypes>(inner, f);
  ctx.set_output(0, std::move(out));
}

template <typename F>
OpSchema arith_schema(const char* name, int since, int until, F f) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .infer = [](InferContext& ctx) { infer_binary(ctx); },
      .compute = [f](KernelContext& ctx) { arith(ctx, f); },
  };
}

struct AddFn {
  static constexpr BinaryOpF32 kOpF32 = BinaryOpF32::kAdd;
  template <typename T>
  T operator()(T a, T b) const {
    return a + b;
  }
};
struct SubFn {
  static constexpr BinaryOpF32 kOpF32 = BinaryOpF32::kSub;
  template <typename T>
  T operator()(T a, T b) const {
    return a - b;
  }
};
struct MulFn {
  static constexpr BinaryOpF32 kOpF32 = BinaryOpF32::kMul;
  template <typename T>
  T operator()(T a, T b) const {
    return a * b;
  }
};
struct DivFn {
  static constexpr BinaryOpF32 kOpF32 = BinaryOpF32::kDiv;
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      if (b == 0) return 0;  // defined here instead of a SIGFPE
      if constexpr (std::is_signed_v<T>)
        if (b == -1) return static_cast<T>(-a);  // avoids INT_MIN / -1 overflow trap
    }
    return a / b;
  }
};

}  // namespace

KILN_OP(Add) { return arith_schema("Add", 1, INT_MAX, AddFn{}); }
KILN_OP(Sub) { return arith_schema("Sub", 1, INT_MAX, SubFn{}); }
KILN_OP(Mul) { return arith_schema("Mul", 1, INT_MAX, MulFn{}); }
KILN_OP(Div) { return arith_schema("Div", 1, INT_MAX, DivFn{}); }

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(Add) {
  return {.op = "Add",
          .family = OpFamily::kElementwise,
          .cost = cost::per_element(1),
          .blocked = BlockedLayout::kBinary,
          .accepts_epilogue = true};
}

// Blocked: only by a constant (passes/layout_blocked.cpp pads its lanes with 1).
KILN_OP_FACTS(Div) {
  return {
      .op = "Div", .family = OpFamily::kElementwise, .cost = cost::per_element(1), .blocked = BlockedLayout::kBinary};
}

KILN_OP_FACTS(Mul) {
  return {
      .op = "Mul", .family = OpFamily::kElementwise, .cost = cost::per_element(1), .blocked = BlockedLayout::kBinary};
}

KILN_OP_FACTS(Sub) {
  return {
      .op = "Sub", .family = OpFamily::kElementwise, .cost = cost::per_element(1), .blocked = BlockedLayout::kBinary};
}

}  // namespace kiln
