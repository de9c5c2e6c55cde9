// Helpers shared by the CNN ops: sliding-window geometry (Conv, ConvTranspose,
// pools), a cache-blocked GEMM used by Conv/MatMul/Gemm, and float conversion
// for the 16-bit float types.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "ops/common.h"

namespace kiln {

// Geometry of a sliding window over the spatial dims of an N x C x D1.. tensor.
struct WindowGeometry {
  Shape in, kernel, strides, dilations, pads_begin, pads_end, out;
  size_t rank() const { return in.size(); }
};

// Reads strides/dilations/pads/auto_pad of a windowed op and computes the
// output spatial shape. `kernel` is the kernel's spatial shape. Unknown input
// dims are -1 and give -1 output dims. Pools pass ceil_mode; Conv passes
// false. Returns "" or the reason the attributes are invalid.
inline std::string window_geometry(const Node& node, const Shape& in, const Shape& kernel, bool ceil_mode,
                                   WindowGeometry* g);

// Output dims of a windowed op for inference: [N, channels, out...] when the
// rank of input 0 is known; nullopt otherwise.
inline std::optional<DimVector> window_infer_dims(const InferContext& ctx, const Shape& kernel, Dim channels,
                                                  bool ceil_mode);

// C[M x N] += A[M x K] * B[K x N], all row-major with leading dims.
template <typename T>
void gemm_acc(int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb, T* C, int64_t ldc) {
  constexpr int64_t kBlockK = 256, kBlockN = 512;
  for (int64_t j0 = 0; j0 < N; j0 += kBlockN) {
    const int64_t nb = std::min(kBlockN, N - j0);
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t kb = std::min(kBlockK, K - k0);
      int64_t i = 0;
      for (; i + 4 <= M; i += 4) {
        T* __restrict c0 = C + i * ldc + j0;
        T* __restrict c1 = c0 + ldc;
        T* __restrict c2 = c1 + ldc;
        T* __restrict c3 = c2 + ldc;
        for (int64_t k = k0; k < k0 + kb; ++k) {
          const T a0 = A[i * lda + k], a1 = A[(i + 1) * lda + k];
          const T a2 = A[(i + 2) * lda + k], a3 = A[(i + 3) * lda + k];
          const T* __restrict b = B + k * ldb + j0;
          for (int64_t j = 0; j < nb; ++j) {
            const T bv = b[j];
            c0[j] += a0 * bv;
            c1[j] += a1 * bv;
            c2[j] += a2 * bv;
            c3[j] += a3 * bv;
          }
        }
      }
      for (; i < M; ++i) {
        T* __restrict c0 = C + i * ldc + j0;
        for (int64_t k = k0; k < k0 + kb; ++k) {
          const T a0 = A[i * lda + k];
          const T* __restrict b = B + k * ldb + j0;
          for (int64_t j = 0; j < nb; ++j) c0[j] += a0 * b[j];
        }
      }
    }
  }
}

// The compute type of a float element type: double for double, else float.
template <typename T>
using calc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// Copies a tensor's elements converted to C (no copy needed when T == C is
// handled by the caller through `as_calc`).
template <typename C, typename T>
std::vector<C> to_calc(const T* p, int64_t n) {
  std::vector<C> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<C>(static_cast<acc_t<T>>(p[i]));
  return v;
}

// A read-only view of T data as C: the data itself when T == C, else a
// converted copy kept in `storage`.
template <typename C, typename T>
const C* as_calc(const T* p, int64_t n, std::vector<C>& storage) {
  if constexpr (std::is_same_v<C, T>) {
    return p;
  } else {
    storage = to_calc<C>(p, n);
    return storage.data();
  }
}

// Runs core(px, pw, pb, py) in calc_t<T> on X, W and optional B, writing
// into y (converted back when T is a 16-bit float). Shared by the reference
// Conv and ConvTranspose kernels.
template <typename T, typename Core>
void run_in_calc_type(const Tensor& x, const Tensor& w, const Tensor* b, Tensor& y, Core core) {
  using C = calc_t<T>;
  std::vector<C> xs, ws, bs;
  const C* px = as_calc<C>(x.data<T>(), x.numel(), xs);
  const C* pw = as_calc<C>(w.data<T>(), w.numel(), ws);
  const C* pb = b ? as_calc<C>(b->data<T>(), b->numel(), bs) : nullptr;
  if constexpr (std::is_same_v<C, T>) {
    core(px, pw, pb, y.data<T>());
  } else {
    std::vector<C> ys(static_cast<size_t>(y.numel()));
    core(px, pw, pb, ys.data());
    for (int64_t i = 0; i < y.numel(); ++i) y.data<T>()[i] = static_cast<T>(ys[static_cast<size_t>(i)]);
  }
}

