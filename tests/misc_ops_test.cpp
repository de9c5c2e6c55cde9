// BitCast, the Random* generators, NonMaxSuppression and DeformConv against
// plain references computed here (or, for seeded random draws, numpy's).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "op_harness.h"

namespace kiln::test {

// ---------------------------------------------------------------- BitCast

TEST(BitCast, ReinterpretsBitsAndKeepsShape) {
  std::mt19937 rng(1);
  Tensor x = random_f32({2, 3}, rng, -100, 100);
  auto out = run_node({.op = "BitCast", .opset = 26, .inputs = {x}, .attrs = {{"to", attr_int(6)}}});
  ASSERT_EQ(out[0].dtype(), DType::kInt32);
  ASSERT_EQ(out[0].shape(), (Shape{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(out[0].data<int32_t>()[i], std::bit_cast<int32_t>(x.data<float>()[i]));
  // And back: the round trip is exact.
  auto back = run_node({.op = "BitCast", .opset = 26, .inputs = {out[0]}, .attrs = {{"to", attr_int(1)}}});
  ASSERT_EQ(back[0].dtype(), DType::kFloat32);
  EXPECT_EQ(std::memcmp(back[0].raw(), x.raw(), x.nbytes()), 0);

  // Scalars, 64-bit, and an empty tensor.
  Tensor d(DType::kFloat64, {});
  d.data<double>()[0] = -2.5;
  auto i64 = run_node({.op = "BitCast", .opset = 26, .inputs = {d}, .attrs = {{"to", attr_int(7)}}});
  ASSERT_EQ(i64[0].shape(), Shape{});
  EXPECT_EQ(i64[0].data<int64_t>()[0], std::bit_cast<int64_t>(-2.5));
  auto empty = run_node(
      {.op = "BitCast", .opset = 26, .inputs = {Tensor(DType::kFloat32, {0, 4})}, .attrs = {{"to", attr_int(12)}}});
  EXPECT_EQ(empty[0].dtype(), DType::kUInt32);
  EXPECT_EQ(empty[0].shape(), (Shape{0, 4}));
}

TEST(BitCast, BoolAndByteTypes) {
  auto u8 = run_node(
      {.op = "BitCast", .opset = 26, .inputs = {make_bool({3}, {true, false, true})}, .attrs = {{"to", attr_int(2)}}});
  ASSERT_EQ(u8[0].dtype(), DType::kUInt8);
  EXPECT_EQ(u8[0].data<uint8_t>()[0], 1);
  EXPECT_EQ(u8[0].data<uint8_t>()[1], 0);
  Tensor i8(DType::kInt8, {2});
  i8.data<int8_t>()[0] = -1;
  i8.data<int8_t>()[1] = 1;
  auto b = run_node({.op = "BitCast", .opset = 26, .inputs = {i8}, .attrs = {{"to", attr_int(2)}}});
  EXPECT_EQ(b[0].data<uint8_t>()[0], 255);
  // 0/1 bytes become bools; any other byte is not a bool.
  Tensor ok(DType::kUInt8, {2});
  ok.data<uint8_t>()[0] = 1;
  ok.data<uint8_t>()[1] = 0;
  auto bl = run_node({.op = "BitCast", .opset = 26, .inputs = {ok}, .attrs = {{"to", attr_int(9)}}});
  EXPECT_TRUE(bl[0].data<bool>()[0]);
  EXPECT_FALSE(bl[0].data<bool>()[1]);
  EXPECT_THROW(run_node({.op = "BitCast", .opset = 26, .inputs = {i8}, .attrs = {{"to", attr_int(9)}}}), Error);
}

TEST(BitCast, RejectsWidthMismatchStringsAndOldOpsets) {
  Tensor x = make_f32({2}, {1, 2});
  EXPECT_THROW(run_node({.op = "BitCast", .opset = 26, .inputs = {x}, .attrs = {{"to", attr_int(7)}}}), Error);
  EXPECT_THROW(run_node({.op = "BitCast", .opset = 26, .inputs = {x}, .attrs = {{"to", attr_int(8)}}}), Error);
  EXPECT_THROW(run_node({.op = "BitCast", .opset = 26, .inputs = {x}}), Error);
  EXPECT_THROW(run_node({.op = "BitCast", .opset = 25, .inputs = {x}, .attrs = {{"to", attr_int(6)}}}), Error);
}

// ---------------------------------------------------------------- Random*

TEST(Random, SeededDrawsMatchNumpyRandomState) {
  // numpy: np.random.RandomState(5).rand(4) and .randn(5).
  const double want_u[] = {0.22199317108973948, 0.8707323061773764, 0.20671915533942642, 0.9186109079379216};
  const double want_n[] = {0.44122748688504143, -0.33087015189408764, 2.43077118700778, -0.2520921296030769,
                           0.10960984157818278};
  auto u = run_node({.op = "RandomUniform",
                     .opset = 22,
                     .inputs = {},
                     .attrs = {{"shape", attr_ints({2, 2})}, {"dtype", attr_int(11)}, {"seed", attr_float(5)}}});
  ASSERT_EQ(u[0].dtype(), DType::kFloat64);
  ASSERT_EQ(u[0].shape(), (Shape{2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(u[0].data<double>()[i], want_u[i]);
  auto n = run_node({.op = "RandomNormal",
                     .opset = 1,
                     .inputs = {},
                     .attrs = {{"shape", attr_ints({5})}, {"dtype", attr_int(11)}, {"seed", attr_float(5)}}});
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(n[0].data<double>()[i], want_n[i], 1e-14);
  // float, scaled: (RandomState(7).rand(3) * 6 - 2).astype(float32).
  auto f = run_node({.op = "RandomUniformLike",
                     .opset = 22,
                     .inputs = {Tensor(DType::kFloat32, {3})},
                     .attrs = {{"low", attr_float(-2)}, {"high", attr_float(4)}, {"seed", attr_float(7)}}});
  ASSERT_EQ(f[0].dtype(), DType::kFloat32);
  const float want_f[] = {-1.5421503f, 2.6795127f, 0.6304554f};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(f[0].data<float>()[i], want_f[i], 1e-6);
  // The same seed gives the same values; scale and mean apply.
  auto n2 = run_node(
      {.op = "RandomNormalLike",
       .opset = 1,
       .inputs = {Tensor(DType::kInt32, {5})},
       .attrs = {{"dtype", attr_int(11)}, {"mean", attr_float(3)}, {"scale", attr_float(2)}, {"seed", attr_float(5)}}});
  ASSERT_EQ(n2[0].dtype(), DType::kFloat64);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(n2[0].data<double>()[i], 3 + 2 * want_n[i], 1e-13);
}

TEST(Random, UnseededRangesMomentsAndTypes) {
  auto u = run_node({.op = "RandomUniform",
                     .opset = 1,
                     .inputs = {},
                     .attrs = {{"shape", attr_ints({100, 100})}, {"low", attr_float(-3)}, {"high", attr_float(5)}}});
  ASSERT_EQ(u[0].dtype(), DType::kFloat32);
  double sum = 0;
  for (int64_t i = 0; i < u[0].numel(); ++i) {
    float v = u[0].data<float>()[i];
    ASSERT_GE(v, -3.0f);
    ASSERT_LE(v, 5.0f);
    sum += v;
  }
  EXPECT_NEAR(sum / 10000, 1.0, 0.1);
  auto n = run_node({.op = "RandomNormalLike",
                     .opset = 22,
                     .inputs = {Tensor(DType::kFloat16, {100, 100})},
                     .attrs = {{"mean", attr_float(-1)}, {"scale", attr_float(0.5f)}}});
  ASSERT_EQ(n[0].dtype(), DType::kFloat16);
  std::vector<float> v = to_f32(n[0]);
  double m = 0, sq = 0;
  for (float x : v) m += x;
  m /= static_cast<double>(v.size());
  for (float x : v) sq += (x - m) * (x - m);
  EXPECT_NEAR(m, -1.0, 0.05);
  EXPECT_NEAR(std::sqrt(sq / static_cast<double>(v.size())), 0.5, 0.05);
  auto bf = run_node({.op = "RandomUniform",
                      .opset = 22,
                      .inputs = {},
                      .attrs = {{"shape", attr_ints({0, 3})}, {"dtype", attr_int(16)}}});
  EXPECT_EQ(bf[0].dtype(), DType::kBFloat16);
  EXPECT_EQ(bf[0].shape(), (Shape{0, 3}));
}

TEST(Random, RejectsBadAttributes) {
  EXPECT_THROW(run_node({.op = "RandomUniform", .opset = 1, .inputs = {}}), Error);  // no shape
  EXPECT_THROW(run_node({.op = "RandomUniform", .opset = 1, .inputs = {}, .attrs = {{"shape", attr_ints({-1})}}}),
               Error);
  EXPECT_THROW(run_node({.op = "RandomNormal",
                         .opset = 1,
                         .inputs = {},
                         .attrs = {{"shape", attr_ints({2})}, {"dtype", attr_int(7)}}}),
               Error);
  // An integer input needs a float `dtype`.
  EXPECT_THROW(run_node({.op = "RandomUniformLike", .opset = 1, .inputs = {make_i64({2}, {1, 2})}}), Error);
  EXPECT_THROW(run_node({.op = "RandomUniformLike",
                         .opset = 1,
                         .inputs = {make_f32({2}, {1, 2})},
                         .attrs = {{"seed", attr_float(-1)}}}),
               Error);
}

// ---------------------------------------------------------------- NonMaxSuppression

namespace {

// Plain greedy NMS in double with corner boxes [y1, x1, y2, x2].
std::vector<int64_t> ref_nms(const std::vector<float>& boxes, const std::vector<float>& scores, int64_t B, int64_t C,
                             int64_t K, int64_t max_out, double iou_t, std::optional<double> score_t) {
  std::vector<int64_t> sel;
  auto iou = [&](int64_t b, int64_t i, int64_t j) {
    const float* p = &boxes[static_cast<size_t>((b * K + i) * 4)];
    const float* q = &boxes[static_cast<size_t>((b * K + j) * 4)];
    double ay0 = std::min(p[0], p[2]), ay1 = std::max(p[0], p[2]), ax0 = std::min(p[1], p[3]),
           ax1 = std::max(p[1], p[3]);
    double by0 = std::min(q[0], q[2]), by1 = std::max(q[0], q[2]), bx0 = std::min(q[1], q[3]),
           bx1 = std::max(q[1], q[3]);
    double iw = std::max(0.0, std::min(ax1, bx1) - std::max(ax0, bx0));
    double ih = std::max(0.0, std::min(ay1, by1) - std::max(ay0, by0));
    double inter = iw * ih, uni = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter;
    return inter > 0 && uni > 0 ? inter / uni : 0.0;
  };
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      std::vector<int64_t> order;
      for (int64_t i = 0; i < K; ++i)
        if (!score_t || scores[static_cast<size_t>((b * C + c) * K + i)] > *score_t) order.push_back(i);
      std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) {
        float si = scores[static_cast<size_t>((b * C + c) * K + i)],
              sj = scores[static_cast<size_t>((b * C + c) * K + j)];
        return si != sj ? si > sj : i < j;
      });
      std::vector<int64_t> kept;
      for (int64_t i : order) {
        if (static_cast<int64_t>(kept.size()) >= max_out) break;
        bool ok = std::none_of(kept.begin(), kept.end(), [&](int64_t j) { return iou(b, i, j) > iou_t; });
        if (ok) {
          kept.push_back(i);
          sel.insert(sel.end(), {b, c, i});
        }
      }
    }
  return sel;
}

std::vector<int64_t> ints_of(const Tensor& t) {
  return std::vector<int64_t>(t.data<int64_t>(), t.data<int64_t>() + t.numel());
}

}  // namespace

TEST(NonMaxSuppression, SpecExampleSuppressByIou) {
  // The ONNX example: boxes 0-2 overlap, 3-4 overlap, 5 stands alone.
  Tensor boxes = make_f32(
      {1, 6, 4}, {0, 0, 1, 1, 0, 0.1f, 1, 1.1f, 0, -0.1f, 1, 0.9f, 0, 10, 1, 11, 0, 10.1f, 1, 11.1f, 0, 100, 1, 101});
  Tensor scores = make_f32({1, 1, 6}, {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f});
  auto out = run_node({.op = "NonMaxSuppression",
                       .opset = 11,
                       .inputs = {boxes, scores, make_i64({1}, {3}), make_f32({1}, {0.5f}), make_f32({1}, {0.0f})}});
  ASSERT_EQ(out[0].dtype(), DType::kInt64);
  ASSERT_EQ(out[0].shape(), (Shape{3, 3}));
  EXPECT_EQ(ints_of(out[0]), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
  // The same boxes as [x_center, y_center, width, height].
  Tensor centers = make_f32({1, 6, 4}, {0.5f,  0.5f, 1, 1, 0.6f,  0.5f, 1, 1, 0.4f,   0.5f, 1, 1,
                                        10.5f, 0.5f, 1, 1, 10.6f, 0.5f, 1, 1, 100.5f, 0.5f, 1, 1});
  auto c = run_node({.op = "NonMaxSuppression",
                     .opset = 10,
                     .inputs = {centers, scores, make_i64({1}, {3}), make_f32({1}, {0.5f})},
                     .attrs = {{"center_point_box", attr_int(1)}}});
  EXPECT_EQ(ints_of(c[0]), (std::vector<int64_t>{0, 0, 3, 0, 0, 0, 0, 0, 5}));
  // No max_output_boxes_per_class: nothing is selected.
  auto none = run_node({.op = "NonMaxSuppression", .opset = 11, .inputs = {boxes, scores}});
  EXPECT_EQ(none[0].shape(), (Shape{0, 3}));
  // A score threshold drops low scores first (strictly greater passes).
  auto st = run_node({.op = "NonMaxSuppression",
                      .opset = 11,
                      .inputs = {boxes, scores, make_i64({}, {3}), make_f32({}, {0.5f}), make_f32({}, {0.4f})}});
  EXPECT_EQ(ints_of(st[0]), (std::vector<int64_t>{0, 0, 3, 0, 0, 0}));
}

TEST(NonMaxSuppression, RandomBoxesAgainstReference) {
  std::mt19937 rng(3);
  const int64_t B = 2, C = 3, K = 40;
  for (int trial = 0; trial < 4; ++trial) {
    Tensor boxes = random_f32({B, K, 4}, rng, 0, 10);
    // Coarse scores so that ties occur.
    Tensor scores(DType::kFloat32, {B, C, K});
    std::uniform_int_distribution<int> q(0, 9);
    for (int64_t i = 0; i < scores.numel(); ++i) scores.data<float>()[i] = static_cast<float>(q(rng)) / 10;
    const int64_t max_out = trial == 0 ? 100 : 5;
    const float iou_t = trial == 1 ? 0.0f : 0.3f;
    std::optional<double> score_t;
    if (trial >= 2) score_t = 0.25f;
    std::vector<std::optional<Tensor>> ins = {boxes, scores, make_i64({1}, {max_out}), make_f32({1}, {iou_t})};
    if (score_t) ins.push_back(make_f32({1}, {0.25f}));
    auto out = run_node({.op = "NonMaxSuppression", .opset = 11, .inputs = ins});
    std::vector<float> bv = to_f32(boxes), sv = to_f32(scores);
    EXPECT_EQ(ints_of(out[0]), ref_nms(bv, sv, B, C, K, max_out, iou_t, score_t)) << "trial " << trial;
  }
}

TEST(NonMaxSuppression, RejectsBadShapesAndAttributes) {
  Tensor boxes = make_f32({1, 2, 4}, {0, 0, 1, 1, 0, 0, 2, 2});
  Tensor scores = make_f32({1, 1, 2}, {0.5f, 0.6f});
  EXPECT_THROW(
      run_node({.op = "NonMaxSuppression", .opset = 11, .inputs = {make_f32({1, 2, 3}, {0, 0, 0, 0, 0, 0}), scores}}),
      Error);
  EXPECT_THROW(
      run_node(
          {.op = "NonMaxSuppression", .opset = 11, .inputs = {boxes, make_f32({1, 1, 3}, {1, 2, 3})}, .attrs = {}}),
      Error);
  EXPECT_THROW(run_node({.op = "NonMaxSuppression",
                         .opset = 11,
                         .inputs = {boxes, scores},
                         .attrs = {{"center_point_box", attr_int(2)}}}),
               Error);
  EXPECT_THROW(run_node({.op = "NonMaxSuppression",
                         .opset = 11,
                         .inputs = {boxes, scores, make_i64({1}, {1}), make_f32({1}, {1.5f})}}),
               Error);
  EXPECT_THROW(run_node({.op = "NonMaxSuppression", .opset = 9, .inputs = {boxes, scores}}), Error);
  // Empty: no boxes at all.
  auto e = run_node(
      {.op = "NonMaxSuppression",
       .opset = 11,
       .inputs = {Tensor(DType::kFloat32, {1, 0, 4}), Tensor(DType::kFloat32, {1, 3, 0}), make_i64({1}, {5})}});
  EXPECT_EQ(e[0].shape(), (Shape{0, 3}));
}

// ---------------------------------------------------------------- DeformConv

namespace {

// Plain 2-D deformable convolution with explicit four-corner bilinear
// sampling; x [N, C, H, W], w [M, C/group, kh, kw].
Tensor ref_deform_conv(const Tensor& x, const Tensor& w, const Tensor& off, const Tensor* b, const Tensor* mask,
                       int64_t group, int64_t og, std::array<int64_t, 4> pads, std::array<int64_t, 2> st,
                       std::array<int64_t, 2> dil) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), M = w.dim(0), kh = w.dim(2), kw = w.dim(3);
  const int64_t oh = off.dim(2), ow = off.dim(3), cg = C / group, mg = M / group;
  auto X = [&](int64_t n, int64_t c, int64_t i, int64_t j) -> double {
    if (i < 0 || i >= H || j < 0 || j >= W) return 0;
    return x.data<float>()[((n * C + c) * H + i) * W + j];
  };
  Tensor y(DType::kFloat32, {N, M, oh, ow});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double acc = b ? b->data<float>()[m] : 0.0;
          const int64_t g = m / mg;
          for (int64_t cc = 0; cc < cg; ++cc) {
            const int64_t c = g * cg + cc, o = c / (C / og);
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t e = 0; e < kw; ++e) {
                const int64_t tap = a * kw + e;
                double dy = off.data<float>()[((n * off.dim(1) + (o * kh * kw + tap) * 2 + 0) * oh + i) * ow + j];
                double dx = off.data<float>()[((n * off.dim(1) + (o * kh * kw + tap) * 2 + 1) * oh + i) * ow + j];
                double py = static_cast<double>(i * st[0] - pads[0] + a * dil[0]) + dy;
                double px = static_cast<double>(j * st[1] - pads[1] + e * dil[1]) + dx;
                int64_t y0 = static_cast<int64_t>(std::floor(py)), x0 = static_cast<int64_t>(std::floor(px));
                double fy = py - y0, fx = px - x0;
                double v = (1 - fy) * (1 - fx) * X(n, c, y0, x0) + (1 - fy) * fx * X(n, c, y0, x0 + 1) +
                           fy * (1 - fx) * X(n, c, y0 + 1, x0) + fy * fx * X(n, c, y0 + 1, x0 + 1);
                double mk =
                    mask ? mask->data<float>()[((n * mask->dim(1) + o * kh * kw + tap) * oh + i) * ow + j] : 1.0;
                acc += w.data<float>()[((m * cg + cc) * kh + a) * kw + e] * v * mk;
              }
          }
          y.data<float>()[((n * M + m) * oh + i) * ow + j] = static_cast<float>(acc);
        }
  return y;
}

}  // namespace

TEST(DeformConv, FractionalOffsetsMaskBiasGroupsAgainstReference) {
  std::mt19937 rng(7);
  struct Case {
    int64_t N, C, H, W, M, kh, kw, group, og;
    std::array<int64_t, 4> pads;
    std::array<int64_t, 2> st, dil;
    bool mask, bias;
  };
  const Case cases[] = {
      {1, 1, 3, 3, 1, 2, 2, 1, 1, {0, 0, 0, 0}, {1, 1}, {1, 1}, false, false},
      {2, 4, 5, 6, 6, 3, 2, 2, 2, {1, 0, 2, 1}, {2, 1}, {1, 2}, true, true},
      {1, 4, 4, 4, 2, 2, 2, 1, 4, {1, 1, 1, 1}, {1, 2}, {2, 1}, true, false},
  };
  for (const Case& k : cases) {
    const int64_t oh = (k.H + k.pads[0] + k.pads[2] - ((k.kh - 1) * k.dil[0] + 1)) / k.st[0] + 1;
    const int64_t ow = (k.W + k.pads[1] + k.pads[3] - ((k.kw - 1) * k.dil[1] + 1)) / k.st[1] + 1;
    Tensor x = random_f32({k.N, k.C, k.H, k.W}, rng);
    Tensor w = random_f32({k.M, k.C / k.group, k.kh, k.kw}, rng);
    Tensor off = random_f32({k.N, k.og * k.kh * k.kw * 2, oh, ow}, rng, -2, 2);
    Tensor b = random_f32({k.M}, rng);
    Tensor mask = random_f32({k.N, k.og * k.kh * k.kw, oh, ow}, rng, 0, 1);
    std::vector<std::optional<Tensor>> ins = {x, w, off};
    if (k.bias || k.mask) ins.push_back(k.bias ? std::optional<Tensor>(b) : std::nullopt);
    if (k.mask) ins.push_back(mask);
    auto out = run_node({.op = "DeformConv",
                         .opset = 22,
                         .inputs = ins,
                         .attrs = {{"group", attr_int(k.group)},
                                   {"offset_group", attr_int(k.og)},
                                   {"pads", attr_ints({k.pads[0], k.pads[1], k.pads[2], k.pads[3]})},
                                   {"strides", attr_ints({k.st[0], k.st[1]})},
                                   {"dilations", attr_ints({k.dil[0], k.dil[1]})}}});
    Tensor want =
        ref_deform_conv(x, w, off, k.bias ? &b : nullptr, k.mask ? &mask : nullptr, k.group, k.og, k.pads, k.st, k.dil);
    ASSERT_EQ(out[0].shape(), want.shape());
    EXPECT_TRUE(all_close(out[0], want, 1e-4, 1e-5));
  }
}

TEST(DeformConv, ZeroOffsetsEqualConvIn1dAnd3d) {
  std::mt19937 rng(8);
  // 1-D and 3-D: zero offsets and no mask make it a plain Conv.
  const std::vector<Shape> xs = {{2, 4, 9}, {1, 2, 4, 3, 5}};
  const std::vector<Shape> ws = {{4, 2, 3}, {3, 2, 2, 2, 3}};
  for (size_t t = 0; t < xs.size(); ++t) {
    Tensor x = random_f32(xs[t], rng), w = random_f32(ws[t], rng);
    const size_t r = xs[t].size() - 2;
    const int64_t group = t == 0 ? 2 : 1;
    std::map<std::string, Attribute> attrs = {{"group", attr_int(group)},
                                              {"pads", attr_ints(std::vector<int64_t>(2 * r, 1))},
                                              {"strides", attr_ints(std::vector<int64_t>(r, 2))}};
    auto conv = run_node({.op = "Conv", .opset = 11, .inputs = {x, w}, .attrs = attrs});
    Shape off_shape = {xs[t][0], static_cast<int64_t>(shape_numel(Shape(ws[t].begin() + 2, ws[t].end())) * r)};
    for (size_t d = 2; d < conv[0].shape().size(); ++d) off_shape.push_back(conv[0].shape()[d]);
    auto dc = run_node(
        {.op = "DeformConv", .opset = 19, .inputs = {x, w, Tensor(DType::kFloat32, off_shape)}, .attrs = attrs});
    ASSERT_EQ(dc[0].shape(), conv[0].shape());
    EXPECT_TRUE(all_close(dc[0], conv[0], 1e-4, 1e-5));
  }
}

TEST(DeformConv, RejectsMismatchedShapes) {
  std::mt19937 rng(9);
  Tensor x = random_f32({1, 2, 4, 4}, rng), w = random_f32({2, 2, 2, 2}, rng);
  Tensor off_ok(DType::kFloat32, {1, 8, 3, 3});
  EXPECT_NO_THROW(run_node({.op = "DeformConv", .opset = 19, .inputs = {x, w, off_ok}}));
  EXPECT_THROW(run_node({.op = "DeformConv", .opset = 19, .inputs = {x, w, Tensor(DType::kFloat32, {1, 8, 2, 3})}}),
               Error);
  EXPECT_THROW(run_node({.op = "DeformConv", .opset = 19, .inputs = {x, w, off_ok, Tensor(DType::kFloat32, {3})}}),
               Error);
  EXPECT_THROW(run_node({.op = "DeformConv",
                         .opset = 19,
                         .inputs = {x, w, off_ok, std::nullopt, Tensor(DType::kFloat32, {1, 8, 3, 3})}}),
               Error);
  EXPECT_THROW(
      run_node({.op = "DeformConv", .opset = 19, .inputs = {x, w, off_ok}, .attrs = {{"offset_group", attr_int(3)}}}),
      Error);
  EXPECT_THROW(run_node({.op = "DeformConv", .opset = 19, .inputs = {x, random_f32({2, 3, 2, 2}, rng), off_ok}}),
               Error);
  EXPECT_THROW(run_node({.op = "DeformConv", .opset = 18, .inputs = {x, w, off_ok}}), Error);
}

}  // namespace kiln::test
