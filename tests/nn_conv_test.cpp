// Conv, ConvTranspose and the pools against plain references written from the
// definitions (one output element at a time), on random inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/half.h"
#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

struct Win {
  Shape kernel, strides, dilations, pads;  // pads: begins then ends
};

// Multi-index helpers over a shape.
Shape unravel(int64_t i, const Shape& s) {
  Shape idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}
int64_t ravel(const Shape& idx, const Shape& s) {
  int64_t off = 0;
  for (size_t d = 0; d < s.size(); ++d) off = off * s[d] + idx[d];
  return off;
}

// Conv by definition: y[n,m,o] = b[m] + sum_{c,k} x[n, g*Cg+c, o*s - pb + k*d] w[m,c,k].
Tensor ref_conv(const Tensor& x, const Tensor& w, const float* b, const Win& win, int64_t group, const Shape& out_sp) {
  const int64_t N = x.dim(0), C = x.dim(1), M = w.dim(0), Cg = C / group, Mg = M / group;
  const size_t r = out_sp.size();
  Shape in_sp(x.shape().begin() + 2, x.shape().end());
  Shape out_shape = {N, M};
  out_shape.insert(out_shape.end(), out_sp.begin(), out_sp.end());
  Tensor y(DType::kFloat32, out_shape);
  const int64_t osz = shape_numel(out_sp), ksz = shape_numel(win.kernel), isz = shape_numel(in_sp);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t o = 0; o < osz; ++o) {
        Shape oi = unravel(o, out_sp);
        double acc = b ? b[m] : 0.0;
        const int64_t g = m / Mg;
        for (int64_t c = 0; c < Cg; ++c)
          for (int64_t k = 0; k < ksz; ++k) {
            Shape ki = unravel(k, win.kernel), ii(r);
            bool ok = true;
            for (size_t d = 0; d < r; ++d) {
              ii[d] = oi[d] * win.strides[d] - win.pads[d] + ki[d] * win.dilations[d];
              ok = ok && ii[d] >= 0 && ii[d] < in_sp[d];
            }
            if (!ok) continue;
            acc += static_cast<double>(x.data<float>()[(n * C + g * Cg + c) * isz + ravel(ii, in_sp)]) *
                   w.data<float>()[(m * Cg + c) * ksz + k];
          }
        y.data<float>()[(n * M + m) * osz + o] = static_cast<float>(acc);
      }
  return y;
}

std::map<std::string, Attribute> win_attrs(const Win& w) {
  return {{"kernel_shape", attr_ints(w.kernel)},
          {"strides", attr_ints(w.strides)},
          {"dilations", attr_ints(w.dilations)},
          {"pads", attr_ints(w.pads)}};
}

Shape out_dims(const Shape& in, const Win& w) {
  Shape o;
  for (size_t d = 0; d < in.size(); ++d)
    o.push_back((in[d] + w.pads[d] + w.pads[d + in.size()] - (w.kernel[d] - 1) * w.dilations[d] - 1) / w.strides[d] +
                1);
  return o;
}

}  // namespace

TEST(Conv, GroupedDilatedStridedMatchesDefinition) {
  std::mt19937 rng(10);
  Win win{{3, 2}, {2, 1}, {2, 1}, {1, 0, 2, 1}};
  Tensor x = random_f32({2, 4, 9, 7}, rng), w = random_f32({6, 2, 3, 2}, rng), b = random_f32({6}, rng);
  auto attrs = win_attrs(win);
  attrs["group"] = attr_int(2);
  auto out = run_node({.op = "Conv", .opset = 11, .inputs = {x, w, b}, .attrs = attrs});
  EXPECT_TRUE(all_close(out[0], ref_conv(x, w, b.data<float>(), win, 2, out_dims({9, 7}, win)), 1e-4, 1e-5));
}

// Conv cases with constant weights and a bias, on one thread and on two,
// against ref_conv.
struct ConstantConvCase {
  Shape x, w;
  Win win;
  int64_t group;
};

void check_constant_weight_convs(const std::vector<ConstantConvCase>& cases, unsigned seed) {
  std::mt19937 rng(seed);
  ThreadPool pool(2);
  for (const ConstantConvCase& c : cases) {
    Tensor x = random_f32(c.x, rng), w = random_f32(c.w, rng), b = random_f32({c.w[0]}, rng);
    auto attrs = win_attrs(c.win);
    attrs["group"] = attr_int(c.group);
    const Tensor want =
        ref_conv(x, w, b.data<float>(), c.win, c.group, out_dims(Shape(c.x.begin() + 2, c.x.end()), c.win));
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      auto out =
          run_node({.op = "Conv", .opset = 11, .inputs = {x, w, b}, .attrs = attrs, .constant_from = 1, .pool = p});
      EXPECT_TRUE(all_close(out[0], want, 1e-4, 1e-5)) << shape_str(c.x) << " W " << shape_str(c.w);
    }
  }
}

