// Mish (opset 18): y = x * tanh(softplus(x)), softplus(x) = ln(1 + e^x).
// One file is everything kiln knows about it: the schema and kernels, and
// its facts, which make it fuse as an epilogue into the Conv, Gemm, MatMul
// or Add before it (its own step below; oneDNN has no post-op for it, so a
// blocked conv applies it after the primitive), run on the blocked layout,
// and count 5 FLOPs an element.
#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "ir/op_facts.h"
#include "ops/elementwise_util.h"

namespace kiln {

namespace {

double mish(double x) { return x * std::tanh(std::max(x, 0.0) + std::log1p(std::exp(-std::fabs(x)))); }

// In float: log1p/exp/tanh of float arguments, a few ulp from mish() rounded.
void mish_f32(float* p, int64_t n, float, float) {
  for (int64_t i = 0; i < n; ++i) {
    const float x = p[i];
    p[i] = x * std::tanh(std::max(x, 0.0f) + std::log1p(std::exp(-std::fabs(x))));
  }
}

const EpilogueFn kEpilogueMish = {"Mish", 5, mish_f32, [](double x, float, float) { return mish(x); }};

}  // namespace

KILN_OP(Mish) {
  OpSchema s = unary_attr_schema<FloatTypes>("Mish", 18, float_dtypes(), [](const Node&) {
    return [](auto x) { return static_cast<decltype(x)>(mish(static_cast<double>(x))); };
  });
  ComputeFn generic = std::move(s.compute);
  s.compute = [generic](KernelContext& ctx) {  // float32: the epilogue step's kernel, threaded
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::kFloat32) return generic(ctx);
    Tensor& y = ctx.output_uninitialized(0, DType::kFloat32, x.shape());
    std::copy_n(x.data<float>(), x.numel(), y.data<float>());
    apply_epilogue({{&kEpilogueMish}}, y, ctx.thread_pool());
  };
  return s;
}

KILN_OP_FACTS(Mish) {
  return {.op = "Mish",
          .family = OpFamily::kActivation,
          .cost = cost::per_element(kEpilogueMish.flops),
          .blocked = BlockedLayout::kUnary,
          .epilogue_step = epilogue_step_of(kEpilogueMish),
          .epilogue_fns = {&kEpilogueMish}};
}

}  // namespace kiln