// Reads an optional int attribute list of the given length, with a default
// fill value. Returns false when present with another length.
inline bool window_attr(const Node& node, const char* name, size_t n, int64_t def, Shape* out) {
  if (!node.has_attr(name)) {
    out->assign(n, def);
    return true;
  }
  *out = node.attr_ints(name);
  return out->size() == n;
}

// The largest kernel dim, stride, dilation or pad a windowed op accepts.
constexpr int64_t kMaxWindowAttr = int64_t{1} << 30;

inline int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

inline std::string window_geometry(const Node& node, const Shape& in, const Shape& kernel, bool ceil_mode,
                                   WindowGeometry* g) {
  const size_t r = in.size();
  const std::string rs = std::to_string(r);
  g->in = in;
  g->kernel = kernel;
  if (kernel.size() != r) return "kernel has " + std::to_string(kernel.size()) + " spatial dims, input has " + rs;
  if (!window_attr(node, "strides", r, 1, &g->strides)) return "strides must have " + rs + " values";
  if (!window_attr(node, "dilations", r, 1, &g->dilations)) return "dilations must have " + rs + " values";
  Shape pads;
  if (!window_attr(node, "pads", 2 * r, 0, &pads)) return "pads must have " + std::to_string(2 * r) + " values";
  g->pads_begin.assign(pads.begin(), pads.begin() + static_cast<int64_t>(r));
  g->pads_end.assign(pads.begin() + static_cast<int64_t>(r), pads.end());
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    return "auto_pad '" + auto_pad + "' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER";
  // Window sizes, strides, dilations and pads from a file are bounded, so
  // that the products and sums below cannot overflow (pads of INT64_MAX
  // computed a garbage window).
  auto too_large = [](const char* what, const Shape& v) -> std::string {
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] > kMaxWindowAttr)
        return std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
               " is out of range (at most 2^30)";
    return "";
  };
  for (auto [what, v] : {std::pair<const char*, const Shape*>{"kernel", &kernel},
                         {"strides", &g->strides},
                         {"dilations", &g->dilations},
                         {"pads", &pads}}) {
    std::string err = too_large(what, *v);
    if (!err.empty()) return err;
  }
  g->out.assign(r, -1);
  for (size_t d = 0; d < r; ++d) {
    const int64_t s = g->strides[d], dil = g->dilations[d], k = kernel[d];
    if (s <= 0) return "strides must be positive";
    if (dil <= 0) return "dilations must be positive";
    if (g->pads_begin[d] < 0 || g->pads_end[d] < 0) return "pads must be non-negative";
    if (k == 0 || k < -1) return "kernel dims must be positive";
    if (in[d] < 0 || k < 0) continue;
    const int64_t ek = (k - 1) * dil + 1;
    int64_t& pb = g->pads_begin[d];
    int64_t& pe = g->pads_end[d];
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      g->out[d] = ceil_div(in[d], s);
      const int64_t total = std::max<int64_t>(0, (g->out[d] - 1) * s + ek - in[d]);
      pb = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pe = total - pb;
      continue;
    }
    if (auto_pad == "VALID") pb = pe = 0;
    const int64_t span = in[d] + pb + pe - ek;
    if (span < 0) {
      if (in[d] == 0) {
        g->out[d] = 0;
        continue;
      }
      return "the window (" + std::to_string(ek) + ") is larger than the padded input (" +
             std::to_string(in[d] + pb + pe) + ") along spatial axis " + std::to_string(d);
    }
    int64_t o = (ceil_mode ? ceil_div(span, s) : span / s) + 1;
    // A last window that would start inside the end padding is dropped.
    if (ceil_mode && (o - 1) * s >= in[d] + pb) --o;
    g->out[d] = o;
  }
  return "";
}

inline std::optional<DimVector> window_infer_dims(const InferContext& ctx, const Shape& kernel, Dim channels,
                                                  bool ceil_mode) {
  const ValueType& x = ctx.input_type(0);
  if (!x.shape) return std::nullopt;
  if (x.shape->size() < 2) throw ctx.error("input must have rank >= 2, got " + std::to_string(x.shape->size()));
  Shape in;
  for (size_t d = 2; d < x.shape->size(); ++d) in.push_back((*x.shape)[d].is_known() ? (*x.shape)[d].value : -1);
  WindowGeometry g;
  std::string err = window_geometry(ctx.node(), in, kernel, ceil_mode, &g);
  if (!err.empty()) throw ctx.error(err);
  DimVector out = {(*x.shape)[0], channels};
  for (int64_t v : g.out) out.push_back(v >= 0 ? Dim::known(v) : Dim::unknown());
  return out;
}