// 3-D convs with constant weights run on oneDNN (plain in, plain out):
// groups, dilations, asymmetric pads, bias, threads, a batch of 0.
TEST(Conv, ThreeDimensionalConstantWeightsOnOneDnn) {
  check_constant_weight_convs(
      {
          {{1, 4, 6, 9, 8}, {6, 4, 3, 3, 3}, {{3, 3, 3}, {1, 2, 1}, {1, 1, 2}, {1, 1, 2, 1, 0, 2}}, 1},
          {{2, 6, 5, 7, 7}, {9, 2, 1, 3, 3}, {{1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1, 0, 1, 1}}, 3},
          {{1, 16, 4, 5, 6}, {16, 1, 3, 1, 1}, {{3, 1, 1}, {2, 1, 1}, {1, 1, 1}, {1, 0, 0, 1, 0, 0}}, 16},
          {{0, 4, 6, 9, 8}, {6, 4, 3, 3, 3}, {{3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}}, 1},
      },
      12);
}

// 2-D grouped convs with constant weights whose groups are not whole channel
// blocks run on oneDNN between plain tensors (or kiln's GEMMs where oneDNN
// has only its reference kernel): group widths 3, 24 and 5 -> 7, strides,
// dilations, asymmetric pads, a batch of 2 and of 0, with and without threads.
TEST(Conv, GroupedTwoDimensionalConstantWeights) {
  check_constant_weight_convs(
      {
          {{1, 72, 12, 11}, {72, 24, 3, 3}, {{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}}, 3},
          {{2, 6, 9, 7}, {6, 3, 3, 3}, {{3, 3}, {1, 1}, {2, 1}, {2, 1, 1, 2}}, 2},
          {{1, 10, 8, 8}, {14, 5, 1, 3}, {{1, 3}, {1, 2}, {1, 1}, {0, 1, 0, 0}}, 2},
          {{0, 72, 6, 6}, {72, 24, 3, 3}, {{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}}, 3},
      },
      13);
}

