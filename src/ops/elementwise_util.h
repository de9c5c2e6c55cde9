// Helpers shared by the element-wise op files (unary math, activations,
// comparison/logic, variadic, Pow/Mod): schema builders for the common
// "one scalar function" shapes and a binary kernel honouring the opset < 7
// legacy broadcast attributes.
#pragma once
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/cpu/vec_math_f32.h"
#include "ops/elementwise.h"

namespace kiln {

// Accepted input dtypes for the type lists in core/dispatch.h.
inline std::vector<DType> signed_dtypes() {
  return {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
          DType::kInt8,    DType::kInt16,   DType::kInt32,   DType::kInt64};
}
inline std::vector<DType> int_dtypes() {
  return {DType::kInt8,  DType::kInt16,  DType::kInt32,  DType::kInt64,
          DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64};
}
inline std::vector<DType> unsigned_dtypes() { return {DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64}; }
inline std::vector<DType> pod_dtypes() {
  std::vector<DType> v = numeric_dtypes();
  v.push_back(DType::kBool);
  return v;
}

// A unary op whose output has the input's type and shape; `f` maps acc_t<T>
// to acc_t<T> for every T of List.
template <typename List, typename F>
OpSchema unary_schema(const char* name, int since, std::vector<DType> types, F f) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = INT_MAX,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = std::move(types),
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute = [f](KernelContext& ctx) { unary_elementwise<List>(ctx, f); },
  };
}

// Like unary_schema, but `make(node)` builds the scalar function from the
// node's attributes once per call (alpha, beta, ...).
template <typename List, typename Make>
OpSchema unary_attr_schema(const char* name, int since, std::vector<DType> types, Make make) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = INT_MAX,
      .min_inputs = 1,
      .max_inputs = 1,
      .max_outputs = 1,
      .types = std::move(types),
      .infer = [](InferContext& ctx) { infer_same_as_input(ctx); },
      .compute = [make](KernelContext& ctx) { unary_elementwise<List>(ctx, make(ctx.node())); },
  };
}

// Binary kernel applying the opset < 7 `broadcast`/`axis` attributes first.
template <typename List, bool OutBool = false, typename F>
void binary_legacy(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  Tensor b = legacy_broadcast_rhs(ctx, a, ctx.input(1));
  const Tensor* ins[2] = {&a, &b};
  Tensor out;
  KernelContext inner(ctx.node(), ins, std::span<Tensor>(&out, 1), nullptr);
  inner.share_output_blocks(ctx);  // its output is ours: use our planned block
  binary_elementwise<List, OutBool>(inner, f);
  ctx.set_output(0, std::move(out));
}

// A binary op over List (same dtype on both sides) with numpy broadcasting,
// or legacy broadcasting below opset 7.
template <typename List, bool OutBool = false, typename F>
OpSchema binary_schema(const char* name, int since, int until, std::vector<DType> types, F f) {
  return OpSchema{
      .name = name,
      .since = since,
      .until = until,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = std::move(types),
      .infer =
          [](InferContext& ctx) {
            if (ctx.input_dtype(0) != ctx.input_dtype(1) && ctx.input_dtype(1) != DType::kUndefined &&
                ctx.input_dtype(0) != DType::kUndefined)
              throw ctx.error("input types differ: " + dtype_name(ctx.input_dtype(0)) + " and " +
                              dtype_name(ctx.input_dtype(1)));
            infer_binary(ctx, OutBool);
          },
      .compute = [f](KernelContext& ctx) { binary_legacy<List, OutBool>(ctx, f); },
  };
}

// double -> integer T without undefined behaviour: NaN gives 0, values
// outside T's range saturate, the rest truncate toward zero (like C casts).
template <typename T>
T saturate_cast(double v) {
  static_assert(std::is_integral_v<T>);
  if (std::isnan(v)) return T(0);
  // Compare against the bounds as doubles; the max of 64-bit types rounds up
  // to 2^63 / 2^64, so use >= there.
  constexpr double lo = static_cast<double>(std::numeric_limits<T>::min());
  constexpr double hi = static_cast<double>(std::numeric_limits<T>::max());
  if (v <= lo) return std::numeric_limits<T>::min();
  if (v >= hi) return std::numeric_limits<T>::max();
  return static_cast<T>(v);
}

// A unary schema whose float32 inputs run through the vector math of
// kernels/cpu/vec_math_f32.h (a few ulp from the correctly rounded result,
// threaded); other types keep the schema's own compute.
inline OpSchema with_f32_fast(OpSchema s, VecMathF32Fn VecMathF32::*fn) {
  ComputeFn generic = std::move(s.compute);
  s.compute = [generic, fn](KernelContext& ctx) {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::kFloat32) return generic(ctx);
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, x.shape());
    map_f32(vec_math_f32().*fn, x.data<float>(), y.data<float>(), x.numel(), ctx.thread_pool());
  };
  return s;
}

}  // namespace kiln