// Convolution of x [N, Cin, in...] with w [M, Cin/group, kernel...] into y
// [N, M, out...] (bias [M] or null), by im2col over column blocks and
// gemm_acc. C is the compute type (float, double or int32).
template <typename C>
void conv_core(const WindowGeometry& g, int64_t N, int64_t Cin, int64_t M, int64_t group, const C* x, const C* w,
               const C* bias, C* y) {
  const size_t r = g.rank();
  const int64_t in_sp = shape_numel(g.in), out_sp = shape_numel(g.out), k_sp = shape_numel(g.kernel);
  const int64_t Cg = Cin / group, Mg = M / group, Kc = Cg * k_sp;
  bool pointwise = true;
  for (size_t d = 0; d < r; ++d)
    pointwise = pointwise && g.kernel[d] == 1 && g.strides[d] == 1 && g.pads_begin[d] == 0 && g.pads_end[d] == 0;
  // Kernel tap offsets (already dilated) per spatial dim.
  std::vector<int64_t> taps(static_cast<size_t>(k_sp) * r);
  for (int64_t kk = 0; kk < k_sp; ++kk) {
    int64_t rem = kk;
    for (size_t d = r; d-- > 0;) {
      taps[static_cast<size_t>(kk) * r + d] = (rem % g.kernel[d]) * g.dilations[d];
      rem /= g.kernel[d];
    }
  }
  const int64_t block =
      std::clamp<int64_t>((int64_t{1} << 20) / std::max<int64_t>(Kc, 1), 16, std::max<int64_t>(out_sp, 16));
  std::vector<C> col;
  std::vector<int64_t> base;
  if (!pointwise) {
    col.resize(static_cast<size_t>(Kc * std::min(block, out_sp)));
    base.resize(r * static_cast<size_t>(std::min(block, out_sp)));
  }
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t gi = 0; gi < group; ++gi) {
      C* yg = y + (n * M + gi * Mg) * out_sp;
      const C* xg = x + (n * Cin + gi * Cg) * in_sp;
      const C* wg = w + gi * Mg * Kc;
      for (int64_t m = 0; m < Mg; ++m)
        std::fill(yg + m * out_sp, yg + (m + 1) * out_sp, bias ? bias[gi * Mg + m] : C(0));
      if (pointwise) {
        gemm_acc(Mg, out_sp, Cg, wg, Kc, xg, in_sp, yg, out_sp);
        continue;
      }
      for (int64_t j0 = 0; j0 < out_sp; j0 += block) {
        const int64_t jb = std::min(block, out_sp - j0);
        for (int64_t j = 0; j < jb; ++j) {
          int64_t rem = j0 + j;
          for (size_t d = r; d-- > 0;) {
            base[d * static_cast<size_t>(jb) + static_cast<size_t>(j)] =
                (rem % g.out[d]) * g.strides[d] - g.pads_begin[d];
            rem /= g.out[d];
          }
        }
        for (int64_t c = 0; c < Cg; ++c) {
          const C* xc = xg + c * in_sp;
          for (int64_t kk = 0; kk < k_sp; ++kk) {
            C* dst = col.data() + (c * k_sp + kk) * jb;
            const int64_t* tap = taps.data() + kk * static_cast<int64_t>(r);
            for (int64_t j = 0; j < jb; ++j) {
              int64_t off = 0;
              bool inside = true;
              for (size_t d = 0; d < r; ++d) {
                const int64_t p = base[d * static_cast<size_t>(jb) + static_cast<size_t>(j)] + tap[d];
                if (p < 0 || p >= g.in[d]) {
                  inside = false;
                  break;
                }
                off = off * g.in[d] + p;
              }
              dst[j] = inside ? xc[off] : C(0);
            }
          }
        }
        gemm_acc(Mg, jb, Kc, wg, Kc, col.data(), jb, yg + j0, out_sp);
      }
    }
  }
}

// Numpy matmul of A [..., M, K] and B [..., K, N] (1-D operands promoted):
// the output shape and, per output batch, the element offsets of A's and B's
// matrices. Throws naming the node on mismatching shapes.
struct MatMulPlan {
  Shape out;
  int64_t M = 0, K = 0, N = 0;
  std::vector<int64_t> a_offsets, b_offsets;
};
MatMulPlan plan_matmul(const Shape& a, const Shape& b, const KernelContext& ctx);

}  // namespace kiln