TEST(Conv, OneAndThreeSpatialDimsAndPointwise) {
  std::mt19937 rng(11);
  Win w1{{3}, {2}, {1}, {1, 1}};
  Tensor x1 = random_f32({1, 3, 10}, rng), k1 = random_f32({5, 3, 3}, rng);
  auto o1 = run_node({.op = "Conv", .opset = 1, .inputs = {x1, k1}, .attrs = win_attrs(w1)});
  EXPECT_TRUE(all_close(o1[0], ref_conv(x1, k1, nullptr, w1, 1, out_dims({10}, w1)), 1e-4, 1e-5));

  Win w3{{2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {0, 1, 1, 1, 0, 0}};
  Tensor x3 = random_f32({1, 2, 5, 6, 7}, rng), k3 = random_f32({3, 2, 2, 3, 2}, rng);
  auto o3 = run_node({.op = "Conv", .opset = 11, .inputs = {x3, k3}, .attrs = win_attrs(w3)});
  EXPECT_TRUE(all_close(o3[0], ref_conv(x3, k3, nullptr, w3, 1, out_dims({5, 6, 7}, w3)), 1e-4, 1e-5));

  // 1x1 (the im2col-free path) and depthwise.
  Win wp{{1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}};
  Tensor xp = random_f32({2, 8, 5, 3}, rng), kp = random_f32({7, 8, 1, 1}, rng);
  auto op = run_node({.op = "Conv", .opset = 11, .inputs = {xp, kp}, .attrs = win_attrs(wp)});
  EXPECT_TRUE(all_close(op[0], ref_conv(xp, kp, nullptr, wp, 1, {5, 3}), 1e-4, 1e-5));
  Win wd{{3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}};
  Tensor kd = random_f32({8, 1, 3, 3}, rng);
  auto ad = win_attrs(wd);
  ad["group"] = attr_int(8);
  auto od = run_node({.op = "Conv", .opset = 11, .inputs = {xp, kd}, .attrs = ad});
  EXPECT_TRUE(all_close(od[0], ref_conv(xp, kd, nullptr, wd, 8, {5, 3}), 1e-4, 1e-5));
}

TEST(Conv, AutoPadSameUpperAndLower) {
  std::mt19937 rng(12);
  Tensor x = random_f32({1, 2, 6, 5}, rng), w = random_f32({3, 2, 4, 3}, rng);
  // in 6, k 4, s 2 -> out 3, total pad (3-1)*2+4-6 = 2; in 5, k 3, s 2 -> out 3, total 2.
  for (const char* mode : {"SAME_UPPER", "SAME_LOWER"}) {
    auto out = run_node({.op = "Conv",
                         .opset = 11,
                         .inputs = {x, w},
                         .attrs = {{"auto_pad", attr_string(mode)}, {"strides", attr_ints({2, 2})}}});
    Win win{{4, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}};
    EXPECT_TRUE(all_close(out[0], ref_conv(x, w, nullptr, win, 1, {3, 3}), 1e-4, 1e-5)) << mode;
  }
  // Odd total padding: in 5, k 2, s 1 -> total 1: upper puts it at the end.
  Tensor w2 = random_f32({1, 2, 2, 2}, rng);
  auto up =
      run_node({.op = "Conv", .opset = 11, .inputs = {x, w2}, .attrs = {{"auto_pad", attr_string("SAME_UPPER")}}});
  auto lo =
      run_node({.op = "Conv", .opset = 11, .inputs = {x, w2}, .attrs = {{"auto_pad", attr_string("SAME_LOWER")}}});
  EXPECT_TRUE(
      all_close(up[0], ref_conv(x, w2, nullptr, Win{{2, 2}, {1, 1}, {1, 1}, {0, 0, 1, 1}}, 1, {6, 5}), 1e-4, 1e-5));
  EXPECT_TRUE(
      all_close(lo[0], ref_conv(x, w2, nullptr, Win{{2, 2}, {1, 1}, {1, 1}, {1, 1, 0, 0}}, 1, {6, 5}), 1e-4, 1e-5));
  auto valid = run_node({.op = "Conv", .opset = 11, .inputs = {x, w2}, .attrs = {{"auto_pad", attr_string("VALID")}}});
  EXPECT_EQ(valid[0].shape(), (Shape{1, 1, 5, 4}));
}

TEST(Conv, Float16AndEmptyBatchAndErrors) {
  std::mt19937 rng(13);
  Tensor x = random_f32({1, 2, 5, 5}, rng), w = random_f32({2, 2, 3, 3}, rng);
  Tensor xh(DType::kFloat16, x.shape()), wh(DType::kFloat16, w.shape());
  for (int64_t i = 0; i < x.numel(); ++i) xh.data<Float16>()[i] = Float16(x.data<float>()[i]);
  for (int64_t i = 0; i < w.numel(); ++i) wh.data<Float16>()[i] = Float16(w.data<float>()[i]);
  Tensor xr(DType::kFloat32, x.shape()), wr(DType::kFloat32, w.shape());
  for (int64_t i = 0; i < x.numel(); ++i) xr.data<float>()[i] = xh.data<Float16>()[i];
  for (int64_t i = 0; i < w.numel(); ++i) wr.data<float>()[i] = wh.data<Float16>()[i];
  auto out = run_node({.op = "Conv", .opset = 11, .inputs = {xh, wh}});
  EXPECT_EQ(out[0].dtype(), DType::kFloat16);
  EXPECT_TRUE(all_close(make_f32(out[0].shape(), to_f32(out[0])),
                        ref_conv(xr, wr, nullptr, Win{{3, 3}, {1, 1}, {1, 1}, {0, 0, 0, 0}}, 1, {3, 3}), 2e-2, 2e-2));

  auto empty = run_node({.op = "Conv", .opset = 11, .inputs = {Tensor(DType::kFloat32, {0, 2, 5, 5}), w}});
  EXPECT_EQ(empty[0].shape(), (Shape{0, 2, 3, 3}));
  EXPECT_THROW(run_node({.op = "Conv", .opset = 11, .inputs = {random_f32({1, 3, 5, 5}, rng), w}}), Error);
  EXPECT_THROW(run_node({.op = "Conv", .opset = 11, .inputs = {random_f32({1, 2, 2, 2}, rng), w}}), Error);
  EXPECT_THROW(run_node({.op = "Conv", .opset = 11, .inputs = {x, w}, .attrs = {{"strides", attr_ints({0, 1})}}}),
               Error);
}

namespace {

// ConvTranspose by definition: every x[n,c,i] * w[c,m,k] lands at o = i*s - pb + k*d.
Tensor ref_conv_transpose(const Tensor& x, const Tensor& w, const Win& win, int64_t group, const Shape& out_sp) {
  const int64_t N = x.dim(0), C = x.dim(1), Mg = w.dim(1), M = Mg * group, Cg = C / group;
  const size_t r = out_sp.size();
  Shape in_sp(x.shape().begin() + 2, x.shape().end());
  Shape out_shape = {N, M};
  out_shape.insert(out_shape.end(), out_sp.begin(), out_sp.end());
  Tensor y(DType::kFloat32, out_shape);
  const int64_t isz = shape_numel(in_sp), ksz = shape_numel(win.kernel), osz = shape_numel(out_sp);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < isz; ++i)
        for (int64_t m = 0; m < Mg; ++m)
          for (int64_t k = 0; k < ksz; ++k) {
            Shape ii = unravel(i, in_sp), ki = unravel(k, win.kernel), oi(r);
            bool ok = true;
            for (size_t d = 0; d < r; ++d) {
              oi[d] = ii[d] * win.strides[d] - win.pads[d] + ki[d] * win.dilations[d];
              ok = ok && oi[d] >= 0 && oi[d] < out_sp[d];
            }
            if (!ok) continue;
            const int64_t mo = (c / Cg) * Mg + m;
            y.data<float>()[(n * M + mo) * osz + ravel(oi, out_sp)] +=
                x.data<float>()[(n * C + c) * isz + i] * w.data<float>()[(c * Mg + m) * ksz + k];
          }
  return y;
}

}  // namespace

