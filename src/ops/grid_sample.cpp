// GridSample (16: 4-D input, modes bilinear/nearest/bicubic; 20+: N-d, modes
// linear/nearest/cubic), AffineGrid (20) and Col2Im (18).
#include <cmath>

#include "ir/op_facts.h"
#include "ops/nn_util.h"

namespace kiln {

namespace {

double reflect(double x, double lo, double hi) {
  const double range = hi - lo;
  if (range <= 0) return lo;
  if (x < lo) {
    const double dx = lo - x;
    const int64_t n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? lo + r : hi - r;
  }
  if (x > hi) {
    const double dx = x - hi;
    const int64_t n = static_cast<int64_t>(dx / range);
    const double r = dx - static_cast<double>(n) * range;
    return n % 2 == 0 ? hi - r : lo + r;
  }
  return x;
}

double cubic_coeff(double x) {
  const double a = -0.75;
  x = std::abs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

struct GridTap {
  int64_t index;  // -1: contributes zero
  double weight;
};

void compute_grid_sample(KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  const Tensor& grid = ctx.input(1);
  std::string mode = node.attr_string("mode", node.opset >= 20 ? "linear" : "bilinear");
  if (mode == "bilinear") mode = "linear";
  if (mode == "bicubic") mode = "cubic";
  const std::string pad = node.attr_string("padding_mode", "zeros");
  const bool align = node.attr_int("align_corners", 0) != 0;
  const int64_t r = x.rank() - 2;
  if (r < 1 || (node.opset < 20 && r != 2)) throw ctx.error("X " + shape_str(x.shape()) + " has an unsupported rank");
  if (grid.rank() != r + 2 || grid.dim(0) != x.dim(0) || grid.dim(static_cast<int>(r + 1)) != r)
    throw ctx.error("grid " + shape_str(grid.shape()) + " does not match X " + shape_str(x.shape()));
  if (mode != "linear" && mode != "nearest" && mode != "cubic") throw ctx.error("mode '" + mode + "' is not supported");
  if (pad != "zeros" && pad != "border" && pad != "reflection")
    throw ctx.error("padding_mode '" + pad + "' is not supported");
  const int64_t N = x.dim(0), C = x.dim(1);
  Shape in(x.shape().begin() + 2, x.shape().end()), out_sp(grid.shape().begin() + 1, grid.shape().end() - 1);
  Shape out_shape = {N, C};
  out_shape.insert(out_shape.end(), out_sp.begin(), out_sp.end());
  const int64_t in_n = shape_numel(in), out_n = shape_numel(out_sp);
  std::vector<double> g(static_cast<size_t>(grid.numel()));
  dispatch<FloatTypes>(grid.dtype(), "GridSample grid", [&]<typename G>() {
    for (int64_t i = 0; i < grid.numel(); ++i) g[static_cast<size_t>(i)] = static_cast<acc_t<G>>(grid.data<G>()[i]);
  });
  std::vector<double> xv(static_cast<size_t>(x.numel()));
  dispatch<NumericTypes>(x.dtype(), "GridSample", [&]<typename T>() {
    for (int64_t i = 0; i < x.numel(); ++i)
      xv[static_cast<size_t>(i)] = static_cast<double>(static_cast<acc_t<T>>(x.data<T>()[i]));
  });
  std::vector<double> yv(static_cast<size_t>(shape_numel(out_shape)));
  std::vector<std::vector<GridTap>> taps(static_cast<size_t>(r));
  auto map_index = [&](int64_t i, int64_t d) -> int64_t {
    const int64_t size = in[static_cast<size_t>(d)];
    if (pad == "zeros") return i >= 0 && i < size ? i : -1;
    if (pad == "border") return std::clamp<int64_t>(i, 0, size - 1);
    const double lo = align ? 0.0 : -0.5, hi = align ? static_cast<double>(size - 1) : static_cast<double>(size) - 0.5;
    return std::clamp<int64_t>(static_cast<int64_t>(reflect(static_cast<double>(i), lo, hi)), 0, size - 1);
  };
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < out_n; ++o) {
      for (int64_t d = 0; d < r; ++d) {
        const double size = static_cast<double>(in[static_cast<size_t>(d)]);
        const double gn = g[static_cast<size_t>((n * out_n + o) * r + (r - 1 - d))];
        double c = align ? (gn + 1) / 2 * (size - 1) : ((gn + 1) * size - 1) / 2;
        if (mode == "nearest") c = std::nearbyint(c);
        const double lo = align ? 0.0 : -0.5, hi = align ? size - 1 : size - 0.5;
        if (c < lo || c > hi) {
          if (pad == "border")
            c = std::clamp(c, 0.0, size - 1);
          else if (pad == "reflection")
            c = reflect(c, lo, hi);
        }
        auto& t = taps[static_cast<size_t>(d)];
        t.clear();
        if (mode == "nearest") {
          t.push_back({map_index(static_cast<int64_t>(c), d), 1.0});
        } else {
          const double f = std::floor(c), fr = c - f;
          const int64_t i0 = static_cast<int64_t>(f);
          if (mode == "linear") {
            t.push_back({map_index(i0, d), 1 - fr});
            t.push_back({map_index(i0 + 1, d), fr});
          } else {
            for (int64_t k = -1; k <= 2; ++k)
              t.push_back({map_index(i0 + k, d), cubic_coeff(static_cast<double>(k) - fr)});
          }
        }
      }
      // Tensor product of the per-dim taps.
      int64_t combos = 1;
      for (const auto& t : taps) combos *= static_cast<int64_t>(t.size());
      for (int64_t c = 0; c < C; ++c) {
        const double* xp = xv.data() + (n * C + c) * in_n;
        double acc = 0;
        for (int64_t k = 0; k < combos; ++k) {
          int64_t rem = k, off = 0;
          double w = 1;
          bool zero = false;
          for (int64_t d = 0; d < r; ++d) {
            const auto& t = taps[static_cast<size_t>(d)];
            const GridTap& tp = t[static_cast<size_t>(rem % static_cast<int64_t>(t.size()))];
            rem /= static_cast<int64_t>(t.size());
            if (tp.index < 0) zero = true;
            off = off * in[static_cast<size_t>(d)] + tp.index;
            w *= tp.weight;
          }
          if (!zero) acc += w * xp[off];
        }
        yv[static_cast<size_t>((n * C + c) * out_n + o)] = acc;
      }
    }
  dispatch<NumericTypes>(x.dtype(), "GridSample", [&]<typename T>() {
    Tensor& y = ctx.output(0, x.dtype(), out_shape);
    for (int64_t i = 0; i < y.numel(); ++i)
      y.data<T>()[i] = static_cast<T>(static_cast<acc_t<T>>(yv[static_cast<size_t>(i)]));
  });
}

void infer_grid_sample(InferContext& ctx) {
  const ValueType& x = ctx.input_type(0);
  const ValueType& g = ctx.input_type(1);
  std::optional<DimVector> dims;
  if (x.shape && g.shape && g.shape->size() >= 2) {
    dims = DimVector{(*x.shape)[0], x.shape->size() > 1 ? (*x.shape)[1] : Dim::unknown()};
    dims->insert(dims->end(), g.shape->begin() + 1, g.shape->end() - 1);
  }
  ctx.set_output(0, x.dtype, dims);
}

OpSchema grid_sample_schema(int since, int until) {
  return OpSchema{
      .name = "GridSample",
      .since = since,
      .until = until,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = numeric_dtypes(),
      .infer = infer_grid_sample,
      .compute = compute_grid_sample,
  };
}

void compute_affine_grid(KernelContext& ctx) {
  const Tensor& theta = ctx.input(0);
  const std::vector<int64_t> size = read_ints(ctx.input(1), ctx, "size");
  const bool align = ctx.node().attr_int("align_corners", 0) != 0;
  if (size.size() != 4 && size.size() != 5) throw ctx.error("size must have 4 or 5 values");
  const int64_t r = static_cast<int64_t>(size.size()) - 2, N = size[0];
  for (int64_t v : size)
    if (v < 0) throw ctx.error("size must be non-negative");
  if (theta.shape() != Shape{N, r, r + 1})
    throw ctx.error("theta " + shape_str(theta.shape()) + " must be " + shape_str(Shape{N, r, r + 1}));
  Shape sp(size.begin() + 2, size.end());
  Shape out = {N};
  out.insert(out.end(), sp.begin(), sp.end());
  out.push_back(r);
  const int64_t pts = shape_numel(sp);
  auto base = [&](int64_t i, int64_t n) -> double {
    if (align) return n <= 1 ? 0.0 : -1.0 + 2.0 * static_cast<double>(i) / static_cast<double>(n - 1);
    return (-1.0 + (2.0 * static_cast<double>(i) + 1.0) / static_cast<double>(n));
  };
  dispatch<FloatTypes>(theta.dtype(), "AffineGrid", [&]<typename T>() {
    Tensor& y = ctx.output(0, theta.dtype(), out);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < pts; ++p) {
        // Homogeneous point in (x, y[, z]) order: innermost spatial dim first.
        std::vector<double> h(static_cast<size_t>(r + 1), 1.0);
        int64_t rem = p;
        for (int64_t d = r; d-- > 0;) {
          const int64_t dim = sp[static_cast<size_t>(d)];
          h[static_cast<size_t>(r - 1 - d)] = base(rem % dim, dim);
          rem /= dim;
        }
        for (int64_t i = 0; i < r; ++i) {
          double acc = 0;
          for (int64_t j = 0; j <= r; ++j)
            acc += static_cast<double>(static_cast<acc_t<T>>(theta.data<T>()[(n * r + i) * (r + 1) + j])) *
                   h[static_cast<size_t>(j)];
          y.data<T>()[(n * pts + p) * r + i] = static_cast<T>(static_cast<acc_t<T>>(acc));
        }
      }
  });
}

void compute_col2im(KernelContext& ctx) {
  const Node& node = ctx.node();
  const Tensor& x = ctx.input(0);
  const std::vector<int64_t> image = read_ints(ctx.input(1), ctx, "image_shape");
  const std::vector<int64_t> block = read_ints(ctx.input(2), ctx, "block_shape");
  const size_t r = image.size();
  if (block.size() != r || r == 0) throw ctx.error("image_shape and block_shape must have the same non-zero length");
  if (x.rank() != 3) throw ctx.error("input must be 3-D [N, C*prod(block), L]");
  WindowGeometry g;
  std::string err = window_geometry(node, image, block, false, &g);
  if (!err.empty()) throw ctx.error(err);
  const int64_t ksz = shape_numel(block), L = shape_numel(g.out), isz = shape_numel(image);
  if (ksz == 0 || x.dim(1) % ksz != 0 || x.dim(2) != L)
    throw ctx.error("input " + shape_str(x.shape()) + " does not match block " + shape_str(block) + " with " +
                    std::to_string(L) + " blocks");
  const int64_t N = x.dim(0), C = x.dim(1) / ksz;
  Shape out = {N, C};
  out.insert(out.end(), image.begin(), image.end());
  dispatch<FloatTypes>(x.dtype(), "Col2Im", [&]<typename T>() {
    std::vector<double> acc(static_cast<size_t>(N * C * isz), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < ksz; ++k)
          for (int64_t l = 0; l < L; ++l) {
            int64_t kr = k, lr = l, off = 0;
            bool inside = true;
            Shape pos(r);
            for (size_t d = r; d-- > 0;) {
              pos[d] = (lr % g.out[d]) * g.strides[d] - g.pads_begin[d] + (kr % block[d]) * g.dilations[d];
              lr /= g.out[d];
              kr /= block[d];
              inside = inside && pos[d] >= 0 && pos[d] < image[d];
            }
            if (!inside) continue;
            for (size_t d = 0; d < r; ++d) off = off * image[d] + pos[d];
            acc[static_cast<size_t>((n * C + c) * isz + off)] +=
                static_cast<acc_t<T>>(x.data<T>()[((n * C + c) * ksz + k) * L + l]);
          }
    Tensor& y = ctx.output(0, x.dtype(), out);
    for (size_t i = 0; i < acc.size(); ++i) y.data<T>()[i] = static_cast<T>(static_cast<acc_t<T>>(acc[i]));
  });
}

}  // namespace

