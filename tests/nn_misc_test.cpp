// MatMul, Gemm, BatchNormalization, Resize/Upsample and the quantization ops
// against plain references computed here.
#include <gtest/gtest.h>

#include <cmath>

#include "core/thread_pool.h"
#include "op_harness.h"

namespace kiln::test {

namespace {

// Plain triple loop: out[b] = A[b] @ B[b] for 2-D slices given by offsets.
void ref_mm(const float* a, const float* b, float* out, int64_t M, int64_t K, int64_t N) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(a[i * K + k]) * b[k * N + j];
      out[i * N + j] = static_cast<float>(acc);
    }
}

}  // namespace

TEST(MatMul, BatchedBroadcastAgainstReference) {
  std::mt19937 rng(40);
  Tensor a = random_f32({2, 1, 5, 7}, rng), b = random_f32({3, 7, 6}, rng);
  auto out = run_node({.op = "MatMul", .opset = 13, .inputs = {a, b}});
  ASSERT_EQ(out[0].shape(), (Shape{2, 3, 5, 6}));
  Tensor want(DType::kFloat32, {2, 3, 5, 6});
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      ref_mm(a.data<float>() + i * 35, b.data<float>() + j * 42, want.data<float>() + (i * 3 + j) * 30, 5, 7, 6);
  EXPECT_TRUE(all_close(out[0], want, 1e-5, 1e-5));
}

TEST(MatMul, OneDimensionalOperandsAndIntegers) {
  std::mt19937 rng(41);
  Tensor v = random_f32({4}, rng), m = random_f32({3, 4, 2}, rng);
  auto vm = run_node({.op = "MatMul", .opset = 13, .inputs = {v, m}});
  ASSERT_EQ(vm[0].shape(), (Shape{3, 2}));
  for (int b = 0; b < 3; ++b)
    for (int j = 0; j < 2; ++j) {
      double acc = 0;
      for (int k = 0; k < 4; ++k) acc += v.data<float>()[k] * m.data<float>()[(b * 4 + k) * 2 + j];
      EXPECT_NEAR(vm[0].data<float>()[b * 2 + j], acc, 1e-5);
    }
  auto dot = run_node({.op = "MatMul", .opset = 13, .inputs = {v, v}});
  EXPECT_EQ(dot[0].shape(), Shape{});
  auto ints =
      run_node({.op = "MatMul", .opset = 13, .inputs = {make_i64({2, 2}, {1, 2, 3, 4}), make_i64({2}, {5, 6})}});
  ASSERT_EQ(ints[0].shape(), (Shape{2}));
  EXPECT_EQ(ints[0].data<int64_t>()[0], 17);
  EXPECT_EQ(ints[0].data<int64_t>()[1], 39);
  EXPECT_THROW(run_node({.op = "MatMul", .opset = 13, .inputs = {random_f32({2, 3}, rng), random_f32({4, 2}, rng)}}),
               Error);
  auto empty = run_node({.op = "MatMul", .opset = 13, .inputs = {random_f32({0, 3}, rng), random_f32({3, 2}, rng)}});
  EXPECT_EQ(empty[0].shape(), (Shape{0, 2}));
}

TEST(Gemm, TransposesAlphaBetaAndBroadcastC) {
  std::mt19937 rng(42);
  Tensor a = random_f32({4, 3}, rng), b = random_f32({5, 4}, rng), c = random_f32({5}, rng);
  auto out = run_node({.op = "Gemm",
                       .opset = 13,
                       .inputs = {a, b, c},
                       .attrs = {{"transA", attr_int(1)},
                                 {"transB", attr_int(1)},
                                 {"alpha", attr_float(0.5f)},
                                 {"beta", attr_float(-2.0f)}}});
  ASSERT_EQ(out[0].shape(), (Shape{3, 5}));
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 5; ++j) {
      double acc = 0;
      for (int k = 0; k < 4; ++k) acc += a.data<float>()[k * 3 + i] * b.data<float>()[j * 4 + k];
      EXPECT_NEAR(out[0].data<float>()[i * 5 + j], 0.5 * acc - 2.0 * c.data<float>()[j], 1e-5);
    }
  // C optional from opset 11 only.
  Tensor a2 = random_f32({2, 3}, rng), b2 = random_f32({3, 2}, rng);
  auto noc = run_node({.op = "Gemm", .opset = 11, .inputs = {a2, b2}});
  Tensor want(DType::kFloat32, {2, 2});
  ref_mm(a2.data<float>(), b2.data<float>(), want.data<float>(), 2, 3, 2);
  EXPECT_TRUE(all_close(noc[0], want, 1e-5, 1e-6));
  EXPECT_THROW(run_node({.op = "Gemm", .opset = 9, .inputs = {a2, b2}}), Error);
  // Opset 6: C must already have the output shape unless broadcast=1.
  Tensor c1 = random_f32({1, 2}, rng);
  EXPECT_THROW(run_node({.op = "Gemm", .opset = 6, .inputs = {a2, b2, c1}}), Error);
  auto bc = run_node({.op = "Gemm", .opset = 6, .inputs = {a2, b2, c1}, .attrs = {{"broadcast", attr_int(1)}}});
  for (int i = 0; i < 4; ++i)
    EXPECT_NEAR(bc[0].data<float>()[i], want.data<float>()[i] + c1.data<float>()[i % 2], 1e-5);
}