TEST(ConvTranspose, StridesPadsOutputPaddingGroupDilation) {
  std::mt19937 rng(20);
  Tensor x = random_f32({2, 4, 3, 4}, rng), w = random_f32({4, 3, 3, 2}, rng);
  Win win{{3, 2}, {2, 3}, {2, 1}, {1, 0, 2, 1}};
  auto attrs = win_attrs(win);
  attrs["group"] = attr_int(2);
  attrs["output_padding"] = attr_ints({1, 2});
  auto out = run_node({.op = "ConvTranspose", .opset = 11, .inputs = {x, w}, .attrs = attrs});
  // out = s*(in-1) + op + (k-1)*d + 1 - pads
  Shape osp = {2 * 2 + 1 + 4 + 1 - 3, 3 * 3 + 2 + 1 + 1 - 1};
  EXPECT_TRUE(all_close(out[0], ref_conv_transpose(x, w, win, 2, osp), 1e-4, 1e-5));
}

TEST(ConvTranspose, OutputShapeAndAutoPadAndBias) {
  std::mt19937 rng(21);
  Tensor x = random_f32({1, 2, 3, 3}, rng), w = random_f32({2, 3, 3, 3}, rng), b = random_f32({3}, rng);
  // output_shape 10x8 with stride 3: full = 3*2+3 = 9; total pads -1 and 1.
  auto out = run_node({.op = "ConvTranspose",
                       .opset = 11,
                       .inputs = {x, w},
                       .attrs = {{"strides", attr_ints({3, 3})}, {"output_shape", attr_ints({9, 8})}}});
  // total 0 -> pb 0; total 1 -> pb = 1 - 0 = 1 (extra at the start when not SAME_UPPER).
  EXPECT_TRUE(
      all_close(out[0], ref_conv_transpose(x, w, Win{{3, 3}, {3, 3}, {1, 1}, {0, 1, 0, 0}}, 1, {9, 8}), 1e-4, 1e-5));
  auto same = run_node({.op = "ConvTranspose",
                        .opset = 11,
                        .inputs = {x, w, b},
                        .attrs = {{"strides", attr_ints({2, 2})}, {"auto_pad", attr_string("SAME_UPPER")}}});
  // out = 6, full = 2*2+3 = 7, total 1 -> SAME_UPPER pb = 0.
  Tensor want = ref_conv_transpose(x, w, Win{{3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}}, 1, {6, 6});
  for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] += b.data<float>()[(i / 36) % 3];
  EXPECT_TRUE(all_close(same[0], want, 1e-4, 1e-5));
  Tensor x1 = random_f32({1, 2, 5}, rng), w1 = random_f32({2, 1, 4}, rng);
  auto o1 = run_node({.op = "ConvTranspose", .opset = 1, .inputs = {x1, w1}});
  EXPECT_TRUE(all_close(o1[0], ref_conv_transpose(x1, w1, Win{{4}, {1}, {1}, {0, 0}}, 1, {8}), 1e-4, 1e-5));
}