KILN_OP(GridSample_16) { return grid_sample_schema(16, 19); }
KILN_OP(GridSample_20) { return grid_sample_schema(20, INT_MAX); }

KILN_OP(AffineGrid) {
  return OpSchema{
      .name = "AffineGrid",
      .since = 20,
      .min_inputs = 2,
      .max_inputs = 2,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer =
          [](InferContext& ctx) {
            std::vector<int64_t> size;
            std::optional<DimVector> dims;
            if (ctx.input_ints(1, &size) && (size.size() == 4 || size.size() == 5)) {
              dims = DimVector{Dim::known(size[0])};
              for (size_t d = 2; d < size.size(); ++d) dims->push_back(Dim::known(size[d]));
              dims->push_back(Dim::known(static_cast<int64_t>(size.size()) - 2));
            }
            ctx.set_output(0, ctx.input_dtype(0), dims);
          },
      .compute = compute_affine_grid,
  };
}

KILN_OP(Col2Im) {
  return OpSchema{
      .name = "Col2Im",
      .since = 18,
      .min_inputs = 3,
      .max_inputs = 3,
      .max_outputs = 1,
      .types = float_dtypes(),
      .infer =
          [](InferContext& ctx) {
            std::vector<int64_t> image, block;
            std::optional<DimVector> dims;
            const ValueType& x = ctx.input_type(0);
            if (ctx.input_ints(1, &image) && ctx.input_ints(2, &block) && x.shape && x.shape->size() == 3) {
              int64_t k = 1;
              for (int64_t b : block) k *= b;
              const Dim& c = (*x.shape)[1];
              dims = DimVector{(*x.shape)[0], c.is_known() && k > 0 ? Dim::known(c.value / k) : Dim::unknown()};
              for (int64_t v : image) dims->push_back(Dim::known(v));
            }
            ctx.set_output(0, x.dtype, dims);
          },
      .compute = compute_col2im,
  };
}

// ---- what kiln knows about these ops besides running them (ir/op_facts.h)

KILN_OP_FACTS(AffineGrid) {
  return {.op = "AffineGrid", .family = OpFamily::kShape, .cost = cost::not_counted("AffineGrid is not counted")};
}

KILN_OP_FACTS(Col2Im) {
  return {.op = "Col2Im", .family = OpFamily::kShape, .cost = cost::not_counted("Col2Im is not counted")};
}

KILN_OP_FACTS(GridSample) {
  return {.op = "GridSample", .family = OpFamily::kShape, .cost = cost::not_counted("GridSample is not counted")};
}

}  // namespace kiln