TEST(BatchNorm, InferenceSpatialAndTraining) {
  std::mt19937 rng(43);
  Tensor x = random_f32({2, 3, 4}, rng), s = random_f32({3}, rng), b = random_f32({3}, rng);
  Tensor m = random_f32({3}, rng), v = random_f32({3}, rng, 0.5f, 2.0f);
  auto out = run_node(
      {.op = "BatchNormalization", .opset = 15, .inputs = {x, s, b, m, v}, .attrs = {{"epsilon", attr_float(1e-3f)}}});
  for (int i = 0; i < 24; ++i) {
    int c = (i / 4) % 3;
    double want =
        (x.data<float>()[i] - m.data<float>()[c]) / std::sqrt(v.data<float>()[c] + 1e-3) * s.data<float>()[c] +
        b.data<float>()[c];
    EXPECT_NEAR(out[0].data<float>()[i], want, 1e-5);
  }
  // Opset 7 with spatial=0: parameters per (channel, position).
  Tensor s2 = random_f32({3, 4}, rng), b2 = random_f32({3, 4}, rng), m2 = random_f32({3, 4}, rng);
  Tensor v2 = random_f32({3, 4}, rng, 0.5f, 2.0f);
  auto sp0 = run_node(
      {.op = "BatchNormalization", .opset = 7, .inputs = {x, s2, b2, m2, v2}, .attrs = {{"spatial", attr_int(0)}}});
  for (int i = 0; i < 24; ++i) {
    int k = i % 12;
    double want =
        (x.data<float>()[i] - m2.data<float>()[k]) / std::sqrt(v2.data<float>()[k] + 1e-5) * s2.data<float>()[k] +
        b2.data<float>()[k];
    EXPECT_NEAR(sp0[0].data<float>()[i], want, 1e-5);
  }
  EXPECT_THROW(run_node({.op = "BatchNormalization", .opset = 9, .inputs = {x, s2, b2, m2, v2}}), Error);
  // Training mode: batch statistics and running averages.
  auto tr = run_node({.op = "BatchNormalization",
                      .opset = 15,
                      .inputs = {x, s, b, m, v},
                      .attrs = {{"training_mode", attr_int(1)}, {"momentum", attr_float(0.8f)}},
                      .num_outputs = 3});
  for (int c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 4; ++i) sum += x.data<float>()[(n * 3 + c) * 4 + i];
    double mean = sum / 8;
    for (int n = 0; n < 2; ++n)
      for (int i = 0; i < 4; ++i) sq += std::pow(x.data<float>()[(n * 3 + c) * 4 + i] - mean, 2);
    double var = sq / 8;
    EXPECT_NEAR(tr[1].data<float>()[c], m.data<float>()[c] * 0.8 + mean * 0.2, 1e-5);
    EXPECT_NEAR(tr[2].data<float>()[c], v.data<float>()[c] * 0.8 + var * 0.2, 1e-5);
    EXPECT_NEAR(tr[0].data<float>()[c * 4],
                (x.data<float>()[c * 4] - mean) / std::sqrt(var + 1e-5) * s.data<float>()[c] + b.data<float>()[c],
                1e-4);
  }
}