// With a constant W (as exported models have) float32 runs on oneDNN's
// deconvolution; the rest on the reference. Both against the definition,
// over 1-3 spatial dims, groups, dilations, pads, output padding, bias,
// odd sizes, several threads, and a batch of 0.
TEST(ConvTranspose, ConstantWeightsOnOneDnnMatchTheDefinition) {
  struct Case {
    Shape x, w;
    Win win;
    int64_t group;
    Shape out_pad;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{1, 8, 5, 7}, {8, 4, 4, 4}, {{4, 4}, {2, 2}, {1, 1}, {1, 1, 1, 1}}, 1, {0, 0}, true},
      // many output channels: oneDNN's blocked layout; few (above): its plain GEMM kernel
      {{1, 16, 5, 6}, {16, 32, 4, 4}, {{4, 4}, {2, 2}, {1, 1}, {1, 1, 1, 1}}, 1, {0, 0}, true},
      {{2, 6, 4, 3}, {6, 2, 3, 3}, {{3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}}, 3, {1, 1}, false},
      {{1, 3, 6, 5}, {3, 5, 3, 2}, {{3, 2}, {1, 3}, {2, 1}, {0, 1, 2, 0}}, 1, {0, 0}, true},
      {{1, 17, 9}, {17, 5, 8}, {{8}, {4}, {1}, {2, 2}}, 1, {0}, true},
      {{1, 4, 3, 4, 5}, {4, 3, 2, 2, 2}, {{2, 2, 2}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}}, 1, {0, 0, 0}, false},
      // output padding past the end pads: oneDNN has no negative padding, the reference runs
      {{1, 2, 3, 3}, {2, 2, 3, 3}, {{3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}}, 1, {1, 1}, true},
      {{0, 8, 5, 7}, {8, 4, 4, 4}, {{4, 4}, {2, 2}, {1, 1}, {1, 1, 1, 1}}, 1, {0, 0}, false},
  };
  std::mt19937 rng(22);
  ThreadPool pool(2);
  for (const Case& c : cases) {
    const size_t r = c.win.kernel.size();
    Tensor x = random_f32(c.x, rng), w = random_f32(c.w, rng);
    Tensor b = random_f32({c.w[1] * c.group}, rng);
    auto attrs = win_attrs(c.win);
    attrs["group"] = attr_int(c.group);
    attrs["output_padding"] = attr_ints(c.out_pad);
    Shape osp;
    for (size_t d = 0; d < r; ++d)
      osp.push_back(c.win.strides[d] * (c.x[d + 2] - 1) + c.out_pad[d] + (c.win.kernel[d] - 1) * c.win.dilations[d] +
                    1 - c.win.pads[d] - c.win.pads[d + r]);
    Tensor want = ref_conv_transpose(x, w, c.win, c.group, osp);
    if (c.bias) {
      const int64_t M = c.w[1] * c.group, sp = shape_numel(osp);
      for (int64_t i = 0; i < want.numel(); ++i) want.data<float>()[i] += b.data<float>()[(i / sp) % M];
    }
    std::vector<std::optional<Tensor>> inputs = {x, w};
    if (c.bias) inputs.push_back(b);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      auto out = run_node(
          {.op = "ConvTranspose", .opset = 11, .inputs = inputs, .attrs = attrs, .constant_from = 1, .pool = p});
      EXPECT_TRUE(all_close(out[0], want, 1e-4, 1e-5)) << shape_str(c.x) << " W " << shape_str(c.w);
    }
  }
}

