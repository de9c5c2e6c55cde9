// Building blocks for element-wise ops: a broadcast binary kernel, a unary
// kernel, and the matching inference functions. Each op file supplies only the
// scalar function.
#pragma once
#include "ops/common.h"

namespace kiln {

// Binary element-wise op with numpy broadcasting; output has the inputs'
// dtype (or bool when OutBool). `f(a, b)` computes in acc_t<T>.
template <typename List, bool OutBool = false, typename F>
void binary_elementwise(KernelContext& ctx, F f) {
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(1);
  if (a.dtype() != b.dtype())
    throw ctx.error("input types differ: " + dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
  Shape out_shape = broadcast_shapes({a.shape(), b.shape()}, ctx.node());
  dispatch<List>(a.dtype(), ctx.node().op_type, [&]<typename T>() {
    using O = std::conditional_t<OutBool, bool, T>;
    // Every element is written below: no zero fill first (not for strings,
    // which must be constructed).
    Tensor& out = std::is_trivially_copyable_v<O> ? ctx.output_uninitialized(0, dtype_of<O>, out_shape)
                                                  : ctx.output(0, dtype_of<O>, out_shape);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    O* po = out.data<O>();
    int64_t n = out.numel();
    if (a.shape() == b.shape()) {
      for (int64_t i = 0; i < n; ++i) po[i] = static_cast<O>(f(acc_t<T>(pa[i]), acc_t<T>(pb[i])));
    } else if (b.numel() == 1) {
      acc_t<T> s = pb[0];
      for (int64_t i = 0; i < n; ++i) po[i] = static_cast<O>(f(acc_t<T>(pa[i]), s));
    } else {
      std::vector<std::vector<int64_t>> st = {broadcast_strides(a.shape(), out_shape),
                                              broadcast_strides(b.shape(), out_shape)};
      for_each_broadcast(out_shape, st, [&](int64_t i, const int64_t* off) {
        po[i] = static_cast<O>(f(acc_t<T>(pa[off[0]]), acc_t<T>(pb[off[1]])));
      });
    }
  });
}

// Unary element-wise op; output has the input's dtype.
template <typename List, typename F>
void unary_elementwise(KernelContext& ctx, F f) {
  const Tensor& x = ctx.input(0);
  dispatch<List>(x.dtype(), ctx.node().op_type, [&]<typename T>() {
    Tensor& out = std::is_trivially_copyable_v<T> ? ctx.output_uninitialized(0, x.dtype(), x.shape())
                                                  : ctx.output(0, x.dtype(), x.shape());
    const T* px = x.data<T>();
    T* po = out.data<T>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) po[i] = static_cast<T>(f(acc_t<T>(px[i])));
  });
}

// Inference for binary ops: broadcast shape, dtype of input 0 (or bool).
void infer_binary(InferContext& ctx, bool out_bool = false);

// Opset < 7 Add/Sub/Mul/Div/... carried `broadcast` and `axis` attributes:
// B is aligned to A starting at `axis` instead of numpy's trailing alignment.
// Returns B reshaped so numpy broadcasting gives the legacy result.
Tensor legacy_broadcast_rhs(const KernelContext& ctx, const Tensor& a, const Tensor& b);

}  // namespace kiln