// Per (n, c) plane in double, from the definition.
Tensor ref_instance_norm(const Tensor& x, const Tensor& scale, const Tensor& bias, double eps) {
  const int64_t N = x.dim(0), C = x.dim(1), sp = N * C > 0 ? x.numel() / (N * C) : 0;
  Tensor y(DType::kFloat32, x.shape());
  for (int64_t r = 0; r < N * C; ++r) {
    const float* xr = x.data<float>() + r * sp;
    double m = 0, v = 0;
    for (int64_t i = 0; i < sp; ++i) m += xr[i];
    m /= static_cast<double>(sp);
    for (int64_t i = 0; i < sp; ++i) v += (xr[i] - m) * (xr[i] - m);
    const double inv = 1 / std::sqrt(v / static_cast<double>(sp) + eps);
    for (int64_t i = 0; i < sp; ++i)
      y.data<float>()[r * sp + i] =
          static_cast<float>((xr[i] - m) * inv * scale.data<float>()[r % C] + bias.data<float>()[r % C]);
  }
  return y;
}

TEST(InstanceNorm, PlanesOfEverySizeAgainstReference) {
  std::mt19937 rng(44);
  ThreadPool pool(2);
  for (const Shape& s : std::vector<Shape>{
           {2, 3, 5, 7}, {1, 16, 64, 64}, {3, 5, 1}, {1, 4, 1, 1}, {2, 2, 3, 4, 5}, {0, 3, 4, 4}, {1, 7, 33}}) {
    Tensor x = random_f32(s, rng), scale = random_f32({s[1]}, rng), bias = random_f32({s[1]}, rng);
    // A large common offset: the mean must not swallow the spread.
    for (int64_t i = 0; i < x.numel(); i += 2) x.data<float>()[i] += 1000.0f;
    for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
      auto out = run_node({.op = "InstanceNormalization",
                           .opset = 6,
                           .inputs = {x, scale, bias},
                           .attrs = {{"epsilon", attr_float(1e-3f)}},
                           .constant_from = 1,
                           .pool = p});
      EXPECT_TRUE(all_close(out[0], ref_instance_norm(x, scale, bias, 1e-3f), 1e-4, 1e-4)) << shape_str(s);
    }
  }
  // Scale and B must have C elements.
  EXPECT_THROW(run_node({.op = "InstanceNormalization",
                         .opset = 6,
                         .inputs = {random_f32({1, 3, 4}, rng), random_f32({2}, rng), random_f32({3}, rng)}}),
               Error);
}

TEST(Resize, BilinearAlignCornersAndHalfPixelAgainstReference) {
  std::mt19937 rng(44);
  Tensor x = random_f32({1, 2, 3, 4}, rng);
  const int OH = 5, OW = 7;
  for (const char* mode : {"align_corners", "half_pixel"}) {
    auto res =
        run_node({.op = "Resize",
                  .opset = 13,
                  .inputs = {x, std::nullopt, std::nullopt, make_i64({4}, {1, 2, OH, OW})},
                  .attrs = {{"mode", attr_string("linear")}, {"coordinate_transformation_mode", attr_string(mode)}}});
    ASSERT_EQ(res[0].shape(), (Shape{1, 2, OH, OW}));
    bool align = std::string(mode) == "align_corners";
    auto src = [&](int o, int in, int outn) {
      double s = align ? o * double(in - 1) / (outn - 1) : (o + 0.5) * in / outn - 0.5;
      return std::clamp(s, 0.0, double(in - 1));
    };
    for (int c = 0; c < 2; ++c)
      for (int h = 0; h < OH; ++h)
        for (int w = 0; w < OW; ++w) {
          double sh = src(h, 3, OH), sw = src(w, 4, OW);
          int h0 = int(std::floor(sh)), w0 = int(std::floor(sw));
          int h1 = std::min(h0 + 1, 2), w1 = std::min(w0 + 1, 3);
          double fh = sh - h0, fw = sw - w0;
          auto at = [&](int i, int j) { return double(x.data<float>()[(c * 3 + i) * 4 + j]); };
          double want =
              (1 - fh) * ((1 - fw) * at(h0, w0) + fw * at(h0, w1)) + fh * ((1 - fw) * at(h1, w0) + fw * at(h1, w1));
          EXPECT_NEAR(res[0].data<float>()[(c * OH + h) * OW + w], want, 1e-5) << mode;
        }
  }
}