namespace {

enum class Kind { kMax, kAvg, kAvgPad, kLp };

Tensor ref_pool(const Tensor& x, const Win& win, const Shape& out_sp, Kind kind, Tensor* indices = nullptr) {
  const int64_t planes = x.dim(0) * x.dim(1);
  const size_t r = out_sp.size();
  Shape in_sp(x.shape().begin() + 2, x.shape().end());
  Shape out_shape = {x.dim(0), x.dim(1)};
  out_shape.insert(out_shape.end(), out_sp.begin(), out_sp.end());
  Tensor y(DType::kFloat32, out_shape);
  if (indices) *indices = Tensor(DType::kInt64, out_shape);
  const int64_t isz = shape_numel(in_sp), osz = shape_numel(out_sp), ksz = shape_numel(win.kernel);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t o = 0; o < osz; ++o) {
      Shape oi = unravel(o, out_sp);
      double best = -std::numeric_limits<double>::infinity(), sum = 0;
      int64_t cnt = 0, arg = -1;
      for (int64_t k = 0; k < ksz; ++k) {
        Shape ki = unravel(k, win.kernel), ii(r);
        bool inside = true, padded = true;
        for (size_t d = 0; d < r; ++d) {
          ii[d] = oi[d] * win.strides[d] - win.pads[d] + ki[d] * win.dilations[d];
          inside = inside && ii[d] >= 0 && ii[d] < in_sp[d];
          padded = padded && ii[d] >= -win.pads[d] && ii[d] < in_sp[d] + win.pads[d + r];
        }
        if (!inside) {
          if (kind == Kind::kAvgPad && padded) ++cnt;
          continue;
        }
        const double v = x.data<float>()[p * isz + ravel(ii, in_sp)];
        if (v > best) {
          best = v;
          arg = p * isz + ravel(ii, in_sp);
        }
        sum += kind == Kind::kLp ? v * v : v;
        ++cnt;
      }
      double res = kind == Kind::kMax ? best : kind == Kind::kLp ? std::sqrt(sum) : sum / static_cast<double>(cnt);
      y.data<float>()[p * osz + o] = static_cast<float>(res);
      if (indices) indices->data<int64_t>()[p * osz + o] = arg;
    }
  return y;
}

}  // namespace

TEST(Pool, MaxPoolWithIndicesDilationsAndPads) {
  std::mt19937 rng(30);
  Tensor x = random_f32({2, 3, 8, 7}, rng);
  Win win{{3, 2}, {2, 1}, {2, 2}, {1, 1, 2, 0}};
  auto out = run_node({.op = "MaxPool", .opset = 12, .inputs = {x}, .attrs = win_attrs(win), .num_outputs = 2});
  Tensor idx;
  Tensor want = ref_pool(x, win, out_dims({8, 7}, win), Kind::kMax, &idx);
  EXPECT_TRUE(all_close(out[0], want));
  ASSERT_EQ(out[1].shape(), idx.shape());
  for (int64_t i = 0; i < idx.numel(); ++i) EXPECT_EQ(out[1].data<int64_t>()[i], idx.data<int64_t>()[i]);
}

// 3-D pools run separably (2-D windows per depth plane, then along depth):
// against the definition, with pads, strides, dilations, count_include_pad
// and windows that cover only padding along one axis.
TEST(Pool, ThreeDimensionalPoolsSeparable) {
  std::mt19937 rng(35);
  ThreadPool pool(2);
  const std::vector<Win> wins = {
      {{2, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0, 1, 1, 0, 1, 1}},
      {{3, 3, 3}, {1, 2, 1}, {1, 1, 2}, {1, 1, 2, 1, 0, 2}},
      {{1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}},
      {{3, 1, 1}, {2, 1, 1}, {2, 1, 1}, {2, 0, 0, 2, 0, 0}},
  };
  for (const Win& win : wins) {
    Tensor x = random_f32({2, 3, 7, 9, 8}, rng);
    const Shape osp = out_dims({7, 9, 8}, win);
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      auto mx = run_node({.op = "MaxPool", .opset = 12, .inputs = {x}, .attrs = win_attrs(win), .pool = p});
      EXPECT_TRUE(all_close(mx[0], ref_pool(x, win, osp, Kind::kMax)));
      auto attrs = win_attrs(win);
      attrs.erase("dilations");  // AveragePool has dilations from opset 19 only
      Win plain = win;
      plain.dilations = {1, 1, 1};
      const Shape posp = out_dims({7, 9, 8}, plain);
      auto avg = run_node({.op = "AveragePool", .opset = 11, .inputs = {x}, .attrs = attrs, .pool = p});
      EXPECT_TRUE(all_close(avg[0], ref_pool(x, plain, posp, Kind::kAvg), 1e-5, 1e-6));
      attrs["count_include_pad"] = attr_int(1);
      auto inc = run_node({.op = "AveragePool", .opset = 11, .inputs = {x}, .attrs = attrs, .pool = p});
      EXPECT_TRUE(all_close(inc[0], ref_pool(x, plain, posp, Kind::kAvgPad), 1e-5, 1e-6));
    }
  }
}

TEST(Pool, MaxPoolColumnMajorIndicesAndInt8) {
  Tensor x = make_f32({1, 1, 2, 3}, {1, 6, 3, 4, 5, 2});
  auto out = run_node({.op = "MaxPool",
                       .opset = 8,
                       .inputs = {x},
                       .attrs = {{"kernel_shape", attr_ints({2, 3})}, {"storage_order", attr_int(1)}},
                       .num_outputs = 2});
  EXPECT_FLOAT_EQ(out[0].data<float>()[0], 6);
  EXPECT_EQ(out[1].data<int64_t>()[0], 2);  // (h=0, w=1) column-major: h + w*H = 0 + 1*2
  Tensor q(DType::kInt8, {1, 1, 1, 4});
  int8_t vals[4] = {-5, 7, -128, 3};
  for (int i = 0; i < 4; ++i) q.data<int8_t>()[i] = vals[i];
  auto oq = run_node({.op = "MaxPool", .opset = 12, .inputs = {q}, .attrs = {{"kernel_shape", attr_ints({1, 2})}}});
  EXPECT_EQ(oq[0].data<int8_t>()[0], 7);
  EXPECT_EQ(oq[0].data<int8_t>()[2], 3);
  EXPECT_THROW(run_node({.op = "MaxPool", .opset = 11, .inputs = {q}, .attrs = {{"kernel_shape", attr_ints({1, 2})}}}),
               Error);
}

TEST(Pool, CeilModeDropsWindowsStartingInPadding) {
  std::mt19937 rng(31);
  Tensor x = random_f32({1, 2, 5, 6}, rng);
  auto out = run_node(
      {.op = "MaxPool",
       .opset = 10,
       .inputs = {x},
       .attrs = {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}, {"ceil_mode", attr_int(1)}}});
  // H: ceil((5-2)/2)+1 = 3, W: ceil((6-2)/2)+1 = 3.
  EXPECT_TRUE(all_close(out[0], ref_pool(x, Win{{2, 2}, {2, 2}, {1, 1}, {0, 0, 1, 0}}, {3, 3}, Kind::kMax)));
  // pads 1: ceil((5+1-2)/2)+1 = 3 but the window at 4 would start in the end padding... (3-1)*2=4 < 5+1: kept.
  auto avg = run_node({.op = "AveragePool",
                       .opset = 19,
                       .inputs = {x},
                       .attrs = {{"kernel_shape", attr_ints({3, 3})},
                                 {"strides", attr_ints({3, 3})},
                                 {"pads", attr_ints({1, 1, 1, 1})},
                                 {"ceil_mode", attr_int(1)}}});
  // H: ceil((5+2-3)/3)+1 = 3; (3-1)*3 = 6 >= 5+1 -> 2. W: ceil((6+2-3)/3)+1 = 3; 6 >= 7? no -> 3.
  EXPECT_EQ(out[0].shape(), (Shape{1, 2, 3, 3}));
  EXPECT_EQ(avg[0].shape(), (Shape{1, 2, 2, 3}));
  EXPECT_TRUE(
      all_close(avg[0], ref_pool(x, Win{{3, 3}, {3, 3}, {1, 1}, {1, 1, 1, 1}}, {2, 3}, Kind::kAvg), 1e-5, 1e-6));
  // Before opset 10 ceil_mode does not exist: floor.
  auto old = run_node({.op = "MaxPool",
                       .opset = 8,
                       .inputs = {x},
                       .attrs = {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}}});
  EXPECT_EQ(old[0].shape(), (Shape{1, 2, 2, 3}));
}

TEST(Pool, AveragePoolCountIncludePadAndOldOpsets) {
  std::mt19937 rng(32);
  Tensor x = random_f32({2, 2, 6, 5}, rng);
  Win win{{3, 3}, {2, 1}, {1, 1}, {1, 2, 1, 0}};
  auto inc = run_node({.op = "AveragePool",
                       .opset = 11,
                       .inputs = {x},
                       .attrs = {{"kernel_shape", attr_ints(win.kernel)},
                                 {"strides", attr_ints(win.strides)},
                                 {"pads", attr_ints(win.pads)},
                                 {"count_include_pad", attr_int(1)}}});
  EXPECT_TRUE(all_close(inc[0], ref_pool(x, win, out_dims({6, 5}, win), Kind::kAvgPad), 1e-5, 1e-6));
  auto exc = run_node({.op = "AveragePool",
                       .opset = 11,
                       .inputs = {x},
                       .attrs = {{"kernel_shape", attr_ints(win.kernel)},
                                 {"strides", attr_ints(win.strides)},
                                 {"pads", attr_ints(win.pads)}}});
  EXPECT_TRUE(all_close(exc[0], ref_pool(x, win, out_dims({6, 5}, win), Kind::kAvg), 1e-5, 1e-6));
  // AveragePool-1 never counts padding.
  auto v1 = run_node({.op = "AveragePool",
                      .opset = 1,
                      .inputs = {x},
                      .attrs = {{"kernel_shape", attr_ints(win.kernel)},
                                {"strides", attr_ints(win.strides)},
                                {"pads", attr_ints(win.pads)}}});
  EXPECT_TRUE(all_close(v1[0], exc[0]));
  // Dilations only from opset 19.
  Win wd{{2, 2}, {1, 1}, {2, 2}, {0, 0, 0, 0}};
  auto d19 = run_node({.op = "AveragePool", .opset = 19, .inputs = {x}, .attrs = win_attrs(wd)});
  EXPECT_TRUE(all_close(d19[0], ref_pool(x, wd, out_dims({6, 5}, wd), Kind::kAvg), 1e-5, 1e-6));
  EXPECT_THROW(run_node({.op = "AveragePool", .opset = 11, .inputs = {x}, .attrs = win_attrs(wd)}), Error);
}