TEST(Resize, NearestModesAndLegacyVersions) {
  Tensor x = make_f32({1, 1, 1, 4}, {1, 2, 3, 4});
  // scale 2 asymmetric: x_orig = o/2 -> 0, 0.5, 1, 1.5, ...
  auto floor_ = run_node({.op = "Resize",
                          .opset = 13,
                          .inputs = {x, std::nullopt, make_f32({4}, {1, 1, 1, 2})},
                          .attrs = {{"coordinate_transformation_mode", attr_string("asymmetric")},
                                    {"nearest_mode", attr_string("round_prefer_ceil")}}});
  std::vector<float> want_ceil = {1, 2, 2, 3, 3, 4, 4, 4};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(floor_[0].data<float>()[i], want_ceil[i]);
  // Upsample-7 (attribute) and Resize-10 (input) repeat elements.
  auto up7 = run_node({.op = "Upsample", .opset = 7, .inputs = {x}, .attrs = {{"scales", attr_floats({1, 1, 2, 2})}}});
  auto r10 = run_node({.op = "Resize", .opset = 10, .inputs = {x, make_f32({4}, {1, 1, 2, 2})}});
  ASSERT_EQ(up7[0].shape(), (Shape{1, 1, 2, 8}));
  ASSERT_EQ(r10[0].shape(), (Shape{1, 1, 2, 8}));
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(up7[0].data<float>()[i], x.data<float>()[(i % 8) / 2]);
    EXPECT_EQ(r10[0].data<float>()[i], x.data<float>()[(i % 8) / 2]);
  }
  // Axes (opset 18) and keep_aspect_ratio_policy.
  Tensor y = make_f32({1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8});
  auto ax = run_node({.op = "Resize",
                      .opset = 18,
                      .inputs = {y, std::nullopt, std::nullopt, make_i64({2}, {4, 4})},
                      .attrs = {{"axes", attr_ints({2, 3})}, {"keep_aspect_ratio_policy", attr_string("not_larger")}}});
  EXPECT_EQ(ax[0].shape(), (Shape{1, 1, 2, 4}));  // scale min(2, 1) = 1
  EXPECT_THROW(run_node({.op = "Resize", .opset = 13, .inputs = {y, std::nullopt, make_f32({3}, {1, 1, 2})}}), Error);
  EXPECT_THROW(run_node({.op = "Resize",
                         .opset = 13,
                         .inputs = {y, std::nullopt, make_f32({4}, {1, 1, 2, 2})},
                         .attrs = {{"mode", attr_string("bogus")}}}),
               Error);
}

TEST(Quantize, PerAxisRoundTripAndSaturation) {
  Tensor x = make_f32({2, 3}, {-1.0f, 0.5f, 300.0f, 2.5f, 3.5f, -300.0f});
  Tensor scale = make_f32({3}, {1.0f, 0.5f, 1.0f});
  Tensor zp(DType::kUInt8, {3});
  zp.data<uint8_t>()[0] = 10;
  zp.data<uint8_t>()[1] = 0;
  zp.data<uint8_t>()[2] = 128;
  auto q = run_node({.op = "QuantizeLinear", .opset = 13, .inputs = {x, scale, zp}});
  ASSERT_EQ(q[0].dtype(), DType::kUInt8);
  // round half to even: 2.5 -> 2, 3.5/0.5 = 7; saturation at 255 and 0.
  std::vector<int> want = {9, 1, 255, 12, 7, 0};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(q[0].data<uint8_t>()[i], want[i]) << i;
  auto dq = run_node({.op = "DequantizeLinear", .opset = 13, .inputs = {q[0], scale, zp}});
  for (int i = 0; i < 6; ++i)
    EXPECT_FLOAT_EQ(dq[0].data<float>()[i], (want[i] - zp.data<uint8_t>()[i % 3]) * scale.data<float>()[i % 3]);
  // Opset 10 is per-tensor only.
  EXPECT_THROW(run_node({.op = "QuantizeLinear", .opset = 10, .inputs = {x, scale, zp}}), Error);
  auto dyn = run_node(
      {.op = "DynamicQuantizeLinear", .opset = 11, .inputs = {make_f32({3}, {-1.0f, 0.0f, 2.0f})}, .num_outputs = 3});
  const float s = 3.0f / 255.0f;
  EXPECT_FLOAT_EQ(dyn[1].data<float>()[0], s);
  EXPECT_EQ(dyn[2].data<uint8_t>()[0], static_cast<uint8_t>(std::nearbyint(1.0f / s)));
  EXPECT_EQ(dyn[0].data<uint8_t>()[2], 255);
}

TEST(QuantizedConv, ConvIntegerMatchesShiftedFloatConv) {
  std::mt19937 rng(45);
  std::uniform_int_distribution<int> u(0, 255);
  Tensor x(DType::kUInt8, {1, 2, 4, 4}), w(DType::kUInt8, {3, 2, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<uint8_t>()[i] = static_cast<uint8_t>(u(rng));
  for (int64_t i = 0; i < w.numel(); ++i) w.data<uint8_t>()[i] = static_cast<uint8_t>(u(rng));
  Tensor xz(DType::kUInt8, {}), wz(DType::kUInt8, {});
  xz.data<uint8_t>()[0] = 100;
  wz.data<uint8_t>()[0] = 7;
  auto out = run_node(
      {.op = "ConvInteger", .opset = 10, .inputs = {x, w, xz, wz}, .attrs = {{"pads", attr_ints({1, 0, 0, 1})}}});
  ASSERT_EQ(out[0].shape(), (Shape{1, 3, 4, 4}));
  for (int m = 0; m < 3; ++m)
    for (int oh = 0; oh < 4; ++oh)
      for (int ow = 0; ow < 4; ++ow) {
        int64_t acc = 0;
        for (int c = 0; c < 2; ++c)
          for (int kh = 0; kh < 2; ++kh)
            for (int kw = 0; kw < 2; ++kw) {
              int ih = oh - 1 + kh, iw = ow + kw;
              if (ih < 0 || ih >= 4 || iw >= 4) continue;
              acc += (x.data<uint8_t>()[(c * 4 + ih) * 4 + iw] - 100) *
                     (w.data<uint8_t>()[((m * 2 + c) * 2 + kh) * 2 + kw] - 7);
            }
        EXPECT_EQ(out[0].data<int32_t>()[(m * 4 + oh) * 4 + ow], acc);
      }
}

TEST(GridSample, BilinearZerosAndNearestBorder) {
  std::mt19937 rng(46);
  Tensor x = random_f32({1, 1, 3, 4}, rng);
  // Points: exact pixel centres (align_corners=1) and one outside.
  Tensor grid = make_f32({1, 1, 3, 2}, {-1.0f, -1.0f, 1.0f, 1.0f, 2.0f, 0.0f});
  auto out =
      run_node({.op = "GridSample", .opset = 20, .inputs = {x, grid}, .attrs = {{"align_corners", attr_int(1)}}});
  EXPECT_NEAR(out[0].data<float>()[0], x.data<float>()[0], 1e-6);
  EXPECT_NEAR(out[0].data<float>()[1], x.data<float>()[11], 1e-6);
  EXPECT_NEAR(out[0].data<float>()[2], 0.0f, 1e-6);  // x = 6 > 3: outside, zeros
  auto border = run_node(
      {.op = "GridSample",
       .opset = 16,
       .inputs = {x, grid},
       .attrs = {
           {"align_corners", attr_int(1)}, {"mode", attr_string("nearest")}, {"padding_mode", attr_string("border")}}});
  EXPECT_EQ(border[0].data<float>()[2], x.data<float>()[1 * 4 + 3]);  // clamped to the last column, middle row
}

TEST(RoiAlign, AverageOfConstantRegionAndCol2ImSums) {
  Tensor x(DType::kFloat32, {1, 1, 6, 6});
  for (int i = 0; i < 36; ++i) x.data<float>()[i] = 3.0f;
  auto out = run_node({.op = "RoiAlign",
                       .opset = 16,
                       .inputs = {x, make_f32({1, 4}, {1, 1, 4, 4}), make_i64({1}, {0})},
                       .attrs = {{"output_height", attr_int(2)}, {"output_width", attr_int(2)}}});
  ASSERT_EQ(out[0].shape(), (Shape{1, 1, 2, 2}));
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(out[0].data<float>()[i], 3.0f, 1e-6);
  // Col2Im of all-ones 2x2 blocks over a 3x3 image counts how many blocks cover each pixel.
  Tensor cols(DType::kFloat32, {1, 4, 4});
  for (int i = 0; i < 16; ++i) cols.data<float>()[i] = 1.0f;
  auto img = run_node({.op = "Col2Im", .opset = 18, .inputs = {cols, make_i64({2}, {3, 3}), make_i64({2}, {2, 2})}});
  std::vector<float> want = {1, 2, 1, 2, 4, 2, 1, 2, 1};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(img[0].data<float>()[i], want[i]);
}

}  // namespace kiln::test