TEST(Pool, LpPoolGlobalPoolsAndSame) {
  std::mt19937 rng(33);
  Tensor x = random_f32({1, 3, 5, 4}, rng);
  Win win{{2, 3}, {1, 1}, {1, 1}, {0, 1, 1, 1}};
  auto lp =
      run_node({.op = "LpPool",
                .opset = 11,
                .inputs = {x},
                .attrs = {{"kernel_shape", attr_ints(win.kernel)}, {"pads", attr_ints(win.pads)}, {"p", attr_int(2)}}});
  EXPECT_TRUE(all_close(lp[0], ref_pool(x, win, out_dims({5, 4}, win), Kind::kLp), 1e-5, 1e-6));
  auto lp1 = run_node(
      {.op = "LpPool",
       .opset = 1,
       .inputs = {x},
       .attrs = {{"kernel_shape", attr_ints(win.kernel)}, {"pads", attr_ints(win.pads)}, {"p", attr_float(2.0f)}}});
  EXPECT_TRUE(all_close(lp1[0], lp[0]));
  auto same = run_node({.op = "MaxPool",
                        .opset = 11,
                        .inputs = {x},
                        .attrs = {{"kernel_shape", attr_ints({2, 2})}, {"auto_pad", attr_string("SAME_LOWER")}}});
  EXPECT_TRUE(all_close(same[0], ref_pool(x, Win{{2, 2}, {1, 1}, {1, 1}, {1, 1, 0, 0}}, {5, 4}, Kind::kMax)));
  auto gavg = run_node({.op = "GlobalAveragePool", .opset = 1, .inputs = {x}});
  auto gmax = run_node({.op = "GlobalMaxPool", .opset = 1, .inputs = {x}});
  EXPECT_EQ(gavg[0].shape(), (Shape{1, 3, 1, 1}));
  EXPECT_TRUE(
      all_close(gavg[0], ref_pool(x, Win{{5, 4}, {1, 1}, {1, 1}, {0, 0, 0, 0}}, {1, 1}, Kind::kAvg), 1e-5, 1e-6));
  EXPECT_TRUE(all_close(gmax[0], ref_pool(x, Win{{5, 4}, {1, 1}, {1, 1}, {0, 0, 0, 0}}, {1, 1}, Kind::kMax)));
  EXPECT_THROW(run_node({.op = "MaxPool", .opset = 11, .inputs = {x}}), Error);  // kernel_shape required
  EXPECT_THROW(run_node({.op = "MaxPool", .opset = 11, .inputs = {x}, .attrs = {{"kernel_shape", attr_ints({6, 2})}}}),
               Error);
}

TEST(Pool, MaxUnpoolInvertsMaxPoolIndices) {
  std::mt19937 rng(34);
  Tensor x = random_f32({1, 2, 4, 4}, rng);
  auto mp = run_node({.op = "MaxPool",
                      .opset = 12,
                      .inputs = {x},
                      .attrs = {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}},
                      .num_outputs = 2});
  auto up = run_node({.op = "MaxUnpool",
                      .opset = 11,
                      .inputs = {mp[0], mp[1]},
                      .attrs = {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}}});
  ASSERT_EQ(up[0].shape(), x.shape());
  int nonzero = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = up[0].data<float>()[i];
    if (v != 0) {
      ++nonzero;
      EXPECT_EQ(v, x.data<float>()[i]);
    }
  }
  EXPECT_EQ(nonzero, 8);
  Tensor bad = make_i64({1, 2, 2, 2}, {0, 1, 2, 99, 0, 0, 0, 0});
  EXPECT_THROW(run_node({.op = "MaxUnpool",
                         .opset = 11,
                         .inputs = {mp[0], bad},
                         .attrs = {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}}}),
               Error);
}

}  // namespace kiln::test
